"""`--backend batch-api`: Gemini Batch Mode through the real google-genai
client, against Batch Mode routes added to the fake server (``routes=``)."""

from __future__ import annotations

import json
import time

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

        # run 3: the job succeeded; results merge into the same journal by key; the transiently
        # failed id is submitted again in a new job, the blocked one is recorded once and never again
        fake.state = "BATCH_STATE_SUCCEEDED"
        assert main(run) == 1
        assert len(fake.created) == 2
        resubmitted = fake.created[1]["body"]["batch"]["inputConfig"]["requests"]["requests"]
        assert sorted(r["metadata"]["key"] for r in resubmitted) == ["5"]
        # run 4 and 5: the blocked prompt is still not resubmitted
        assert main(run) == 1
        assert main(run) == 1
        assert all("a blocked prompt" not in json.dumps(c["body"]) for c in fake.created[1:])
        assert server.generate_requests() == []
    res = pd.read_pickle(out / "RESULTS.pkl")
    assert sorted(res["PROMPT_ID"]) == [1, 2, 3, 6] and res["PROMPT_ID"].is_unique
    assert all(r == answer(p) for r, p in zip(res["RESULT"], res["PROMPT"]))
    full = pd.read_parquet(out / "results.parquet").set_index("PROMPT_ID")
    assert full.loc[4, "REASON"] == "blocked:SAFETY" and full.loc[5, "REASON"] == "batch:500"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "batch-api" and summary["succeeded"] == 4
    assert summary["open_batch_jobs"] == ["batches/job4"]


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


class FakeBatchModeWithFiles(FakeBatchMode):
    """Adds the File API (resumable upload, download of a responses file), a
    create that fails with 400 for any job holding a "poison" prompt, and
    jobs that can be made to vanish (404)."""

    def __init__(self):
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.gone: set[str] = set()
        self.uploads = 0

    def upload_start(self, req, match):
        self.uploads += 1
        host = req.headers.get("Host") or req.headers.get("host")
        return FakeReply(200, {}, headers={"x-goog-upload-url": f"http://{host}/upload-session/{self.uploads}",
                                           "x-goog-upload-status": "active"})

    def upload_chunk(self, req, match):
        data = req.body.get("_raw")
        data = data.encode() if data is not None else json.dumps(req.body).encode()
        name = f"files/in{match.group('n')}"
        self.files[name] = self.files.get(name, b"") + data
        return FakeReply(200, {"file": {"name": name, "mimeType": "jsonl", "state": "ACTIVE"}},
                         headers={"x-goog-upload-status": "final"})

    def download(self, req, match):
        return FakeReply(200, raw=self.files[f"files/{match.group('id')}"])

    def create(self, req, match):
        if "poison" in json.dumps(req.body):
            return FakeReply(400, {"error": {"code": 400, "message": "invalid request in batch", "status": "INVALID_ARGUMENT"}})
        return super().create(req, match)

    def get(self, req, match):
        name = f"batches/{match.group('id')}"
        if name in self.gone:
            return FakeReply(404, {"error": {"code": 404, "message": "no such batch", "status": "NOT_FOUND"}})
        body = self.jobs.get(name)
        if body is not None and "fileName" in body.get("batch", {}).get("inputConfig", {}) and self.state == "BATCH_STATE_SUCCEEDED":
            lines = self.files[body["batch"]["inputConfig"]["fileName"]].decode().splitlines()
            out = []
            for line in map(json.loads, lines):
                prompt = line["request"]["contents"][0]["parts"][0]["text"]
                out.append(json.dumps({"key": line["key"], "response": text_reply(answer(prompt)).body}))
            self.files[f"files/out-{match.group('id')}"] = "\n".join(out).encode()
            return FakeReply(200, {"name": name, "metadata": {"name": name, "state": self.state,
                                                              "output": {"responsesFile": f"files/out-{match.group('id')}"}}})
        return super().get(req, match)

    def routes(self):
        return {r"^/upload/v1\w*/files$": self.upload_start,
                r"^/upload-session/(?P<n>\d+)$": self.upload_chunk,
                r"^/(?:download/)?v1\w*/files/(?P<id>[^/:]+):download$": self.download,
                **super().routes()}


def _batch_run(tmp_path, *extra):
    return ["batch", "run", "--input", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "o"), "--backend", "batch-api",
            "--retry-initial-delay", "0.01", "--retry-max-delay", "0.02", "--progress-every", "3600", *extra]


def test_jobs_are_sized_by_the_serialised_request_system_instruction_included(tmp_path):
    from designsim.providers.batch_mode import INLINE_BUDGET_BYTES, BatchRequest, build_request, plan_jobs

    system = "s" * 10_000  # a 10 KB --system repeated over 3,000 prompts: 30 MB, though the prompts are only 0.3 MB
    reqs = [BatchRequest(str(i), build_request(f"prompt {i:04d}" + "x" * 90, system=system)) for i in range(3000)]
    assert sum(len(r.request["contents"][0]["parts"][0]["text"]) for r in reqs) < 400_000
    plan = plan_jobs(reqs)
    assert plan.via == "file"  # over the 20 MB inline limit: the File API's JSONL input
    assert sum(len(g) for g in plan.groups) == 3000
    small = plan_jobs(reqs[:1000])
    assert small.via == "inline" and sum(r.size for r in small.groups[0]) <= INLINE_BUDGET_BYTES
    assert plan_jobs(reqs[:1000], inline_budget=5_000_000).via == "file"


