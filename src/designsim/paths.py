"""Paths that come from a rulebook or a pull request, kept inside the repository.

A rulebook's ``evidence.files`` globs and every file read for evidence are
untrusted: a pull request can change the rulebook (the action reads it from the
base branch, the CLI from the working tree) or add a symbolic link. Two rules:

* a path or glob is **relative and stays inside** the repository once
  normalised: no absolute path (``/etc/passwd``, ``C:\\x``, ``\\\\host\\share``),
  no ``..`` segment that climbs above the root (``a/../../x``), no NUL or other
  control character, no backslash (Git paths use ``/``) —
  :func:`normalise_repo_path` raises :class:`UnsafePath` (a ``ConfigError``,
  exit 2);
* a file is read only when its **real path** (every symbolic link resolved) is
  inside the repository's real root: a link to ``/proc/self/environ`` or to
  ``../../other-repo`` is refused — :func:`resolve_inside` raises
  :class:`UnsafePath`.

The action's API reads use the same normalisation, so ``../../pulls/7`` never
becomes a different API path.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path, PurePosixPath

from designsim.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePath(ConfigError):
    """A path that is absolute, escapes the repository, or resolves outside it (exit 2)."""


def normalise_repo_path(path: str, *, field: str | None = None, source: str | None = None) -> str:
    """``path`` (a repository-relative POSIX path or glob) normalised: ``./``
    and empty segments removed, ``a/b/../c`` folded to ``a/c``, a trailing
    ``/`` kept (a glob meaning "everything below"). Raises :class:`UnsafePath`
    naming ``field`` and ``source`` for an empty, absolute, drive-letter, UNC,
    backslashed or control-character path, or one whose ``..`` climbs above the
    root."""
    text = str(path)
    why = None
    if not text.strip():
        why = "is empty"
    elif _CONTROL.search(text):
        why = "contains a control character"
    elif "\\" in text:
        why = "contains a backslash (repository paths use '/')"
    elif text.startswith("/") or _DRIVE.match(text):
        why = "is absolute; give a path relative to the repository root"
    if why is None:
        folded = posixpath.normpath(text)
        if folded == ".." or folded.startswith("../"):
            why = "climbs out of the repository ('..')"
        elif folded.startswith("/"):
            why = "is absolute; give a path relative to the repository root"
    if why:
        raise UnsafePath(f"path {text!r} {why}", field=field, source=source)
    folded = posixpath.normpath(text)
    if folded == ".":
        raise UnsafePath(f"path {text!r} names the repository itself, not a file", field=field, source=source)
    return folded + ("/" if text.endswith("/") else "")


def is_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when ``path``'s real path (symbolic links resolved) is ``root``'s
    real path or below it."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real == real_root or real_root in real.parents


def resolve_inside(root: str | os.PathLike[str], relative: str, *, field: str | None = None) -> Path:
    """The real path of ``root/relative`` after :func:`normalise_repo_path`
    and resolving every symbolic link. Raises :class:`UnsafePath` when it lies
    outside ``root``'s real path (e.g. a link to ``/proc/self/environ``)."""
    rel = normalise_repo_path(relative, field=field)
    candidate = Path(root, *PurePosixPath(rel.rstrip("/")).parts)
    real = Path(os.path.realpath(candidate))
    if not is_inside(root, real):
        raise UnsafePath(f"{rel!r} resolves to {str(real)!r}, outside the repository {str(os.path.realpath(root))!r}; "
                         "a symbolic link out of the repository is never read", field=field, source=str(candidate))
    return real


__all__ = ["UnsafePath", "is_inside", "normalise_repo_path", "resolve_inside"]
