"""The legacy script, unmodified and run from tests/fixtures/legacy/, against a
stand-in ``google.generativeai`` on PYTHONPATH; then recovered by
``designsim batch recover`` (with the legacy script, then with our runner)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pandas as pd
import pytest
from batch_helpers import FAST, STUB_DIR, answer

from designsim.cli import main
from designsim.testing import FakeGeminiServer, text_reply

PROMPTS = ["alpha design", "beta flaky design", "gamma design", "delta doomed design", "epsilon flaky design", "zeta design"]


def stub_answer(prompt: str) -> str:
    return "stub answer to: " + prompt


@pytest.fixture
def stub_env(tmp_path, monkeypatch, key):
    """The stand-in SDK on PYTHONPATH for child processes: "flaky" prompts fail
    once with "504 Deadline Exceeded", "doomed" ones always."""
    monkeypatch.setenv("PYTHONPATH", str(STUB_DIR))
    monkeypatch.setenv("STUB_GENAI_STATE", str(tmp_path / "stub-state"))
    monkeypatch.setenv("STUB_GENAI_FAIL", "flaky")
    monkeypatch.setenv("STUB_GENAI_FAIL_ALWAYS", "doomed")
    monkeypatch.setenv("STUB_GENAI_FAIL_TIMES", "1")
    return tmp_path / "stub-state"


@pytest.fixture
def legacy_run(tmp_path, stub_env, legacy_script):
    """Run the unmodified legacy script once, in its own working directory."""
    frame = pd.DataFrame({"PROMPT_ID": range(1, 7), "PROMPT": PROMPTS, "CW_THEME": ["t"] * 6, "OTHER": list("abcdef")})
    frame.to_pickle(tmp_path / "INPUT_PROMPTS.pkl")
    work = tmp_path / "legacy-cwd"
    work.mkdir()
    before = hashlib.sha256(legacy_script.read_bytes()).hexdigest()
    proc = subprocess.run([sys.executable, str(legacy_script)], cwd=work, input=f"{tmp_path / 'INPUT_PROMPTS.pkl'}\n",
                          text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(legacy_script.read_bytes()).hexdigest() == before  # never modified
    (results_dir,) = list(work.glob("results_*"))
    return frame, results_dir / "RESULTS.pkl"


def _ids(path):
    from designsim.batch.tables import read_pickle_tolerant

    return read_pickle_tolerant(path)[0]


def test_legacy_run_leaves_holes(legacy_run):
    frame, results = legacy_run
    got = _ids(results)
    assert sorted(got["PROMPT_ID"]) == [1, 3, 6]  # the 504s were just logged and skipped
    assert "RESPONSE" in got.columns  # pickled SDK objects (restored as None here)


def test_recover_with_the_legacy_script_then_with_our_runner(tmp_path, legacy_run, legacy_script, capsys):
    frame, results = legacy_run
    original = results.read_bytes()

    assert main(["batch", "missing", "--input", str(tmp_path / "INPUT_PROMPTS.pkl"), "--output", str(results),
                 "--retry-table", str(tmp_path / "retry.csv")]) == 0
    out = capsys.readouterr().out
    assert "3 of 6 id(s) missing" in out and out.split("\n")[1:4] == ["2", "4", "5"]
    assert sorted(pd.read_csv(tmp_path / "retry.csv")["PROMPT_ID"]) == [2, 4, 5]

    rc = main(["batch", "recover", "--input", str(tmp_path / "INPUT_PROMPTS.pkl"), "--output", str(results),
               "--legacy-script", str(legacy_script)])
    out = capsys.readouterr().out
    assert rc == 1  # the doomed prompt still fails
    assert "before: 3/6" in out and "after:  5/6" in out and "still missing: 4" in out
    backup = results.with_name("RESULTS.pkl.bak")
    assert backup.read_bytes() == original  # the original is kept, byte for byte
    merged = _ids(results)
    assert merged["PROMPT_ID"].is_unique and sorted(merged["PROMPT_ID"]) == [1, 2, 3, 5, 6]
    for pid, result in zip(merged["PROMPT_ID"], merged["RESULT"]):
        assert result == stub_answer(PROMPTS[pid - 1])
    assert list((results.parent / "recover.legacy").glob("results_*/LOG.log"))
    calls = (tmp_path / "stub-state" / "calls.log").read_text().splitlines()
    recovery_calls = calls[calls.index("Hello", 1):]  # the second run starts with its "Hello" probe
    assert sorted(recovery_calls[1:]) == sorted([PROMPTS[1], PROMPTS[3], PROMPTS[4]])  # only the missing ones

    # then our runner recovers the last one, against the fake Gemini server
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        rc = main(["batch", "recover", "--input", str(tmp_path / "INPUT_PROMPTS.pkl"), "--output", str(results), *FAST])
    out = capsys.readouterr().out
    assert rc == 0 and "after:  6/6" in out
    assert [r.prompt for r in server.generate_requests()] == [PROMPTS[3]]
    final = _ids(results)
    assert final["PROMPT_ID"].is_unique and sorted(final["PROMPT_ID"]) == [1, 2, 3, 4, 5, 6]
    by_id = dict(zip(final["PROMPT_ID"], final["RESULT"]))
    assert by_id[4] == answer(PROMPTS[3]) and by_id[1] == stub_answer(PROMPTS[0])
    # one rolling backup per output: the previous version, not a pile of .bak.N copies
    assert sorted(p.name for p in results.parent.glob("RESULTS.pkl.bak*")) == ["RESULTS.pkl.bak"]
    assert sorted(_ids(backup)["PROMPT_ID"]) == [1, 2, 3, 5, 6]

    # a complete output: nothing to do, nothing rewritten
    with FakeGeminiServer(lambda r: text_reply("never")) as server:
        assert main(["batch", "recover", "--input", str(tmp_path / "INPUT_PROMPTS.pkl"), "--output", str(results), *FAST]) == 0
        assert server.requests == []
    assert sorted(p.name for p in results.parent.glob("RESULTS.pkl.bak*")) == ["RESULTS.pkl.bak"]
    assert sorted(_ids(backup)["PROMPT_ID"]) == [1, 2, 3, 5, 6]


def test_recover_legacy_without_a_key_is_a_config_error(tmp_path, legacy_run, legacy_script, monkeypatch, capsys):
    _frame, results = legacy_run
    monkeypatch.delenv("GEMINI_API_KEY")
    rc = main(["batch", "recover", "--input", str(tmp_path / "INPUT_PROMPTS.pkl"), "--output", str(results),
               "--legacy-script", str(legacy_script)])
    assert rc == 2 and "GEMINI_API_KEY" in capsys.readouterr().err


def test_recover_when_the_legacy_run_saved_nothing(tmp_path, stub_env, legacy_script, monkeypatch, capsys):
    frame = pd.DataFrame({"PROMPT_ID": [7, 8], "PROMPT": ["one flaky", "two flaky"]})
    frame.to_pickle(tmp_path / "in.pkl")
    missing_output = tmp_path / "results_20250101_000000" / "RESULTS.pkl"
    rc = main(["batch", "recover", "--input", str(tmp_path / "in.pkl"), "--output", str(missing_output),
               "--legacy-script", str(legacy_script)])
    out = capsys.readouterr().out
    # first attempt of each flaky prompt fails inside the legacy run; nothing recovered yet
    assert rc == 1 and "did not exist" in out
    rc = main(["batch", "recover", "--input", str(tmp_path / "in.pkl"), "--output", str(missing_output),
               "--legacy-script", str(legacy_script)])
    assert rc == 0
    got = _ids(missing_output)
    assert sorted(got["PROMPT_ID"]) == [7, 8] and set(got["RESULT"]) == {stub_answer("one flaky"), stub_answer("two flaky")}
    assert os.listdir(missing_output.parent).count("RESULTS.pkl.bak") == 0
