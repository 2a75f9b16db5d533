"""designsim lint's gate checks (issue 8): constraints without ids, a fail_on no constraint can reach."""

from __future__ import annotations

from designsim.kit.lint import lint_text

BASE = """\
version: 1
scenario: s
directive: Simulate pathways and evaluate them against the constraints.
constraints:
  - id: C1
    text: goal_map.json must never be half-written.
stages:
  - id: a
    title: A
    focus: f
"""


def test_a_constraint_without_an_id_is_an_error_that_says_what_to_write():
    text = BASE.replace("  - id: C1\n    text: goal_map.json must never be half-written.\n",
                        "  - goal_map.json must never be half-written.\n  - text: names are conceptual\n")
    report = lint_text(text, "r.yml")
    assert report.exit_code == 2
    assert [(e.code, e.line, e.field) for e in report.errors] == [("constraint-without-id", 5, "constraints.0"),
                                                                  ("constraint-without-id", 6, "constraints.1")]
    assert "write it as `- id: C1` with `text: goal_map.json must never be half-written.`" in report.errors[0].message


def test_a_fail_on_that_no_blocking_constraint_can_reach_is_advised():
    text = BASE.replace("half-written.\n", "half-written.\n    blocking: false\n", 1) + "gate:\n  fail_on: major\n"
    report = lint_text(text, "r.yml")
    (finding,) = [a for a in report.advice if a.code == "gate-unreachable"]
    assert finding.field == "gate.fail_on" and finding.line == 13 and "every constraint is advisory" in finding.message
    assert not [a for a in lint_text(BASE, "r.yml").advice if a.code == "gate-unreachable"]
