"""Getting the diff: a file's bytes, ``git diff A..B``, decoding, extra files.

Everything returned here is untrusted text from the pull request or the working
tree; nothing is parsed yet (see :mod:`designsim.evidence.parse`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence

from designsim.errors import ConfigError
from designsim.evidence.models import path_matches
from designsim.evidence.parse import _strip_prefix

def load_diff_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a diff file as bytes (``-`` is not special; pass a real path).

    Raises :class:`ConfigError` (``source=path``) if it cannot be read.
    """
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read diff: {exc.strerror or exc}", source=str(path)) from exc


def _git(args: list[str], repo_dir: str | os.PathLike[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    cmd = ["git", "-c", "core.quotepath=off", *args]
    try:
        return subprocess.run(cmd, cwd=os.fspath(repo_dir), capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot run git in {os.fspath(repo_dir)!r}: {exc}", source="--git") from exc
    except NotADirectoryError as exc:
        raise ConfigError(f"not a directory: {os.fspath(repo_dir)!r}", source="--repo") from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"git {' '.join(args[:2])} timed out after {timeout:g}s", source="--git") from exc


def _split_range(spec: str) -> tuple[str, str, str]:
    """``A..B`` / ``A...B`` -> ``(A, sep, B)``; an empty side means ``HEAD`` (git's rule)."""
    sep = "..." if "..." in spec else ".."
    a, _, b = spec.partition(sep)
    return a or "HEAD", sep, b or "HEAD"


def git_diff(range_spec: str, repo_dir: str | os.PathLike[str] = ".", *, timeout: float = 120.0) -> bytes:
    """Bytes of ``git diff --no-color -M <range_spec>`` run in ``repo_dir``.

    ``range_spec`` is ``A..B`` (what changed from A to B) or ``A...B`` (what B
    changed since it forked from A); an empty side means ``HEAD``. Checked before
    diffing, each with a one-line :class:`ConfigError` (``source="--git"``, exit 2):
    a single revision or an option (``HEAD``, ``--output=x``: expected ``A..B``),
    ``repo_dir`` not inside a git repository (instead of git's ``--no-index`` usage
    text), an unknown revision, and an inverted ``A..B`` where B is an ancestor of A
    (the diff would show the change reversed). An empty range is left to
    :func:`check_diff`. External diff drivers and textconv are disabled and
    ``core.quotepath`` is off so paths arrive as UTF-8. Raises :class:`ConfigError`
    with git's stderr if git is missing, fails or times out (``timeout`` in seconds).
    """
    spec = range_spec.strip()
    if not spec or spec.startswith("-") or any(c.isspace() for c in spec) or ".." not in spec or spec in ("..", "..."):
        raise ConfigError(f"not a revision range: {range_spec!r} (expected A..B, e.g. main..HEAD)", source="--git")
    probe = _git(["rev-parse", "--git-dir"], repo_dir, timeout)
    if probe.returncode != 0:
        raise ConfigError(f"{os.path.abspath(os.fspath(repo_dir))} is not inside a git repository "
                          "(run from a clone, or pass --repo DIR)", source="--git")
    a, sep, b = _split_range(spec)
    shas: list[str] = []
    for rev in (a, b):
        if rev.startswith("-"):
            raise ConfigError(f"not a revision: {rev!r} in {spec!r} (expected A..B)", source="--git")
        got = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], repo_dir, timeout)
        if got.returncode != 0:
            raise ConfigError(f"git diff {spec} failed: unknown revision {rev!r} in this repository "
                              "(expected A..B of existing commits, e.g. main..HEAD)", source="--git")
        shas.append(got.stdout.decode().strip())
    if sep == ".." and shas[0] != shas[1]:
        inverted = _git(["merge-base", "--is-ancestor", shas[1], shas[0]], repo_dir, timeout)
        if inverted.returncode == 0:
            raise ConfigError(f"inverted range {spec!r}: {b} is an ancestor of {a}, so the diff would show the change "
                              f"reversed (expected older..newer: did you mean {b}..{a}?)", source="--git")
    proc = _git(["diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", spec, "--"], repo_dir, timeout)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"git diff {spec} failed: {err[0] if err else f'exit status {proc.returncode}'}", source="--git")
    return proc.stdout


