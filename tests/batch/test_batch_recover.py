"""`designsim batch recover` uses what is there: a designsim run's journal, or a
legacy directory's torn RESULTS.pkl plus its NN_result.txt files."""

from __future__ import annotations

import os
import signal
import time

import pandas as pd
from batch_helpers import FAST, answer, prompts_frame
from test_batch_kill import _ok_ids, _start, _wait_for_results

from designsim.cli import main
from designsim.testing import FakeGeminiServer, text_reply


def test_recover_of_a_killed_designsim_run_sends_only_the_unfinished_ids(tmp_path, key, capsys):
    n = 60
    frame = prompts_frame(n)
    frame.to_pickle(tmp_path / "in.pkl")
    journal = tmp_path / "out" / "journal.jsonl"
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt)), latency_s=0.05) as server:
        proc = _start(tmp_path, server, extra=["--concurrency", "4"])
        _wait_for_results(journal, 20, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(0.3)
        done = _ok_ids(journal)
        sent_before = len(server.generate_requests())
        rc = main(["batch", "recover", "--input", str(tmp_path / "in.pkl"), "--output", str(tmp_path / "out" / "RESULTS.pkl"),
                   *FAST])
        resent = [int(r.prompt.rsplit(" ", 1)[1]) for r in server.generate_requests()[sent_before:]]
    out = capsys.readouterr().out
    assert rc == 0 and "journal" in out and f"before: {len(done)}/{n}" in out and f"after:  {n}/{n}" in out
    assert sorted(resent) == sorted(set(range(1, n + 1)) - done)  # exactly the unfinished ids, none twice
    res = pd.read_pickle(tmp_path / "out" / "RESULTS.pkl")
    assert sorted(res["PROMPT_ID"]) == list(range(1, n + 1))
    assert all(r == answer(p) for r, p in zip(res["RESULT"], res["PROMPT"]))
    # and a later `batch run` has nothing left to send
    with FakeGeminiServer(lambda r: text_reply("never")) as server:
        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "out"), *FAST]) == 0
        assert server.requests == []


def _legacy_dir(tmp_path, frame, done_ids, pickled_ids):
    """What a killed legacy run leaves: NN_result.txt for ``done_ids``, a RESULTS.pkl holding only
    ``pickled_ids``, torn (cut in the middle) as a kill during its rewrite leaves it."""
    results_dir = tmp_path / "results_20261201_120000"
    results_dir.mkdir()
    for pid in done_ids:
        (results_dir / f"{str(pid).zfill(2)}_result.txt").write_text(answer(f"prompt number {pid}"), encoding="utf-8")
    sub = frame[frame.PROMPT_ID.isin(pickled_ids)]
    pd.DataFrame({"PROMPT_ID": sub.PROMPT_ID, "RESULT": [answer(p) for p in sub.PROMPT]}).to_pickle(results_dir / "RESULTS.pkl")
    data = (results_dir / "RESULTS.pkl").read_bytes()
    (results_dir / "RESULTS.pkl").write_bytes(data[: len(data) // 2])
    return results_dir / "RESULTS.pkl"


def test_a_torn_legacy_pickle_is_rebuilt_from_its_text_files(tmp_path, key, capsys):
    frame = prompts_frame(30)
    frame.to_pickle(tmp_path / "in.pkl")
    done = set(range(1, 21))
    pkl = _legacy_dir(tmp_path, frame, done, range(1, 20))
    torn = pkl.read_bytes()
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        rc = main(["batch", "recover", "--input", str(tmp_path / "in.pkl"), "--output", str(pkl), *FAST])
        sent = sorted(int(r.prompt.rsplit(" ", 1)[1]) for r in server.generate_requests())
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "torn" in out and "rebuilt 20 success(es) from NN_result.txt" in out
    assert sent == list(range(21, 31))  # the ids with a text file are not sent again
    res = pd.read_pickle(pkl)
    assert sorted(res["PROMPT_ID"]) == list(range(1, 31)) and res["PROMPT_ID"].is_unique
    assert all(r == answer(p) for r, p in zip(res["RESULT"], res["PROMPT"]))
    assert pkl.with_name("RESULTS.pkl.bak").read_bytes() == torn  # the torn original is kept


def test_text_files_complete_a_legacy_pickle_without_any_request(tmp_path, key, capsys):
    frame = prompts_frame(8)
    frame.to_pickle(tmp_path / "in.pkl")
    results_dir = tmp_path / "results_1"
    results_dir.mkdir()
    for pid in range(1, 9):
        (results_dir / f"{str(pid).zfill(2)}_result.txt").write_text(answer(f"prompt number {pid}"))
    with FakeGeminiServer(lambda r: text_reply("never")) as server:
        rc = main(["batch", "recover", "--input", str(tmp_path / "in.pkl"), "--output", str(results_dir / "RESULTS.pkl"), *FAST])
        assert server.requests == []
    assert rc == 0
    assert sorted(pd.read_pickle(results_dir / "RESULTS.pkl")["PROMPT_ID"]) == list(range(1, 9))
    assert not os.path.exists(results_dir / "RESULTS.pkl.bak")  # there was nothing to back up
