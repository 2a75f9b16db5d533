"""Publishing through the live client against the validated fake API: comment
upsert, size limits, permission errors, retries, the 406 fallback, GHE."""

from __future__ import annotations

import json

import pytest
from actionkit import GHE, TOKEN

from designsim.action.github_api import DiffTooLarge, GitHubClient, RetrySettings, changes_path, unified_diff_from_files
from designsim.action.publisher import (
    CHECK_SUMMARY_MAX_BYTES, StatusReporter, truncate_utf8, upsert_comment, write_outputs, write_step_summary,
)
from designsim.errors import GitHubError
from designsim.report import rulebook_marker

REPO = "Codertocat/Hello-World"
FAST = RetrySettings(total=3, backoff_factor=0, secondary_rate_wait=0, seconds_between_requests=0, seconds_between_writes=0)
BOT = {"github-actions[bot]"}


def client(base="https://api.github.com") -> GitHubClient:
    return GitHubClient(TOKEN, REPO, api_url=base, retry=FAST)


def body(text="result") -> str:
    return rulebook_marker("gate") + "\n" + text


def test_upsert_none_creates(github):
    result = upsert_comment(client(), 2, "gate", body(), BOT)
    assert result.action == "created" and len(github.comments) == 1
    assert github.calls("POST", r"/issues/2/comments$")


def test_upsert_one_updates_in_place(github):
    github.add_comment("unrelated chatter", login="octocat")
    mine = github.add_comment(body("old"))
    result = upsert_comment(client(), 2, "gate", body("new"), BOT)
    assert result.action == "updated" and result.id == mine["id"]
    assert [c["body"] for c in github.comments] == ["unrelated chatter", body("new")]
    assert not github.calls("POST", r"/comments$")


def test_upsert_duplicates_update_oldest_and_delete_the_rest(github):
    first = github.add_comment(body("a"))
    second = github.add_comment(body("b"))
    third = github.add_comment(body("c"))
    result = upsert_comment(client(), 2, "gate", body("new"), BOT)
    assert result.id == first["id"] and sorted(result.deleted) == sorted([second["id"], third["id"]])
    assert [c["id"] for c in github.comments] == [first["id"]] and github.comments[0]["body"] == body("new")
    assert len(github.calls("DELETE", r"/issues/comments/\d+$")) == 2


def test_marker_typed_by_someone_else_is_not_ours(github):
    forged = github.add_comment(body("I approve myself"), login="mallory")
    upsert_comment(client(), 2, "gate", body("real"), BOT)
    assert [c["id"] for c in github.comments][0] == forged["id"] and len(github.comments) == 2
    assert github.comments[0]["body"] == body("I approve myself")


def test_other_rulebooks_comment_is_left_alone(github):
    other = github.add_comment(rulebook_marker("security") + "\nx")
    upsert_comment(client(), 2, "gate", body(), BOT)
    assert other in github.comments and len(github.comments) == 2


def test_comment_of_70000_characters_is_cut_to_fit(github):
    upsert_comment(client(), 2, "gate", body("x" * 70_000), BOT)
    (posted,) = github.comments
    assert 60_000 < len(posted["body"]) <= 65_536 and posted["body"].startswith(rulebook_marker("gate"))


@pytest.mark.parametrize("char", ["é", "😀", "中"])
def test_check_run_summary_is_cut_on_a_utf8_boundary(github, char):
    reporter = StatusReporter(client(), "check-run", "a" * 40, "gate")
    reporter.pending()
    reporter.complete("pass", "ok", summary=char * 40_000)
    (run,) = github.check_runs.values()
    summary = run["output"]["summary"]
    raw = summary.encode("utf-8")
    assert len(raw) <= CHECK_SUMMARY_MAX_BYTES and len(raw) > CHECK_SUMMARY_MAX_BYTES - 200
    assert raw.decode("utf-8") == summary and "\ufffd" not in summary
    assert summary.rstrip().endswith("size limit)")


