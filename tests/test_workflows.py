"""The pull-request workflow (reference and `designsim init`'s): which events share a
concurrency group. Only reviews cancel reviews: a comment that is not a `/simulate` command
on a pull request neither starts the job nor shares its group.

The expressions are evaluated with a small interpreter of the part of GitHub's expression
syntax they use (``&&``, ``||``, ``!``, ``==``, ``!=``, property access, ``startsWith``
(case-insensitive, as GitHub documents), ``format``); ``&&``/``||`` return operands, as
GitHub's do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


class _Null:
    """GitHub's ``null``: falsy, and any property of it is null too."""

    def __getattr__(self, name):
        return self

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""


NULL = _Null()


class Ctx(dict):
    """A context object: missing properties are null, as in GitHub's expressions."""

    def __getattr__(self, name):
        value = self.get(name, NULL)
        return Ctx(value) if isinstance(value, dict) else value


def _starts_with(a, b) -> bool:
    return str(a or "").lower().startswith(str(b or "").lower())


def _format(template: str, *args) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m.group(1))]), template)


def evaluate(expr: str, event_name: str, event: dict, inputs: dict | None = None):
    """Evaluate one ``${{ }}``-free expression against an event payload."""
    py = expr.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!(?!=)", " not ", py)
    py = py.replace("startsWith(", "_starts_with(").replace("format(", "_format(")
    env = {"github": Ctx({"event_name": event_name, "event": event}), "inputs": Ctx(inputs or {}),
           "_starts_with": _starts_with, "_format": _format}
    return eval(py, {"__builtins__": {}}, env)  # noqa: S307 (our own workflow files, in a test)


def interpolate(text: str, event_name: str, event: dict, inputs: dict | None = None) -> str:
    def one(m):
        return str(evaluate(m.group(1), event_name, event, inputs))
    return re.sub(r"\$\{\{(.*?)\}\}", one, text, flags=re.S)


def _job(flow: dict) -> dict:
    (job,) = flow["jobs"].values()
    return job


def _reference() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "designsim.yml").read_text())


def _init_template(tmp_path) -> dict:
    from designsim.cli import main

    answers = REPO / "tests" / "kit" / "fixtures" / "answers.yml"
    assert main(["init", "--answers", str(answers), "--dir", str(tmp_path), "--action", "acme/designsim@v1"]) == 0
    return yaml.safe_load((tmp_path / ".github" / "workflows" / "designsim.yml").read_text())


PR = {"pull_request": {"number": 7}}


def comment(body: str, *, on_pr: bool = True, cid: int = 99) -> dict:
    issue = {"number": 7, **({"pull_request": {"url": "https://api.github.com/repos/o/r/pulls/7"}} if on_pr else {})}
    return {"issue": issue, "comment": {"id": cid, "body": body}}


CASES = [  # (event name, payload, starts the job, shares the review's group)
    ("pull_request", PR, True, True),
    ("issue_comment", comment("/simulate"), True, True),
    ("issue_comment", comment("/SIMULATE please"), True, True),
    ("issue_comment", comment("thanks, looks good"), False, False),
    ("issue_comment", comment("/simulate", on_pr=False), False, False),
    ("workflow_dispatch", {}, True, True),
]


@pytest.fixture(params=["reference", "init"])
def flow(request, tmp_path):
    return _reference() if request.param == "reference" else _init_template(tmp_path)


@pytest.mark.parametrize("event_name,payload,starts,shares", CASES, ids=[f"{c[0]}:{i}" for i, c in enumerate(CASES)])
def test_only_reviews_share_the_cancelling_group(flow, event_name, payload, starts, shares):
    assert "concurrency" not in flow, "workflow-level concurrency is claimed before the job's if: (any comment would cancel)"
    job = _job(flow)
    assert job["concurrency"]["cancel-in-progress"] is True
    inputs = {"pull_request": 7} if event_name == "workflow_dispatch" else {}
    runs = bool(evaluate(job["if"], event_name, payload, inputs))
    assert runs is starts
    group = interpolate(job["concurrency"]["group"], event_name, payload, inputs)
    review_group = interpolate(job["concurrency"]["group"], "pull_request", PR)
    assert review_group == "designsim-7"
    assert (group == review_group) is shares, group


def _tool(name: str) -> str:
    import shutil
    import sys

    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} (a test dependency) is not installed"
    return found


def test_zizmor_finds_nothing_high_beyond_the_documented_comment_trigger():
    """zizmor --offline (no GitHub API): the only high finding allowed is issue_comment on the
    reference workflow, which README documents (the action checks the commenter's permission,
    never checks out or runs pull-request code)."""
    import json
    import subprocess

    done = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", "--format", "json", ".github/workflows"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode in (0, 10, 11, 12, 13, 14), done.stderr  # nonzero codes report findings by severity
    findings = json.loads(done.stdout)
    high = [(f["ident"], f["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"]) for f in findings
            if f["determinations"]["severity"] == "High" and not f["ignored"]]
    assert high == [("dangerous-triggers", ".github/workflows/designsim.yml")], high


def test_every_pinned_action_is_a_node24_major_pinned_by_sha():
    """The pins README lists (read 2026-12-01 from each action's tags): full SHAs with the
    release in a comment; checkout/setup-python/upload-artifact v7, download-artifact v8."""
    minimum = {"actions/checkout": 7, "actions/setup-python": 7, "actions/upload-artifact": 7, "actions/download-artifact": 8,
               "docker/build-push-action": 7, "docker/login-action": 4, "docker/setup-buildx-action": 4,
               "actions/attest-build-provenance": 4}
    files = sorted((REPO / ".github" / "workflows").glob("*.yml")) + [REPO / "prompts" / "init" / "workflow.yml.j2"]
    seen = set()
    for path in files:
        for m in re.finditer(r"uses: ([\w.-]+/[\w.-]+)@(\S+)(?: # v(\d+)\S*)?", path.read_text()):
            name, ref, major = m.groups()
            if name not in minimum:
                continue
            seen.add(name)
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}: {name}@{ref} is not a full SHA"
            assert major and int(major) >= minimum[name], f"{path.name}: {name} pinned to v{major}, want v{minimum[name]}+"
    assert seen >= {"actions/checkout", "actions/upload-artifact", "docker/build-push-action"}


def test_dependabot_config_is_valid():
    import subprocess

    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(REPO / ".github" / "dependabot.yml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
