"""`--backend batch-api`: Gemini Batch Mode through the real google-genai
client, against Batch Mode routes added to the fake server (``routes=``)."""

from __future__ import annotations

import json

import pandas as pd
from batch_helpers import answer, prompts_frame

from designsim.batch.checkpoint import Journal
from designsim.cli import main
from designsim.testing import FakeGeminiServer, FakeReply, blocked_reply, text_reply


class FakeBatchMode:
    """``POST models/{m}:batchGenerateContent`` creates a job; ``GET batches/{id}``
    reports ``state`` and, once succeeded, inline responses (in *reverse*
    order, so results must be matched by metadata key, not position)."""

    def __init__(self):
        self.jobs: dict[str, dict] = {}
        self.state = "BATCH_STATE_RUNNING"
        self.created: list[dict] = []

    def create(self, req, match):
        name = f"batches/job{len(self.jobs) + 1}"
        self.jobs[name] = req.body
        self.created.append({"model": match.group("model"), "body": req.body})
        return FakeReply(200, {"name": name, "metadata": {"name": name, "state": "BATCH_STATE_PENDING",
                                                          "model": f"models/{match.group('model')}"}})

    def get(self, req, match):
        name = f"batches/{match.group('id')}"
        body = self.jobs.get(name)
        if body is None:
            return FakeReply(404, {"error": {"code": 404, "message": "no such batch", "status": "NOT_FOUND"}})
        meta = {"name": name, "state": self.state}
        if self.state == "BATCH_STATE_SUCCEEDED":
            out = []
            for item in body["batch"]["inputConfig"]["requests"]["requests"]:
                prompt = item["request"]["contents"][0]["parts"][0]["text"]
                entry = {"metadata": item.get("metadata", {})}
                if "blocked" in prompt:
                    entry["response"] = blocked_reply("SAFETY").body
                elif "broken" in prompt:
                    entry["error"] = {"code": 500, "message": "internal error"}
                else:
                    entry["response"] = text_reply(answer(prompt)).body
                out.append(entry)
            meta["output"] = {"inlinedResponses": {"inlinedResponses": list(reversed(out))}}
        return FakeReply(200, {"name": name, "metadata": meta})

    def routes(self):
        return {r"^/v1\w*/models/(?P<model>[^/:]+):batchGenerateContent$": self.create,
                r"^/v1\w*/batches/(?P<id>[^/:]+)$": self.get}


def test_batch_mode_submits_polls_and_merges_into_the_journal(tmp_path, key, capsys):
    frame = prompts_frame(6)
    frame.loc[frame.PROMPT_ID == 4, "PROMPT"] = "a blocked prompt"
    frame.loc[frame.PROMPT_ID == 5, "PROMPT"] = "a broken prompt"
    frame.to_pickle(tmp_path / "in.pkl")
    out = tmp_path / "out"
    run = ["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(out), "--backend", "batch-api",
           "--system", "Be brief.", "--model", "gemini-2.5-flash", "--retry-initial-delay", "0.01"]
    fake = FakeBatchMode()
    with FakeGeminiServer(lambda r: text_reply("live calls are not expected"), routes=fake.routes()) as server:
        # run 1: submit every prompt as one inline job; nothing is finished yet
        assert main(run) == 1
        assert "waiting in Batch Mode job(s) batches/job1" in capsys.readouterr().err
        (created,) = fake.created
        assert created["model"] == "gemini-2.5-flash"
        requests = created["body"]["batch"]["inputConfig"]["requests"]["requests"]
        assert [r["metadata"]["key"] for r in requests] == ["1", "2", "3", "4", "5", "6"]
        assert all(len(r["request"]["contents"]) == 1 and r["request"]["contents"][0]["role"] == "user" for r in requests)
        assert "Be brief." in json.dumps(requests[0]["request"])
        state = Journal.read_state(out)
        assert list(state.open_jobs) == ["batches/job1"]

        # run 2 (e.g. a later workflow run): still running, nothing new submitted
        assert main(run) == 1
        assert len(fake.created) == 1

        # run 3: the job succeeded; results merge into the same journal by key,
        # failed ids are submitted again in a new job
        fake.state = "BATCH_STATE_SUCCEEDED"
        assert main(run) == 1
        assert len(fake.created) == 2
        resubmitted = fake.created[1]["body"]["batch"]["inputConfig"]["requests"]["requests"]
        assert sorted(r["metadata"]["key"] for r in resubmitted) == ["4", "5"]
        assert server.generate_requests() == []
    res = pd.read_pickle(out / "RESULTS.pkl")
    assert sorted(res["PROMPT_ID"]) == [1, 2, 3, 6] and res["PROMPT_ID"].is_unique
    assert all(r == answer(p) for r, p in zip(res["RESULT"], res["PROMPT"]))
    full = pd.read_parquet(out / "results.parquet").set_index("PROMPT_ID")
    assert full.loc[4, "REASON"] == "blocked:SAFETY" and full.loc[5, "REASON"] == "batch:500"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "batch-api" and summary["succeeded"] == 4
    assert summary["open_batch_jobs"] == ["batches/job2"]


def test_batch_mode_failed_job_is_resubmitted(tmp_path, key):
    prompts_frame(2).to_pickle(tmp_path / "in.pkl")
    run = ["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), "--backend", "batch-api"]
    fake = FakeBatchMode()
    with FakeGeminiServer(routes=fake.routes()):
        assert main(run) == 1
        fake.state = "BATCH_STATE_EXPIRED"
        assert main(run) == 1
        assert len(fake.created) == 2
        fake.state = "BATCH_STATE_SUCCEEDED"
        assert main(run) == 0
    assert sorted(pd.read_pickle(tmp_path / "o" / "RESULTS.pkl")["PROMPT_ID"]) == [1, 2]
