"""Atomic file writes: never leave a half-written file where a user's data was.

Write to a temporary file in the same directory, ``fsync`` it, then
``os.replace`` (atomic on POSIX and Windows). :func:`backup_then_replace`
also keeps the previous version as ``NAME.bak`` (or ``NAME.bak.N`` if that
exists) before replacing it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the content, then atomically move it
    to ``path``. The temp file (``.NAME.*.tmp`` beside ``path``) is removed if
    ``write`` raises; only a killed process leaves it (:func:`stale_temp_files`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def stale_temp_files(path: str | Path) -> list[Path]:
    """Temp files :func:`atomic_write` left beside ``path`` because its process
    was killed before the rename; safe to delete when no write is running."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.glob(f"{_temp_prefix(path)}*.tmp") if p.is_file())


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def backup_path(path: str | Path) -> Path:
    """The first free ``NAME.bak``, ``NAME.bak.1``, … beside ``path``."""
    path = Path(path)
    candidate = path.with_name(path.name + ".bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{n}")
        n += 1
    return candidate


def backup_then_replace(path: str | Path, write: Callable[[Path], None]) -> Path | None:
    """Copy an existing ``path`` to a fresh backup, then atomically replace it.
    Returns the backup's path (``None`` when there was nothing to back up)."""
    path = Path(path)
    backup = None
    if path.exists():
        backup = backup_path(path)
        shutil.copy2(path, backup)
    atomic_write(path, write)
    return backup
