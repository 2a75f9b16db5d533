"""Constants shared by the starter-kit tests (imported as a plain module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from designsim.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ANSWERS = FIXTURES / "answers.yml"



@pytest.fixture
def cli(capsys):
    """Run ``designsim ARGS`` in-process: returns ``(exit_code, stdout, stderr)``.
    (A fixture defined here, not in a conftest.py: other test folders import their
    own ``conftest`` by module name, and a second one would shadow theirs.)"""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


#: A minimal valid rulebook that lints with no advice; tests edit copies of it.
GOOD_RULEBOOK = """\
version: 1
name: tiny
persona: You are a senior Site Reliability Engineer who designs batch pipelines that recover by themselves.
scenario: |
  A nightly job re-processes failed API calls. Today a developer greps the logs for failed ids,
  pastes them into a file, writes a one-off script to re-run them and greps again to check; it
  takes half an hour and once dropped an id. The workflow lacks an idempotent recovery path.
directive: Simulate at least three pathways for a recovery system, evaluate them against the constraints, and recommend one.
constraints:
  - id: C1
    text: The job's core script must not be modified.
anti_goals:
  - text: Deleting or rewriting the source logs.
success_criteria:
  - Recovery is one command.
stages:
  - id: recovery
    title: Recovering failed items
    focus: How should overnight failures be detected and re-run without a human copying ids?
"""
