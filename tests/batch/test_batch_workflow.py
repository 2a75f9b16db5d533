"""`.github/workflows/batch.yml`: valid against GitHub's workflow schema
(offline, check-jsonschema's vendored copy) and following our rules: no
top-level permissions, pinned actions, inputs only through `env:`, uploads
even on failure, cross-run download with the right permission."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from batch_helpers import REPO

WORKFLOW = REPO / ".github" / "workflows" / "batch.yml"


def _load():
    data = yaml.safe_load(WORKFLOW.read_text())
    # PyYAML reads the key `on` as True (YAML 1.1)
    return data, data.get("on", data.get(True))


def test_schema_valid():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    proc = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_least_privilege_and_pinned_actions():
    data, on = _load()
    assert data["permissions"] == {}
    assert set(on["workflow_dispatch"]["inputs"]) >= {"run_id", "input", "rpm"}
    jobs = data["jobs"]
    assert jobs["run"]["permissions"] == {"contents": "read"}
    assert jobs["recover"]["permissions"] == {"contents": "read", "actions": "read"}
    uses_lines = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW.read_text())
    assert uses_lines
    for ref, comment in uses_lines:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.match(r"\s*# v\d", comment), f"{ref} needs a '# vX' comment"


def test_untrusted_values_never_expand_inside_run():
    data, _ = _load()
    for job in data["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                assert "${{" not in step["run"], step.get("name")


def test_outputs_uploaded_even_on_failure_and_recovery_reads_another_run():
    data, _ = _load()
    jobs = data["jobs"]
    for name in ("run", "merge", "recover"):
        uploads = [s for s in jobs[name]["steps"] if "upload-artifact" in s.get("uses", "")]
        assert uploads and all(s.get("if") == "always()" for s in uploads), name
        assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in jobs[name]["steps"]), name
    (download,) = [s for s in jobs["recover"]["steps"] if "download-artifact" in s.get("uses", "")]
    assert download["with"]["run-id"] == "${{ inputs.run_id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"
    recover_upload = [s for s in jobs["recover"]["steps"] if "upload-artifact" in s.get("uses", "")][0]
    assert recover_upload["with"]["name"] != "batch-results"  # artifacts are immutable: a new name
    assert any("designsim batch recover" in s.get("run", "") for s in jobs["recover"]["steps"])
    assert any("--shard" in s.get("run", "") for s in jobs["run"]["steps"])


def test_recovery_verifies_the_source_run_and_holds_the_key_back():
    data, _ = _load()
    steps = data["jobs"]["recover"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    verify = names.index("Verify the source run")
    download = next(i for i, s in enumerate(steps) if "download-artifact" in s.get("uses", ""))
    assert verify < download  # checked through the API before anything is downloaded
    script = steps[verify]["run"]
    assert "actions/runs/$RUN_ID" in script and "batch.yml" in script and "head_repository" in script
    assert "workflow_dispatch" in script  # not a pull-request event
    keyed = [i for i, s in enumerate(steps) if "GEMINI_API_KEY" in (s.get("env") or {})]
    assert len(keyed) == 1 and steps[keyed[0]]["name"] == "Recover the missing ids"
    assert steps[keyed[0]]["if"] == "steps.missing.outputs.count != '0'"  # no key at all when nothing is missing
    recover_runs = " ".join(s.get("run", "") for s in steps)
    assert "earlier/results.parquet" in recover_runs and ".pkl" not in recover_runs  # never a pickle from an artifact
