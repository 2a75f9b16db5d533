"""Issue 11 #6, fail-closed gaps in the action: any exception, not only designsim's
own, ends as status ``error`` with a one-line reason, outputs and step summary
written, exit 3 — never a traceback, never a pending status left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "action"))

from actionfixtures import _unpaced_github, github, openapi, payloads, rulebook_text, runner, small_diff, sync_payload  # noqa: E402,F401

from designsim.testing import FakeGeminiServer  # noqa: E402
from designsim.testing.fake_gemini import FakeReply  # noqa: E402

KEY = "AIzaSy-fail-closed-test-key-000000000000"


def _assert_error_not_pending(github, runner, out: str, code: int, expected: int = 3):
    assert code == expected, out
    assert "Traceback" not in out
    states = [s["state"] for s in github.statuses]
    assert states and states[-1] == "error", states  # never left pending
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "%0A" not in errors[0]  # one line
    assert runner.outputs()["verdict"] == "error"
    assert "designsim: error" in runner.summary.read_text()
    assert KEY not in out.replace(f"::add-mask::{KEY}", "")


@pytest.mark.parametrize("raw", [b"<html>502 Bad Gateway</html>", b"{\"candidates\": ", b"\xff\xfe not json"])
def test_gemini_200_with_a_non_json_body_ends_in_error_not_a_traceback(github, runner, sync_payload, capfd, raw):
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(lambda r: FakeReply(200, raw=raw)):
        code = runner.run()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert code == 3
    states = [s["state"] for s in github.statuses]
    assert states[0] == "pending" and states[-1] in ("error", "failure") and states[-1] != "pending"
    assert runner.outputs()["verdict"] in ("error", "inconclusive")


def test_unexpected_exception_after_pending_sets_error_and_writes_outputs(github, runner, sync_payload, capfd, monkeypatch):
    """An exception designsim does not know (a bug, a library's RecursionError) mid-review."""
    import designsim.review as review_mod

    def boom(*a, **k):
        raise RecursionError("maximum recursion depth exceeded while parsing")

    monkeypatch.setattr(review_mod, "review_diff", boom)  # designsim's own function, not the SDK
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    code = runner.run()
    out, err = capfd.readouterr()
    _assert_error_not_pending(github, runner, out + err, code)
    assert [s["state"] for s in github.statuses] == ["pending", "error"]
    assert "unexpected RecursionError: maximum recursion depth" in github.statuses[-1]["description"]


def test_github_answering_non_json_is_an_error_line_not_a_traceback(github, runner, sync_payload, capfd):
    """The comments listing answers 200 with a body that is not the JSON promised."""
    github.inject("GET", r"/issues/\d+/comments$", 200, body="<html>maintenance</html>", times=10)
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    code = runner.run()
    out, err = capfd.readouterr()
    assert code == 3 and "Traceback" not in out + err
    assert runner.outputs()["verdict"] == "error"
    assert not github.statuses or github.statuses[-1]["state"] != "pending"


def test_deeply_nested_rulebook_on_the_base_branch_is_reported_not_raised(github, runner, sync_payload, capfd):
    github.contents[".simulation.yml"] = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
    runner.env(sync_payload, **{"gemini-api-key": KEY})
    code = runner.run()
    out, err = capfd.readouterr()
    assert code in (2, 3) and "Traceback" not in out + err
    assert runner.outputs()["verdict"] == "error"
    assert not any(s["state"] == "pending" for s in github.statuses)


def test_sigterm_mid_review_leaves_no_pending_status(github, runner, sync_payload, capfd):
    """A cancelled job: the runner stops the container with SIGTERM."""
    import os
    import signal
    import threading

    def handler(req):
        threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        return FakeReply(200, {}, delay_s=2.0)

    runner.env(sync_payload, **{"gemini-api-key": KEY})
    with FakeGeminiServer(handler):
        code = runner.run()
    out, err = capfd.readouterr()
    assert code == 3 and "Traceback" not in out + err
    assert [s["state"] for s in github.statuses][-1] == "error"
    assert "cancel" in github.statuses[-1]["description"] or "interrupt" in github.statuses[-1]["description"]
