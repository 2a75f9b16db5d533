"""``/simulate accept C1 <reason>``: a maintainer's audited override (issue 8, item 6).

The review's failing constraints are read only from designsim's own status on
the current head SHA (its :class:`ResultTag`); these tests seed that status the
way a failing review leaves it, then drive the action on a real
``issue_comment`` payload against the OpenAPI-validated fake GitHub API.
"""

from __future__ import annotations

import json

import pytest

from designsim.action.publisher import ResultTag

RULEBOOK = """\
version: 1
name: pool-gate
scenario: A Python HTTP client library keeps a pool of connections per host.
directive: Find the most important flaw the change introduces or fixes, and propose a better design.
constraints:
  - id: C1
    text: Connections are never shared between hosts.
  - id: C2
    text: The public API does not change.
  - id: C3
    text: A pool never grows without bound.
output:
  format: flaw
  min_chars: 100
stages:
  - id: pooling
    title: Connection pooling
    focus: How connections are keyed and reused across hosts.
scorecard:
  attempts: 1
  grade_attempts: 1
"""
CONTEXT = "designsim/pool-gate"
MAINTAINER = "lts-def"  # the commenter in drone-go-scm__comment.json


def _accept_payload(payloads, body: str) -> dict:
    payload = json.loads((payloads / "drone-go-scm__comment.json").read_text())
    payload["comment"]["body"] = body
    payload["repository"]["full_name"] = "Codertocat/Hello-World"
    return payload


@pytest.fixture
def failing(github):
    """The fake repository after a review that failed on C1 and C3 (blockers)."""
    github.contents[".simulation.yml"] = RULEBOOK
    head = github.pull["head"]["sha"]
    tag = ResultTag("fail", "0" * 32, ("C1", "C3"))
    github.add_status(head, state="failure", context=CONTEXT, description="❌ C1, C3 violated",
                      target_url=f"https://github.com/Codertocat/Hello-World/actions/runs/41#{tag.encode()}")
    github.add_comment("<!-- designsim:rulebook=pool-gate -->\n### ❌ designsim — `pool-gate`: fail\n\nC1 violated (blocker)\n")
    github.permissions[MAINTAINER] = "maintain"
    return github


