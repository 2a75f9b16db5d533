"""action.yml, the workflows and the Dockerfile: schema-valid, linted, pinned,
least-privilege; and the package installs the way the image installs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


def test_action_yml_matches_the_schema():
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(REPO / "action.yml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_match_the_schema():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "designsim.yml", "selftest.yml"}
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_passes_hadolint():
    done = subprocess.run([_tool("hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_yml_inputs_are_all_read():
    from designsim.action.context import read_input

    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}
    source = (REPO / "src" / "designsim" / "action" / "context.py").read_text()
    for name in action["inputs"]:
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name), f"{name} is not kebab-case"
        assert f'get("{name}"' in source, f"input {name} is declared but never read"
        assert read_input(name, {"INPUT_" + name.upper(): "x"}) == "x"
    assert set(action["outputs"]) == {"verdict", "comment-url", "report-path", "total-tokens"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_hygiene(path):
    flow = yaml.safe_load(path.read_text())
    assert flow.get("permissions") == {}, "no permissions at the top; jobs ask for what they need"
    for job in flow["jobs"].values():
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{uses} is not pinned to a full commit SHA"
            if uses and uses.startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False
            run = step.get("run", "")
            assert "${{" not in run, "expressions are passed to run: steps through env:, never interpolated"


def test_pr_workflow_is_least_privilege_and_cancels_superseded_runs():
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "designsim.yml").read_text())
    (job,) = flow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write", "statuses": "write"}
    assert "concurrency" not in flow  # job-level, so a comment that is not a command cancels nothing
    assert job["concurrency"]["cancel-in-progress"] is True and "pull_request.number" in job["concurrency"]["group"]
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads `on` as True
    assert set(triggers) == {"pull_request", "issue_comment", "workflow_dispatch"}


def test_ci_runs_the_readme_command():
    readme = (REPO / "README.md").read_text()
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    runs = [s["run"] for job in flow["jobs"].values() for s in job["steps"] if "run" in s]
    assert any(r.strip() in readme for r in runs), runs


@pytest.mark.slow
@pytest.mark.network  # downloads from the package index: opt in with `-m network`
def test_installs_like_the_dockerfile_into_a_fresh_venv(tmp_path):
    """docker/requirements.txt (binary wheels only) + the package with --no-deps, then the entry point."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for args in (["-r", str(REPO / "docker" / "requirements.txt"), "--only-binary=:all:"], ["--no-deps", str(REPO)]):
        done = subprocess.run([py, "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True, timeout=120, env=env)
    assert check.returncode == 0, check.stdout + check.stderr  # the pins satisfy every dependency
    done = subprocess.run([str(venv / "bin" / "designsim"), "action", "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "--dry-run" in done.stdout, done.stdout + done.stderr