def test_truncate_utf8_leaves_short_text_alone():
    assert truncate_utf8("é" * 10, 20) == "é" * 10
    cut = truncate_utf8("é" * 10, 19, note="")
    assert cut == "é" * 9


def test_403_without_permission_names_it(github, runner, sync_payload, capsys):
    from actionkit import gemini_handler

    from designsim.testing import FakeGeminiServer

    github.inject("POST", r"/issues/\d+/comments$", 403, {
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment", "status": "403"})
    runner.env(sync_payload, **{"gemini-api-key": "k" * 20})
    with FakeGeminiServer(gemini_handler):
        code = runner.run()
    assert code == 3
    out = capsys.readouterr().out
    error = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(error) == 1 and "pull-requests: write" in error[0] and "Resource not accessible by integration" in error[0]
    assert github.statuses[-1]["state"] == "error"  # the gate is never left pending or green
    assert "pull-requests: write" in runner.summary.read_text()


def test_5xx_is_retried(github):
    github.inject("GET", r"/pulls/2$", 502, {"message": "Server Error"}, times=2)
    assert client().get_pull(2)["number"] == 2
    assert len(github.calls("GET", r"/pulls/2$")) == 3


def test_5xx_forever_becomes_github_error(github):
    github.inject("GET", r"/pulls/2$", 503, {"message": "Unavailable"}, times=10)
    with pytest.raises(GitHubError) as info:
        client().get_pull(2)
    assert len(github.calls("GET", r"/pulls/2$")) == 4  # 1 + 3 retries


def test_secondary_rate_limit_403_is_retried(github):
    github.inject("POST", r"/statuses/", 403, {
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
        headers={"Retry-After": "0"})
    client().create_status("a" * 40, state="success", context="designsim/gate", description="ok", target_url=None)
    assert len(github.calls("POST", r"/statuses/")) == 2 and len(github.statuses) == 1


def test_permission_403_is_not_retried(github):
    github.inject("POST", r"/statuses/", 403, {"message": "Resource not accessible by integration"}, times=5)
    with pytest.raises(GitHubError, match="statuses: write"):
        client().create_status("a" * 40, state="success", context="designsim/gate", description="ok", target_url=None)
    assert len(github.calls("POST", r"/statuses/")) == 1


def test_check_run_403_names_checks_write(github):
    github.inject("POST", r"/check-runs$", 403, {"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError, match="checks: write"):
        StatusReporter(client(), "check-run", "a" * 40, "gate").pending()


def test_diff_406_falls_back_to_the_files_list(github, realdata):
    github.diff_too_large = True
    # a real files page (PyGithub's recorded pulls/files), repeated to span pages
    lines = (realdata / "github-api-recorded" / "pygithub-replaydata" / "PullRequest.testGetFiles.txt").read_text().splitlines()
    page = json.loads(next(line for line in lines if line.startswith("[{")))
    github.files = [dict(f, filename=f"{i}/{f['filename']}") for i in range(120) for f in page][:250]
    c = client()
    with pytest.raises(DiffTooLarge):
        c.get_pull_diff(2)
    files = c.list_pull_files(2)
    assert len(files) == 250 and len(github.calls("GET", r"/pulls/2/files$")) == 3
    raw, notes = unified_diff_from_files(files)
    assert raw.count(b"diff --git") == 250 and b"@@" in raw


def test_files_without_patch_become_binary_stanzas():
    raw, notes = unified_diff_from_files([
        {"filename": "logo.png", "status": "modified", "changes": 0},
        {"filename": "new.py", "status": "added", "patch": "@@ -0,0 +1 @@\n+x = 1"},
        {"filename": "b.py", "previous_filename": "a.py", "status": "renamed", "changes": 0},
    ])
    text = raw.decode()
    assert "Binary files a/logo.png and b/logo.png differ" in text and "rename from a.py" in text
    assert "+++ b/new.py" in text and notes


def test_rulebook_change_is_detected():
    assert changes_path(b"diff --git a/.simulation.yml b/.simulation.yml\n", ".simulation.yml")
    assert not changes_path(b"diff --git a/src/x.py b/src/x.py\n", ".simulation.yml")


def test_ghe_base_url(ghe_github):
    assert client(GHE).get_pull(2)["number"] == 2
    assert ghe_github.requests == [("GET", "/repos/Codertocat/Hello-World/pulls/2")]


def test_outputs_use_multiline_delimiters(tmp_path):
    path = tmp_path / "out"
    write_outputs(path, {"verdict": "pass", "comment-url": "line1\nline2"})
    text = path.read_text().splitlines()
    assert text[0].startswith("verdict<<ghadelimiter_") and text[1] == "pass" and text[2] == text[0].split("<<")[1]
    assert text[4:6] == ["line1", "line2"]


def test_step_summary_is_capped_at_one_mebibyte(tmp_path):
    path = tmp_path / "summary.md"
    write_step_summary(path, "é" * 700_000)
    write_step_summary(path, "more")
    assert path.stat().st_size <= 1024 * 1024
    path.read_text(encoding="utf-8")  # still valid UTF-8


def test_recorder_shows_what_would_be_posted(sync_payload, small_diff, rulebook_text, tmp_path, capsys):
    """designsim.testing.GitHubRecorder: an offline run a rulebook author can do."""
    from actionkit import FLAW_OUTPUT, JUDGE_PASS

    from designsim.action.run import run_action
    from designsim.testing import FakeProvider, GitHubRecorder

    event = tmp_path / "event.json"
    event.write_text(json.dumps(sync_payload))
    rulebook_diff = small_diff + b"diff --git a/.simulation.yml b/.simulation.yml\n--- a/.simulation.yml\n+++ b/.simulation.yml\n@@ -1 +1 @@\n-a\n+b\n"
    gh = GitHubRecorder(files={".simulation.yml": rulebook_text}, diff=rulebook_diff)
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": REPO,
           "GITHUB_WORKSPACE": str(tmp_path), "INPUT_STATUS": "check-run"}
    code = run_action(env, publisher=gh, provider=FakeProvider(lambda r: JUDGE_PASS if r.wants_json else FLAW_OUTPUT))
    assert code == 0
    assert gh.last_state == "success" and len(gh.comments) == 1
    assert "applies after merge" in gh.comments[0]["body"]  # the PR changes the rulebook: note it


def test_step_summary_leads_with_the_decision_then_constraint_by_stage():
    """Issue 8 item 7: the decision first ("❌ C1 violated (blocker) — …"), then the verdict table, then trust."""
    from types import SimpleNamespace

    from designsim.action.context import Target
    from designsim.action.run import step_summary
    from designsim.decision import Decision, Finding

    usage = SimpleNamespace(input_tokens=10, output_tokens=5, total_tokens=15, cached_tokens=0)
    decision = Decision(verdict="fail", reason="C1 violated (blocker) — State management: write_json_file truncates first",
                        findings=[Finding(stage="state", constraint="C1", verdict="violated", severity="blocker",
                                          evidence="jit.py: truncates", agreement="2/3"),
                                  Finding(stage="state", constraint="C2", verdict="respected", severity="none")])
    stage = SimpleNamespace(title="State management", outcome="passed", attempts=[1], usage=usage, matrix=None)
    review = SimpleNamespace(decision=decision, verdict="fail", summary="old summary", rulebook="jit", stages=[stage],
                             usage=usage, model="gemini-x", judge_model="gemini-x", duration_s=1.0)
    text = step_summary(review, Target(event="pull_request", repository="o/r", number=7))
    first = text.splitlines()[0]
    assert first == "## ❌ C1 violated (blocker) — State management: write_json_file truncates first"
    table = text.index("| Constraint | state |")
    assert table < text.index("| Stage | Trust |")
    assert "| C1 | ❌ violated (blocker) 2/3 |" in text and "| C2 | ✅ respected |" in text
