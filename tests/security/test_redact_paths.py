"""Secrets leak outside the action (issue 11, "Why" 5): every output path of every
CLI command is redacted for GEMINI_API_KEY, GOOGLE_API_KEY and GITHUB_TOKEN.

The real google-genai client talks to the local fake Gemini server, whose error
body (like a misbehaving proxy's) echoes every secret back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from designsim.cli import main
from designsim.testing import FakeGeminiServer, error_reply, json_reply, text_reply

from reviewkit import criterion_ids, flaw_output, judge_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "security"
SECRETS = {
    "GEMINI_API_KEY": "AIzaSy-gemini-secret-0123456789",
    "GOOGLE_API_KEY": "AIzaSy-google-secret-9876543210",
    "GITHUB_TOKEN": "ghs_github-token-secret-abcdef",
}
ONE_STAGE = """\
version: 1
name: leak
scenario: A script saves a file and then rewrites an index.
directive: Simulate how the change fails and design the fix.
stages:
  - id: state
    title: State
    focus: What if the process dies between the two writes?
    format: flaw
scorecard:
  attempts: 1
  grade_attempts: 1
output:
  min_chars: 10
"""


@pytest.fixture
def secrets(monkeypatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def echo_all(_req=None) -> str:
    """What a leaky proxy says: every secret, plain and in a query string."""
    return "upstream refused key=" + " ".join(SECRETS.values()) + " url=https://x/?key=" + SECRETS["GEMINI_API_KEY"]


def assert_clean(*texts: str) -> None:
    for text in texts:
        for name, value in SECRETS.items():
            assert value not in text, f"{name} leaked"


def leaky_error(req):
    return error_reply(400, "INVALID_ARGUMENT", echo_all(req))


def test_review_error_body_echoing_the_keys_stays_out_of_comment_report_and_stderr(tmp_path, secrets, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(ONE_STAGE)
    comment, report = tmp_path / "comment.md", tmp_path / "report.json"
    with FakeGeminiServer(leaky_error) as server:
        code = main(["review", "--rulebook", str(rb), "--diff", str(FIXTURES / "small.diff"), "--out", str(comment),
                     "--json-out", str(report), "--repo", str(tmp_path)])
    assert server.generate_requests(), "the real client reached the fake server"
    assert code == 3  # the model refused: inconclusive
    out = capsys.readouterr()
    data = report.read_text()
    assert "upstream refused" in data and "***" in data  # the error is reported, the keys are not
    assert_clean(comment.read_text(), data, out.out, out.err)


def test_review_comment_on_stdout_is_redacted(tmp_path, secrets, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(ONE_STAGE)
    with FakeGeminiServer(leaky_error):
        main(["review", "--rulebook", str(rb), "--diff", str(FIXTURES / "small.diff"), "--repo", str(tmp_path)])
    out = capsys.readouterr()
    assert "designsim:rulebook=leak" in out.out
    assert_clean(out.out, out.err)


def test_recorded_cassette_never_holds_a_key(tmp_path, secrets, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(ONE_STAGE)
    cassette = tmp_path / "cassette.json"

    def handler(req):
        if req.wants_json:
            return json_reply(judge_json(flaw_output("x"), criterion_ids(req)))
        return text_reply(flaw_output("x") + "\n" + echo_all())

    with FakeGeminiServer(handler):
        main(["review", "--rulebook", str(rb), "--diff", str(FIXTURES / "small.diff"), "--record", str(cassette),
              "--out", str(tmp_path / "c.md"), "--repo", str(tmp_path)])
    text = cassette.read_text()
    assert json.loads(text)["interactions"] and "***" in text
    assert_clean(text, (tmp_path / "c.md").read_text(), *capsys.readouterr())


def test_grade_with_a_leaky_judge_prints_no_key(tmp_path, secrets, capsys):
    out = tmp_path / "out.md"
    out.write_text(flaw_output("x"))
    with FakeGeminiServer(leaky_error):
        code = main(["grade", str(out), "--format", "flaw", "--json"])
    assert code == 3
    assert_clean(*capsys.readouterr())


def test_matrix_and_grade_of_a_file_holding_a_key_print_none(tmp_path, secrets, capsys):
    out = tmp_path / "out.md"
    out.write_text("| Criteria | A | B |\n| --- | --- | --- |\n| C1 | " + SECRETS["GITHUB_TOKEN"] + " | y |\n"
                   "| **Verdict** | **Recommended** | Rejected |\n")
    assert main(["matrix", str(out), "--json"]) == 0
    main(["matrix", str(out)])
    main(["grade", str(out), "--format", "pathways", "--no-llm"])
    captured = capsys.readouterr()
    assert "Recommended" in captured.out
    assert_clean(*captured)


def test_lint_json_never_prints_a_key(tmp_path, secrets, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(ONE_STAGE + f"{SECRETS['GOOGLE_API_KEY']}: oops\n")
    assert main(["lint", str(rb), "--json"]) == 2
    captured = capsys.readouterr()
    assert "unknown key" in captured.out
    assert_clean(*captured)


def test_components_generate_writes_no_key(tmp_path, secrets, capsys):
    with FakeGeminiServer(lambda req: text_reply("You are a careful auditor. " + "You read every change twice and name each risk plainly. " * 6 + "\n" + echo_all())):
        code = main(["components", "generate", "persona", "leaky_auditor", "--describe", "an auditor",
                     "--dir", str(tmp_path / "prompts")])
    assert code == 0
    written = (tmp_path / "prompts" / "personas" / "leaky_auditor.md").read_text()
    assert "careful auditor" in written and "***" in written
    assert_clean(written, *capsys.readouterr())
