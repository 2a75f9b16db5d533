"""Every real webhook payload is handled or skipped with a reason; dry runs are
offline; /simulate is gated on author_association; forks without secrets."""

from __future__ import annotations

import copy
import json

import pytest
import responses
from actionkit import FIXTURES, SYNC, TOKEN

from designsim.action.context import ActionInputs, EventPayload, read_inputs, resolve_event

PLAN_KEYS = {"event", "repository", "pull_request", "head_sha", "base_sha", "base_ref", "rulebook_ref", "stages"}
REVIEWED = {
    "octokit__pull_request_opened.payload.json": 2,
    "octokit__pull_request_opened.with-null-body.json": 2,
    "octokit__pull_request_synchronize.payload.json": 2,
    "octokit__pull_request_reopened.payload.json": 2,
    "drone-go-scm__pr_opened.json": 1,
}
SKIPPED = {  # file -> words the reason must contain
    "octokit__pull_request_closed.payload.json": "'closed' is not reviewed",
    "octokit__pull_request_closed.with-organization.payload.json": "'closed' is not reviewed",
    "drone-go-scm__pr_closed.json": "'closed' is not reviewed",
    "octokit__pull_request_converted_to_draft.payload.json": "'converted_to_draft' is not reviewed",
    "octokit__pull_request_labeled.payload.json": "'labeled' is not reviewed",
    "octokit__issue_comment_created.payload.json": "not a pull request",
    "octokit__issue_comment_edited.payload.json": "only new comments",
    "drone-go-scm__comment.json": "not a /simulate command",
    "octokit__workflow_dispatch_payload.json": "without a pull_request input",
    "go-playground__workflow_dispatch.json": "without a pull_request input",
    "octokit__push_payload.json": "'push' is not handled",
    "octokit__push_with-new-branch.payload.json": "'push' is not handled",
}


def _event_name(filename: str) -> str:
    if "comment" in filename:
        return "issue_comment"
    if "dispatch" in filename:
        return "workflow_dispatch"
    if "push" in filename:
        return "push"
    return "pull_request"


def test_every_payload_is_classified(payloads):
    assert {p.name for p in payloads.glob("*.json")} == set(REVIEWED) | set(SKIPPED)


@pytest.mark.parametrize("name", sorted(set(REVIEWED) | set(SKIPPED)))
def test_dry_run_on_real_payload_is_offline(name, payloads, runner, rulebook_text, capsys, monkeypatch):
    (runner.tmp / ".simulation.yml").write_text(rulebook_text)
    runner.env(payloads / name, _event_name(name))
    monkeypatch.delenv("INPUT_GITHUB-TOKEN")  # no token: no network call at all
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:  # any request would raise
        code = runner.run("--dry-run")
        assert len(rsps.calls) == 0
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    if name in REVIEWED:
        data = json.loads((payloads / name).read_text())
        assert set(plan) == PLAN_KEYS
        assert plan["pull_request"] == REVIEWED[name] and plan["event"] == "pull_request"
        assert plan["repository"] == "Codertocat/Hello-World"
        assert plan["head_sha"] == data["pull_request"]["head"]["sha"]
        assert plan["base_sha"] == data["pull_request"]["base"]["sha"]
        assert plan["base_ref"] == data["pull_request"]["base"]["ref"]
        assert plan["rulebook_ref"] == "working-directory" and plan["stages"] == ["pooling"]
    else:
        assert set(plan) == {"skipped"} and SKIPPED[name] in plan["skipped"]
    assert not runner.output.exists() and not runner.summary.exists()  # wrote nothing


def test_pull_request_target_uses_the_same_payload(payloads, sync_payload):
    target = resolve_event("pull_request_target", EventPayload.model_validate(sync_payload), ActionInputs())
    assert target.number == 2 and target.event == "pull_request_target"


def test_drafts_skipped_unless_asked(sync_payload):
    payload = copy.deepcopy(sync_payload)
    payload["pull_request"]["draft"] = True
    skip = resolve_event("pull_request", EventPayload.model_validate(payload), ActionInputs())
    assert "draft" in skip.reason
    assert resolve_event("pull_request", EventPayload.model_validate(payload), ActionInputs(include_drafts=True)).number == 2


def test_payload_missing_fields_is_tolerated():
    payload = EventPayload.model_validate({"action": "opened", "pull_request": {"number": 7}})
    target = resolve_event("pull_request", payload, ActionInputs(), "o/r")
    assert target.number == 7 and target.head_sha is None


