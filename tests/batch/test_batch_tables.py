"""Tables, ids, shards, merge-by-id guarantees, and the checkpoint journal."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import types

import pandas as pd
import pytest
from batch_helpers import prompts_frame

from designsim.batch.checkpoint import Journal, ResultRecord
from designsim.batch.tables import (
    id_key,
    load_job,
    merge_frames,
    parse_shard,
    read_pickle_tolerant,
    safe_file_stem,
    shard_of,
)
from designsim.cli import main
from designsim.errors import ConfigError


@pytest.mark.parametrize("suffix", ["pkl", "csv", "jsonl", "parquet"])
def test_every_input_format_gives_the_same_job(tmp_path, suffix):
    frame = prompts_frame(5)
    path = tmp_path / f"in.{suffix}"
    {"pkl": lambda: frame.to_pickle(path), "csv": lambda: frame.to_csv(path, index=False),
     "jsonl": lambda: frame.to_json(path, orient="records", lines=True), "parquet": lambda: frame.to_parquet(path)}[suffix]()
    job = load_job(path)
    assert job.keys == ["1", "2", "3", "4", "5"]
    assert job.prompts["3"] == "prompt number 3"
    assert list(job.frame.columns) == ["PROMPT_ID", "PROMPT", "CW_THEME", "CODEBASE"]


def test_custom_columns_and_string_ids(tmp_path):
    pd.DataFrame({"qid": ["a-1", "b/2"], "text": ["x", "y"]}).to_csv(tmp_path / "in.csv", index=False)
    job = load_job(tmp_path / "in.csv", id_col="qid", prompt_col="text")
    assert job.keys == ["a-1", "b/2"] and job.prompts["b/2"] == "y"
    with pytest.raises(ConfigError) as info:
        load_job(tmp_path / "in.csv")
    assert info.value.field == "PROMPT_ID" and info.value.source == str(tmp_path / "in.csv")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown table format"):
        load_job(tmp_path / "in.xlsx")
    with pytest.raises(ConfigError, match="file not found"):
        load_job(tmp_path / "nope.csv")


def test_id_keys_unify_types():
    import numpy as np

    assert id_key(7) == id_key(np.int64(7)) == id_key(7.0) == id_key("7") == "7"
    assert id_key(7.5) == "7.5"


def test_shards_are_stable_across_processes_and_partition_the_ids():
    keys = [str(i) for i in range(200)]
    mine = [shard_of(k, 4) for k in keys]
    code = "from designsim.batch.tables import shard_of; print([shard_of(str(i), 4) for i in range(200)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}).stdout
    assert json.loads(other) == mine  # not Python's salted hash()
    assert set(mine) == {1, 2, 3, 4} and all(mine.count(s) > 30 for s in (1, 2, 3, 4))
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1-2"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_result_file_names_cannot_escape_the_directory():
    assert safe_file_stem(3) == "03" and safe_file_stem(123) == "123"
    assert "/" not in safe_file_stem("../../etc/passwd") and safe_file_stem("..") != ".."


def test_merge_success_beats_failure_and_earliest_success_wins():
    first = pd.DataFrame({"PROMPT_ID": [1, 2, 3], "STATUS": ["ok", "failed", "ok"], "RESULT": ["a1", None, "a3"]})
    second = pd.DataFrame({"PROMPT_ID": ["1", "2", "4", "3"], "STATUS": ["failed", "ok", "ok", "ok"],
                           "RESULT": [None, "b2", "b4", "DIFFERENT"]})
    merged, report = merge_frames([first, second])
    by_id = {id_key(i): r for i, r in zip(merged["PROMPT_ID"], merged["RESULT"])}
    assert by_id == {"1": "a1", "2": "b2", "3": "a3", "4": "b4"}
    assert report.ids == 4 and report.succeeded == 4 and report.duplicates_dropped == 3
    assert report.conflicts == 1 and report.conflict_examples == [("3", 1, 2)]


def test_merge_keeps_failures_when_nothing_succeeded_and_handles_empty_inputs():
    empty = pd.DataFrame({"PROMPT_ID": [], "RESULT": []})
    only = pd.DataFrame({"PROMPT_ID": [5], "STATUS": ["failed"], "RESULT": [None]})
    merged, report = merge_frames([empty, only])
    assert list(merged["PROMPT_ID"]) == [5] and report.succeeded == 0


def test_merge_cli_backs_up_and_warns_about_conflicts(tmp_path, capsys):
    pd.DataFrame({"PROMPT_ID": [1, 2], "RESULT": ["old1", "old2"]}).to_pickle(tmp_path / "OUT.pkl")
    pd.DataFrame({"PROMPT_ID": [2, 3], "RESULT": ["new2", "new3"]}).to_pickle(tmp_path / "a.pkl")
    pd.DataFrame({"PROMPT_ID": [3, 4], "RESULT": ["other3", "new4"]}).to_parquet(tmp_path / "b.parquet")
    assert main(["batch", "merge", str(tmp_path / "OUT.pkl"), str(tmp_path / "a.pkl"), str(tmp_path / "b.parquet")]) == 0
    captured = capsys.readouterr()
    merged = pd.read_pickle(tmp_path / "OUT.pkl")
    assert dict(zip(merged["PROMPT_ID"], merged["RESULT"])) == {1: "old1", 2: "old2", 3: "new3", 4: "new4"}
    assert "2 id(s) have different successful results" in captured.err and "kept the earliest" in captured.err
    assert list(pd.read_pickle(tmp_path / "OUT.pkl.bak")["RESULT"]) == ["old1", "old2"]


def test_tolerant_unpickling_of_objects_whose_module_is_gone(tmp_path):
    module = types.ModuleType("vanishing_sdk")

    class Response:
        def __init__(self, text):
            self.text = text

    Response.__module__ = "vanishing_sdk"
    Response.__qualname__ = "Response"
    module.Response = Response
    sys.modules["vanishing_sdk"] = module
    try:
        frame = pd.DataFrame({"PROMPT_ID": [1], "RESULT": ["r"], "RESPONSE": [Response("r")]})
        (tmp_path / "R.pkl").write_bytes(pickle.dumps(frame, protocol=4))
    finally:
        del sys.modules["vanishing_sdk"]
    got, missing = read_pickle_tolerant(tmp_path / "R.pkl")
    assert missing == {"vanishing_sdk.Response"}
    assert list(got["RESULT"]) == ["r"] and got["RESPONSE"].isna().all()


# ------------------------------------------------------------------ checkpoint


def _rec(key, status="ok", **kw):
    return ResultRecord(key=key, status=status, text=f"t{key}" if status == "ok" else None, **kw)


def test_journal_survives_a_torn_tail_and_a_corrupt_line(tmp_path):
    with Journal.open(tmp_path) as journal:
        journal.append(_rec("1"))
        journal.append(_rec("2", "failed", reason="504", transient=True))
    path = tmp_path / "journal.jsonl"
    with open(path, "ab") as fh:
        fh.write(b"not json at all\n")
        fh.write(b'{"kind":"result","key":"9","sta')
    with Journal.open(tmp_path) as journal:
        state = journal.state
        assert (state.torn, state.corrupt) == (1, 1)
        assert state.succeeded("1") and not state.succeeded("2") and "9" not in state.best
        journal.append(_rec("2"))
    assert path.read_bytes().endswith(b"\n")
    state = Journal.read_state(tmp_path)
    assert state.succeeded("2") and state.torn == 0 and state.attempts["2"] == 2


def test_a_success_is_never_replaced_by_a_later_failure_or_success(tmp_path):
    with Journal.open(tmp_path) as journal:
        journal.append(_rec("1", digest="d1"))
        journal.append(_rec("1", "failed", reason="400", digest="d1"))
        journal.append(ResultRecord(key="1", status="ok", text="second", digest="d1"))
        assert journal.state.best["1"].text == "t1"


def test_one_run_per_directory(tmp_path):
    with Journal.open(tmp_path):
        with pytest.raises(ConfigError, match="another designsim batch run"):
            Journal.open(tmp_path)
