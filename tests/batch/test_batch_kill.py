"""Crash safety: a `designsim batch run` subprocess killed with SIGKILL (or
stopped with SIGINT) mid-run, then resumed, completes with nothing lost or
duplicated and no finished id sent again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
from batch_helpers import REPO, answer, prompts_frame

from designsim.cli import main
from designsim.testing import FakeGeminiServer, text_reply

N = 40


def _start(tmp_path, server, extra=()):
    env = dict(os.environ, GOOGLE_GEMINI_BASE_URL=server.url, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "designsim.cli", "batch", "run", "--input", str(tmp_path / "in.pkl"),
           "--out", str(tmp_path / "out"), "--rpm", "60000", "--concurrency", "4", "--progress-every", "3600", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_results(journal, at_least, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"kind":"result"') >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def _ok_ids(journal):
    ids = set()
    for line in journal.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("kind") == "result" and rec["status"] == "ok":
            ids.add(int(rec["key"]))
    return ids


def _check_complete(tmp_path, frame):
    res = pd.read_pickle(tmp_path / "out" / "RESULTS.pkl")
    assert res["PROMPT_ID"].is_unique and sorted(res["PROMPT_ID"]) == list(frame["PROMPT_ID"])
    for pid, result in zip(res["PROMPT_ID"], res["RESULT"]):
        assert result == answer(f"prompt number {pid}")


def test_sigkill_mid_run_then_resume(tmp_path, key):
    frame = prompts_frame(N)
    frame.to_pickle(tmp_path / "in.pkl")
    journal = tmp_path / "out" / "journal.jsonl"
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt)), latency_s=0.05) as server:
        proc = _start(tmp_path, server)
        _wait_for_results(journal, 10, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.3)  # let the fake finish the requests the dead process had in flight
        # what a write cut short by the kill leaves behind: a torn last line
        with open(journal, "ab") as fh:
            fh.write(b'{"kind":"result","key":"3')
        done_before = _ok_ids(journal)
        assert 10 <= len(done_before) < N
        sent_before = len(server.generate_requests())

        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "out"),
                     "--rpm", "60000", "--progress-every", "3600"]) == 0
        resent = [int(r.prompt.rsplit(" ", 1)[1]) for r in server.generate_requests()[sent_before:]]
    assert not set(resent) & done_before  # nothing finished is sent again
    assert len(resent) == len(set(resent)) == N - len(done_before)
    _check_complete(tmp_path, frame)
    lines = journal.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # the torn tail was cut, every line parses
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["succeeded"] == N and summary["journal_lines_dropped"] == 1


def test_sigint_writes_outputs_and_resumes(tmp_path, key):
    frame = prompts_frame(N)
    frame.to_pickle(tmp_path / "in.pkl")
    journal = tmp_path / "out" / "journal.jsonl"
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt)), latency_s=0.05) as server:
        proc = _start(tmp_path, server)
        _wait_for_results(journal, 8, proc)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 1, err
        assert "interrupted" in err
        partial = pd.read_pickle(tmp_path / "out" / "RESULTS.pkl")  # written on interrupt
        assert 8 <= len(partial) < N and partial["PROMPT_ID"].is_unique
        assert json.loads((tmp_path / "out" / "summary.json").read_text())["run"]["stopped"] == "interrupted"
        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "out"),
                     "--rpm", "60000", "--progress-every", "3600"]) == 0
    _check_complete(tmp_path, frame)