def test_inputs_read_with_hyphen_or_underscore():
    inputs = read_inputs({"INPUT_GITHUB-TOKEN": "t1", "INPUT_GEMINI_API_KEY": "k1", "INPUT_FAIL-ON": "fail",
                          "INPUT_STATUS": "check-run", "INPUT_INCLUDE-DRAFTS": "true"})
    assert inputs.github_token == "t1" and inputs.gemini_api_key == "k1"
    assert inputs.fail_on == {"fail"} and inputs.status == "check-run" and inputs.include_drafts
    assert "t1" not in repr(inputs) and "k1" not in repr(inputs)
    assert read_inputs({"INPUT_FAIL-ON": "none"}).fail_on == frozenset()


def test_bad_input_is_one_error_line(runner, sync_payload, capsys):
    runner.env(sync_payload, status="green")
    assert runner.run() == 2
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "input status" in errors[0]
    # reported like every fatal error: outputs and step summary written
    assert runner.outputs()["verdict"] == "error" and "input status" in runner.summary.read_text()


def test_workflow_dispatch_with_pr_input_fetches_the_pr(github, runner, payloads, capsys):
    payload = json.loads((payloads / "octokit__workflow_dispatch_payload.json").read_text())
    payload["inputs"] = {"pull_request": "2"}
    runner.env(payload, "workflow_dispatch", repo="Codertocat/Hello-World")
    assert runner.run("--dry-run") == 0
    plan = json.loads(capsys.readouterr().out)
    pr = github.pull
    assert plan["pull_request"] == 2 and plan["head_sha"] == pr["head"]["sha"] and plan["base_sha"] == pr["base"]["sha"]
    assert plan["rulebook_ref"] == pr["base"]["sha"] and plan["stages"] == ["pooling"]
    # read only: no writes in a dry run
    assert all(m == "GET" for m, _ in github.requests)


def _comment_payload(payloads, association: str, body: str = "/simulate") -> dict:
    payload = json.loads((payloads / "drone-go-scm__comment.json").read_text())
    payload["comment"]["body"] = body
    payload["comment"]["author_association"] = association
    payload["repository"]["full_name"] = "Codertocat/Hello-World"
    return payload


def test_simulate_from_read_only_collaborator_gets_a_polite_reply_and_nothing_runs(github, runner, payloads):
    from designsim.testing import FakeGeminiServer

    payload = _comment_payload(payloads, "COLLABORATOR")  # author_association says collaborator: not enough
    github.permissions[payload["comment"]["user"]["login"]] = "read"
    runner.env(payload, "issue_comment", **{"gemini-api-key": "k" * 20})
    with FakeGeminiServer() as gemini:
        assert runner.run() == 0
    assert gemini.requests == []
    assert github.calls("GET", r"/collaborators/[^/]+/permission$")
    assert [m for m, _ in github.requests if m != "GET"] == ["POST"]  # the reply, nothing else written
    (reply,) = github.comments
    assert "write, maintain or admin" in reply["body"]
    assert github.statuses == [] and runner.outputs()["verdict"] == "skipped"


@pytest.mark.parametrize("role", ["write", "maintain", "admin"])
def test_simulate_from_maintainer_runs(github, runner, payloads, role):
    from actionkit import gemini_handler

    from designsim.testing import FakeGeminiServer

    payload = _comment_payload(payloads, "NONE", "/simulate please\nthanks")  # association ignored: the role decides
    github.permissions[payload["comment"]["user"]["login"]] = role
    runner.env(payload, "issue_comment", **{"gemini-api-key": "k" * 20})
    with FakeGeminiServer(gemini_handler) as gemini:
        assert runner.run() == 0
    assert len(gemini.generate_requests()) == 2
    assert github.calls("GET", r"/pulls/2$")  # SHAs come from the API for issue_comment
    assert [s["state"] for s in github.statuses] == ["pending", "success"]


@pytest.mark.parametrize("body", ["/SIMULATE", "/Simulate now", "/simulate"])
def test_simulate_matches_like_the_workflows_startswith(body):
    from designsim.action.context import is_command, parse_command

    assert is_command(body) and parse_command(body).kind == "run"
    assert not is_command(" /simulate") and not is_command("please /simulate")  # startsWith does not strip


