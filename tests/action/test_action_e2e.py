"""End to end: ``designsim action`` on a real webhook payload, against the
validated fake GitHub API and a fake Gemini server that the real google-genai
client talks to."""

from __future__ import annotations

import json

from actionkit import TOKEN, gemini_handler

from designsim.action.publisher import ResultTag
from designsim.report import parse_markers
from designsim.testing import FakeGeminiServer

KEY = "AIzaSyD-distinctive-TEST-key-7f3a9c2e51b84d06"


def test_synchronize_posts_one_comment_one_status_and_summary(github, runner, sync_payload, capfd):
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as gemini:
        code = runner.run()
    out, err = capfd.readouterr()
    assert code == 0, out + err
    head = sync_payload["pull_request"]["head"]["sha"]
    base = sync_payload["pull_request"]["base"]["sha"]

    # rulebook read from the BASE sha, never the head
    assert github.calls("GET", r"/contents/\.simulation\.yml$")
    # the real client made the model calls: the stage and its judge
    reqs = gemini.generate_requests()
    assert len(reqs) == 2 and sum(r.wants_json for r in reqs) == 1
    assert all(r.headers.get("x-goog-api-key") == KEY for r in reqs)

    # one comment, carrying the markers
    assert len(github.comments) == 1
    markers = parse_markers(github.comments[0]["body"])
    assert markers["rulebook"] == "pool-gate" and markers["verdict"] == "pass"
    # one status context on the head SHA: pending, then success
    assert [s["state"] for s in github.statuses] == ["pending", "success"]
    assert {s["context"] for s in github.statuses} == {"designsim/pool-gate"}
    assert {s["sha"] for s in github.statuses} == {head}
    assert all(s["target_url"].split("#")[0].endswith("/actions/runs/42") for s in github.statuses)
    # the final status carries designsim's tag (verdict + sealed inputs digest) in its target_url fragment
    tag = ResultTag.decode(github.statuses[-1]["target_url"])
    assert tag is not None and tag.verdict == "pass" and len(tag.inputs) == 32
    # the diff reviewed is exactly base...head, by SHA, never "the PR's diff now"
    assert github.calls("GET", rf"/compare/{base}\.\.\.{head}$")
    assert not [p for m, p in github.requests if m == "GET" and p.endswith("/pulls/2")]

    summary = runner.summary.read_text()
    assert "pool-gate" in summary and "Tokens:" in summary and "total" in summary
    outputs = runner.outputs()
    assert outputs["verdict"] == "pass"
    assert outputs["comment-url"] == github.comments[0]["html_url"]
    assert int(outputs["total-tokens"]) == 120 + 80 + 50 + 40
    report = json.loads((runner.tmp / "designsim-report.json").read_text())
    assert report["verdict"] == "pass" and report["head_sha"] == head
    assert outputs["report-path"] == "designsim-report.json"  # relative to the workspace
    assert base  # the base sha exists in this payload (used as the contents ref)

    # --- the key never leaks: only the single add-mask line carries it
    assert out.splitlines()[0] == f"::add-mask::{KEY}" or err.splitlines()[0] == f"::add-mask::{KEY}"
    logs = (out + err).replace(f"::add-mask::{KEY}", "").replace(f"::add-mask::{TOKEN}", "")
    places = {"logs": logs, "comments": json.dumps(github.comments), "statuses": json.dumps(github.statuses),
              "summary": summary, "outputs": runner.output.read_text(),
              "report": (runner.tmp / "designsim-report.json").read_text()}
    for where, text in places.items():
        assert KEY not in text, f"Gemini key leaked into {where}"
        assert TOKEN not in text, f"GitHub token leaked into {where}"
    assert (out + err).count(KEY) == 1


def test_unchanged_inputs_republish_without_model_calls(github, runner, sync_payload):
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as first:
        assert runner.run() == 0
    assert len(first.generate_requests()) == 2
    comment_body = github.comments[0]["body"]
    first_statuses = len(github.statuses)
    github.requests.clear()

    with FakeGeminiServer(gemini_handler) as second:
        assert runner.run() == 0
    assert second.requests == []  # no tokens spent
    assert len(github.comments) == 1 and github.comments[0]["body"] == comment_body
    assert not github.calls("PATCH", r"/issues/comments/") and not github.calls("POST", r"/issues/\d+/comments")
    assert [s["state"] for s in github.statuses[first_statuses:]] == ["success"]  # verdict from our own status's tag
    assert "unchanged" in github.statuses[-1]["description"]
    assert runner.outputs()["verdict"] == "pass"


def test_inconclusive_is_never_reused_the_next_run_retries(github, runner, sync_payload):
    from designsim.testing import error_reply

    runner.env(sync_payload, **{"gemini-api-key": KEY})
    quota = error_reply(429, "RESOURCE_EXHAUSTED", "quota", quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    with FakeGeminiServer(lambda r: quota):  # today's quota is gone; tomorrow's run must really run
        assert runner.run() == 3
    assert parse_markers(github.comments[0]["body"])["verdict"] == "inconclusive"
    github.statuses.clear()
    with FakeGeminiServer(gemini_handler) as second:  # same head, rulebook, templates, model
        assert runner.run() == 0
    assert len(second.generate_requests()) == 2      # re-run, not re-published
    assert len(github.comments) == 1 and parse_markers(github.comments[0]["body"])["verdict"] == "pass"
    assert [s["state"] for s in github.statuses] == ["pending", "success"]


def test_check_run_mode(github, runner, sync_payload):
    runner.env(sync_payload, **{"gemini-api-key": KEY, "status": "check-run"})
    with FakeGeminiServer(gemini_handler):
        assert runner.run() == 0
    assert github.statuses == []
    (run,) = github.check_runs.values()
    assert run["name"] == "designsim/pool-gate" and run["status"] == "completed" and run["conclusion"] == "success"
    assert run["head_sha"] == sync_payload["pull_request"]["head"]["sha"]
    assert len(run["output"]["summary"].encode()) <= 65_535
    assert github.calls("PATCH", r"/check-runs/\d+")


def test_model_unavailable_is_error_never_green(github, runner, sync_payload):
    from designsim.testing import error_reply

    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(lambda r: error_reply(400, "INVALID_ARGUMENT", "API key not valid.")):
        code = runner.run()
    assert code == 3
    assert [s["state"] for s in github.statuses] == ["pending", "error"]
    assert runner.outputs()["verdict"] == "inconclusive"
