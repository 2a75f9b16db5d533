"""Issue 11 item 1: no pickle from anywhere untrusted runs code. Input tables,
earlier results and legacy RESULTS.pkl files go through the allow-list
unpickler (pandas, numpy, pyarrow, plain builtins); anything else becomes an
inert placeholder (None in the frame) unless --trust-pickle."""

from __future__ import annotations

import os
import pickle

import pandas as pd
import pytest

from designsim.batch.tables import read_pickle_restricted, read_table
from designsim.cli import main


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


class _Response:  # stands in for a legacy google.generativeai response object
    def __init__(self):
        self.text = "t"


def test_a_pickle_that_calls_os_system_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"PROMPT_ID": [1, 2], "PROMPT": ["a", "b"], "X": [_Evil(), 1]})
    (tmp_path / "in.pkl").write_bytes(pickle.dumps(frame, protocol=4))
    loaded, refused = read_pickle_restricted(tmp_path / "in.pkl")
    assert not (tmp_path / "PWNED").exists()
    assert "posix.system" in refused or "os.system" in refused
    assert loaded["X"].iloc[0] is None and list(loaded["PROMPT"]) == ["a", "b"]


def test_a_pickle_that_is_not_a_table_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.pkl").write_bytes(pickle.dumps(_Evil()))
    assert main(["batch", "missing", "--input", str(tmp_path / "in.pkl"), "--output", str(tmp_path / "none.pkl")]) == 2
    assert not (tmp_path / "PWNED").exists()


def test_legacy_response_objects_become_none_and_data_survives(tmp_path):
    frame = pd.DataFrame({"PROMPT_ID": [1, 2], "RESULT": ["r1", "r2"], "RESPONSE": [_Response(), _Response()],
                          "WHEN": pd.to_datetime(["2026-01-01", None]), "N": pd.array([1, None], dtype="Int64"),
                          "CAT": pd.Categorical(["x", "y"])})
    frame.to_pickle(tmp_path / "RESULTS.pkl", protocol=4)
    loaded, refused = read_pickle_restricted(tmp_path / "RESULTS.pkl")
    assert any(name.endswith("_Response") for name in refused)
    assert list(loaded["RESPONSE"]) == [None, None]
    pd.testing.assert_frame_equal(loaded.drop(columns="RESPONSE"), frame.drop(columns="RESPONSE"))


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]", "int64[pyarrow]"])
def test_pandas_3_arrow_backed_columns_load(tmp_path, dtype):
    frame = pd.DataFrame({"PROMPT_ID": pd.array(["007", "7"], dtype="string[pyarrow]"), "V": pd.array(["1", "2"]).astype(dtype)})
    frame.to_pickle(tmp_path / "t.pkl")
    loaded, refused = read_pickle_restricted(tmp_path / "t.pkl")
    assert refused == set()
    pd.testing.assert_frame_equal(loaded, frame)


def test_trust_pickle_loads_objects_as_they_are(tmp_path):
    frame = pd.DataFrame({"PROMPT_ID": [1], "PROMPT": ["a"], "RESPONSE": [_Response()]})
    frame.to_pickle(tmp_path / "in.pkl")
    assert read_table(tmp_path / "in.pkl")["RESPONSE"].iloc[0] is None
    assert read_table(tmp_path / "in.pkl", trust_pickle=True)["RESPONSE"].iloc[0].text == "t"
