"""designsim.decision without a model: parsing the verdict section, combining
samples, the gate policy and overrides; the rulebook's gate keys."""

from __future__ import annotations

import pytest

from designsim.decision import (ChangeVerdict, ConstraintVerdict, Decision, Finding, Override, agreement_needed,
                                apply_overrides, combine_samples, decide, parse_change_verdict)
from designsim.rulebook import RulebookError, parse_rulebook
from designsim.simulation import StageResult

BASE = """\
version: 1
scenario: s
directive: d
constraints:
  - id: C1
    text: one
  - id: C2
    text: two
stages:
  - id: a
    title: A
    focus: f
"""

TABLE = "### Verdict on this change\n| Constraint | Verdict | Severity | Evidence |\n| --- | --- | --- | --- |\n"


def parse(rows: str, ids=("C1", "C2"), files=("src/app.py",)):
    return parse_change_verdict("intro\n\n" + TABLE + rows, list(ids), list(files))


def test_a_clean_section_parses_in_rulebook_order():
    got = parse("| C2 | respected | none | src/app.py keeps names |\n| C1 | violated | major | app.py line 3 |\n")
    assert got.ok and [(r.constraint, r.verdict, r.severity) for r in got.verdict.rows] == [
        ("C1", "violated", "major"), ("C2", "respected", "none")]


@pytest.mark.parametrize("rows, problem", [
    ("| C1 | respected | none | src/app.py |\n| C1 | respected | none | src/app.py |\n| C2 | respected | none | src/app.py |\n",
     "constraint C1 appears more than once"),
    ("| C1 | respected | none | src/app.py |\n", "no row for C2"),
    ("| C1 | respected | none | src/app.py |\n| C3 | respected | none | src/app.py |\n| C2 | respected | none | src/app.py |\n",
     "unknown constraint id 'C3'"),
    ("| C1 | fine | none | src/app.py |\n| C2 | respected | none | src/app.py |\n", "is not respected, violated or not applicable"),
    ("| C1 | respected | major | src/app.py |\n| C2 | respected | none | src/app.py |\n", "severity must be none"),
    ("| C1 | respected | none | README.md |\n| C2 | respected | none | src/app.py |\n", "names no file of the diff"),
    ("| C1 | respected | none |  |\n| C2 | respected | none | src/app.py |\n", "C1: no evidence"),
])
def test_problems_are_named(rows, problem):
    got = parse(rows)
    assert not got.ok and any(problem in p for p in got.problems), got.problems


def test_not_applicable_needs_evidence_but_no_diff_file():
    assert parse("| C1 | n/a | none | nothing here touches state |\n| C2 | respected | none | src/app.py |\n").ok


def test_the_last_section_counts_and_code_blocks_are_ignored():
    text = ("```markdown\n" + TABLE + "| C1 | violated | blocker | src/app.py |\n```\n\n" + TABLE
            + "| C1 | respected | none | src/app.py |\n| C2 | respected | none | src/app.py |\n")
    got = parse_change_verdict(text, ["C1", "C2"], ["src/app.py"])
    assert got.ok and got.verdict.get("C1").verdict == "respected"


def test_wrong_columns_and_missing_table():
    got = parse_change_verdict("### Verdict on this change\n| Id | Result |\n| - | - |\n| C1 | ok |\n", ["C1"], [])
    assert not got.ok and "columns must be Constraint | Verdict | Severity | Evidence" in got.problems[0]
    got = parse_change_verdict("### Verdict on this change\nAll good.\n", ["C1"], [])
    assert not got.ok and "has no table" in got.problems[0]


def _verdict(**rows):
    return ChangeVerdict(rows=[ConstraintVerdict(constraint=k, verdict=v, severity=s, evidence=f"{k} ev")
                               for k, (v, s) in rows.items()])


