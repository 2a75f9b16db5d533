"""designsim test: the shipped golden sets pass; a flipped label fails; bad input is exit 2."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from kit_helpers import cli, EXAMPLES  # noqa: F401  (cli is a fixture)

from designsim.scorecard import default_criteria

CASES = ["batch-recovery", "jit-generation", "jit-generation-fixed"]


def _copy(case: str, tmp_path):
    dest = tmp_path / case
    shutil.copytree(EXAMPLES / case, dest)
    return dest / ".simulation.yml", dest / ".designsim" / "golden"


@pytest.mark.parametrize("case", CASES)
def test_shipped_golden_sets_pass(cli, case):
    code, out, _ = cli("test", "--json", EXAMPLES / case / ".simulation.yml")
    data = json.loads(out)
    assert code == 0, [r for r in data["results"] if not r["matched"]]
    assert data["mismatches"] == 0 and data["judge"].startswith("off")
    expects = {r["expect"] for r in data["results"]}
    assert expects == {"pass", "fail"}, "a golden set needs known-good and known-bad outputs"
    assert all(r["trust"] == {"pass": "trusted", "fail": "untrusted"}[r["expect"]] for r in data["results"])
    # an untrusted output never decides the change; a trusted one decides by its verdict
    assert all(r["decision"] == "inconclusive" for r in data["results"] if r["actual"] != "pass")


def _results(cli, case: str) -> dict[str, dict]:
    code, out, _ = cli("test", "--json", EXAMPLES / case / ".simulation.yml")
    assert code == 0
    return {r["name"]: r for r in json.loads(out)["results"]}


def test_trust_and_decision_are_separate_in_the_jit_golden_set(cli):
    """A sound simulation that finds a blocker is trusted and fails the change; a
    verdict table that drops a row or names an unknown id makes the output untrusted."""
    results = _results(cli, "jit-generation")
    for name in ("state_good", "naming_good", "idempotency_good", "synthesis_good"):
        assert (results[name]["actual"], results[name]["decision"], results[name]["expected_decision"]) == ("pass", "fail", "fail"), name
    for name in ("state_missing_row", "state_unknown_id"):
        r = results[name]
        assert r["trust"] == "untrusted" and r["actual"] == "fail" and r["decision"] == "inconclusive", name
        assert r["failures"], name


def test_the_fixed_golden_set_passes_the_change(cli):
    results = _results(cli, "jit-generation-fixed")
    for name in ("state_all_respected", "synthesis_all_respected"):
        assert (results[name]["actual"], results[name]["decision"]) == ("pass", "pass"), name
    outside = results["state_evidence_outside_diff"]
    assert outside["actual"] == "fail" and outside["decision"] == "inconclusive" and outside["failures"]


def test_golden_sets_label_every_kind_of_decision():
    decisions, trusts = set(), set()
    for case in CASES:
        for label in (EXAMPLES / case / ".designsim" / "golden").glob("*.yml"):
            data = yaml.safe_load(label.read_text())
            decisions.add(data.get("decision"))
            trusts.add(data.get("trust"))
    assert {"pass", "fail", "inconclusive"} <= decisions and {"trusted", "untrusted"} <= trusts


@pytest.mark.parametrize("case, name, flipped", [("jit-generation", "state_good", "pass"),
                                                 ("jit-generation-fixed", "state_all_respected", "fail")])
def test_a_flipped_decision_fails_the_suite(cli, tmp_path, case, name, flipped):
    rulebook, golden = _copy(case, tmp_path)
    label = golden / f"{name}.yml"
    data = yaml.safe_load(label.read_text())
    data["decision"] = flipped
    label.write_text(yaml.safe_dump(data))
    code, out, _ = cli("test", "--json", rulebook)
    result = next(r for r in json.loads(out)["results"] if r["name"] == name)
    assert code == 1 and result["actual"] == "pass" and not result["matched"]
    assert result["detail"].startswith(f"expected decision {flipped}, got ")


def test_a_flipped_trust_label_fails_the_suite(cli, tmp_path):
    rulebook, golden = _copy("jit-generation", tmp_path)
    label = golden / "state_missing_row.yml"
    data = yaml.safe_load(label.read_text())
    data.update(trust="trusted", decision="fail")
    data.pop("failing")
    label.write_text(yaml.safe_dump(data))
    code, out, _ = cli("test", rulebook)
    assert code == 1 and "MISMATCH: state_missing_row" in out


def test_golden_sets_cover_the_known_bad_kinds():
    failing = set()
    for case in CASES:
        for label in (EXAMPLES / case / ".designsim" / "golden").glob("*.yml"):
            failing |= set(yaml.safe_load(label.read_text()).get("failing", []))
    assert {"sections", "decision_matrix", "analysis_not_restated", "no_grader_directives", "length",
            "code_fences_closed", "constraints_addressed", "revised_algorithm_code", "anti_goal",
            "change_verdict", "matrix_includes_change"} <= failing


def test_appendix_c_is_labelled_with_the_grade_it_really_gets(cli):
    code, out, _ = cli("test", "--json", EXAMPLES / "batch-recovery" / ".simulation.yml")
    by_name = {r["name"]: r for r in json.loads(out)["results"]}
    # the paper's own answer is sound, but it was not written as a review of a change
    assert by_name["appendix_c"]["actual"] == "fail" and by_name["appendix_c"]["decision"] == "inconclusive"
    assert sorted(by_name["appendix_c"]["failures"]) == ["change_verdict", "matrix_includes_change"]
    # the same answer written as a review stage of change.diff (the paper's recover.py) passes the change
    assert (by_name["appendix_c_with_ids"]["actual"], by_name["appendix_c_with_ids"]["decision"]) == ("pass", "pass")
    assert "constraints_addressed" in by_name["constraint_never_named"]["failures"]
    original = (EXAMPLES / "batch-recovery" / ".designsim" / "golden" / "appendix_c.md").read_bytes()
    assert original == (EXAMPLES.parent / "tests" / "fixtures" / "appendix_c_response.md").read_bytes()


@pytest.mark.parametrize("case, name", [("batch-recovery", "appendix_c_with_ids"), ("jit-generation", "state_restated")])
def test_a_flipped_label_fails_the_suite(cli, tmp_path, case, name):
    rulebook, golden = _copy(case, tmp_path)
    label = golden / f"{name}.yml"
    data = yaml.safe_load(label.read_text())
    if "trust" in data:
        data["trust"] = "untrusted" if data["trust"] == "trusted" else "trusted"
    else:
        data["expect"] = "fail" if data["expect"] == "pass" else "pass"
    data.pop("failing", None)
    data.pop("decision", None)
    label.write_text(yaml.safe_dump(data))
    code, out, _ = cli("test", rulebook)
    assert code == 1
    assert f"MISMATCH: {name}" in out


def test_failing_for_the_wrong_reason_is_a_mismatch(cli, tmp_path):
    rulebook, golden = _copy("batch-recovery", tmp_path)
    label = golden / "two_recommended.yml"
    label.write_text(label.read_text().replace("failing: [decision_matrix]", "failing: [sections]"))
    code, out, _ = cli("test", "--json", rulebook)
    result = next(r for r in json.loads(out)["results"] if r["name"] == "two_recommended")
    assert code == 1 and result["actual"] == "fail" and not result["matched"]
    assert "expected to fail on sections" in result["detail"]


def test_restated_analysis_uses_the_examples_diff_when_present(cli, tmp_path):
    """Without an `evidence:` key the evidence is <rulebook dir>/change.diff."""
    rulebook, golden = _copy("jit-generation", tmp_path)
    # the example's own diff plus the one state_restated copies from (verdicts must cite files of the diff)
    change = rulebook.parent / "change.diff"
    change.write_bytes(change.read_bytes() + (golden / "evidence" / "orchestrator_jit.diff").read_bytes())
    label = golden / "state_restated.yml"
    label.write_text("\n".join(l for l in label.read_text().splitlines() if not l.startswith("evidence:")) + "\n")
    assert cli("test", rulebook)[0] == 0
    (rulebook.parent / "change.diff").write_text("")  # no evidence to copy from: the restatement is no longer detectable
    code, out, _ = cli("test", "--json", rulebook)
    result = next(r for r in json.loads(out)["results"] if r["name"] == "state_restated")
    assert code == 1 and result["actual"] == "pass"


def _judge_reply(output: str, verdict: str) -> str:
    """A reply pinned to the criterion ids (the white paper's six plus "the verdict follows")."""
    quote = next(line.strip() for line in output.splitlines() if len(line.strip()) > 40 and "|" not in line)[:60]
    return json.dumps({c.id: {"evidence_quote": quote, "reasoning": "as quoted", "verdict": verdict}
                       for c in default_criteria("pathways", change_verdict=True)})


@pytest.mark.parametrize("verdict, expected_code", [("PASS", 0), ("FAIL", 1)])
def test_the_judge_runs_from_a_cassette(cli, tmp_path, verdict, expected_code):
    rulebook, golden = _copy("batch-recovery", tmp_path)
    # only the output that passes the checks reaches the judge (appendix_c has no verdict on change.diff)
    judged = ["appendix_c_with_ids"]
    cassette = tmp_path / "judge.json"
    cassette.write_text(json.dumps({"version": 1, "interactions": [
        {"label": "judge:recovery", "text": _judge_reply((golden / f"{name}.md").read_text(), verdict)} for name in judged]}))
    code, out, _ = cli("test", "--json", rulebook, "--cassette", cassette)
    data = json.loads(out)
    assert code == expected_code and data["judge"] == "replay"
    for name in judged:
        assert next(r for r in data["results"] if r["name"] == name)["actual"] == verdict.lower()
    assert all(r["matched"] for r in data["results"] if r["name"] not in judged)


def test_front_matter_labels(cli, tmp_path):
    rulebook, golden = _copy("batch-recovery", tmp_path)
    for f in golden.iterdir():
        if f.is_file():
            f.unlink()
    body = (EXAMPLES / "batch-recovery" / ".designsim" / "golden" / "two_recommended.md").read_text()
    (golden / "doubled.md").write_text("---\nstage: recovery\nexpect: fail\nfailing: [decision_matrix]\n---\n" + body)
    code, out, _ = cli("test", "--json", rulebook)
    assert code == 0 and json.loads(out)["results"][0]["name"] == "doubled"


@pytest.mark.parametrize("edit, message", [
    (lambda g: (g / "empty.yml").write_text("stage: nowhere\nexpect: fail\n"), "unknown stage 'nowhere'"),
    (lambda g: (g / "empty.yml").unlink(), "no label"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\nexpect: maybe\n"), "bad label"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\nexpect: fail\nevidence: nope.diff\n"), "not found"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\nexpect: pass\nfailing: [length]\n"), "makes no sense"),
    (lambda g: (g / "empty.yml").write_text("stage: [\n"), "not valid YAML"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\n"), "give the expected grade"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\nexpect: fail\ntrust: trusted\n"), "contradicts"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\ntrust: untrusted\ndecision: fail\n"), "cannot decide the change"),
    (lambda g: (g / "empty.yml").write_text("stage: recovery\ntrust: trusted\ndecision: maybe\n"), "bad label"),
])
def test_bad_golden_input_is_exit_2(cli, tmp_path, edit, message):
    rulebook, golden = _copy("batch-recovery", tmp_path)
    edit(golden)
    code, _, err = cli("test", rulebook)
    assert code == 2 and message in err


def test_missing_or_empty_golden_dir_is_exit_2(cli, tmp_path):
    rulebook, golden = _copy("batch-recovery", tmp_path)
    assert cli("test", rulebook, "--golden", tmp_path / "none")[0] == 2
    (tmp_path / "emptydir").mkdir()
    code, _, err = cli("test", rulebook, "--golden", tmp_path / "emptydir")
    assert code == 2 and "no golden outputs" in err


def test_forcing_the_judge_without_a_key_is_exit_2(cli):
    code, _, err = cli("test", EXAMPLES / "batch-recovery" / ".simulation.yml", "--judge")
    assert code == 2 and "GEMINI_API_KEY" in err
