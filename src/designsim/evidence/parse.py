"""Parsing the diff: unified diff text -> :class:`FileChange` s, with ``unidiff``.

Never with ad-hoc regexes for the structure; git's C-style path quoting and
CRLF-converted diff files are handled here.
"""

from __future__ import annotations

import io
import re

from unidiff import PatchedFile, PatchSet
from unidiff.errors import UnidiffParseError

from designsim.errors import ConfigError
from designsim.evidence.models import Category, EvidenceSettings, FileChange, Status, path_matches

_TEST_DIRS = {"test", "tests", "testing", "__tests__", "spec", "specs", "testdata", "fixtures"}
_DOC_DIRS = {"doc", "docs", "documentation"}
_DOC_EXT = {".md", ".rst", ".txt", ".adoc", ".asciidoc", ".markdown"}
_DOC_NAMES = {"readme", "changelog", "changes", "license", "licence", "authors", "notice", "contributing", "history"}
_TEST_NAME = re.compile(r"^(test_.*|.*_test\.[^.]+|.*\.(test|spec)\.[^.]+|.*_spec\.[^.]+|conftest\.py)$")


def _category(path: str) -> Category:
    parts = path.lower().split("/")
    name, dirs = parts[-1], parts[:-1]
    if _TEST_NAME.match(name) or any(d in _TEST_DIRS for d in dirs):
        return "test"
    stem, dot, ext = name.rpartition(".")
    if any(d in _DOC_DIRS for d in dirs) or (dot and "." + ext in _DOC_EXT) or (stem or name) in _DOC_NAMES:
        return "doc"
    return "source"


_OCTAL = re.compile(rb"\\([0-7]{3})")
_C_ESCAPES = {b"\\n": b"\n", b"\\t": b"\t", b'\\"': b'"', b"\\\\": b"\\", b"\\a": b"\a", b"\\b": b"\b",
              b"\\f": b"\f", b"\\r": b"\r", b"\\v": b"\v"}


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual paths (``"caf\\303\\251"``)."""
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        raw = path[1:-1].encode("utf-8", "surrogateescape")
        raw = re.sub(rb'\\([0-7]{3}|[ntab"\\fvr])',
                     lambda m: bytes([int(m.group(1), 8)]) if m.group(1)[:1].isdigit()
                     else _C_ESCAPES[b"\\" + m.group(1)], raw)
        return raw.decode("utf-8", "replace")
    return path


def _strip_prefix(path: str | None) -> str | None:
    if path is None or path == "/dev/null":
        return None
    path = _unquote(path)
    return path[2:] if path[:2] in ("a/", "b/") else path


def _file_change(pf: PatchedFile, lines: list[str], settings: EvidenceSettings) -> FileChange:
    info = [ln.rstrip("\r\n") for ln in (pf.patch_info or [])]
    rename_from = rename_to = copy_from = None
    similarity = None
    for ln in info:
        if ln.startswith("rename from "):
            rename_from = _unquote(ln[12:])
        elif ln.startswith("rename to "):
            rename_to = _unquote(ln[10:])
        elif ln.startswith("copy from "):
            copy_from = _unquote(ln[10:])
        elif ln.startswith("similarity index "):
            try:
                similarity = int(ln[17:].rstrip("%"))
            except ValueError:
                pass
    source = _strip_prefix(pf.source_file)
    target = _strip_prefix(pf.target_file)
    path = rename_to or target or source or pf.path
    old_path = rename_from or copy_from
    if old_path is None and source and target and source != target:
        old_path = source  # a rename in a diff without git's "rename from" lines

    hunks: list[str] = []
    hunk_changes: list[int] = []
    crlf = {"-": 0, "+": 0, " ": 0}
    replaced = 0
    for h in pf:
        numbered = [ln.diff_line_no for ln in h if ln.diff_line_no]
        if numbered:
            start, end = numbered[0] - 2, numbered[-1]  # header is the line before
            while end < len(lines) and lines[end].startswith("\\"):
                end += 1
            text = "".join(lines[start:end])
        else:
            text = str(h)
        hunks.append(text)
        hunk_changes.append(h.added + h.removed)
        for ln in h:
            if ln.value.endswith("\r\n") and ln.line_type in crlf:
                crlf[ln.line_type] += 1
        if "\ufffd" in text:
            replaced += text.count("\ufffd")

    mode_change = None
    if pf.source_mode and pf.target_mode and pf.source_mode != pf.target_mode:
        mode_change = f"{pf.source_mode} → {pf.target_mode}"

    added_file = source is None and copy_from is None
    deleted_file = target is None
    binary_change = None
    if pf.is_binary_file:
        status: Status = "binary"
        binary_change = "added" if added_file else "deleted" if deleted_file else "modified"
    elif added_file or copy_from:
        status = "added"
    elif deleted_file:
        status = "deleted"
    elif old_path and old_path != path:
        status = "renamed"
    elif not hunks and mode_change:
        status = "mode-change"
    else:
        status = "modified"

    notes: list[str] = []
    if copy_from:
        notes.append(f"copied from {copy_from}")
    if any(crlf.values()):
        notes.append("CRLF line endings on "
                     f"{crlf['-']} removed, {crlf['+']} added, {crlf[' ']} context lines")
    if replaced:
        notes.append(f"{replaced} U+FFFD replacement character{'s' if replaced != 1 else ''} "
                     "(non-UTF-8 bytes or already in the file)")
    if pf.is_symlink:
        notes.append("symbolic link")
    elif pf.is_submodule:
        notes.append("git submodule")

    focus = path_matches(path, settings.focus) if settings.focus else False
    return FileChange(
        path=path, old_path=old_path, status=status, added=pf.added, removed=pf.removed,
        is_binary=pf.is_binary_file, binary_change=binary_change, mode_change=mode_change,
        similarity=similarity, hunks=hunks, hunk_changes=hunk_changes, notes=notes, category=_category(path), focus=focus,
        excluded=(not focus) and path_matches(path, settings.exclude),
    )


_FILE_HEADER = re.compile(r"^(?:diff --git |\+\+\+ ).*$", re.MULTILINE)


def _normalise_crlf_diff(diff_text: str) -> tuple[str, bool]:
    """If the diff *file* has CRLF line endings throughout (saved on Windows, or
    passed through a CRLF-converting tool), convert it to LF. Git writes its own
    header lines with LF, so a ``diff --git``/``+++`` line ending in CR means the
    whole file was converted; then a file's own CRLF can no longer be told apart."""
    headers = _FILE_HEADER.findall(diff_text)
    if headers and all(h.endswith("\r") for h in headers):
        return diff_text.replace("\r\n", "\n"), True
    return diff_text, False


def parse_diff(diff_text: str, settings: EvidenceSettings | None = None, *,
               source: str | None = None) -> list[FileChange]:
    """Parse unified diff text with ``unidiff`` into :class:`FileChange` s, in diff order.

    A diff file converted to CRLF throughout is read as LF first. Raises
    :class:`ConfigError` (``source`` names the input) if ``unidiff`` rejects it.
    """
    settings = settings or EvidenceSettings()
    diff_text, _ = _normalise_crlf_diff(diff_text)
    try:
        patch = PatchSet(io.StringIO(diff_text))
    except UnidiffParseError as exc:
        raise ConfigError(f"not a valid unified diff: {exc}", source=source) from exc
    lines = list(io.StringIO(diff_text))  # same line split as unidiff: on "\n" only
    return [_file_change(pf, lines, settings) for pf in patch]
