"""Fail-closed gaps (issue 11, "Why" 6 and 9): hostile YAML is exit 2 with
file:line, never a traceback; lint warns on a neutral policy; lint stays linear."""

from __future__ import annotations

import pytest

from designsim.cli import main
from designsim.kit.lint import _StageMentions, lint_text
from designsim.prompts import PromptLibrary
from designsim.rulebook import YAML_MAX_CHARS, YAML_MAX_DEPTH, RulebookError, parse_rulebook

BASE = "version: 1\nname: y\nscenario: s\ndirective: Simulate the change.\nstages:\n  - id: a\n    title: A\n    focus: f\n"
HOSTILE = {
    "flow_nesting_100k_deep": (BASE + "x: " + "[" * 100_000 + "]" * 100_000 + "\n", 9, "levels deep"),
    "block_nesting_deep": (BASE + "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, YAML_MAX_DEPTH + 5)), None, "levels deep"),
    "integer_of_5000_digits": (BASE + "max_output_tokens: " + "9" * 5000 + "\n", 9, "a number of 5,000 characters"),
    "billion_laughs": ("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9)) + BASE.replace("version: 1\n", ""),
        None, "aliases are expanded"),
    "over_the_size_limit": (BASE + "scenario_notes: |\n" + "  x\n" * (YAML_MAX_CHARS // 4 + 10), 1, "designsim reads at most"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_rulebook_is_exit_2_with_file_and_line(name, tmp_path, capsys):
    text, line, message = HOSTILE[name]
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, "r.yml")
    issue = info.value.issues[0]
    assert message in issue.message and (line is None or issue.line == line)
    rb = tmp_path / ".simulation.yml"
    rb.write_text(text)
    for argv in (["lint", str(rb)], ["review", "--rulebook", str(rb), "--diff", str(rb), "--provider", "replay", "--cassette", str(rb)]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and f"{rb}:" in captured.out + captured.err


def test_hostile_goal_map_is_a_config_error(tmp_path):
    (tmp_path / "goal_map.yml").write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(RulebookError, match="levels deep"):
        PromptLibrary(tmp_path).goal_map()


def test_lint_warns_loudly_on_a_neutral_inconclusive_policy():
    report = lint_text(BASE + "policy:\n  on_inconclusive: neutral\n", "r.yml")
    (warning,) = [a for a in report.advice if a.code == "neutral-on-inconclusive"]
    assert warning.message.startswith("WARNING") and "SUCCESS" in warning.message and warning.line == 10
    assert "neutral-on-inconclusive" not in {a.code for a in lint_text(BASE, "r.yml").advice}


def test_lint_of_a_50_mb_rulebook_is_refused_before_it_is_parsed():
    report = lint_text("scenario: |\n" + "  x\n" * (50 * 1024 * 1024 // 4), "huge.yml")
    assert report.exit_code == 2 and "designsim reads at most" in report.errors[0].message


def test_stage_mentions_index_matches_ids_and_titles_like_the_old_scan():
    text = BASE.replace("  - id: a\n    title: A\n    focus: f\n", "") + "".join([
        "  - id: recovery\n    title: Recovery agent\n    focus: f\n",
        "  - id: naming-v2\n    title: Names\n    focus: f\n",
        "  - id: user\n    title: U\n    focus: Use the recovery-output and the Recovery Agent's baseline, not naming-v2x or unrecovery.\n",
    ])
    rb = parse_rulebook(text, "r.yml")
    index = _StageMentions(rb)
    assert index.mentioned(rb.stages[2]) == ["recovery"]
    assert not index.is_ancestor("recovery", "user")


def test_stage_mentions_index_is_linear_in_size():
    """A size bound, not a timing: the index holds one entry per stage id and
    title, and looks a focus up by its words (no per-stage pattern)."""
    n = 3000
    text = BASE.replace("  - id: a\n    title: A\n    focus: f\n", "") + "".join(
        f"  - id: s{i}\n    title: Stage {i}\n    focus: the baseline of s{max(0, i - 1)}\n" + (f"    depends_on: [s{i - 1}]\n" if i else "")
        for i in range(n))
    rb = parse_rulebook(text, "r.yml")
    index = _StageMentions(rb)
    assert len(index.ids) == n and len(index.titles) == n and index.longest == 2
    assert index.mentioned(rb.stages[-1]) == [f"s{n - 2}"] and index.is_ancestor("s0", f"s{n - 1}")


WORKFLOW = """\
name: gate
on:
  pull_request:
jobs:
  simulate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: owner/designsim@0123456789abcdef0123456789abcdef01234567
        with:
          gemini-api-key: ${{ secrets.GEMINI_API_KEY }}
          status: check-run
"""


def test_lint_warns_on_check_run_status_when_fork_pull_requests_run_the_workflow(tmp_path, capsys):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    workflow = tmp_path / ".github" / "workflows" / "designsim.yml"
    workflow.write_text(WORKFLOW)
    (tmp_path / ".simulation.yml").write_text(BASE)
    assert main(["lint", str(tmp_path / ".simulation.yml")]) == 0
    out = capsys.readouterr().out
    assert f"{workflow}:12:19: jobs.simulate.steps.1.with.status: WARNING: status: check-run" in out and "fork-check-run" in out
    workflow.write_text(WORKFLOW.replace("status: check-run", "status: commit-status"))
    main(["lint", str(tmp_path / ".simulation.yml")])
    assert "fork-check-run" not in capsys.readouterr().out
    workflow.write_text(WORKFLOW.replace("  pull_request:\n", "  workflow_dispatch:\n"))
    main(["lint", str(tmp_path / ".simulation.yml")])
    assert "fork-check-run" not in capsys.readouterr().out
