"""Atomic file writes: never leave a half-written file where a user's data was.

Write to a temporary file in the same directory, ``fsync`` it, then
``os.replace`` (atomic on POSIX and Windows). :func:`backup_then_replace`
also keeps the previous version as ``NAME.bak`` (or ``NAME.bak.N`` if that
exists) before replacing it.

Modes: a new file gets ``0o666 & ~umask`` (0644 under the usual 022), as
``open()`` would give it, not the 0600 of :func:`tempfile.mkstemp`; a file
that is replaced keeps its own permission bits. This matters in the Docker
action: the container runs as root and the runner's next step (for example
``actions/upload-artifact``) runs as the runner's user (uid 1001), which
could not read a 0600 report.

Streams: a target that exists and is not a regular file (a character device
such as ``/dev/null`` or ``/dev/stdout``, a FIFO, a socket) is written in
place, never replaced; :func:`write_output` also takes ``-`` for stdout, the
convention of every ``--out``/``--json-out`` option. A symbolic link is
followed: the file it points to is replaced, the link stays.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Callable

#: The output path that means "standard output" (``--out -``).
STDOUT = "-"


def current_umask() -> int:
    """The process's file-mode creation mask (e.g. ``0o022``).

    Read from ``/proc/self/status`` where Linux offers it (no race); elsewhere
    set and restored with :func:`os.umask`, which is not thread-safe."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Symbolic links here are written in place even when they resolve to a regular file:
#: ``/dev/stdout`` or ``/proc/self/fd/1`` redirected to a file must append to the shell's
#: file, not replace it. (A regular file such as ``/dev/shm/x`` is replaced as usual.)
_IN_PLACE_ROOTS = ("/dev/", "/proc/")


def _is_stream(path: Path) -> bool:
    """True when ``path`` is to be written in place: it exists and is not a regular
    file (device, FIFO, socket), or it is a symbolic link under ``/dev`` or ``/proc``."""
    if os.path.abspath(path).startswith(_IN_PLACE_ROOTS) and os.path.islink(path) and os.path.exists(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_in_place(path: Path, write: Callable[[Path], None]) -> Path:
    """Produce the content in a private temp file, then copy it into the stream
    ``path`` (opened for writing without truncation, so a FIFO or device is left
    what it is)."""
    fd, tmp = tempfile.mkstemp(prefix=".designsim-stream.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as src, open(path, "ab") as dst:
            shutil.copyfileobj(src, dst)
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the content, then atomically move it
    to ``path``. The temp file (``.NAME.*.tmp`` beside ``path``) is removed if
    ``write`` raises; only a killed process leaves it (:func:`stale_temp_files`).

    The result has the mode a plain ``open()`` would give (``0o666 & ~umask``)
    or, when it replaces a regular file, that file's mode. A symbolic link is
    followed (its target is replaced). A ``path`` that exists and is not a
    regular file (``/dev/null``, a FIFO) is written in place and returned
    unchanged. Raises :class:`OSError` as the file system does."""
    path = Path(path)
    if _is_stream(path):
        return _write_in_place(path, write)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, mode)
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


def write_output(path: str | Path | None, data: str | bytes) -> Path | None:
    """Write a command's output: ``None`` or ``-`` (:data:`STDOUT`) means
    standard output (text as is, bytes to the binary buffer); anything else is
    written with :func:`atomic_write` (so ``/dev/null`` and FIFOs are written in
    place, files atomically with the umask's mode). Text is UTF-8. Returns the
    path written, or ``None`` for stdout."""
    if path is None or str(path) == STDOUT:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(data)
            sys.stdout.flush()
        return None
    if isinstance(data, bytes):
        return atomic_write_bytes(path, data)
    return atomic_write_text(path, data)


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
    Returns the backup's path (``None`` when there was nothing to back up, or
    when ``path`` is a device or FIFO, which is written in place unbacked)."""
    path = Path(path)
    if _is_stream(path):
        _write_in_place(path, write)
        return None
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    backup = None
    if path.exists():
        backup = backup_path(path)
        shutil.copy2(path, backup)
    atomic_write(path, write)
    return backup
