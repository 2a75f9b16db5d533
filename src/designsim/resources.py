"""Where the bundled prompts and examples live.

In a source checkout (or an editable install) they are the repository's
top-level ``prompts/`` and ``examples/``; in a wheel, hatchling's
``force-include`` puts them under ``designsim/_bundled/``. One function
decides, so nothing else guesses paths.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """The bundled ``prompts`` or ``examples`` directory.

    Raises ``FileNotFoundError`` if neither location exists (a broken install).
    """
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"designsim's bundled {name}/ directory is missing; reinstall the package")


def prompts_dir() -> Path:
    """The bundled prompt templates and component library."""
    return bundled_dir("prompts")


def examples_dir() -> Path:
    """The bundled example rulebooks, diffs and cassettes."""
    return bundled_dir("examples")