def test_accept_commands_parse():
    from designsim.action.context import parse_command

    c = parse_command("/simulate ACCEPT C1 the truncation is guarded upstream")
    assert c.kind == "accept" and c.constraints == ("C1",) and c.reason == "the truncation is guarded upstream"
    c = parse_command("/simulate accept C1, C3 both known")
    assert c.constraints == ("C1", "C3") and c.reason == "both known"
    c = parse_command("/simulate accept all release blocker waived by the owner")
    assert c.all and c.constraints == () and c.reason.startswith("release")
    assert parse_command("/simulate accept").constraints == () and parse_command("/simulate accept C1").reason == ""
    assert parse_command("/simulate accept C1: guarded upstream").constraints == ("C1",)


def _fork(sync_payload) -> dict:
    payload = copy.deepcopy(sync_payload)
    payload["pull_request"]["head"]["repo"]["full_name"] = "forker/Hello-World"
    return payload


@pytest.mark.parametrize("kind", ["commit-status", "check-run"])
@pytest.mark.parametrize("key", ["", "AIza-secret-that-a-fork-never-gets-000"])
def test_fork_pull_request_is_skipped_before_any_write(github, runner, sync_payload, kind, key):
    from designsim.testing import FakeGeminiServer

    runner.env(_fork(sync_payload), status=kind, **({"gemini-api-key": key} if key else {}))
    with FakeGeminiServer() as gemini:
        assert runner.run() == 0
    assert gemini.requests == []  # no model call
    assert [m for m, _ in github.requests if m != "GET"] == []  # no write of any kind
    assert github.comments == [] and github.statuses == [] and github.check_runs == {}
    summary = runner.summary.read_text()
    assert "/simulate" in summary and "pull_request_target" in summary and "never executes pull-request code" in summary
    assert "read-only" in summary and "not** a pass" in summary
    assert runner.outputs()["verdict"] == "skipped"


def test_same_repo_without_key_is_a_configuration_error(github, runner, sync_payload, capsys):
    runner.env(sync_payload)
    assert runner.run() == 2  # as `designsim review` / `batch run` without a key
    assert [s["state"] for s in github.statuses] == ["error"]  # never green, never left pending
    assert "::error title=designsim::input gemini-api-key: no Gemini API key" in capsys.readouterr().out
    assert runner.outputs()["verdict"] == "error"


def test_missing_rulebook_on_base_is_a_config_error(github, runner, sync_payload, capsys):
    github.contents.clear()
    runner.env(sync_payload, **{"gemini-api-key": "k" * 20})
    assert runner.run() == 2
    out = capsys.readouterr().out
    assert "::error" in out and "base branch" in out
    assert "verdict<<" in runner.output.read_text()


def test_selftest_fixture_is_the_real_payload(payloads):
    assert (FIXTURES / "selftest-event.json").read_bytes() == (payloads / SYNC).read_bytes()


def test_dry_run_masks_on_stderr_so_stdout_is_pure_json(runner, sync_payload, rulebook_text, capsys, monkeypatch):
    (runner.tmp / ".simulation.yml").write_text(rulebook_text)
    runner.env(sync_payload, **{"gemini-api-key": "AIza-dry-run-secret-123456"})
    monkeypatch.delenv("INPUT_GITHUB-TOKEN")
    assert runner.run("--dry-run") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["stages"] == ["pooling"]
    assert captured.err.splitlines()[0] == "::add-mask::AIza-dry-run-secret-123456"


def test_event_inputs_override_the_runner_event(runner, payloads, rulebook_text, capsys, monkeypatch):
    """What selftest.yml does: a saved payload named by inputs, relative to the workspace."""
    (runner.tmp / "rb.yml").write_text(rulebook_text)
    (runner.tmp / "saved.json").write_text((payloads / SYNC).read_text())
    runner.env({"action": "closed"}, "push", **{"event-name": "pull_request", "event-path": "saved.json",
                                                  "rulebook": "rb.yml", "dry-run": "true", "github-token": ""})
    assert runner.run() == 0
    assert json.loads(capsys.readouterr().out)["pull_request"] == 2


