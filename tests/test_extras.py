"""The batch extra: reviews and the action never import pandas, pyarrow or numpy (the
review image leaves them out), and batch commands without them say how to install them."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pandas", "pyarrow", "numpy"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from designsim.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "pyarrow", "numpy"))
print("LOADED", loaded, file=sys.stderr)
sys.exit(code)
"""


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI", "GOOGLE", "GITHUB", "INPUT_"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("args", [["demo", "--out", "/dev/null"], ["action", "--help"], ["review", "--help"], ["lint", "--help"]])
def test_review_paths_run_without_the_batch_extra(args):
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr


def test_action_dry_run_without_the_batch_extra(tmp_path):
    import json
    from pathlib import Path

    event = Path(__file__).parent / "fixtures" / "action" / "selftest-event.json"
    rulebook = Path(__file__).parent / "fixtures" / "action" / "simulation.yml"
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "Codertocat/Hello-World",
           "GITHUB_WORKSPACE": str(tmp_path), "INPUT_DRY-RUN": "true", "INPUT_RULEBOOK": str(rulebook)}
    done = _run("action", env_extra=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED []" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])


def test_batch_without_the_extra_exits_2_with_the_install_command():
    done = _run("batch", "run", "--input", "prompts.csv", "--out", "out")
    assert done.returncode == 2
    assert "pip install 'designsim[batch]'" in done.stderr


def test_missing_batch_extra_is_none_when_installed():
    from designsim.cli import batch_extra_message, missing_batch_extra

    assert missing_batch_extra() is None  # the test extra pulls the batch extra
    assert "pip install 'designsim[batch]'" in batch_extra_message("mode: batch", "pandas")
