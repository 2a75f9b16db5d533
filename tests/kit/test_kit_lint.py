"""designsim lint: located errors, prompt sizes, advice, and no crash on any YAML."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit_helpers import cli, EXAMPLES, GOOD_RULEBOOK  # noqa: F401  (cli is a fixture)

from designsim.kit.lint import CONTEXT_WINDOWS, context_window, lint_text
from designsim.prompts import PromptLibrary
from designsim.rulebook import parse_rulebook
from designsim.simulation import resolve_plan


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


# ------------------------------------------------------------------ clean rulebooks


@pytest.mark.parametrize("case", ["jit-generation", "batch-recovery"])
def test_bundled_examples_lint_clean_with_no_advice(cli, case):
    code, out, _ = cli("lint", "--json", EXAMPLES / case / ".simulation.yml")
    data = json.loads(out)
    assert code == 0
    assert data["errors"] == [] and data["advice"] == []
    assert {s["id"] for s in data["stages"]} >= {"recovery"} if case == "batch-recovery" else {"state", "naming", "idempotency", "synthesis"}
    for stage in data["stages"]:
        assert stage["context_window"] == 1_048_576
        assert stage["prompt_tokens"] > stage["evidence_tokens"] > 0


def test_good_rulebook_has_no_findings_and_the_json_shape():
    report = lint_text(GOOD_RULEBOOK, "good.yml")
    assert report.errors == [] and report.advice == [], [str(f) for f in report.advice]
    data = report.as_dict()
    assert set(data) == {"errors", "advice", "stages"}
    assert [s["id"] for s in data["stages"]] == ["recovery"]
    assert {"id", "prompt_tokens", "context_window"} <= set(data["stages"][0])


def test_prompt_tokens_count_the_evidence_budget_and_earlier_outputs():
    report = lint_text((EXAMPLES / "jit-generation" / ".simulation.yml").read_text(), "jit.yml")
    by_id = {s.id: s for s in report.stages}
    assert by_id["state"].earlier_output_tokens == 0
    assert by_id["naming"].earlier_output_tokens == 8192  # one predecessor × max_output_tokens
    assert by_id["synthesis"].earlier_output_tokens == 3 * 8192
    assert by_id["state"].evidence_tokens == 12_000
    assert by_id["synthesis"].prompt_tokens > by_id["naming"].prompt_tokens > by_id["state"].prompt_tokens


def test_every_bundled_goal_resolves():
    library = PromptLibrary()
    goals = yaml.safe_load((library.dirs[-1] / "goal_map.yml").read_text())
    assert {"AUDIT", "DEBUG", "DESIGN", "REVIEW", "MIGRATE"} <= set(goals)
    for goal in goals:
        rb = parse_rulebook(GOOD_RULEBOOK + f"goal: {goal}\n")
        plan = resolve_plan(rb, "", library)
        assert plan.stages[0].persona
        report = lint_text(GOOD_RULEBOOK + f"goal: {goal}\n", "g.yml")
        assert report.errors == [], goal


# ------------------------------------------------------------------ errors, located


def test_bad_yaml_is_located(cli, tmp_path):
    path = tmp_path / "r.yml"
    path.write_text(GOOD_RULEBOOK + "model: [unclosed\n")
    code, out, _ = cli("lint", "--json", path)
    errors = json.loads(out)["errors"]
    assert code == 2
    assert errors[0]["line"] == len(GOOD_RULEBOOK.splitlines()) + 2
    assert "not valid YAML" in errors[0]["message"]


def test_unknown_key_names_the_line_and_a_suggestion():
    text = GOOD_RULEBOOK.replace("success_criteria:", "sucess_criteria:")
    report = lint_text(text, "r.yml")
    (error,) = report.errors
    assert error.line == _line_of(text, "sucess_criteria:") and error.column == 1
    assert "unknown key 'sucess_criteria'" in error.message and "success_criteria" in error.message


def test_wrong_type_points_at_the_value():
    text = GOOD_RULEBOOK + "temperature: hot\n"
    (error,) = lint_text(text, "r.yml").errors
    assert (error.line, error.field) == (_line_of(text, "temperature: hot"), "temperature")
    assert "hot" in error.message


def test_missing_persona_component_is_an_error_at_its_line(cli, tmp_path):
    text = GOOD_RULEBOOK.replace("persona: You are a senior", "persona: {component: nonexistent_person}\nx_: You are a senior")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("x_:")) + "\n"
    path = tmp_path / "r.yml"
    path.write_text(text)
    code, out, _ = cli("lint", "--json", path)
    (error,) = json.loads(out)["errors"]
    assert code == 2
    assert error["code"] == "missing-component" and error["line"] == _line_of(text, "nonexistent_person")
    assert "designsim components generate persona nonexistent_person" in error["message"]


def test_unknown_goal_and_missing_goal_parts(tmp_path):
    (error,) = lint_text(GOOD_RULEBOOK + "goal: JUGGLE\n", "r.yml").errors
    assert error.code == "unknown-goal" and error.line == len(GOOD_RULEBOOK.splitlines()) + 1
    user = tmp_path / "prompts"
    user.mkdir()
    (user / "goal_map.yml").write_text("DEBUG:\n  persona: site_reliability_engineer\n  protocol: hypothesis_ledger\n  constraints: [no_core_refactor]\n")
    report = lint_text(GOOD_RULEBOOK + "goal: DEBUG\n", "r.yml", library=PromptLibrary(user))
    (error,) = report.errors
    assert error.code == "missing-component" and "protocol component 'hypothesis_ledger'" in error.message


def test_template_syntax_error_in_user_prompts_is_located(tmp_path):
    user = tmp_path / "prompts"
    user.mkdir()
    (user / "simulation.md.j2").write_text("{% include \"_shared_prefix.md.j2\" %}\n\n# Assignment\n{% if %}\n")
    report = lint_text(GOOD_RULEBOOK, "r.yml", library=PromptLibrary(user))
    assert report.errors, "a broken template must be an error"
    error = report.errors[0]
    assert error.code == "template" and error.file.endswith("simulation.md.j2") and error.line == 4
    assert "syntax" in error.message


def test_template_render_error_is_located(tmp_path):
    user = tmp_path / "prompts"
    user.mkdir()
    (user / "judge.md.j2").write_text("line one\nline two\n{{ no_such_variable.attribute }}\n")
    report = lint_text(GOOD_RULEBOOK, "r.yml", library=PromptLibrary(user))
    (error,) = report.errors
    assert error.file.endswith("judge.md.j2") and error.line == 3
    assert "no_such_variable" in error.message


def test_huge_scenario_exceeds_the_window_and_points_at_it():
    big = "word " * 1_100_000  # ≈ 1.37 M tokens
    text = GOOD_RULEBOOK.replace("scenario: |\n", f"scenario: |\n  {big}\n", 1)
    report = lint_text(text, "r.yml")
    (error,) = [e for e in report.errors if e.code == "context-window"]
    assert error.field == "scenario" and error.line == _line_of(text, "scenario:")
    assert "exceeds gemini-3.8-flash's context window of 1,048,576" in error.message
    assert report.exit_code == 2


def test_evidence_budget_near_the_window_is_an_error_at_max_tokens():
    text = GOOD_RULEBOOK + "evidence:\n  max_tokens: 1048000\n"
    (error,) = lint_text(text, "r.yml").errors
    assert error.code == "context-window" and error.field == "evidence.max_tokens"
    assert error.line == _line_of(text, "max_tokens:")


def test_small_context_window_override(cli, tmp_path):
    path = tmp_path / "r.yml"
    path.write_text(GOOD_RULEBOOK)
    code, out, _ = cli("lint", "--context-window", "30000", path)
    assert code == 2 and "exceeds" in out and "30,000" in out
    assert cli("lint", "--context-window", "400000", path)[0] == 0


def test_half_the_window_is_advice_and_unknown_models_are_assumed():
    text = GOOD_RULEBOOK + "evidence:\n  max_tokens: 600000\nmodel: my-local-model\n"
    report = lint_text(text, "r.yml")
    assert report.exit_code == 0
    assert {"large-prompt", "unknown-model"} <= set(_codes(report.advice))
    unknown = next(a for a in report.advice if a.code == "unknown-model")
    assert "assuming 1,048,576" in unknown.message
    assert context_window("gemini-3.8-flash-001") == (1_048_576, True)
    assert {"gemini-3.8-flash", "gemini-3.7-flash", "gemini-3.5-flash-lite", "gemini-3.1-pro-preview"} <= set(CONTEXT_WINDOWS)


# ------------------------------------------------------------------ advice


def test_missing_guardrails_are_advice_not_errors(cli, tmp_path):
    text = "\n".join(GOOD_RULEBOOK.splitlines()[:8]) + "\nstages:\n  - {id: a, title: A, focus: Model the recovery.}\n"
    path = tmp_path / "r.yml"
    path.write_text(text)
    code, out, _ = cli("lint", "--json", path)
    advice = json.loads(out)["advice"]
    assert code == 0
    assert {"no-constraints", "no-anti-goals", "no-success-criteria"} <= {a["code"] for a in advice}


@pytest.mark.parametrize("directive, flagged", [
    ("Just fix the retry bug in the batch script.", True),
    ("Write the code for a retry wrapper.", True),
    ("Do not ask for a fix; simulate pathways and recommend one.", False),
    ("Model the workflow. Do not just patch the code: design the algorithm.", False),
])
def test_directive_asking_for_a_fix(directive, flagged):
    old = next(line for line in GOOD_RULEBOOK.splitlines() if line.startswith("directive:"))
    text = GOOD_RULEBOOK.replace(old, f"directive: {directive}")
    codes = _codes(lint_text(text, "r.yml").advice)
    assert ("directive-asks-for-fix" in codes) is flagged


def test_stage_asking_several_questions_should_be_split():
    text = GOOD_RULEBOOK.replace("focus: How should overnight failures be detected and re-run without a human copying ids?",
                                 "focus: What fails? Why does it fail? How do we re-run it? Who is told?")
    (advice,) = [a for a in lint_text(text, "r.yml").advice if a.code == "split-stage"]
    assert "4 questions" in advice.message and advice.line == _line_of(text, "What fails?")


def test_stage_building_on_another_output_should_be_chained():
    text = GOOD_RULEBOOK + ("  - id: naming\n    title: Naming\n"
                            "    focus: Use the revised algorithm of the recovery simulation as your baseline and improve its names.\n")
    (advice,) = [a for a in lint_text(text, "r.yml").advice if a.code == "chain-stages"]
    assert "depends_on: [recovery]" in advice.message
    chained = text.replace("    title: Naming\n", "    title: Naming\n    depends_on: [recovery]\n")
    assert "chain-stages" not in _codes(lint_text(chained, "r.yml").advice)


def test_few_pathways_and_judge_off_are_advised():
    text = GOOD_RULEBOOK + "output:\n  min_pathways: 2\nscorecard:\n  judge: false\n"
    codes = _codes(lint_text(text, "r.yml").advice)
    assert "few-pathways" in codes and "judge-off" in codes


def test_human_output_lists_errors_with_locations(cli, tmp_path):
    path = tmp_path / "r.yml"
    path.write_text(GOOD_RULEBOOK.replace("stages:", "stagez:"))
    code, out, _ = cli("lint", path)
    assert code == 2
    assert f"{path}:{_line_of(path.read_text(), 'stagez:')}:1: stagez: unknown key 'stagez'" in out
    assert "invalid" in out.splitlines()[-1]


def test_missing_file_is_exit_2(cli, tmp_path):
    code, out, _ = cli("lint", tmp_path / "nope.yml")
    assert code == 2 and "file not found" in out


# ------------------------------------------------------------------ fuzz

_KEYS = ["version", "name", "goal", "persona", "scenario", "directive", "constraints", "anti_goals", "success_criteria",
         "evidence", "output", "stages", "synthesis", "scorecard", "model", "id", "title", "focus", "depends_on",
         "component", "text", "pattern", "format", "max_tokens", "policy", "required"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**7, 10**7), st.floats(allow_nan=False),
                     st.text(max_size=30), st.sampled_from(["C1", "a", "pathways", "flaw", "custom", "(", "{{ x }}", "[a-z"]))
_values = st.recursive(_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=8)), children, max_size=5)), max_leaves=25)
_documents = st.one_of(
    st.dictionaries(st.sampled_from(_KEYS), _values, max_size=8).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    _values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.text(max_size=200),
    st.builds(lambda cut, junk: GOOD_RULEBOOK[:cut] + junk, st.integers(0, len(GOOD_RULEBOOK)), st.text(max_size=20)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents)
def test_random_yaml_never_crashes_lint(text):
    report = lint_text(text, "fuzz.yml")
    assert report.exit_code in (0, 2)
    for finding in report.errors + report.advice:
        assert finding.line >= 1 and finding.column >= 1 and finding.message
    json.dumps(report.as_dict())


def test_random_yaml_through_the_cli_gives_a_message_not_a_traceback(cli, tmp_path):
    path = tmp_path / "r.yml"
    for text in ["- a\n- b\n", "", "{", "stages: 3\n", "\t:\n", "version: 2\nstages: [{}]\n", "a: &x [*x]\n"]:
        path.write_text(text)
        code, out, err = cli("lint", path)
        assert code == 2 and "Traceback" not in out + err and "error" in out


def test_repository_prompts_beside_the_rulebook_are_used_by_default(cli, tmp_path):
    path = tmp_path / ".simulation.yml"
    path.write_text(GOOD_RULEBOOK.replace("persona: You are a senior Site Reliability Engineer who designs batch "
                                          "pipelines that recover by themselves.", "persona: {component: house_architect}"))
    assert cli("lint", path)[0] == 2
    personas = tmp_path / ".designsim" / "prompts" / "personas"
    personas.mkdir(parents=True)
    (personas / "house_architect.md").write_text("You are our house architect, who has kept this pipeline alive for years.\n")
    code, out, _ = cli("lint", path)
    assert code == 0, out