def test_batch_mode_runs_designsim_batch(runner, monkeypatch, capsys):
    import pandas as pd

    from designsim.testing import FakeGeminiServer

    pd.DataFrame({"PROMPT_ID": [1, 2], "PROMPT": ["one", "two"]}).to_csv(runner.tmp / "prompts.csv", index=False)
    runner.env({}, "workflow_dispatch", mode="batch", **{"batch-input": "prompts.csv", "batch-output": "out",
                                                         "gemini-api-key": "AIza-batch-secret-0000", "run-args": "--rpm 6000 --progress-every 3600"})
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with FakeGeminiServer(lambda r: f"answer to {r.prompt}") as gemini:
        code = runner.run()
    assert code == 0 and len(gemini.generate_requests()) == 2
    assert all(r.headers.get("x-goog-api-key") == "AIza-batch-secret-0000" for r in gemini.generate_requests())
    import os

    assert "GEMINI_API_KEY" not in os.environ  # the key was passed as an argument, not through the environment
    outputs = runner.outputs()
    # a host path: relative to GITHUB_WORKSPACE, so it exists on the runner (not /github/workspace/…)
    assert outputs["report-path"] == "out/summary.json" and (runner.tmp / outputs["report-path"]).is_file()
    assert outputs["verdict"] == "pass" and int(outputs["total-tokens"]) > 0
    assert "designsim batch" in runner.summary.read_text()
    assert "AIza-batch-secret-0000" not in capsys.readouterr().out.replace("::add-mask::AIza-batch-secret-0000", "")


def test_batch_mode_dry_run_names_the_command(runner, capsys):
    runner.env({}, "workflow_dispatch", mode="recover", **{"batch-input": "p.csv", "batch-output": "out/RESULTS.pkl", "dry-run": "true"})
    assert runner.run() == 0
    assert "designsim batch recover --input p.csv --output out/RESULTS.pkl" in json.loads(capsys.readouterr().out)["skipped"]


def test_batch_mode_without_a_key_exits_2_like_the_cli(runner, monkeypatch, capsys):
    import pandas as pd

    pd.DataFrame({"PROMPT_ID": [1], "PROMPT": ["one"]}).to_csv(runner.tmp / "prompts.csv", index=False)
    runner.env({}, "workflow_dispatch", mode="batch", **{"batch-input": "prompts.csv", "batch-output": "out"})
    assert runner.run() == 2
    assert "no Gemini API key" in capsys.readouterr().out and runner.outputs()["verdict"] == "error"


def test_batch_mode_bad_run_args_name_the_input(runner, capsys):
    runner.env({}, "workflow_dispatch", mode="batch", **{"batch-input": "p.csv", "batch-output": "out", "run-args": "--rpmm 3"})
    assert runner.run() == 2
    assert "input run-args" in capsys.readouterr().out


def test_pull_request_target_from_a_fork_is_reviewed(github, runner, sync_payload):
    """pull_request_target runs with the base repository's token and secrets: a fork is reviewed normally
    (designsim reads the diff through the API and executes nothing from the pull request)."""
    from actionkit import gemini_handler

    from designsim.testing import FakeGeminiServer

    runner.env(_fork(sync_payload), "pull_request_target", **{"gemini-api-key": "k" * 20})
    with FakeGeminiServer(gemini_handler) as gemini:
        assert runner.run() == 0
    assert len(gemini.generate_requests()) == 2 and [s["state"] for s in github.statuses] == ["pending", "success"]


def test_dry_run_marks_a_fork(runner, sync_payload, rulebook_text, capsys, monkeypatch):
    (runner.tmp / ".simulation.yml").write_text(rulebook_text)
    runner.env(_fork(sync_payload), **{"github-token": ""})
    assert runner.run("--dry-run") == 0
    assert json.loads(capsys.readouterr().out)["fork"] is True


def test_batch_mode_in_the_review_image_says_how_to_get_the_batch_extra(tmp_path):
    """The review image has no pandas/pyarrow: mode batch is a configuration error naming the fix, not an ImportError."""
    import subprocess
    import sys

    block = ("import sys, importlib.abc\n"
             "class Block(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, path, target=None):\n"
             "        if name.split('.')[0] in ('pandas', 'pyarrow', 'numpy'):\n"
             "            raise ModuleNotFoundError(name, name=name)\n"
             "sys.meta_path.insert(0, Block())\n"
             "from designsim.cli import main\nsys.exit(main(['action']))\n")
    out = tmp_path / "out.txt"
    env = {"PATH": "/usr/bin:/bin", "GITHUB_WORKSPACE": str(tmp_path), "GITHUB_OUTPUT": str(out), "INPUT_MODE": "batch",
           "INPUT_BATCH-INPUT": "p.csv", "INPUT_BATCH-OUTPUT": "o", "INPUT_GEMINI-API-KEY": "AIza-extra-test-0000"}
    done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pip install 'designsim[batch]'" in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert "verdict<<" in out.read_text() and "error" in out.read_text()
