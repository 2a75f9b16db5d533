"""The host side of docker/selftest.sh (tests/fixtures/selftest/selftest.py), exercised
without a container: the same fakes, the same runner variables (with the container's
/github/... mount points mapped to temporary directories) and the same checks, around a
`designsim action` subprocess. Keeps the image selftest's harness in step with
the action when either changes; the container run itself is .ci/run's job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "fixtures" / "selftest" / "selftest.py"


@pytest.fixture
def fakes(tmp_path):
    ports = tmp_path / "ports.json"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "serve", "--ports", str(ports)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if ports.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert ports.exists(), proc.stderr.read().decode() if proc.poll() is not None else "fakes did not start"
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run(ports: Path, mode: str, root: Path) -> tuple[subprocess.CompletedProcess, dict[str, Path]]:
    lines = subprocess.run([sys.executable, str(SCRIPT), "env", "--ports", str(ports), "--mode", mode],
                           capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    dirs = {name: root / name for name in ("workspace", "home", "workflow", "file_commands")}
    for d in dirs.values():
        d.mkdir(parents=True)
    (dirs["workflow"] / "event.json").write_bytes((REPO / "tests" / "fixtures" / "action" / "selftest-event.json").read_bytes())
    if mode == "dry-run":
        (dirs["workspace"] / ".simulation.yml").write_bytes((REPO / "tests" / "fixtures" / "action" / "simulation.yml").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "GEMINI", "GOOGLE"))}
    for line in lines:
        key, _, value = line.partition("=")
        for name, d in dirs.items():
            value = value.replace(f"/github/{name}", str(d))
        env[key] = value
    done = subprocess.run([sys.executable, "-c", "import sys; from designsim.cli import main; sys.exit(main(['action']))"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=dirs["workspace"])
    return done, dirs


def test_review_passes_the_selftest_checks(fakes, tmp_path):
    done, dirs = _run(fakes, "review", tmp_path / "review")
    assert done.returncode == 0, done.stdout + done.stderr
    github = json.loads(fakes.read_text())["github"]
    fc = dirs["file_commands"]
    check = subprocess.run([sys.executable, str(SCRIPT), "check-review", "--github", github, "--workspace", str(dirs["workspace"]),
                            "--output", str(fc / "set_output"), "--summary", str(fc / "step_summary")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "check-review: ok" in check.stderr


def test_dry_run_passes_the_selftest_checks(fakes, tmp_path):
    done, dirs = _run(fakes, "dry-run", tmp_path / "dry")
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "stdout").write_text(done.stdout)
    github = json.loads(fakes.read_text())["github"]
    check = subprocess.run([sys.executable, str(SCRIPT), "check-dry-run", "--github", github, "--workspace", str(dirs["workspace"]),
                            "--stdout", str(tmp_path / "stdout")], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_checks_catch_a_review_that_posted_nothing(fakes, tmp_path):
    github = json.loads(fakes.read_text())["github"]
    (tmp_path / "ws").mkdir()
    check = subprocess.run([sys.executable, str(SCRIPT), "check-review", "--github", github, "--workspace", str(tmp_path / "ws"),
                            "--output", str(tmp_path / "none"), "--summary", str(tmp_path / "none")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1
    assert "expected 1 pull-request comment, found 0" in check.stderr and "no readable report" in check.stderr
