"""Issue 13 item 5: YAML syntax errors a person can act on, in lint and in review."""

from __future__ import annotations

import pytest

from designsim.cli import main
from designsim.kit.lint import lint_text
from designsim.rulebook import RulebookError, parse_rulebook

OK = "scenario: s\ndirective: d\nstages:\n  - id: a\n    title: A\n    focus: f\n"


@pytest.mark.parametrize("text, where, words", [
    ("scenario: s\ndirective: d\nstages:\n\t- id: a\n", (4, 1), "use spaces"),
    ('scenario: "s\ndirective: d\nstages:\n  - id: a\n', (1, 11), 'the " opened here is never closed'),
    ("scenario: s\ndirective: d\nstages:\n  - id: a\n    title: 'A\n    focus: f\n", (5, 12), "the ' opened here is never closed"),
    ("scenario: s\ndirective: d\n  stages:\n  - id: a\n", (3, 9), "quote a value that contains ': '"),
    ("scenario: s\ndirective: d\nscenario: t\nstages:\n  - {id: a, title: A, focus: f}\n", (3, 1),
     "duplicate key 'scenario' (YAML keeps only the last): already set at line 1"),
])
def test_yaml_errors_point_at_the_cause_with_a_hint(text, where, words):
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, "r.yml")
    (issue,) = info.value.issues
    assert (issue.line, issue.column) == where and words in issue.message, str(issue)
    report = lint_text(text, "r.yml")
    assert report.exit_code == 2 and words in report.errors[0].message


def test_the_review_says_the_same_in_one_line(tmp_path, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(OK.replace("  - id: a", "\t- id: a"))
    diff = tmp_path / "c.diff"
    diff.write_text("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
    assert main(["review", "--rulebook", str(rb), "--diff", str(diff), "--provider", "replay"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"designsim: error: {rb}:4:1: not valid YAML: a tab character here; YAML indentation must use spaces (replace the tab with spaces)"


def test_valid_yaml_still_loads():
    assert parse_rulebook(OK).stages[0].id == "a"