def test_combine_samples_majority_severity_and_agreement():
    a = _verdict(C1=("violated", "blocker"))
    b = _verdict(C1=("violated", "major"))
    c = _verdict(C1=("violated", "blocker"))
    rows, problems = combine_samples([a, b, c], ["C1"])
    assert problems == [] and rows[0][0].severity == "blocker" and rows[0][1] == 3
    # one untrusted sample counts towards n but agrees with nothing
    rows, problems = combine_samples([a, None, _verdict(C1=("respected", "none"))], ["C1"])
    assert rows == [] and problems == ["C1: 1/3 violated, 1/3 respected"]
    assert agreement_needed(3, None) == 2 and agreement_needed(4, None) == 3 and agreement_needed(4, 0.5) == 2
    # a tie is never agreement, even at min_agreement 0.5
    rows, problems = combine_samples([a, _verdict(C1=("respected", "none"))], ["C1"], min_agreement=0.5)
    assert rows == [] and problems


def _stage(sid, outcome="passed", findings=(), synthesis=False, depends_on=()):
    return StageResult(id=sid, title=sid.title(), format="flaw", outcome=outcome, is_synthesis=synthesis,
                       depends_on=list(depends_on), findings=list(findings), reason="r")


def _finding(stage, cid, verdict="violated", severity="blocker"):
    return Finding(stage=stage, constraint=cid, verdict=verdict, severity=severity, evidence="src/app.py")


def test_decide_fail_pass_inconclusive():
    rb = parse_rulebook(BASE)
    fail = decide(rb, [_stage("a", findings=[_finding("a", "C1")])])
    assert fail.verdict == "fail" and fail.reason.startswith("C1 violated (blocker) — A: src/app.py")
    ok = decide(rb, [_stage("a", findings=[_finding("a", "C1", "respected", "none")])])
    assert ok.verdict == "pass" and ok.reason == "every constraint respected (1 stage)"
    unsure = decide(rb, [_stage("a", outcome="failed")])
    assert unsure.verdict == "inconclusive" and unsure.reason == "inconclusive: a untrusted (r)"
    # a trusted blocker fails even beside an inconclusive stage
    two = parse_rulebook(BASE + "  - id: b\n    title: B\n    focus: f\n")
    mixed = decide(two, [_stage("a", findings=[_finding("a", "C1")]), _stage("b", outcome="inconclusive")])
    assert mixed.verdict == "fail" and "also inconclusive: b" in mixed.reason


def test_overrides_accept_every_failing_constraint_or_nothing():
    rb = parse_rulebook(BASE)
    failing = Decision(verdict="fail", reason="C1 violated", findings=[_finding("a", "C1"), _finding("a", "C2", severity="blocker")])
    partial = apply_overrides(failing, [Override(login="maria", constraints=["C1"], reason="known, tracked in #12")], rb)
    assert partial.verdict == "fail" and "still open: C2" in partial.reason and len(partial.overrides) == 1
    accepted = apply_overrides(failing, [Override(login="maria", constraints=["all"], reason="release blocker waived")], rb)
    assert accepted.verdict == "pass" and accepted.reason.startswith("accepted by @maria: all by @maria: release blocker waived")
    both = apply_overrides(failing, [Override(login="a", constraints=["C1"]), Override(login="b", constraints=["C2"])], rb)
    assert both.verdict == "pass" and "@a, @b" in both.reason
    unsure = Decision(verdict="inconclusive", reason="x")
    assert apply_overrides(unsure, [Override(login="a", constraints=["all"])], rb).verdict == "inconclusive"


def test_gate_keys_are_schema_checked_with_locations():
    rb = parse_rulebook(BASE + "samples: 3\ngate:\n  fail_on: major\n  min_agreement: 0.75\n")
    assert rb.gate.fail_on == "major" and rb.samples == 3 and rb.stage_samples("a") == 3
    assert rb.constraints[0].blocking is True
    with pytest.raises(RulebookError) as err:
        parse_rulebook(BASE + "gate:\n  fail_on: critical\n  min_agreemnt: 0.6\nsamples: 0\n")
    text = str(err.value)
    assert "gate.fail_on: expected 'blocker', 'major' or 'minor', got 'critical'" in text
    assert "unknown key 'min_agreemnt' (did you mean 'min_agreement'?)" in text
    assert "samples: Input should be greater than or equal to 1" in text
    with pytest.raises(RulebookError, match="duplicate constraint id 'C1'"):
        parse_rulebook(BASE.replace("id: C2", "id: C1"))
