"""Issue 13 item 4: live progress and a compact summary on a terminal; plain logs elsewhere.

Unit tests drive designsim.terminal with an in-memory rich Console and a fake
clock; the pty test runs the real `designsim demo` under a pseudo-terminal
(pexpect), the way a person first meets the tool."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pexpect
from rich.console import Console

from designsim.simulation import ProgressEvent
from designsim.terminal import ReviewProgress, print_summary, summary_line

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ENV = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "PYTHONUTF8": "1", "COLUMNS": "160", "LINES": "50"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=140, color_system=None if not terminal else "standard"), buf


def test_progress_shows_stage_attempt_tokens_and_elapsed():
    console, buf = _console(True)
    clock = FakeClock()
    with ReviewProgress(console, [("state", "State"), ("synthesis", "Synthesis")], clock=clock) as progress:
        progress.update(ProgressEvent("attempt", "state", attempt=1, attempts=3, tokens=0))
        clock.now += 4.0
        progress.update(ProgressEvent("graded", "state", attempt=1, attempts=3, tokens=1_234, passed=False))
        progress.update(ProgressEvent("attempt", "state", attempt=2, attempts=3, tokens=1_234, sample=2, samples=3))
        assert "attempt 2/3 (sample 2/3)" in ANSI.sub("", _render(progress))
        clock.now += 8.5
        progress.update(ProgressEvent("stage", "state", attempt=2, attempts=3, tokens=2_500, outcome="passed"))
        progress.update(ProgressEvent("stage", "synthesis", tokens=0, outcome="skipped"))
        progress.update(ProgressEvent("stage", "unknown-stage", outcome="passed"))  # ignored, no crash
    text = ANSI.sub("", buf.getvalue())
    final = text.split("\r")[-1] if "\r" in text else text
    assert "state" in final and "trusted" in final and "attempt 2/3" in final
    assert "2,500 tokens" in final and "12.5 s" in final
    assert "synthesis" in final and "skipped" in final


def _render(progress: ReviewProgress) -> str:
    """The live table as it would be drawn now."""
    probe, buf = _console(True)
    probe.print(progress.progress.make_tasks_table(progress.progress.tasks))
    return buf.getvalue()


def test_progress_is_silent_when_stderr_is_not_a_terminal():
    console, buf = _console(False)
    with ReviewProgress(console, [("state", "State")], clock=FakeClock()) as progress:
        progress.update(ProgressEvent("attempt", "state", attempt=1, attempts=2))
        progress.update(ProgressEvent("stage", "state", outcome="passed"))
    assert buf.getvalue() == ""


def _review():
    """A real Review from the bundled demo, replayed (no network)."""
    from designsim.demo import CASES, demo_plan
    from designsim.providers.replay import ReplayProvider
    from designsim.review import review_diff

    case = CASES["jit"]
    plan = demo_plan(case)
    events: list[ProgressEvent] = []
    review = review_diff(plan, ReplayProvider.from_file(case.path / "cassette.json"), on_progress=events.append)
    return review, events


def test_the_review_reports_progress_events_in_order():
    review, events = _review()
    ids = [s.id for s in review.stages]
    assert {e.stage for e in events} == set(ids)
    for sid in ids:
        mine = [e for e in events if e.stage == sid]
        stage = next(s for s in review.stages if s.id == sid)
        assert mine[0].kind == ("attempt" if stage.attempts else "stage") and mine[-1].kind == "stage"
        assert [e.kind for e in mine].count("attempt") == len(stage.attempts)
        assert mine[-1].outcome == next(s.outcome for s in review.stages if s.id == sid)
        assert mine[-1].tokens == next(s.usage.total_tokens for s in review.stages if s.id == sid)
        assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(mine, mine[1:]))


def test_summary_on_a_terminal_and_in_a_log():
    review, _ = _review()
    console, buf = _console(True)
    print_summary(console, review, comment="/tmp/x/comment.md", report="/tmp/x/report.json")
    text = ANSI.sub("", buf.getvalue())
    assert f"decision {review.decision.verdict.upper()} — {review.decision.reason}" in " ".join(text.split())
    for s in review.stages:
        assert re.search(rf"^{re.escape(s.id)}\b.*{s.trust}\s+{len(s.attempts)}\s+{s.usage.total_tokens:,}", text, re.M), text
    assert "comment: /tmp/x/comment.md" in text and "report:  /tmp/x/report.json" in text
    assert len(text.splitlines()) < 30

    console, buf = _console(False)
    print_summary(console, review, comment="stdout", report=None)
    assert buf.getvalue() == summary_line(review) + "\n"


def _piped_demo(tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "designsim.cli", "demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=ENV)


def test_demo_in_a_pseudo_terminal_shows_progress_and_a_summary_not_the_markdown(tmp_path):
    piped = _piped_demo(tmp_path)
    decided = re.search(r"designsim demo: decision (\w+) — ", piped.stderr)
    assert decided, piped.stderr
    child = pexpect.spawn(sys.executable, ["-m", "designsim.cli", "demo"], cwd=str(tmp_path), encoding="utf-8",
                          timeout=60, dimensions=(50, 160), env=ENV)
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    screen = ANSI.sub("", child.before)
    assert child.exitstatus == piped.returncode, screen
    assert "<!-- designsim" not in screen and "<details" not in screen, "the comment must not flood the terminal"
    # live rows: stage, state, attempt, tokens, elapsed
    assert re.search(r"state\s+(trusted|untrusted|inconclusive|skipped)\s+attempt (\d/\d|-)\s+[\d,]+ tokens\s+[\d.]+ s", screen), screen
    assert f"decision {decided.group(1)} — " in screen and "stage" in screen and "outcome" in screen
    comment = re.search(r"comment: (\S+comment\.md)", screen)
    report = re.search(r"report:\s+(\S+report\.json)", screen)
    assert comment and report, screen
    assert Path(comment.group(1)).read_text(encoding="utf-8") == piped.stdout
    assert '"stages"' in Path(report.group(1)).read_text(encoding="utf-8")
    assert len(screen.encode()) < 8_000, len(screen.encode())


def test_demo_with_out_dash_in_a_terminal_prints_the_comment(tmp_path):
    child = pexpect.spawn(sys.executable, ["-m", "designsim.cli", "demo", "--out", "-"], cwd=str(tmp_path),
                          encoding="utf-8", timeout=60, dimensions=(50, 160), env=ENV)
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert "<!-- designsim" in child.before and "comment: stdout" in ANSI.sub("", child.before)


def test_demo_piped_is_plain_markdown_on_stdout_and_one_plain_line_on_stderr(tmp_path):
    done = _piped_demo(tmp_path)
    assert done.stdout.startswith("<!-- designsim"), done.stderr
    assert not ANSI.search(done.stderr), "CI logs stay plain"
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("designsim demo: ") and "replaying" in lines[0]
    assert lines[1].startswith("designsim demo: decision ")
    assert len(lines) <= 3  # the replay notice, the decision line, and a mismatch note if any


def test_force_color_in_ci_does_not_animate_the_log(tmp_path):
    """CI runners often set FORCE_COLOR; a log is still not a terminal."""
    env = dict(ENV, FORCE_COLOR="1", CI="true", GITHUB_ACTIONS="true")
    done = subprocess.run([sys.executable, "-m", "designsim.cli", "demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.stdout.startswith("<!-- designsim")
    assert not ANSI.search(done.stderr) and "\r" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 3
