"""The gate decides on the change, not on the form of the simulation (issue 8).

Every review here goes through ``designsim review`` (or the review flow) and the
REAL google-genai client against the local fake Gemini server; the diff is
``tests/fixtures/gate/jit.diff`` (see SOURCES.md there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from designsim.cli import main
from designsim.testing import FakeGeminiServer, json_reply, text_reply

from reviewkit import criterion_ids, flaw_output, judge_json, output_under_review, pathways_output, stage_title, verdict_table

DIFF = Path(__file__).parent / "fixtures" / "gate" / "jit.diff"

RULEBOOK = """\
version: 1
name: gate
scenario: A script saves a component file and then rewrites goal_map.json.
directive: Simulate how the proposed change fails and design the fix.
constraints:
  - id: C1
    text: goal_map.json must never be left half-written.
  - id: C2
    text: A component's file name is its conceptual name.
stages:
  - id: state
    title: State management
    focus: What if the process dies between the two writes?
    format: flaw
scorecard:
  attempts: 2
  grade_attempts: 2
output:
  min_chars: 100
"""

RESPECTED = {"C1": ("respected", "none"), "C2": ("respected", "none")}
C1_BLOCKER = {"C1": ("violated", "blocker"), "C2": ("respected", "none")}


def serve(stage_output, judge=None):
    """A fake-Gemini handler: stage calls get ``stage_output`` (a str, or a
    function of the request), judge calls a PASS on exactly the criteria asked
    (or ``judge(req)``)."""

    def handler(req):
        if req.wants_json:
            if judge is not None:
                return judge(req)
            return json_reply(judge_json(output_under_review(req), criterion_ids(req)))
        return text_reply(stage_output(req) if callable(stage_output) else stage_output)

    return handler


def review(tmp_path, handler, rulebook=RULEBOOK, *extra):
    """Run ``designsim review`` against the fake server: ``(exit code, JSON report, comment, server)``."""
    rb = tmp_path / ".simulation.yml"
    rb.write_text(rulebook)
    report, comment = tmp_path / "report.json", tmp_path / "comment.md"
    with FakeGeminiServer(handler) as server:
        code = main(["review", "--rulebook", str(rb), "--diff", str(DIFF), "--json-out", str(report), "--out", str(comment), *extra])
    return code, json.loads(report.read_text()), comment.read_text(), server


def flaw(rows=RESPECTED, **kw):
    return flaw_output("state", rows, file="jit_generation.py", **kw)


# ------------------------------------------------------------------ the acceptance


def test_a_violated_blocker_fails_the_pull_request(gemini_key, tmp_path):
    code, data, comment, _ = review(tmp_path, serve(flaw(C1_BLOCKER)))
    assert code == 1 and data["verdict"] == "fail" and data["exit_code"] == 1
    decision = data["decision"]
    assert set(decision) == {"verdict", "reason", "findings", "overrides"} and decision["verdict"] == "fail"
    c1 = next(f for f in decision["findings"] if f["constraint"] == "C1")
    assert c1 == {"stage": "state", "constraint": "C1", "verdict": "violated", "severity": "blocker",
                  "evidence": "jit_generation.py: the write path as the diff changes it", "agreement": "1/1"}
    # the comment leads with the decision, then the constraint × stage table, then trust
    assert comment.index("**❌ C1 violated (blocker) — State management: jit_generation.py") < comment.index("### Verdict on this change")
    assert comment.index("### Verdict on this change") < comment.index("### Trust")
    assert "| C1 | ❌ violated (blocker) |" in comment and "✅ trusted" in comment


def test_every_constraint_respected_passes(gemini_key, tmp_path):
    code, data, comment, server = review(tmp_path, serve(flaw(RESPECTED)))
    assert code == 0 and data["decision"]["verdict"] == "pass"
    assert data["decision"]["reason"] == "every constraint respected (1 stage)"
    assert "**✅ every constraint respected (1 stage)**" in comment
    # the stage prompt asked for the section, one row per constraint, and the judge rules on the verdict
    stage_req = next(r for r in server.generate_requests() if not r.wants_json)
    assert "### Verdict on this change" in stage_req.prompt and "in this order: C1, C2" in stage_req.prompt
    judge_req = next(r for r in server.generate_requests() if r.wants_json)
    assert "verdict" in criterion_ids(judge_req)


@pytest.mark.parametrize("output, problem", [
    (flaw(verdict=False), 'no "### Verdict on this change" section'),
    (flaw({"C1": ("respected", "none"), "C2": ("respected", "none"), "C9": ("violated", "blocker")}), "unknown constraint id 'C9'"),
    (flaw({"C1": ("respected", "none")}), "no row for C2"),
    (flaw({"C1": ("violated", "none"), "C2": ("respected", "none")}), "a violation needs a severity"),
    (flaw_output("state", RESPECTED, file="elsewhere.py"), "names no file of the diff"),
])
def test_a_bad_verdict_section_is_untrusted_and_inconclusive(gemini_key, tmp_path, output, problem):
    code, data, comment, server = review(tmp_path, serve(output))
    assert code == 3 and data["decision"]["verdict"] == "inconclusive" and data["decision"]["findings"] == []
    (stage,) = data["stages"]
    assert stage["outcome"] == "failed" and len(stage["attempts"]) == 2  # re-run once in a fresh session
    check = next(c for c in stage["attempts"][-1]["scorecard"]["checks"] if c["name"] == "change_verdict")
    assert not check["passed"] and problem in check["detail"]
    assert not any(r.wants_json for r in server.generate_requests())  # the judge is not asked about a broken output
    assert "**⚠️ inconclusive: state untrusted" in comment and "✅" not in comment.split("\n")[2]


def test_verdict_section_tolerates_emphasis_case_and_spacing(gemini_key, tmp_path):
    table = ("### **Verdict on this change**\n\n|  constraint | VERDICT | severity |  Evidence |\n|---|:--|--|--|\n"
             "| **c1** | *Violated* | **Blocker** | `jit_generation.py` line 5 truncates the map |\n"
             "|C2|Not Applicable|none| orchestrator.py only imports it |\n")
    output = flaw(verdict=False) + "\n" + table
    code, data, _, _ = review(tmp_path, serve(output))
    assert code == 1
    assert [(f["constraint"], f["verdict"], f["severity"]) for f in data["decision"]["findings"]] == [
        ("C1", "violated", "blocker"), ("C2", "not applicable", "none")]


@pytest.mark.parametrize("mutate, problem", [
    (lambda d, s: s[:-1] + ', "blueprint": ' + json.dumps(d["blueprint"]) + "}", "repeats the key 'blueprint'"),
    (lambda d, s: json.dumps({**d, "rigour": d["blueprint"]}), "invents 'rigour'"),
    (lambda d, s: json.dumps({k: v for k, v in d.items() if k != "verdict"}), "drops verdict"),
])
def test_a_judge_reply_that_repeats_invents_or_drops_a_criterion_never_passes(gemini_key, tmp_path, mutate, problem):
    def judge(req):
        good = judge_json(output_under_review(req), criterion_ids(req))
        return text_reply(mutate(good, json.dumps(good)))

    code, data, _, server = review(tmp_path, serve(flaw(RESPECTED), judge=judge))
    assert code == 3 and data["decision"]["verdict"] == "inconclusive"
    card = data["stages"][0]["attempts"][-1]["scorecard"]
    assert card["grader_error"] and all(c["verdict"] == "GRADER_ERROR" for c in card["criteria"])
    assert card["judge_attempts"] == 2  # re-asked once in a fresh session, then GRADER_ERROR
    transcript = card["judge_transcripts"][0]
    assert problem in transcript["problem"] and transcript["reply"] == mutate(
        judge_json(output_under_review(server.generate_requests()[1]), criterion_ids(server.generate_requests()[1])),
        json.dumps(judge_json(output_under_review(server.generate_requests()[1]), criterion_ids(server.generate_requests()[1]))))
    # the judge's request pinned the criterion ids in its response schema
    schema = server.generate_requests()[1].body["generationConfig"]["responseJsonSchema"]
    assert schema["additionalProperties"] is False and schema["required"] == list(schema["properties"])


def test_samples_send_fresh_single_turn_requests_and_report_agreement(gemini_key, tmp_path):
    replies = iter([flaw(C1_BLOCKER), flaw(C1_BLOCKER), flaw(RESPECTED)])
    code, data, comment, server = review(tmp_path, serve(lambda req: next(replies)), RULEBOOK + "samples: 3\n")
    stage_calls = [r for r in server.generate_requests() if not r.wants_json]
    assert len(stage_calls) == 3 and all(r.user_turns == 1 and len(r.contents) == 1 for r in stage_calls)
    assert code == 1
    c1 = next(f for f in data["decision"]["findings"] if f["constraint"] == "C1")
    assert c1["verdict"] == "violated" and c1["agreement"] == "2/3"
    assert next(f for f in data["decision"]["findings"] if f["constraint"] == "C2")["agreement"] == "3/3"
    assert "❌ violated (blocker) 2/3" in comment and "(3 samples)" in comment
    assert [a["sample"] for a in data["stages"][0]["attempts"]] == [1, 2, 3]


def test_samples_below_min_agreement_are_inconclusive(gemini_key, tmp_path):
    replies = iter([flaw(C1_BLOCKER), flaw(C1_BLOCKER), flaw(RESPECTED)])
    text = RULEBOOK + "samples: 3\ngate:\n  min_agreement: 1.0\n"
    code, data, _, _ = review(tmp_path, serve(lambda req: next(replies)), text)
    assert code == 3 and data["decision"]["verdict"] == "inconclusive"
    assert "samples disagree" in data["stages"][0]["reason"] and "C1: 2/3 violated, 1/3 respected" in data["stages"][0]["reason"]


def test_an_inconclusive_predecessor_makes_its_successor_inconclusive_without_running_it(gemini_key, tmp_path):
    from designsim.testing import error_reply

    text = RULEBOOK.replace("scorecard:", """  - id: idem
    title: Idempotency
    focus: What happens when it runs twice?
    format: flaw
    depends_on: [state]
