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
from designsim.scorecard import default_criteria
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
    assert [s.id for s in rb.stages] == ["recovering-failed-items"]
    assert "Today this is done by hand:\n1. SSH into the production server" in rb.scenario
    text = rulebook.read_text()
    assert "# Pain Journal" in text and "# Rulebook step 1" in text  # the worksheets stay visible


def test_the_rulebook_is_accepted_by_a_review(cli, tmp_path):
    assert _init(cli, tmp_path)[0] == 0
    rb = load_rulebook(tmp_path / ".simulation.yml")
    diff = b"diff --git a/src/jobs/rerun.py b/src/jobs/rerun.py\n--- a/src/jobs/rerun.py\n+++ b/src/jobs/rerun.py\n@@ -1 +1,2 @@\n import os\n+import requests\n"
    plan = build_plan(rb, diff, library=PromptLibrary())
    criteria = default_criteria("pathways")
    quote = "The recommended solution is **Pathway 1: The Post-Mortem Recovery Agent**."

    def respond(request):
        if request.label.startswith("stage:"):
            return GOOD_OUTPUT
        return {"criteria": [{"id": c.id, "evidence_quote": quote, "reasoning": "sound", "verdict": "PASS"} for c in criteria],
                "summary": "good"}

    fake = FakeProvider(respond)
    review = run_review_sync(plan, fake)
    assert review.verdict == "pass", review.summary
    assert [r.label for r in fake.history] == ["stage:recovering-failed-items", "judge:recovering-failed-items"]
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
        _answer(child, "Gemini model", "")  # the default
        _answer(child, "Stage title", al["stages"][0]["title"])
        _answer(child, "single question should this stage answer", al["stages"][0]["focus"])
        child.expect_exact("Add another stage?")
        child.sendline("n")
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
