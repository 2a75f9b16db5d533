"""designsim init: answers file and interactive pty produce the same rulebook, which
lints clean and a review accepts; a workflow that meets the project's rules; no
overwrite without --force, and a backup with it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import yaml
from kit_helpers import cli, ANSWERS, EXAMPLES  # noqa: F401  (cli is a fixture)

from designsim.kit.lint import lint_file
from designsim.prompts import PromptLibrary
from designsim.review import build_plan
from designsim.rulebook import load_rulebook
from designsim.simulation import run_review_sync
from designsim.testing import FakeProvider

GOOD_OUTPUT = (EXAMPLES / "batch-recovery" / ".designsim" / "golden" / "appendix_c_with_ids.md").read_text(encoding="utf-8")


def _init(cli, tmp_path, *extra):
    return cli("init", "--answers", ANSWERS, "--dir", tmp_path, *extra)


def test_answers_file_makes_a_rulebook_that_lints_clean(cli, tmp_path):
    code, out, err = _init(cli, tmp_path)
    assert code == 0, err
    rulebook = tmp_path / ".simulation.yml"
    assert f"wrote {rulebook}" in out
    report = lint_file(rulebook)
    assert report.errors == [] and report.advice == [], [str(f) for f in report.errors + report.advice]
    rb = load_rulebook(rulebook)
    assert rb.name == "nightly-reprocess"
    assert [c.id for c in rb.constraints] == ["C1", "C2"]
    assert len(rb.anti_goals) == 2 and len(rb.success_criteria) == 2
    assert rb.evidence.max_tokens == 30000 and rb.evidence.focus == ["src/jobs/**"]
    assert [s.id for s in rb.stages] == ["recovering-failed-items", "interrupted-recovery"]
    assert rb.stages[1].depends_on == ["recovering-failed-items"] and rb.synthesis is not None
    assert rb.gate.fail_on == "major" and rb.model == "gemini-3.8-flash"
    assert "temperature" not in yaml.safe_load(rulebook.read_text())  # Gemini 3: leave it at its default
    assert "Today this is done by hand:\n1. SSH into the production server" in rb.scenario
    text = rulebook.read_text()
    assert "# Pain Journal" in text and "# Rulebook step 1" in text  # the worksheets stay visible


def test_the_rulebook_is_accepted_by_a_review(cli, tmp_path):
    assert _init(cli, tmp_path)[0] == 0
    rb = load_rulebook(tmp_path / ".simulation.yml")
    diff = b"diff --git a/src/jobs/rerun.py b/src/jobs/rerun.py\n--- a/src/jobs/rerun.py\n+++ b/src/jobs/rerun.py\n@@ -1 +1,2 @@\n import os\n+import requests\n"
    plan = build_plan(rb, diff, library=PromptLibrary())
    quote = "The recommended solution is **Pathway 1: The Post-Mortem Recovery Agent**."
    # a review of a change compares the change as written with the alternatives and ends with its verdict (issue 8)
    output = GOOD_OUTPUT.replace("The Manual Assist Toolkit", "The change as written") + (
        "\n### Verdict on this change\n| Constraint | Verdict | Severity | Evidence |\n| --- | --- | --- | --- |\n"
        "| C1 | respected | none | src/jobs/rerun.py only adds an import |\n| C2 | respected | none | src/jobs/rerun.py |\n")

    def respond(request):
        if request.label.startswith("stage:"):
            return output
        return {cid: {"evidence_quote": quote, "reasoning": "sound", "verdict": "PASS"} for cid in request.response_json_schema["required"]}

    fake = FakeProvider(respond)
    review = run_review_sync(plan, fake)
    assert review.verdict == "pass", review.summary
    assert [r.label for r in fake.history] == ["stage:recovering-failed-items", "judge:recovering-failed-items",
                                               "stage:interrupted-recovery", "judge:interrupted-recovery",
                                               "stage:synthesis", "judge:synthesis"]
    assert "reprocess_item() API" in fake.history[0].prompt  # the constraints reached the prompt


def test_workflow_follows_the_projects_rules(cli, tmp_path):
    assert _init(cli, tmp_path, "--action", "acme/designsim@v1")[0] == 0
    path = tmp_path / ".github" / "workflows" / "designsim.yml"
    wf = yaml.safe_load(path.read_text())
    assert wf["permissions"] == {}
    job = wf["jobs"]["simulate"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write"}
    assert "concurrency" not in wf  # on the job: a comment must never cancel a review (tests/test_workflows.py)
    assert "pull_request.number" in job["concurrency"]["group"] and job["concurrency"]["cancel-in-progress"] is True
    uses = [s["uses"] for s in job["steps"] if "uses" in s]
    assert "acme/designsim@v1" in uses
    for ref in uses:
        if not ref.startswith("acme/"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned by SHA"
    step = next(s for s in job["steps"] if s.get("uses") == "acme/designsim@v1")
    assert step["with"]["rulebook"] == ".simulation.yml"
    assert step["with"]["gemini-api-key"] == "${{ secrets.GEMINI_API_KEY }}"
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert checker, "check-jsonschema (a test dependency) is not installed"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_workflow_has_the_documented_placeholder(cli, tmp_path):
    code, out, _ = _init(cli, tmp_path)
    text = (tmp_path / ".github" / "workflows" / "designsim.yml").read_text()
    assert code == 0 and "uses: <owner>/designsim@v1" in text and "replace\n#     <owner>" in text
    assert "set the action in the workflow" in out


def test_never_overwrites_without_force_and_keeps_a_backup_with_it(cli, tmp_path):
    rulebook = tmp_path / ".simulation.yml"
    rulebook.write_text("# my hand-made rulebook\n")
    code, _, err = _init(cli, tmp_path)
    assert code == 2 and "already exist" in err and "--force" in err
    assert rulebook.read_text() == "# my hand-made rulebook\n"
    assert not (tmp_path / ".github").exists()  # nothing written when one target exists
    code, out, _ = _init(cli, tmp_path, "--force")
    assert code == 0 and "previous version kept as" in out
    assert (tmp_path / ".simulation.yml.bak").read_text() == "# my hand-made rulebook\n"
    assert load_rulebook(rulebook).name == "nightly-reprocess"
    assert _init(cli, tmp_path, "--force")[0] == 0
    assert (tmp_path / ".simulation.yml.bak.1").exists() and (tmp_path / ".github" / "workflows" / "designsim.yml.bak").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a["rulebook"].update(constraints="- only one"), None),
    (lambda a: a.pop("pain_journal"), "pain_journal"),
    (lambda a: a["assembly_line"].update(format="poem"), "assembly_line.format"),
    (lambda a: a.update(colour="blue"), "colour"),
    (lambda a: a["assembly_line"]["stages"][0].update(id="bad id!"), "stages.0.id"),
    (lambda a: a["assembly_line"].update(goal="JUGGLE"), "unknown goal"),
])
def test_bad_answers_are_exit_2_and_write_nothing(cli, tmp_path, mutate, message):
    answers = yaml.safe_load(ANSWERS.read_text())
    mutate(answers)
    path = tmp_path / "answers.yml"
    path.write_text(yaml.safe_dump(answers))
    code, _, err = cli("init", "--answers", path, "--dir", tmp_path / "repo")
    if message is None:  # a text block is accepted as a one-item list
        assert code == 0
        return
    assert code == 2 and message in err
    assert not (tmp_path / "repo").exists()


def test_goal_answers_assemble_the_goal_parts(cli, tmp_path):
    answers = yaml.safe_load(ANSWERS.read_text())
    answers["assembly_line"].update(goal="AUDIT", persona="")
    path = tmp_path / "answers.yml"
    path.write_text(yaml.safe_dump(answers))
    assert cli("init", "--answers", path, "--dir", tmp_path, "--no-workflow")[0] == 0
    rb = load_rulebook(tmp_path / ".simulation.yml")
    assert rb.goal == "AUDIT" and rb.persona is None
    assert not (tmp_path / ".github").exists()
    assert lint_file(tmp_path / ".simulation.yml").errors == []


# ------------------------------------------------------------------ the interactive interview, through a pty


def _answer(child, question: str, *lines: str) -> None:
    child.expect_exact(question)
    for line in lines:
        child.expect(r"(Answer|  \d+)[^:\n]*: ")
        child.sendline(line)


def test_interactive_run_through_a_pty_writes_the_same_file(cli, tmp_path):
    expected_dir = tmp_path / "from-answers"
    assert _init(cli, expected_dir)[0] == 0
    answers = yaml.safe_load(ANSWERS.read_text())
    pj, ev, rb, al = answers["pain_journal"], answers["evidence_locker"], answers["rulebook"], answers["assembly_line"]
    target = tmp_path / "interactive"
    child = pexpect.spawn(sys.executable, ["-m", "designsim.cli", "init", "--dir", str(target)],
                          encoding="utf-8", timeout=20, dimensions=(50, 200), env={"PATH": "/usr/bin:/bin", "TERM": "dumb",
                                                                                     "NO_COLOR": "1", "PYTHONUTF8": "1"})
    try:
        child.expect_exact("Worksheet 1 of 4: The Pain Journal")
        _answer(child, "A short name", answers["name"])
        _answer(child, "high-level goal", pj["core_task"])
        _answer(child, "every manual action", *pj["manual_steps"], "")
        _answer(child, "most tedious", pj["pain"])
        _answer(child, "fundamentally lacking", pj["systemic_problem"])
        child.expect_exact("Worksheet 2 of 4: The Evidence Locker")
        _answer(child, "How and where does this code run", ev["environment"])
        _answer(child, "Which paths matter most", *ev["focus"], "")
        _answer(child, "Which unchanged files", "")
        child.expect_exact("title and description as evidence?")
        child.expect_exact("[Y/n]")
        child.sendline("y")
        _answer(child, "Evidence budget", str(ev["max_tokens"]))
        child.expect_exact("Worksheet 3 of 4: The Rulebook")
        _answer(child, "absolute constraints", *rb["constraints"], "")
        _answer(child, "objectively verify", *rb["success_criteria"], "")
        _answer(child, "absolutely avoid", *rb["anti_goals"], "")
        child.expect_exact("Worksheet 4 of 4: The Assembly Line")
        _answer(child, "A goal from the component library", "none")
        _answer(child, "What expert should the model be?", al["persona"])
        _answer(child, "single, primary thing", al["directive"])
        _answer(child, "Output blueprint", "pathways")
        _answer(child, "Stage title", al["stages"][0]["title"])
        _answer(child, "single question should this stage answer", al["stages"][0]["focus"])
        child.expect_exact("Add another stage?")
        child.sendline("")  # the default with one stage: yes (the multi-stage method)
        _answer(child, "Stage title", al["stages"][1]["title"])
        _answer(child, "single question should this stage answer", al["stages"][1]["focus"])
        child.expect_exact("build on the previous stage's output?")
        child.sendline("y")
        child.expect_exact("Add another stage?")
        child.sendline("n")
        child.expect_exact("Add a synthesis stage")
        child.sendline("")  # default yes
        _answer(child, "What should the synthesis integrate", al["synthesis"])
        _answer(child, "Gemini model", "")  # the default
        _answer(child, "Which violations fail the pull request", answers["gate"]["fail_on"])
        child.expect_exact("wrote")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    assert (target / ".simulation.yml").read_text() == (expected_dir / ".simulation.yml").read_text()
    assert (target / ".github/workflows/designsim.yml").read_text() == (expected_dir / ".github/workflows/designsim.yml").read_text()


def test_interactive_refuses_before_asking_when_a_file_exists(tmp_path):
    (tmp_path / ".simulation.yml").write_text("x: 1\n")
    child = pexpect.spawn(sys.executable, ["-m", "designsim.cli", "init", "--dir", str(tmp_path)], encoding="utf-8", timeout=20)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2 and "already exist" in child.before and "Pain Journal" not in child.before


# ------------------------------------------------------------------ issue 13: the answers template, schema line, README workflow


def test_the_answers_template_is_accepted_as_it_is(cli, tmp_path):
    code, template, _ = cli("init", "--answers-template")
    assert code == 0 and template.startswith("# Answers for `designsim init --answers FILE`")
    assert list(tmp_path.iterdir()) == []  # printing writes nothing
    from designsim.kit.init import SYNTHESIS_QUESTION, WORKSHEETS

    for _, questions in WORKSHEETS:
        for q in questions:
            assert f"# {q.text}" in template, q.key  # every question is explained above its key
    assert f"# {SYNTHESIS_QUESTION.text}" in template
    answers = tmp_path / "answers.yml"
    answers.write_text(template)
    target = tmp_path / "repo"
    code, out, err = cli("init", "--answers", answers, "--dir", target)
    assert code == 0, err
    report = lint_file(target / ".simulation.yml")
    assert report.errors == [] and report.advice == [], [str(f) for f in report.errors + report.advice]
    rb = load_rulebook(target / ".simulation.yml")
    assert len(rb.stages) == 2 and rb.stages[1].depends_on == [rb.stages[0].id] and rb.synthesis is not None
    assert rb.gate.fail_on == "blocker" and rb.model == "gemini-3.8-flash"


def test_a_bad_answers_file_points_at_the_template(cli, tmp_path):
    bad = tmp_path / "answers.yml"
    bad.write_text("name: x\npain_journal: {task: y}\n")
    code, _, err = cli("init", "--answers", bad, "--dir", tmp_path / "repo")
    assert code == 2 and "--answers-template" in err and "pain_journal.core_task" in err
    assert not (tmp_path / "repo").exists()


def test_the_rulebook_points_editors_at_the_schema(cli, tmp_path):
    from designsim.schema import render_schema

    assert _init(cli, tmp_path)[0] == 0
    rulebook = tmp_path / ".simulation.yml"
    assert rulebook.read_text().splitlines()[0] == "# yaml-language-server: $schema=.designsim/simulation.schema.json"
    schema = tmp_path / ".designsim" / "simulation.schema.json"
    assert schema.read_text() == render_schema()
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    done = subprocess.run([checker, "--schemafile", str(schema), str(rulebook)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # a second init (--force) leaves an identical schema copy alone: no backup of it
    assert _init(cli, tmp_path, "--force")[0] == 0
    assert not list((tmp_path / ".designsim").glob("*.bak*"))


def test_a_rulebook_in_a_subdirectory_gets_a_relative_schema_path(cli, tmp_path):
    assert _init(cli, tmp_path, "--rulebook", "ci/review.simulation.yml", "--no-workflow")[0] == 0
    first = (tmp_path / "ci" / "review.simulation.yml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../.designsim/simulation.schema.json"


def _readme_workflow() -> dict:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## On every pull request", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_the_workflow_matches_the_readmes_reference_workflow(cli, tmp_path):
    assert _init(cli, tmp_path, "--action", "acme/designsim@v1")[0] == 0
    written = yaml.safe_load((tmp_path / ".github" / "workflows" / "designsim.yml").read_text())
    reference = _readme_workflow()
    on = True  # PyYAML reads the key `on` as the boolean True
    assert written[on] == reference[on]
    assert written["permissions"] == reference["permissions"]
    job, ref_job = written["jobs"]["simulate"], reference["jobs"]["simulate"]
    assert job["permissions"] == ref_job["permissions"]
    assert " ".join(job["if"].split()) == " ".join(ref_job["if"].split())
    assert not any("checkout" in str(s.get("uses", "")) for s in job["steps"]), "README: no checkout is needed"
    others = lambda steps: [s["uses"] for s in steps if "uses" in s and "designsim" not in s["uses"]]  # noqa: E731
    assert others(job["steps"]) == others(ref_job["steps"])
