"""Issue 11 #7 (action) and #8: API path traversal through ``evidence.files``;
who may run ``/simulate`` (write, maintain or admin, asked of GitHub); at most
one refusal per user per pull request; the diff reviewed is exactly the
``base...head`` that is statused; a fork's read-only run writes nothing."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "action"))

from actionfixtures import _unpaced_github, github, openapi, payloads, rulebook_text, runner, small_diff, sync_payload  # noqa: E402,F401
from actionkit import gemini_handler  # noqa: E402

from designsim.action.github_api import contents_route, repo_path  # noqa: E402
from designsim.testing import FakeGeminiServer  # noqa: E402

KEY = "AIzaSy-who-and-what-test-key-00000000000"


# ----------------------------------------------------------------- API path traversal


@pytest.mark.parametrize("path", ["../../pulls/7", "docs/../../../pulls/7", "/etc/passwd", "..\\..\\pulls\\7", "C:/x", "", "./"])
def test_evidence_files_path_traversal_never_becomes_an_api_path(github, runner, sync_payload, rulebook_text, capfd, path):
    github.contents[".simulation.yml"] = rulebook_text + f"evidence:\n  files: [{json.dumps(path)}]\n"
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as gemini:
        code = runner.run()
    out, _ = capfd.readouterr()
    assert code == 2 and gemini.requests == []  # a clear configuration error before anything is spent
    assert "evidence.files.0" in out
    assert not github.calls("GET", r"/pulls/7"), "the token was used on another API route"
    assert [p for m, p in github.requests if "/contents/" in p] == ["/repos/Codertocat/Hello-World/contents/.simulation.yml"]


def test_evidence_file_names_are_quoted_per_segment(github, runner, sync_payload, rulebook_text):
    name = "docs/a%2e%2e/b?c#d e.md"
    github.contents[".simulation.yml"] = rulebook_text + "evidence:\n  files: ['docs/./x//y.md', 'docs/a%2e%2e/plain.md']\n"
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler):
        assert runner.run() == 0
    paths = [p for m, p in github.requests if "/contents/" in p]
    assert "/repos/Codertocat/Hello-World/contents/docs/x/y.md" in paths
    assert "/repos/Codertocat/Hello-World/contents/docs/a%252e%252e/plain.md" in paths  # stays a file name
    with pytest.raises(ValueError):
        contents_route(name)  # '?' and '#' are refused outright
    assert repo_path("a//b/./c/../d") == "a/b/d"


# ----------------------------------------------------------------- who may run it


def _comment(payloads, body="/simulate", association="MEMBER") -> dict:
    payload = json.loads((payloads / "drone-go-scm__comment.json").read_text())
    payload["comment"]["body"] = body
    payload["comment"]["author_association"] = association
    payload["repository"]["full_name"] = "Codertocat/Hello-World"
    return payload


@pytest.mark.parametrize("association, role", [("MEMBER", "read"), ("COLLABORATOR", "read"), ("MEMBER", "triage"),
                                               ("OWNER", None), ("CONTRIBUTOR", None)])
def test_simulate_by_member_or_read_only_collaborator_is_refused(github, runner, payloads, association, role):
    """author_association MEMBER / COLLABORATOR is not write access; the payload cannot vouch for anyone."""
    payload = _comment(payloads, association=association)
    if role:
        github.permissions[payload["comment"]["user"]["login"]] = role
    runner.env(payload, "issue_comment", **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as gemini:
        assert runner.run() == 0
    assert gemini.requests == [] and github.statuses == []
    assert runner.outputs()["verdict"] == "skipped"


def test_refusals_never_storm(github, runner, payloads):
    """Ten /simulate comments from a read-only user: one polite reply, then silence."""
    payload = _comment(payloads)
    login = payload["comment"]["user"]["login"]
    github.permissions[login] = "read"
    for _ in range(10):
        runner.env(payload, "issue_comment", **{"gemini-api-key": KEY})
        assert runner.run() == 0
    replies = [c for c in github.comments if login in c["body"]]
    assert len(replies) == 1
    # a refusal typed by someone else (not our login) does not count as ours: another user still gets one reply
    github.add_comment("<!-- designsim:refusal=octocat -->\nfake", login="octocat")
    payload["comment"]["user"]["login"] = "octocat"
    github.permissions["octocat"] = "read"
    runner.env(payload, "issue_comment", **{"gemini-api-key": KEY})
    assert runner.run() == 0
    assert len([c for c in github.comments if c["user"]["login"] == "github-actions[bot]"]) == 2


@pytest.mark.parametrize("body", ["/SIMULATE", "/Simulate accept all ok"])
def test_simulate_in_capitals_is_a_command_like_the_workflows_if(github, runner, payloads, body):
    """The workflow's `startsWith(github.event.comment.body, '/simulate')` ignores case; so does the action."""
    payload = _comment(payloads, body)
    github.permissions[payload["comment"]["user"]["login"]] = "read"
    runner.env(payload, "issue_comment", **{"gemini-api-key": KEY})
    assert runner.run() == 0
    assert github.calls("GET", r"/collaborators/[^/]+/permission$")  # treated as a command, not skipped


