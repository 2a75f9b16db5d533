"""Building the evidence: parse, fit to the budget, render -- the four parts in one call.

:func:`build_evidence` is the whole pipeline after decoding; :func:`evidence_from_bytes`
adds :func:`designsim.evidence.source.decode_diff` in front.
"""

from __future__ import annotations

from typing import Sequence

from designsim.errors import ConfigError
from designsim.evidence.budget import fit_to_budget, omitted_entries, priority_units
from designsim.evidence.models import PR_BODY_SHARE, Evidence, EvidenceSettings, EvidenceStats
from designsim.evidence.parse import _normalise_crlf_diff, parse_diff
from designsim.evidence.render import _summary, assemble, fixed_chars, render_pull_request
from designsim.evidence.source import decode_diff
from designsim.tokens import CHARS_PER_TOKEN, estimate_tokens

__all__ = ["build_evidence", "evidence_from_bytes"]


def build_evidence(
    diff_text: str,
    settings: EvidenceSettings | None = None,
    *,
    pr_title: str | None = None,
    pr_body: str | None = None,
    extra_files: dict[str, str] | None = None,
    notes: Sequence[str] = (),
    source: str | None = None,
) -> Evidence:
    """Parse ``diff_text`` and render the budgeted, fenced evidence block.

    Inputs: ``diff_text`` (decoded unified diff, e.g. from :func:`decode_diff`),
    ``settings`` (defaults to ``EvidenceSettings()``), the PR ``pr_title`` and
    ``pr_body`` (ignored when ``settings.pull_request`` is False), ``extra_files``
    as ``{path: text}`` (e.g. from :func:`read_extra_files`), ``notes`` carried into
    ``Evidence.notes`` (e.g. decoding notes), ``source`` for error messages.

    Priority (what survives a cut), a deterministic total order:

    1. diff files matching ``settings.focus`` (files with hunks before listing-only
       entries, then fewer changed lines first, then path);
    2. ``extra_files`` (explicitly requested by the rulebook), by path;
    3. other files with hunks: source before tests before docs; added/modified
       before deleted; fewer changed (+/-) lines first -- so the budget shows as
       many files as possible and large mechanical changes (reformatting,
       generated code) are the first cut; then path;
    4. listing-only entries (pure renames, binary files, mode-only changes), one
       line each, in diff order.

    Units are taken first-fit in that order: a file that does not fit whole gets
    its longest run of leading whole hunks that fits (never a partial hunk), and
    later, smaller units may still fit. Excluded files (``settings.exclude``) and,
    with ``settings.diff`` False, all files are listed as omitted. The PR body is
    cut to a quarter of the budget. Included files are rendered in priority order.

    Returns :class:`Evidence` with ``tokens <= settings.max_tokens``. Raises
    :class:`ConfigError` if the diff cannot be parsed.
    """
    settings = settings or EvidenceSettings()
    all_notes = list(notes)
    diff_text, converted = _normalise_crlf_diff(diff_text)
    if converted:
        all_notes.append("the diff file has CRLF line endings throughout; read as LF")
    files = parse_diff(diff_text, settings, source=source)
    budget_chars = settings.max_tokens * CHARS_PER_TOKEN

    pr_part = ""
    if settings.pull_request:
        pr_part, pr_notes = render_pull_request(pr_title, pr_body, int(budget_chars * PR_BODY_SHARE))
        all_notes.extend(pr_notes)
    room = budget_chars - fixed_chars(pr_part, files)
    if room < 0:  # cannot happen with max_tokens >= 1000 and the caps above
        raise ConfigError(f"evidence budget of {settings.max_tokens} tokens is too small", field="evidence.max_tokens")

    extra = dict(sorted((extra_files or {}).items()))
    fit = fit_to_budget(priority_units(files, list(extra), settings), extra, room)
    entries, n_omitted, lines_omitted = omitted_entries(files, fit.omitted_extra, extra)
    summary = _summary(entries, n_omitted, lines_omitted) if entries else None
    text = assemble(pr_part=pr_part, files=files, diff_enabled=settings.diff, shown_blocks=fit.shown_blocks,
                    listed=fit.listed, extra_blocks=fit.extra_blocks, summary=summary)

    for fc in files:
        all_notes.extend(f"{fc.path}: {n}" for n in fc.notes)
    if not files:
        all_notes.append("the diff has no file changes")
    tokens = estimate_tokens(text)
    if tokens > settings.max_tokens:  # guarded by the reserve above; keep the promise loudly
        raise AssertionError(f"evidence over budget: {tokens} > {settings.max_tokens}")
    return Evidence(
        files=files, included_text=text, omitted_summary=summary, omitted_extra_files=fit.omitted_extra,
        tokens=tokens, max_tokens=settings.max_tokens, notes=all_notes,
        stats=EvidenceStats(files=len(files), additions=sum(f.added for f in files),
                            deletions=sum(f.removed for f in files),
                            omitted_files=n_omitted, omitted_lines=lines_omitted),
    )


def evidence_from_bytes(raw: bytes, settings: EvidenceSettings | None = None, *,
                        source: str | None = None, **kwargs: object) -> Evidence:
    """:func:`decode_diff` then :func:`build_evidence`, carrying the decoding notes.

    ``kwargs`` are ``build_evidence``'s (``pr_title``, ``pr_body``, ``extra_files``).
    """
    text, notes = decode_diff(raw)
    return build_evidence(text, settings, notes=notes, source=source, **kwargs)  # type: ignore[arg-type]