def check_diff(raw: bytes, given: str) -> None:
    """Refuse input that cannot be a change to review, before any model call.

    ``raw`` is the diff's bytes, ``given`` names it in the message (a path,
    ``stdin`` or ``git diff A..B``). Raises :class:`ConfigError` (exit 2) with one
    line saying what was given and what is expected when ``raw`` is empty or
    blank, is binary (a NUL byte, e.g. ``/bin/ls``), or has no file changes that
    ``unidiff`` recognises (e.g. ``README.md``, or an empty range such as
    ``HEAD..HEAD``).
    """
    from designsim.evidence.parse import parse_diff

    expected = "expected a unified diff with at least one file change, e.g. the output of `git diff main..HEAD`"
    if not raw.strip():
        raise ConfigError(f"{given} is empty: no file changes ({expected})")
    if b"\0" in raw[:65536]:
        raise ConfigError(f"{given} is a binary file, not a unified diff ({expected})")
    text, _ = decode_diff(raw)
    if not parse_diff(text, source=given):
        raise ConfigError(f"{given} is not a unified diff: no '--- a/FILE' / '+++ b/FILE' headers found ({expected})")


def _path_from_git_header(line: str) -> str | None:
    body = line[len("diff --git "):].rstrip("\r\n")
    idx = body.rfind(" b/")
    if idx == -1:
        idx = body.rfind(' "b/')
    return _strip_prefix(body[idx + 1:]) if idx != -1 else None


def decode_diff(raw: bytes) -> tuple[str, list[str]]:
    """Decode diff bytes to text: UTF-8, else UTF-8 with U+FFFD replacements.

    Returns ``(text, notes)``. Line endings are kept exactly (CRLF stays CRLF). A
    leading UTF-8 byte-order mark is dropped. When bytes are not valid UTF-8 each
    affected file gets a note ``"non-UTF-8 bytes replaced in PATH (N lines)"``
    (``(diff header)`` for bytes before the first file). Never raises.
    """
    notes: list[str] = []
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        notes.append("UTF-8 byte-order mark removed")
    try:
        return raw.decode("utf-8"), notes
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    bad: dict[str, int] = {}
    current = "(diff header)"
    for chunk in raw.split(b"\n"):  # 0x0A is never inside a UTF-8 sequence
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            line = chunk.decode("utf-8", "replace")
            if line.startswith("diff --git "):
                current = _path_from_git_header(line) or current
            bad[current] = bad.get(current, 0) + 1
        else:
            if line.startswith("diff --git "):
                current = _path_from_git_header(line) or current
        out.append(line)
    for path, n in bad.items():
        notes.append(f"non-UTF-8 bytes replaced in {path} ({n} line{'s' if n != 1 else ''})")
    return "\n".join(out), notes


def read_extra_files(patterns: Sequence[str], root: str | os.PathLike[str] = ".", *,
                     max_files: int = 200, max_bytes: int = 1_000_000) -> dict[str, str]:
    """Files under ``root`` matching ``patterns`` (:func:`path_matches`), as
    ``{posix_path: text}`` sorted by path, for ``build_evidence(extra_files=...)``.

    ``.git`` and ``node_modules`` are not walked. At most ``max_files`` files;
    a file over ``max_bytes`` bytes is skipped. Text is UTF-8 with replacement.
    Raises :class:`ConfigError` if ``root`` is not a directory, and
    :class:`designsim.paths.UnsafePath` (exit 2) for a pattern that is absolute
    or climbs out of ``root``, or a matching file whose real path (symbolic
    links resolved) is outside it.
    """
    from designsim.paths import normalise_repo_path, resolve_inside

    patterns = [normalise_repo_path(p, field="evidence.files") for p in patterns]
    base = Path(root)
    if not base.is_dir():
        raise ConfigError("not a directory", source=str(base))
    found: dict[str, str] = {}
    if not patterns:
        return found
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "node_modules"))
        for fn in sorted(filenames):
            full = Path(dirpath, fn)
            rel = full.relative_to(base).as_posix()
            if not path_matches(rel, patterns):
                continue
            full = resolve_inside(base, rel, field="evidence.files")  # a symlink out of the repository is refused
            try:
                if full.stat().st_size > max_bytes:
                    continue
                found[rel] = full.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if len(found) >= max_files:
                return dict(sorted(found.items()))
    return dict(sorted(found.items()))


def unmatched_patterns(patterns: Sequence[str], root: str | os.PathLike[str] = ".") -> list[int]:
    """Indices of the ``patterns`` (``evidence.files`` globs, :func:`path_matches`)
    that match no file under ``root``, walked as :func:`read_extra_files` walks it
    (``.git`` and ``node_modules`` skipped). A misspelled path would otherwise be
    silently ignored and the review would run without the file it was asked to
    read. Returns ``[]`` when ``root`` is not a directory (nothing to compare with).
    """
    base = Path(root)
    if not patterns or not base.is_dir():
        return []
    left = dict(enumerate(patterns))
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "node_modules"))
        for fn in filenames:
            rel = Path(dirpath, fn).relative_to(base).as_posix()
            for i in [i for i, pat in left.items() if path_matches(rel, [pat])]:
                del left[i]
            if not left:
                return []
    return sorted(left)