# ----------------------------------------------------------------- the diff reviewed is the SHA statused


def test_push_between_event_and_diff_reviews_and_statuses_the_same_sha(github, runner, sync_payload):
    """The event names head A; by the time the action reads, the PR has moved to B. The review is of A's
    diff (compare base...A) and the status lands on A, never "B's diff under A's status"."""
    head_a = sync_payload["pull_request"]["head"]["sha"]
    base = sync_payload["pull_request"]["base"]["sha"]
    diff_a = github.diff
    github.compare_diffs[(base, head_a)] = diff_a
    github.pull["head"]["sha"] = "b" * 40
    github.diff = b"diff --git a/evil.py b/evil.py\n--- a/evil.py\n+++ b/evil.py\n@@ -1 +1 @@\n-x\n+PUSHED_LATER_MARKER\n"
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as gemini:
        assert runner.run() == 0
    prompts = " ".join(r.prompt for r in gemini.generate_requests())
    assert "PUSHED_LATER_MARKER" not in prompts
    assert github.calls("GET", rf"/compare/{base}\.\.\.{head_a}$")
    assert {s["sha"] for s in github.statuses} == {head_a}


def test_files_fallback_refuses_a_head_that_moved(github, runner, sync_payload):
    """Over GitHub's diff limit (406) the files list is per pull request, not per SHA: if the head moved, stop."""
    github.diff_too_large = True
    github.files = [{"filename": "a.py", "status": "modified", "changes": 2, "patch": "@@ -1 +1 @@\n-a\n+b"}]
    github.pull["head"]["sha"] = "c" * 40  # what GET /pulls/2 says now
    payload = copy.deepcopy(sync_payload)
    base = payload["pull_request"]["base"]["sha"]
    github.compare_diffs[(base, payload["pull_request"]["head"]["sha"])] = b"x"
    runner.env(payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as gemini:
        code = runner.run()
    assert code == 3 and gemini.requests == []
    assert "moved" in runner.summary.read_text()
    assert not any(s["state"] in ("success", "pending") for s in github.statuses)


# ----------------------------------------------------------------- forks


def test_fork_read_only_token_is_detected_before_any_write(github, runner, sync_payload):
    payload = copy.deepcopy(sync_payload)
    payload["pull_request"]["head"]["repo"]["full_name"] = "forker/Hello-World"
    for m in ("POST", "PATCH", "DELETE"):
        github.inject(m, r".*", 403, {"message": "Resource not accessible by integration"}, times=100)  # read-only token
    runner.env(payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(gemini_handler) as gemini:
        assert runner.run() == 0
    assert gemini.requests == []
    assert [m for m, _ in github.requests if m != "GET"] == []
    assert runner.outputs()["verdict"] == "skipped"