def _run(runner, payloads, body: str) -> int:
    from designsim.testing import FakeGeminiServer

    runner.env(_accept_payload(payloads, body), "issue_comment", **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer() as gemini:
        code = runner.run()
    assert gemini.requests == []  # an override never calls the model
    return code


def test_accept_every_failing_constraint_turns_the_head_green_and_is_recorded(failing, runner, payloads):
    head = failing.pull["head"]["sha"]
    assert _run(runner, payloads, "/simulate accept C1,C3 the pool is per-tenant already, see #12") == 0
    last = failing.statuses[-1]
    assert last["sha"] == head and last["context"] == CONTEXT and last["state"] == "success"
    assert last["description"].startswith(f"Accepted by {MAINTAINER}: C1, C3")
    tag = ResultTag.decode(last["target_url"])
    assert tag.outcome == "accepted" and tag.by == (MAINTAINER,) and set(tag.accepted) == {"C1", "C3"}
    # the comment records who accepted what and why (the command text defused: no cross-reference)
    (comment,) = failing.comments
    assert "Accepted by a maintainer" in comment["body"] and f"`{MAINTAINER}` accepted **C1, C3**" in comment["body"]
    assert "the pool is per-tenant already" in comment["body"] and head[:12] in comment["body"]
    assert runner.outputs()["verdict"] == "pass"
    assert "accepted" in runner.summary.read_text()


def test_accept_c1_while_c3_is_violated_leaves_the_status_failing_with_a_note(failing, runner, payloads):
    assert _run(runner, payloads, "/simulate accept C1 known and tracked") == 1  # still a fail: exit as fail-on says
    last = failing.statuses[-1]
    assert last["state"] == "failure" and "still violated: C3" in last["description"]
    assert "still violated: C3" in failing.comments[0]["body"]
    # a second maintainer accepts the rest: the acceptances add up
    failing.permissions["octocat"] = "admin"
    payload = _accept_payload(payloads, "/simulate accept C3 bounded by the caller")
    payload["comment"]["user"]["login"] = "octocat"
    runner.env(payload, "issue_comment", **{"gemini-api-key": "AIza-override-key-000000"})
    assert runner.run() == 0
    last = failing.statuses[-1]
    assert last["state"] == "success"
    assert ResultTag.decode(last["target_url"]).by == (MAINTAINER, "octocat")


def test_accept_all(failing, runner, payloads):
    assert _run(runner, payloads, "/simulate accept all release waiver from the owner") == 0
    assert failing.statuses[-1]["state"] == "success"


def test_accept_by_a_read_only_collaborator_is_refused_once(failing, runner, payloads):
    failing.permissions[MAINTAINER] = "read"
    before = len(failing.statuses)
    assert _run(runner, payloads, "/simulate accept all trust me") == 0
    assert _run(runner, payloads, "/simulate accept all trust me!!") == 0
    assert len(failing.statuses) == before  # nothing changed on the head
    replies = [c for c in failing.comments if "designsim:refusal" in c["body"]]
    assert len(replies) == 1  # one polite reply per user per pull request, never a storm
    assert runner.outputs()["verdict"] == "skipped"


@pytest.mark.parametrize("body, needle", [
    ("/simulate accept C1", "say why"),
    ("/simulate accept C9 because", "unknown constraint id(s) C9"),
    ("/simulate accept C2 it is fine", "C2 did not fail"),
])
def test_accept_that_cannot_apply_says_why_and_changes_nothing(failing, runner, payloads, body, needle):
    before = len(failing.statuses)
    assert _run(runner, payloads, body) == 0
    assert len(failing.statuses) == before
    assert any(needle in c["body"] for c in failing.comments)


def test_accept_reads_only_designsims_own_status(github, runner, payloads):
    """A failure status under our context set by another token is not ours to accept (or trust)."""
    github.contents[".simulation.yml"] = RULEBOOK
    github.permissions[MAINTAINER] = "write"
    tag = ResultTag("fail", "0" * 32, ("C1",))
    github.add_status(github.pull["head"]["sha"], state="failure", context=CONTEXT, creator="some-other-bot[bot]",
                      target_url=f"https://example.com/#{tag.encode()}")
    assert _run(runner, payloads, "/simulate accept C1 fine") == 0
    assert len(github.statuses) == 1
    assert any("no designsim result on the current head" in c["body"] for c in github.comments)


def test_the_next_push_is_reviewed_normally(failing, runner, payloads, sync_payload):
    """The override is tied to the head SHA: a new head has no status, so it is reviewed again."""
    from actionkit import gemini_handler

    from designsim.testing import FakeGeminiServer

    assert _run(runner, payloads, "/simulate accept all waived") == 0
    new_head = "1" * 40
    failing.pull["head"]["sha"] = new_head
    payload = json.loads(json.dumps(sync_payload))
    payload["pull_request"]["head"]["sha"] = new_head
    runner.env(payload, **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer(gemini_handler) as gemini:
        runner.run()
    assert len(gemini.generate_requests()) >= 1  # a real review, not a re-published override
    assert [s["state"] for s in failing.statuses if s["sha"] == new_head][0] == "pending"


def test_an_accepted_head_rerun_with_unchanged_inputs_stays_accepted(github, runner, payloads, sync_payload):
    """`/simulate` again on the same head after an override: the tag's digest matches, the override stands."""
    from actionkit import gemini_handler

    from designsim.testing import FakeGeminiServer

    github.contents[".simulation.yml"] = RULEBOOK
    github.permissions[MAINTAINER] = "write"
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer(gemini_handler):
        runner.run()
    first = ResultTag.decode(github.statuses[-1]["target_url"])
    # make our own last status a failure on C1 with the same sealed digest (what a failing review would leave)
    failed = ResultTag("fail", first.inputs, ("C1",))
    github.add_status(github.pull["head"]["sha"], state="failure", context=CONTEXT,
                      target_url=f"https://github.com/x/y/actions/runs/1#{failed.encode()}")
    assert _run(runner, payloads, "/simulate accept C1 ok") == 0
    assert github.statuses[-1]["state"] == "success"
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer(gemini_handler) as gemini:
        assert runner.run() == 0
    assert gemini.requests == [] and github.statuses[-1]["state"] == "success"
    assert "Accepted by" in github.statuses[-1]["description"]


def test_result_tag_round_trips_odd_ids():
    tag = ResultTag("fail", "a" * 32, ("C1", "perf;budget", "x,y"), ("x,y",), ("o'neil",))
    assert ResultTag.decode("https://h/p#" + tag.encode()) == tag
    assert ResultTag.decode("https://h/p") is None and ResultTag.decode("designsim:v1;verdict=pass;inputs=XYZ") is None


VERDICT_SECTION = """

### Verdict on this change
| Constraint | Verdict | Severity | Evidence |
| --- | --- | --- | --- |
| C1 | violated | blocker | github/Requester.py: the pool is keyed on the hostname only, so hosts share sockets |
| C2 | respected | none | github/Requester.py keeps every public signature unchanged |
| C3 | violated | blocker | github/Requester.py: nothing ever evicts a pooled connection |
"""


def _failing_handler(req):
    from actionkit import FLAW_OUTPUT, JUDGE_PASS

    from designsim.testing import json_reply, text_reply

    if req.wants_json:
        judge = dict(JUDGE_PASS)
        judge["verdict"] = {"evidence_quote": "the pool is keyed on the hostname only", "reasoning": "Follows from the analysis.",
                            "verdict": "PASS"}
        return json_reply(judge)
    return text_reply(FLAW_OUTPUT + VERDICT_SECTION)


def test_a_failing_review_then_accept_end_to_end(github, runner, payloads, sync_payload):
    """The whole loop through the real google-genai client: the review fails on C1 and C3 (blockers), our
    status says so in its tag, a maintainer accepts C1 (still failing), then C3 (success)."""
    from designsim.testing import FakeGeminiServer

    github.contents[".simulation.yml"] = RULEBOOK
    github.permissions[MAINTAINER] = "write"
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer(_failing_handler):
        assert runner.run() == 1
    last = github.statuses[-1]
    assert last["state"] == "failure" and last["description"].startswith("❌ C1, C3 violated")
    assert ResultTag.decode(last["target_url"]).violated == ("C1", "C3")
    # the review's part of the step summary (after the cost estimate written before it started) leads with the decision
    headings = [line for line in runner.summary.read_text().splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## designsim — cost estimate") and headings[1].startswith("## ❌ C1 violated (blocker)")
    report = json.loads((runner.tmp / "designsim-report.json").read_text())
    assert {f["constraint"] for f in report["decision"]["findings"] if f["verdict"] == "violated"} == {"C1", "C3"}

    assert _run(runner, payloads, "/simulate accept C1 tenants never share a proxy here") == 1
    assert github.statuses[-1]["state"] == "failure" and "still violated: C3" in github.statuses[-1]["description"]
    assert _run(runner, payloads, "/simulate accept C3 pool size is capped by the OS") == 0
    assert github.statuses[-1]["state"] == "success"
    body = next(c["body"] for c in github.comments if "designsim:rulebook=pool-gate" in c["body"])
    assert body.count(f"`{MAINTAINER}` accepted") == 2


def test_accept_with_check_runs(github, runner, payloads, sync_payload):
    from designsim.testing import FakeGeminiServer

    github.contents[".simulation.yml"] = RULEBOOK
    github.permissions[MAINTAINER] = "admin"
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000", "status": "check-run"})
    with FakeGeminiServer(_failing_handler):
        assert runner.run() == 1
    runner.env(_accept_payload(payloads, "/simulate accept all known"), "issue_comment",
               **{"gemini-api-key": "AIza-override-key-000000", "status": "check-run"})
    assert runner.run() == 0
    newest = max(github.check_runs.values(), key=lambda r: r["id"])
    assert newest["conclusion"] == "success" and ResultTag.decode(newest["external_id"]).outcome == "accepted"

    # the same head again with unchanged inputs: the newest own check run (the acceptance) is what is re-published
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000", "status": "check-run"})
    with FakeGeminiServer(_failing_handler) as gemini:
        assert runner.run() == 0
    assert gemini.requests == []
    newest = max(github.check_runs.values(), key=lambda r: r["id"])
    assert newest["conclusion"] == "success"


def test_a_later_error_hides_an_older_failure_from_accept(failing, runner, payloads):
    """Our newest result on the head is an error (no tag): an older failing tag is not accepted from."""
    failing.add_status(failing.pull["head"]["sha"], state="error", context=CONTEXT, description="designsim could not finish",
                       target_url="https://github.com/x/y/actions/runs/9")
    before = len(failing.statuses)
    assert _run(runner, payloads, "/simulate accept all fine") == 0
    assert len(failing.statuses) == before
    assert any("no designsim result on the current head" in c["body"] for c in failing.comments)


def test_on_failed_warn_is_a_visible_warning_never_a_plain_pass(github, runner, sync_payload):
    from designsim.testing import FakeGeminiServer

    github.contents[".simulation.yml"] = RULEBOOK + "policy:\n  on_failed: warn\n"
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer(_failing_handler):
        assert runner.run() == 0
    last = github.statuses[-1]
    assert last["state"] == "success" and last["description"].startswith("⚠️ C1, C3 violated")
    assert ResultTag.decode(last["target_url"]).verdict == "warn"
    assert runner.outputs()["verdict"] == "warn"
    # after the cost estimate written before the review started, the review's part leads with the warning
    headings = [line for line in runner.summary.read_text().splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## designsim — cost estimate") and headings[1].startswith("## ⚠️")


def test_on_inconclusive_neutral_says_so_and_is_never_reused(github, runner, sync_payload):
    from designsim.testing import FakeGeminiServer, error_reply

    github.contents[".simulation.yml"] = RULEBOOK + "policy:\n  on_inconclusive: neutral\n"
    runner.env(sync_payload, **{"gemini-api-key": "AIza-override-key-000000"})
    with FakeGeminiServer(lambda r: error_reply(400, "INVALID_ARGUMENT", "API key not valid.")):
        assert runner.run() == 0
    assert github.statuses[-1]["state"] == "success" and runner.outputs()["verdict"] == "neutral"
    assert "Nothing was decided" in runner.summary.read_text()
    assert ResultTag.decode(github.statuses[-1]["target_url"]).verdict == "inconclusive"
    with FakeGeminiServer(_failing_handler) as gemini:  # same inputs: re-run, not re-published
        runner.run()
    assert gemini.generate_requests()
