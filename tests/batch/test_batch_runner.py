"""`designsim batch run` against the real google-genai client talking to the
local fake Gemini server, with fault injection. No SDK patching."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

import pandas as pd
import pytest
from batch_helpers import FAST, answer, prompts_frame

from designsim.batch.checkpoint import Journal
from designsim.cli import main
from designsim.testing import FakeGeminiServer, blocked_reply, error_reply, text_reply


def _results(out):
    return pd.read_pickle(out / "RESULTS.pkl")


def _assert_exactly_once_with_own_answer(out, expected_ids, frame):
    res = _results(out)
    assert res["PROMPT_ID"].is_unique
    assert sorted(res["PROMPT_ID"]) == sorted(expected_ids)
    prompts = dict(zip(frame["PROMPT_ID"], frame["PROMPT"]))
    for pid, result, prompt in zip(res["PROMPT_ID"], res["RESULT"], res["PROMPT"]):
        assert prompt == prompts[pid]
        assert result == answer(prompts[pid]), f"id {pid} carries another prompt's answer"
    return res


class Chaos:
    """Fault injection by prompt: random 503/504, a 429 storm with retryDelay,
    per-id failures that clear after k attempts, permanent 400s, blocked prompts."""

    def __init__(self, seed=7):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.seen = Counter()
        self.storm_until = 0.0

    def __call__(self, req):
        prompt = req.prompt
        n = int(prompt.rsplit(" ", 1)[1])
        with self.lock:
            self.seen[prompt] += 1
            count = self.seen[prompt]
            roll = self.rng.random()
        if n % 10 == 3:
            return error_reply(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        if n % 10 == 7:
            return blocked_reply("PROHIBITED_CONTENT")
        if n % 10 == 5 and count <= 6:  # fails 6 times: beyond one request's 3 tries, clears in a recovery pass
            return error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if n % 10 == 9 and count <= 2:
            return error_reply(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
        now = time.monotonic()
        if n == 12 and count == 1:
            self.storm_until = now + 0.15
        if now < self.storm_until:
            return error_reply(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", retry_delay="0.2s",
                               quota_id="GenerateRequestsPerMinutePerProjectPerModel")
        if roll < 0.15:
            return error_reply(self.rng.choice([503, 504, 500]), "UNAVAILABLE", "transient")
        return text_reply(answer(prompt))


def test_chaos_every_id_once_with_its_own_answer(tmp_path, key):
    frame = prompts_frame(40)
    frame.to_pickle(tmp_path / "in.pkl")
    out = tmp_path / "out"
    chaos = Chaos()
    with FakeGeminiServer(chaos) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(out), *FAST,
                   "--request-attempts", "3", "--max-attempts", "4"])
        first_run = len(server.generate_requests())
    permanent = {i for i in frame["PROMPT_ID"] if i % 10 in (3, 7)}
    assert rc == 1  # the permanent failures keep the job incomplete
    _assert_exactly_once_with_own_answer(out, set(frame["PROMPT_ID"]) - permanent, frame)
    assert all(r.user_turns == 1 for r in server.generate_requests())

    full = pd.read_parquet(out / "results.parquet")
    failed = full[full.STATUS == "failed"].set_index("PROMPT_ID")
    assert set(failed.index) == permanent
    assert set(failed.loc[[i for i in permanent if i % 10 == 3], "REASON"]) == {"400"}
    assert set(failed.loc[[i for i in permanent if i % 10 == 7], "REASON"]) == {"blocked:PROHIBITED_CONTENT"}
    # permanent failures are sent exactly once (not retried)
    for i in permanent:
        assert chaos.seen[f"prompt number {i}"] == 1
    summary = json.loads((out / "summary.json").read_text())
    assert {k: summary[k] for k in ("total", "succeeded", "failed")} == {"total": 40, "succeeded": 32, "failed": 8}
    assert summary["failures"] == {"400": 4, "blocked:PROHIBITED_CONTENT": 4}
    assert summary["requests"] == first_run and summary["retries"] > 0
    assert summary["output_tokens"] > 0 and summary["duration_s"] > 0
    assert key not in (out / "LOG.log").read_text() and key not in (out / "summary.json").read_text()
    for pid in set(frame["PROMPT_ID"]) - permanent:
        assert (out / f"{str(pid).zfill(2)}_result.txt").read_text() == answer(f"prompt number {pid}")

    # resume: permanent failures are not re-sent (the same prompt gets the same 400 / block) ...
    with FakeGeminiServer(chaos) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(out), *FAST])
        assert rc == 1 and server.generate_requests() == []
    # ... unless --retry-permanent; only ids without a success are sent, no duplicates appear
    with FakeGeminiServer(chaos) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(out), *FAST, "--retry-permanent"])
        sent = sorted(int(r.prompt.rsplit(" ", 1)[1]) for r in server.generate_requests())
    assert rc == 1 and sent == sorted(permanent)
    _assert_exactly_once_with_own_answer(out, set(frame["PROMPT_ID"]) - permanent, frame)


def test_complete_job_resumes_with_zero_requests(tmp_path, key):
    frame = prompts_frame(12)
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out"
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        assert main(["batch", "run", "--input", str(tmp_path / "in.csv"), "--out", str(out), *FAST]) == 0
        assert len(server.generate_requests()) == 12
        assert main(["batch", "run", "--input", str(tmp_path / "in.csv"), "--out", str(out), *FAST]) == 0
        assert len(server.generate_requests()) == 12
    as_text = frame.assign(PROMPT_ID=frame["PROMPT_ID"].astype(str))  # CSV ids are read as text
    _assert_exactly_once_with_own_answer(out, as_text["PROMPT_ID"], as_text)
    assert json.loads((out / "summary.json").read_text())["run"]["requests"] == 0


def test_complete_job_needs_no_api_key(tmp_path, key, monkeypatch):
    frame = prompts_frame(3)
    frame.to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))):
        assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST]) == 0
    monkeypatch.delenv("GEMINI_API_KEY")
    assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST]) == 0
    frame2 = prompts_frame(4)
    frame2.to_pickle(tmp_path / "in.pkl")
    assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST]) == 2


def test_daily_quota_stops_cleanly_and_resumes(tmp_path, key, capsys):
    frame = prompts_frame(30)
    frame.to_pickle(tmp_path / "in.pkl")
    out = tmp_path / "out"
    served = Counter()
    lock = threading.Lock()

    def daily(req):
        with lock:
            served["n"] += 1
            n = served["n"]
        if n > 8:
            return error_reply(429, "RESOURCE_EXHAUSTED", "quota", retry_delay="30s",
                               quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier")
        return text_reply(answer(req.prompt))

    with FakeGeminiServer(daily) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(out), *FAST, "--concurrency", "2"])
        sent = len(server.generate_requests())
    assert rc == 1
    assert sent <= 8 + 2  # stopped at once: only the requests already in flight
    err = capsys.readouterr().err
    assert "quota" in err and "daily" in err
    done = _results(out)
    assert len(done) == 8 and done["PROMPT_ID"].is_unique
    assert json.loads((out / "summary.json").read_text())["failures"]["not_attempted"] >= 20

    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(out), *FAST])
        resent = {int(r.prompt.rsplit(" ", 1)[1]) for r in server.generate_requests()}
    assert rc == 0
    assert not resent & set(done["PROMPT_ID"])  # no earlier success is sent again
    _assert_exactly_once_with_own_answer(out, frame["PROMPT_ID"], frame)


def test_system_instruction_model_and_one_user_turn(tmp_path, key):
    prompts_frame(3).to_json(tmp_path / "in.jsonl", orient="records", lines=True)
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o"), *FAST,
                   "--system", "Answer tersely.", "--model", "gemini-2.5-pro"])
    assert rc == 0
    reqs = server.generate_requests()
    assert len(reqs) == 3
    assert all(r.system == "Answer tersely." and r.user_turns == 1 and len(r.contents) == 1 for r in reqs)
    assert {r.model for r in reqs} == {"gemini-2.5-pro"}
    assert sorted(r.prompt for r in reqs) == [f"prompt number {i}" for i in (1, 2, 3)]


def test_changed_prompt_is_sent_again(tmp_path, key):
    frame = prompts_frame(3)
    frame.to_parquet(tmp_path / "in.parquet")
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))) as server:
        main(["batch", "run", "--input", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "o"), *FAST])
        frame.loc[1, "PROMPT"] = "a reworded prompt"
        frame.to_parquet(tmp_path / "in.parquet")
        assert main(["batch", "run", "--input", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "o"), *FAST]) == 0
        assert [r.prompt for r in server.generate_requests()[3:]] == ["a reworded prompt"]
    res = _results(tmp_path / "o").set_index("PROMPT_ID")
    assert res.loc[2, "RESULT"] == answer("a reworded prompt")


def test_shards_split_deterministically_and_merge(tmp_path, key):
    frame = prompts_frame(30)
    frame.to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))):
        for i in (1, 2, 3):
            assert main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / f"s{i}"),
                         "--shard", f"{i}/3", *FAST]) == 0
    sizes = [len(_results(tmp_path / f"s{i}")) for i in (1, 2, 3)]
    assert sum(sizes) == 30 and all(sizes)
    assert main(["batch", "merge", str(tmp_path / "ALL.pkl"), *(str(tmp_path / f"s{i}") for i in (1, 2, 3))]) == 0
    merged = pd.read_pickle(tmp_path / "ALL.pkl")
    assert merged["PROMPT_ID"].is_unique and sorted(merged["PROMPT_ID"]) == list(range(1, 31))
    assert all(r == answer(p) for r, p in zip(merged["RESULT"], merged["PROMPT"]))
    assert json.loads((tmp_path / "s2" / "summary.json").read_text())["shard"] == "2/3"


@pytest.mark.parametrize("bad, message", [
    # positions are 1-based file lines with the header as line 1
    (pd.DataFrame({"PROMPT_ID": [1, 2, 2, 3], "PROMPT": ["a", "b", "c", "d"]}), "duplicate id '2' at lines 3, 4"),
    (pd.DataFrame({"PROMPT_ID": [1, None, 3], "PROMPT": ["a", "b", "c"]}), "missing id at line 3"),
    (pd.DataFrame({"ID": [1], "PROMPT": ["a"]}), "column 'PROMPT_ID' not found"),
    (pd.DataFrame({"PROMPT_ID": [1, 2], "PROMPT": ["a", "  "]}), "blank or non-text prompt at line 3"),
])
def test_bad_input_is_rejected_before_any_request(tmp_path, key, capsys, bad, message):
    bad.to_csv(tmp_path / "in.csv", index=False)
    with FakeGeminiServer(lambda r: text_reply("x")) as server:
        rc = main(["batch", "run", "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "o"), *FAST])
    assert rc == 2
    assert server.requests == []
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / "in.csv") in err


def test_journal_is_append_only_one_line_per_outcome(tmp_path, key):
    prompts_frame(5).to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt))):
        main(["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), *FAST])
    lines = (tmp_path / "o" / "journal.jsonl").read_text().splitlines()
    kinds = Counter(json.loads(line)["kind"] for line in lines)
    assert kinds == {"result": 5, "run": 1}
    state = Journal.read_state(tmp_path / "o")
    assert sorted(state.best) == ["1", "2", "3", "4", "5"]