def test_large_work_goes_through_the_file_api(tmp_path, key):
    frame = prompts_frame(40)
    frame.to_pickle(tmp_path / "in.pkl")
    fake = FakeBatchModeWithFiles()
    system = "Answer as a reviewer. " * 2000  # 44 KB per request, 1.8 MB in all
    import designsim.providers.batch_mode as bm

    saved = bm.INLINE_BUDGET_BYTES
    bm.INLINE_BUDGET_BYTES = 1_000_000  # the rule, scaled: more than one inline job's worth goes to a file
    try:
        with FakeGeminiServer(routes=fake.routes()):
            assert main(_batch_run(tmp_path, "--system", system)) == 1
            assert fake.uploads == 1 and len(fake.created) == 1
            assert "fileName" in fake.created[0]["body"]["batch"]["inputConfig"]
            lines = [json.loads(x) for x in fake.files["files/in1"].decode().splitlines()]
            assert len(lines) == 40 and lines[0]["request"]["systemInstruction"]["parts"][0]["text"] == system
            fake.state = "BATCH_STATE_SUCCEEDED"
            assert main(_batch_run(tmp_path, "--system", system)) == 0
    finally:
        bm.INLINE_BUDGET_BYTES = saved
    res = pd.read_pickle(tmp_path / "o" / "RESULTS.pkl")
    assert sorted(res["PROMPT_ID"]) == list(range(1, 41))
    assert all(r == answer(p) for r, p in zip(res["RESULT"], res["PROMPT"]))


def test_a_job_that_404s_is_recorded_and_replaced(tmp_path, key):
    prompts_frame(3).to_pickle(tmp_path / "in.pkl")
    fake = FakeBatchModeWithFiles()
    with FakeGeminiServer(routes=fake.routes()):
        assert main(_batch_run(tmp_path)) == 1
        fake.gone.add("batches/job1")
        assert main(_batch_run(tmp_path)) == 1  # not stuck: job1 closed, a new job submitted
        assert len(fake.created) == 2
        fake.state = "BATCH_STATE_SUCCEEDED"
        assert main(_batch_run(tmp_path)) == 0
    lines = [json.loads(x) for x in (tmp_path / "o" / "journal.jsonl").read_text().splitlines()]
    assert any(x.get("event") == "done" and x.get("state") == "NOT_FOUND" for x in lines)


def test_a_create_failure_is_recorded_and_the_rest_still_runs(tmp_path, key):
    frame = prompts_frame(6)
    frame.loc[frame.PROMPT_ID == 3, "PROMPT"] = "a poison prompt"
    frame.to_pickle(tmp_path / "in.pkl")
    fake = FakeBatchModeWithFiles()
    with FakeGeminiServer(routes=fake.routes()):
        assert main(_batch_run(tmp_path)) == 1
        fake.state = "BATCH_STATE_SUCCEEDED"
        assert main(_batch_run(tmp_path)) == 1
        created_before = len(fake.created)
        assert main(_batch_run(tmp_path)) == 1  # the poison prompt is not submitted again
        assert len(fake.created) == created_before
    full = pd.read_parquet(tmp_path / "o" / "results.parquet").set_index("PROMPT_ID")
    assert full.loc[3, "REASON"] == "batch:create:400"
    assert (full.drop(index=3)["STATUS"] == "ok").all()


def test_a_server_without_batch_routes_is_a_clear_error(tmp_path, key, capsys):
    prompts_frame(2).to_pickle(tmp_path / "in.pkl")
    with FakeGeminiServer():  # generateContent only
        assert main(_batch_run(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "offers no Gemini Batch Mode" in err and "--backend live" in err and "Traceback" not in err


def test_batch_deadline_falls_back_to_live_calls(tmp_path, key):
    prompts_frame(4).to_pickle(tmp_path / "in.pkl")
    fake = FakeBatchModeWithFiles()
    with FakeGeminiServer(lambda r: text_reply(answer(r.prompt)), routes=fake.routes()) as server:
        assert main(_batch_run(tmp_path, "--batch-deadline", "24")) == 1  # submitted; PENDING
        assert server.generate_requests() == []
        time.sleep(0.05)
        # a deadline of ~0 h: the still-pending job is cancelled and its ids are sent live now
        assert main(_batch_run(tmp_path, "--batch-deadline", "0.00001")) == 0
        assert len(server.generate_requests()) == 4
        assert any(r.path.endswith(":cancel") for r in server.requests)
    res = pd.read_pickle(tmp_path / "o" / "RESULTS.pkl")
    assert sorted(res["PROMPT_ID"]) == [1, 2, 3, 4]
