"""Unified diff -> :class:`Evidence`: budgeted, tagged, untrusted.

Pipeline, one module per part::

    source:  load_diff_bytes(path) | git_diff("A..B")  -> bytes;  check_diff(bytes) refuses non-diffs;
             decode_diff(bytes) -> (text, notes)
    parse:   parse_diff(text, EvidenceSettings)        -> [FileChange]
    budget:  priority_units / fit_to_budget            -> what fits, what is omitted
    render:  the blocks, the omitted summary, the fence
    build_evidence(text, EvidenceSettings, ...)        -> Evidence   (the last three in one call)
    evidence_from_bytes(bytes, ...)                    -> Evidence   (decode_diff, then build_evidence)

Data types and path globs are in :mod:`designsim.evidence.models`; the token
estimate is :mod:`designsim.tokens` (re-exported here).

The diff is parsed with ``unidiff`` (never with ad-hoc regexes). Every byte that
came from the pull request -- title, body, paths, hunks, extra files -- is
rendered *inside* one ``<untrusted_pull_request_data>`` element, preceded by a
note telling the model that it is data, not instructions. A closing tag inside
the content is neutralised (``</untrusted`` -> ``<\\/untrusted``) so the
content cannot end the fence early.

Budget: ``EvidenceSettings.max_tokens`` bounds the whole rendered block, using
:func:`estimate_tokens` (about 4 characters per token). A diff over the budget
is cut by whole files, then by whole hunks -- never mid-hunk -- in the order
described in :func:`build_evidence`, and the block itself says what was left out
(``N files, M lines omitted: ...``). GitHub refuses to serve a pull request's diff
beyond 300 files or 20,000 lines (HTTP 406, see ../shared/realdata/SOURCES.md §2);
a local ``--git A..B`` diff has no such limit, so the budget is our only cap.

Rendering is deterministic: the same inputs give byte-identical text (no
timestamps, no set/dict iteration order), so stage prompts that embed it can
share a prefix for Gemini's implicit context caching.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The data types are imported eagerly (pydantic only): ``designsim.rulebook`` needs
# EvidenceSettings, and the linter should not pay for diff parsing. Everything else
# is loaded on first use (PEP 562), so ``import designsim.evidence.models`` stays light.
from designsim.evidence.models import (
    DEFAULT_EXCLUDE,
    FENCE_TAG,
    PR_BODY_SHARE,
    PR_TITLE_MAX_CHARS,
    SUMMARY_MAX_CHARS,
    UNTRUSTED_NOTE,
    Category,
    Evidence,
    EvidenceSettings,
    EvidenceStats,
    FileChange,
    Status,
    path_matches,
)
from designsim.tokens import CHARS_PER_TOKEN, estimate_tokens

if TYPE_CHECKING:
    from designsim.evidence.build import build_evidence, evidence_from_bytes
    from designsim.evidence.parse import parse_diff
    from designsim.evidence.source import check_diff, decode_diff, git_diff, load_diff_bytes, read_extra_files, unmatched_patterns

_LAZY = {
    "build_evidence": "designsim.evidence.build",
    "evidence_from_bytes": "designsim.evidence.build",
    "parse_diff": "designsim.evidence.parse",
    "check_diff": "designsim.evidence.source",
    "decode_diff": "designsim.evidence.source",
    "git_diff": "designsim.evidence.source",
    "load_diff_bytes": "designsim.evidence.source",
    "read_extra_files": "designsim.evidence.source",
    "unmatched_patterns": "designsim.evidence.source",
}

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_EXCLUDE",
    "FENCE_TAG",
    "UNTRUSTED_NOTE",
    "PR_BODY_SHARE",
    "PR_TITLE_MAX_CHARS",
    "SUMMARY_MAX_CHARS",
    "Category",
    "Status",
    "EvidenceSettings",
    "FileChange",
    "EvidenceStats",
    "Evidence",
    "estimate_tokens",
    "path_matches",
    "load_diff_bytes",
    "git_diff",
    "check_diff",
    "decode_diff",
    "parse_diff",
    "build_evidence",
    "evidence_from_bytes",
    "read_extra_files",
    "unmatched_patterns",
]


def __getattr__(name: str) -> Any:
    """Load the parsing, source and build functions on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
