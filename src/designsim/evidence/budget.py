"""Fitting the evidence to its token budget: priority order, first-fit, what was left out.

The order (a deterministic total order, see :func:`priority_units`) decides what
survives a cut; :func:`fit_to_budget` takes units first-fit in that order, cutting
a file by whole hunks only, and :func:`omitted_entries` accounts for everything
left out. Sizes are measured on the rendered blocks (:mod:`designsim.evidence.render`),
in characters; ``room`` is the budget in characters left after the fixed parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from designsim.evidence.models import EvidenceSettings, FileChange
from designsim.evidence.render import _extra_block, _file_block, _listing_line, _neutralise

__all__ = ["Fit", "priority_units", "fit_to_budget", "omitted_entries"]


@dataclass
class Fit:
    """What :func:`fit_to_budget` chose: rendered ``shown_blocks`` (files with hunks),
    ``listed`` lines (listing-only entries), ``extra_blocks`` (extra files), the extra
    file paths cut for budget (``omitted_extra``) and ``used`` characters."""

    shown_blocks: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    extra_blocks: list[str] = field(default_factory=list)
    omitted_extra: list[str] = field(default_factory=list)
    used: int = 0


def priority_units(files: list[FileChange], extra_paths: list[str],
                   settings: EvidenceSettings) -> list[tuple[tuple, str, object]]:
    """``(key, kind, ref)`` units sorted by priority; ``kind`` is ``file``, ``listing`` or ``extra``.

    Files left out before any budgeting get their ``omit_reason`` set here
    (``diff disabled``, ``excluded``) and yield no unit. Priority:

    1. diff files matching ``settings.focus`` (files with hunks before listing-only
       entries, then fewer changed lines first, then path);
    2. extra files (explicitly requested by the rulebook), by path;
    3. other files with hunks: source before tests before docs; added/modified
       before deleted; fewer changed (+/-) lines first -- so the budget shows as
       many files as possible and large mechanical changes are the first cut; then path;
    4. listing-only entries (pure renames, binary files, mode-only changes), in diff order.
    """
    units: list[tuple[tuple, str, object]] = []
    for idx, fc in enumerate(files):
        if not settings.diff:
            fc.omit_reason = "diff disabled"
            continue
        if fc.excluded:
            fc.omit_reason = "excluded"
            continue
        size = fc.added + fc.removed
        listing = not fc.has_content or fc.is_binary
        if fc.focus:
            key: tuple = (0, 1 if listing else 0, size, fc.path, idx)
        elif listing:
            key = (3, idx)
        else:
            cat = {"source": 0, "test": 1, "doc": 2}[fc.category]
            key = (2, cat, 1 if fc.status == "deleted" else 0, size, fc.path, idx)
        units.append((key, "listing" if listing else "file", fc))
    for path in extra_paths:
        units.append(((1, path), "extra", path))
    units.sort(key=lambda u: u[0])
    return units


def fit_to_budget(units: list[tuple[tuple, str, object]], extra: dict[str, str], room: int) -> Fit:
    """Take ``units`` (from :func:`priority_units`) first-fit into ``room`` characters.

    A file that does not fit whole gets its longest run of leading whole hunks that
    fits (never a partial hunk), and later, smaller units may still fit. Sets each
    file's ``included``, ``shown_hunks`` and, when anything was cut, ``omit_reason =
    "budget"``. ``extra`` maps extra-file paths to their text.
    """
    fit = Fit()
    for _key, kind, ref in units:
        if kind == "listing":
            assert isinstance(ref, FileChange)
            line = _listing_line(ref)
            if fit.used + len(line) <= room:
                fit.used += len(line)
                fit.listed.append(line)
                ref.included = True
            else:
                ref.omit_reason = "budget"
        elif kind == "extra":
            assert isinstance(ref, str)
            block = _extra_block(ref, extra[ref])
            if fit.used + len(block) <= room:
                fit.used += len(block)
                fit.extra_blocks.append(block)
            else:
                fit.omitted_extra.append(ref)
        else:
            assert isinstance(ref, FileChange)
            block = _file_block(ref, len(ref.hunks))
            shown = len(ref.hunks)
            if fit.used + len(block) > room:
                shown = 0
                lo, hi = 1, len(ref.hunks) - 1  # binary search the longest fitting prefix
                while lo <= hi:
                    mid = (lo + hi) // 2
                    if fit.used + len(_file_block(ref, mid)) <= room:
                        shown, lo = mid, mid + 1
                    else:
                        hi = mid - 1
                block = _file_block(ref, shown) if shown else ""
            if shown:
                fit.used += len(block)
                fit.shown_blocks.append(block)
                ref.included = True
                ref.shown_hunks = shown
            if shown < len(ref.hunks):
                ref.omit_reason = "budget"
    return fit


def omitted_entries(files: list[FileChange], omitted_extra: list[str],
                    extra: dict[str, str]) -> tuple[list[str], int, int]:
    """``(entries, n_files, n_lines)`` for everything left out: diff files in diff
    order, then extra files by path. Sets each omitted file's ``omitted_lines``
    (changed lines not shown; an extra file counts all its lines)."""
    entries: list[str] = []
    n_omitted = lines_omitted = 0
    for fc in files:
        if fc.omit_reason is None:
            continue
        lines = sum(fc.hunk_changes[fc.shown_hunks:])
        fc.omitted_lines = lines
        n_omitted += 1
        lines_omitted += lines
        if fc.partial:
            entry = f"{fc.path} ({len(fc.hunks) - fc.shown_hunks} of {len(fc.hunks)} hunks, {fc.omit_reason})"
        elif fc.is_binary:
            entry = f"{fc.path} (binary, {fc.omit_reason})"
        elif fc.status != "modified":
            entry = f"{fc.path} ({fc.status}, {fc.omit_reason})"
        else:
            entry = f"{fc.path} ({fc.omit_reason})"
        entries.append(_neutralise(entry.replace("\n", " ")))
    for path in omitted_extra:
        n_omitted += 1
        lines_omitted += len(extra[path].splitlines())
        entries.append(_neutralise(f"{path} (extra file, budget)".replace("\n", " ")))
    return entries, n_omitted, lines_omitted