scorecard:""")

    def handler(req):
        if not req.wants_json and stage_title(req) == "State management":
            return error_reply(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        return serve(flaw(RESPECTED))(req)

    code, data, comment, server = review(tmp_path, handler, text)
    state, idem = data["stages"]
    assert state["outcome"] == "inconclusive" and idem["outcome"] == "skipped"
    assert idem["attempts"] == [] and idem["reason"] == "not run: state inconclusive"
    assert not any(stage_title(r) == "Idempotency" for r in server.generate_requests())  # never ran on empty input
    assert code == 3 and data["decision"]["verdict"] == "inconclusive"
    assert "1 inconclusive, 1 skipped" in data["summary"]


def test_the_last_of_two_decision_matrices_is_graded_and_reported(gemini_key, tmp_path):
    text = RULEBOOK.replace("    format: flaw\n", "    format: pathways\n")
    draft = ("### Draft matrix\n| Criteria | Alpha | Omega |\n| --- | --- | --- |\n| C1 | ok | ok |\n"
             "| **Verdict** | **Recommended** | **Recommended** |\n\n")
    output = pathways_output("state", RESPECTED, file="jit_generation.py").replace("### Step 4: Decision Matrix\n", "### Step 4: Decision Matrix\n" + draft)
    code, data, comment, _ = review(tmp_path, serve(output), text)
    assert code == 0
    matrix = data["stages"][0]["matrix"]
    assert matrix["pathways"] == ["The change as written", "Beta", "Gamma"] and matrix["recommended"] == "Beta"
    check = next(c for c in data["stages"][0]["attempts"][0]["scorecard"]["checks"] if c["name"] == "decision_matrix")
    assert check["passed"] and "recommends 'Beta'" in check["detail"]
    assert "| Criteria | The change as written | Beta | Gamma |" in comment and "Omega" not in comment.split("<details>")[0]


def test_a_pathways_matrix_must_carry_the_change_as_written(gemini_key, tmp_path):
    text = RULEBOOK.replace("    format: flaw\n", "    format: pathways\n")
    output = pathways_output("state", RESPECTED, file="jit_generation.py").replace("The change as written", "Alpha")
    code, data, _, _ = review(tmp_path, serve(output), text)
    assert code == 3
    check = next(c for c in data["stages"][0]["attempts"][0]["scorecard"]["checks"] if c["name"] == "matrix_includes_change")
    assert not check["passed"]


# ------------------------------------------------------------------ the policy


def test_on_failed_warn_is_a_visible_warning_never_a_pass(gemini_key, tmp_path):
    code, data, comment, _ = review(tmp_path, serve(flaw(C1_BLOCKER)), RULEBOOK + "policy:\n  on_failed: warn\n")
    assert code == 0 and data["decision"]["verdict"] == "warn" and data["verdict"] == "neutral"
    head = comment.split("\n")
    assert "**WARN**" in head[2] and "⚠️" in head[2] and "✅" not in "\n".join(head[:6])
    assert "warning, not blocking: C1 violated (blocker)" in comment


def test_an_advisory_constraint_is_reported_but_never_fails(gemini_key, tmp_path):
    text = RULEBOOK.replace("    text: goal_map.json must never be left half-written.\n",
                            "    text: goal_map.json must never be left half-written.\n    blocking: false\n")
    code, data, _, _ = review(tmp_path, serve(flaw(C1_BLOCKER)), text)
    assert code == 0 and data["decision"]["verdict"] == "pass"
    assert "reported: C1 blocker" in data["decision"]["reason"]


@pytest.mark.parametrize("fail_on, severity, expected", [
    ("blocker", "major", 0), ("major", "major", 1), ("major", "minor", 0), ("minor", "minor", 1),
])
def test_fail_on_sets_the_lowest_failing_severity(gemini_key, tmp_path, fail_on, severity, expected):
    rows = {"C1": ("violated", severity), "C2": ("respected", "none")}
    code, _, _, _ = review(tmp_path, serve(flaw(rows)), RULEBOOK + f"gate:\n  fail_on: {fail_on}\n")
    assert code == expected


def test_a_synthesis_gives_the_final_word_over_its_chain(gemini_key, tmp_path):
    text = RULEBOOK + "synthesis:\n  focus: Integrate.\n"

    def output(req):
        if stage_title(req) == "Synthesis":
            return pathways_output("syn", RESPECTED, file="jit_generation.py")
        return flaw(C1_BLOCKER)

    code, data, comment, _ = review(tmp_path, serve(output), text)
    assert code == 0 and data["decision"]["verdict"] == "pass"
    # the stage's finding is still reported, beside the synthesis's
    assert {(f["stage"], f["constraint"], f["verdict"]) for f in data["decision"]["findings"]} >= {
        ("synthesis", "C1", "respected"), ("state", "C1", "violated")}
    assert "| C1 | ❌ violated (blocker) | ✅ respected |" in comment


# ------------------------------------------------------------------ grade and review agree


def test_grade_with_the_diff_grades_exactly_as_a_review_stage(gemini_key, tmp_path, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(RULEBOOK)
    out = tmp_path / "out.md"
    # an analysis copied from the diff: review and grade must both see the copy
    copied = flaw(C1_BLOCKER).replace(
        "Marker state: a crash between saving the file and rewriting the map leaves goal_map.json pointing at nothing, "
        "and the next run fails in a confusing way.",
        '    with open(path, "w") as f:  # truncates goal_map.json before writing\n'
        '    name = f"autogen_{component_type}_for_{goal}.txt"\n')
    out.write_text(copied)
    assert main(["grade", str(out), "--format", "flaw", "--rulebook", str(rb), "--diff", str(DIFF), "--no-llm", "--json"]) == 1
    graded = json.loads(capsys.readouterr().out)
    code, data, _, _ = review(tmp_path, serve(copied))
    reviewed = data["stages"][0]["attempts"][0]["scorecard"]
    assert [(c["name"], c["passed"], c["detail"]) for c in graded["checks"]] == [
        (c["name"], c["passed"], c["detail"]) for c in reviewed["checks"]]
    assert next(c for c in graded["checks"] if c["name"] == "analysis_not_restated")["detail"].startswith("100%")
    # a good output: grade --json carries the parsed verdict on the change
    out.write_text(flaw(C1_BLOCKER))
    assert main(["grade", str(out), "--format", "flaw", "--rulebook", str(rb), "--diff", str(DIFF), "--no-llm", "--json"]) == 0
    graded = json.loads(capsys.readouterr().out)
    assert graded["verdict_required"] is True
    assert graded["change_verdict"][0] == {"constraint": "C1", "verdict": "violated", "severity": "blocker",
                                           "evidence": "jit_generation.py: the write path as the diff changes it"}


def test_grade_without_a_diff_does_not_require_the_verdict(capsys, tmp_path):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(RULEBOOK)
    out = tmp_path / "paper.md"
    out.write_text(flaw(verdict=False))
    assert main(["grade", str(out), "--format", "flaw", "--rulebook", str(rb), "--no-llm"]) == 0
    text = capsys.readouterr().out
    assert "change_verdict" not in text and "CHECKS PASSED (no judge: --no-llm, not a full grade)" in text
    # the same length limit as a review (the rulebook's min_chars; 400 by default), not a looser one
    assert main(["grade", str(out), "--format", "flaw", "--no-llm"]) == 1
    assert "(allowed 400–60000)" in capsys.readouterr().out


def test_verdict_table_helper_matches_the_blueprint():
    assert verdict_table(RESPECTED, "a.py").startswith("### Verdict on this change\n| Constraint | Verdict | Severity | Evidence |")
