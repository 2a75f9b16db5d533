"""Up-front checks and the smaller promises of issue 12 item 7 (and issue 13's
every-problem-at-once): each before anything is spent."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest
from batch_helpers import FAST, answer, prompts_frame

from designsim.batch.checkpoint import Journal, ResultRecord
from designsim.batch.outputs import result_file_names
from designsim.batch.tables import load_job
from designsim.cli import main
from designsim.errors import ConfigError
from designsim.testing import FakeGeminiServer, text_reply


def test_csv_ids_are_text_and_positions_are_file_lines(tmp_path):
    (tmp_path / "in.csv").write_text('PROMPT_ID,PROMPT\n007,"a prompt\nover two lines"\n7,b\n0042,c\n', encoding="utf-8")
    job = load_job(tmp_path / "in.csv")
    assert job.keys == ["007", "7", "0042"]  # "007" keeps its zeros and is not a duplicate of "7"
    (tmp_path / "bad.csv").write_text('PROMPT_ID,PROMPT\n1,"multi\nline"\n1,x\n,y\n3,\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_job(tmp_path / "bad.csv")
    message = str(info.value)
    # every problem at once, with 1-based file lines (header = line 1, the quoted prompt spans 2-3)
    assert "3 problems" in message
    assert "duplicate id '1' at lines 2, 4" in message
    assert "missing id at line 5" in message
    assert "blank or non-text prompt at line 6" in message


def test_jsonl_errors_are_reported_by_line_number_all_at_once(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"PROMPT_ID": 1, "PROMPT": "a"}\n\n{"PROMPT_ID": 2, "PROMPT": "b"\n[1, 2]\n'
                                       '{"PROMPT_ID": 4, "PROMPT": "d"}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_job(tmp_path / "in.jsonl")
    message = str(info.value)
    assert "line 3: not valid JSON" in message and "line 4: expected a JSON object" in message
    assert "byte" not in message and "char" not in message.split("line 3")[0]


def test_prompts_over_the_context_window_or_tpm_exit_2_naming_them(tmp_path, key, capsys):
    frame = pd.DataFrame({"PROMPT_ID": ["a", "b", "c"], "PROMPT": ["short", "x" * 8_000, "y" * 4_800_000]})
    frame.to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer(lambda r: text_reply("never")) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST, "--tpm", "1000"])
        assert server.generate_requests() == []
    err = capsys.readouterr().err
    assert rc == 2
    assert "over the model's context window of 1048576" in err and "c (1200000 tokens)" in err
    assert "over --tpm 1000" in err and "b (2000 tokens)" in err


def test_prompts_near_a_limit_are_counted_exactly(tmp_path, key):
    """The estimate (4 characters per token) says 1,250 tokens, over --tpm 1000; Gemini's countTokens says 500,
    so the prompt is sent. Only the prompt near the limit is counted."""
    frame = pd.DataFrame({"PROMPT_ID": [1, 2], "PROMPT": ["short", "z" * 5_000]})
    frame.to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer(lambda r: text_reply("ok", output_tokens=1),
                          count_tokens=lambda req: len(req.prompt) // 10) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST, "--tpm", "1000"])
        counted = [r for r in server.requests if r.path.endswith(":countTokens") and "zzzz" in json.dumps(r.body)]
        assert rc == 0 and len(counted) == 1 and len(server.generate_requests()) == 2


def test_missing_key_exits_2_before_anything(tmp_path, monkeypatch, capsys):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    prompts_frame(2).to_pickle(tmp_path / "in.pkl")
    assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "GEMINI_API_KEY" in capsys.readouterr().err


def test_default_model_and_no_temperature_unless_given(tmp_path, key):
    prompts_frame(2).to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST]) == 0
        reqs = server.generate_requests()
        assert {r.model for r in reqs} == {"gemini-3.8-flash"}
        assert all("temperature" not in (r.body.get("generationConfig") or {}) for r in reqs)
        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o2"), *FAST,
                     "--temperature", "0.3"]) == 0
        assert all(r.body["generationConfig"]["temperature"] == 0.3 for r in server.generate_requests()[2:])


def test_every_journal_append_is_fsynced(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    journal = Journal.open(tmp_path)
    for i in range(5):
        before = len(synced)
        journal.append(ResultRecord(key=str(i), status="ok", text="t"))
        assert len(synced) == before + 1 and synced[-1] == journal._fd
        # the line is on disk when append returns: another reader sees it
        assert Journal.read_state(tmp_path).succeeded(str(i))
    journal.close()


def test_results_pkl_is_written_during_the_run(tmp_path, key):
    prompts_frame(30).to_pickle(tmp_path / "in.pkl")
    seen_sizes: list[int] = []

    def handler(req):
        pkl = tmp_path / "o" / "RESULTS.pkl"
        if pkl.exists():
            seen_sizes.append(len(pd.read_pickle(pkl)))
        return text_reply(answer(req.prompt))

    with FakeGeminiServer(handler):
        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST,
                     "--concurrency", "2", "--checkpoint-every", "5"]) == 0
    assert seen_sizes and 0 < max(seen_sizes) < 30  # a partial, readable RESULTS.pkl existed mid-run


def test_duration_covers_the_whole_process_and_stale_temps_are_removed(tmp_path, key):
    import subprocess
    import sys

    from batch_helpers import REPO

    prompts_frame(3).to_pickle(tmp_path / "in.pkl")
    out = tmp_path / "o"
    out.mkdir()
    stale = out / ".RESULTS.pkl.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        env = dict(os.environ, GOOGLE_GEMINI_BASE_URL=server.url, PYTHONPATH=str(REPO / "src"))
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "designsim.cli", "batch", "run", "--input", str(tmp_path / "in.pkl"),
                               "--out", str(out), *FAST], env=env, capture_output=True, text=True, timeout=120)
        wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert not stale.exists()
    # the whole process (interpreter start, imports, reading, writing), not just the request phase
    assert 0.7 * wall <= summary["duration_s"] <= wall + 0.1


def test_result_file_names_never_collide():
    names = result_file_names(["a/b", "a_b", 7, "07", "x", "X"])
    assert len(set(n.lower() for n in names)) == 6
    assert result_file_names([3, 12]) == ["03_result.txt", "12_result.txt"]  # the legacy name when unique
