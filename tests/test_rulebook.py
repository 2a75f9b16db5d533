"""Rulebook schema and its located errors (file:line:column, field path, did-you-mean)."""

from __future__ import annotations

import pytest

from designsim.resources import examples_dir
from designsim.rulebook import RulebookError, load_rulebook, parse_rulebook

BASE = "scenario: s\ndirective: d\nstages:\n  - id: a\n    title: A\n    focus: f\n"


def issues(text: str) -> list[str]:
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, "r.yml")
    return [str(i) for i in info.value.issues]


def test_examples_load():
    for path in examples_dir().glob("*/.simulation.yml"):
        rb = load_rulebook(path)
        assert rb.stages and rb.name


def test_jit_example_is_the_white_papers_three_chained_stages_and_synthesis():
    rb = load_rulebook(examples_dir() / "jit-generation/.simulation.yml")
    assert [s.id for s in rb.stages] == ["state", "naming", "idempotency"]
    assert [s.depends_on for s in rb.stages] == [[], ["state"], ["naming"]]
    assert rb.synthesis is not None and rb.output.format == "flaw"


def test_unknown_key_says_what_it_might_have_meant():
    assert issues(BASE + "scenrio: x\n") == ["r.yml:7:1: scenrio: unknown key 'scenrio' (did you mean 'scenario'?)"]
    assert issues(BASE.replace("    title: A", "    titel: A")) == [
        "r.yml:4:5: stages.0.title: required field is missing",
        "r.yml:5:5: stages.0.titel: unknown key 'titel' (did you mean 'title'?)",
    ]


def test_wrong_type_and_literal_point_at_the_value():
    assert issues(BASE + "temperature: hot\n") == [
        "r.yml:7:14: temperature: Input should be a valid number, unable to parse string as a number, got str 'hot'"]
    assert issues(BASE + "output: {format: flow}\n") == [
        "r.yml:7:18: output.format: expected 'pathways', 'flaw' or 'custom', got 'flow'"]


def test_dependency_errors_are_located():
    text = BASE + "  - id: b\n    title: B\n    focus: f\n    depends_on: [a, c]\n"
    assert issues(text) == ["r.yml:10:21: stages.1.depends_on.1: unknown stage 'c'"]
    cyc = BASE.replace("    focus: f\n", "    focus: f\n    depends_on: [b]\n", 1) + "  - id: b\n    title: B\n    focus: f\n    depends_on: [a]\n"
    assert "cycle: a -> b -> a" in issues(cyc)[0]


def test_yaml_syntax_error_and_duplicates():
    assert issues("a: [1, 2")[0].startswith("r.yml:1:9: not valid YAML")
    assert issues(BASE + "scenario: again\n")[0] == ("r.yml:7:1: scenario: duplicate key 'scenario' (YAML keeps only the last): "
                                                  "already set at line 1; delete or rename one of them")
    assert issues("") == ["r.yml:1:1: expected a mapping of rulebook fields, got an empty file"]


def test_component_persona_and_custom_blueprint():
    rb = parse_rulebook(BASE + "persona: {component: senior_systems_architect}\n")
    assert rb.persona.component == "senior_systems_architect"
    assert "sections" in issues(BASE + "output: custom\n")[0]
    bad_regex = issues(BASE + "anti_goals:\n  - text: t\n    pattern: '(unclosed'\n")
    assert bad_regex[0].startswith("r.yml:9:14: anti_goals.0.pattern: not a valid regular expression")


def test_missing_file_is_a_located_config_error(tmp_path):
    with pytest.raises(RulebookError) as info:
        load_rulebook(tmp_path / "nope.yml")
    assert info.value.exit_code == 2 and "file not found" in str(info.value)


def test_nested_aliases_do_not_explode():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]" for i in range(1, 9)]  # 10^9 leaves if expanded
    with pytest.raises(RulebookError) as info:
        parse_rulebook("\n".join(lines) + "\n", "bomb.yml")
    assert "values once aliases are expanded" in str(info.value)  # refused before anything is built (YAML_MAX_NODES)


def test_repository_goal_map_adds_to_the_bundled_one(tmp_path):
    from designsim.prompts import PromptLibrary

    (tmp_path / "goal_map.yml").write_text("triage: {persona: senior_systems_architect, constraints: []}\n")
    lib = PromptLibrary(tmp_path)
    assert lib.goal_parts("TRIAGE")["persona"] == "senior_systems_architect"
    assert lib.goal_parts("REVIEW")["persona"]  # bundled goals stay available
