"""Shared helpers for the starter-kit tests (init, lint, components, test)."""

from __future__ import annotations

import pytest

from designsim.cli import main


@pytest.fixture
def cli(capsys):
    """Run ``designsim ARGS`` in-process: returns ``(exit_code, stdout, stderr)``."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


