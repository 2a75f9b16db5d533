"""Decision matrices from Markdown -> :class:`DecisionMatrix`.

The ``pathways`` output format (white paper, seed 001 Appendix C) ends with a
comparative decision matrix: criteria as rows, pathways as columns, and a
*Verdict* row saying Recommended / Viable / Rejected per pathway::

    | Criteria | Pathway A | Pathway B |
    | :--- | :--- | :--- |
    | **Overall Risk** | Low | ✅ **Medium** |
    | **Verdict** | **Recommended** | **Rejected** |

Tables are parsed with ``markdown-it-py`` (CommonMark + the GFM table rule), not
with regular expressions, so escaped pipes, code spans, links and inline HTML
behave as a Markdown renderer would show them. Any table with a row whose first
cell is "Verdict" is a decision matrix; a table with a "Verdict" *column* (pathways
as rows) is accepted and normalised to the same shape. Tables inside a fenced
block labelled ``markdown``/``md`` are parsed too (models sometimes wrap their
whole answer in one).

Cell text is plain text: emphasis, code and link markup removed (link text kept),
``<br>`` turned into a line break. Emoji and pictographs (✅ ⚠️ ❌ ...) are kept in
``cells`` (they carry the pass/fail meaning a reader sees) and removed from names
(pathways, criteria) and ``verdicts``.

The "Verdict on this change" table every blueprint ends with
(``| Constraint | Verdict | Severity | Evidence |``, see :mod:`designsim.decision`)
has a Verdict column but is not a decision matrix; it is skipped.

JSON shape (``designsim matrix --json``, see DESIGN.md)::

    {"matrices": [{"pathways": [str], "criteria": [str],
                   "cells": {criterion: {pathway: str}}, "verdicts": {pathway: str},
                   "recommended": str | null, "raw_header": [str], "recommended_count": int}]}
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from typing import Iterable, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, Field

__all__ = ["DecisionMatrix", "extract_matrices", "is_change_verdict_header", "matrices_json", "matrix_to_csv", "plain_text", "strip_symbols"]

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

#: Fence info strings whose content is parsed again as Markdown.
_MARKDOWN_FENCES = {"markdown", "md", "gfm"}
#: Nesting limit for Markdown inside Markdown fences.
_MAX_DEPTH = 3

_VERDICT = re.compile(r"^(?:final |overall )?verdicts?$", re.IGNORECASE)
_RECOMMENDED = re.compile(r"\brecommended\b", re.IGNORECASE)
_NOT_RECOMMENDED = re.compile(r"\b(?:not|never|un)[\s-]*recommended\b|\bunrecommended\b", re.IGNORECASE)
_BR = re.compile(r"^<br\s*/?>$", re.IGNORECASE)


class DecisionMatrix(BaseModel):
    """One decision matrix, normalised to criteria x pathways.

    - ``pathways``: column names in table order (for a transposed table, the row
      names), emphasis and emoji removed.
    - ``criteria``: row names in table order, the Verdict row not included.
    - ``cells``: ``{criterion: {pathway: text}}``; text is plain, ``<br>`` -> ``"\\n"``.
    - ``verdicts``: ``{pathway: text}`` from the Verdict row/column (``""`` if blank).
    - ``recommended``: the one pathway whose verdict says "recommended" (not
      "not recommended"), or None when none or several do.
    - ``recommended_count``: how many verdicts say "recommended" (a scorecard
      check wants exactly one).
    - ``raw_header``: the table's header row as plain text, e.g.
      ``["Criteria", "Pathway A", "Pathway B"]``.

    Duplicate names get `` (2)``, `` (3)`` ... appended; a blank name becomes
    ``(column N)`` / ``(row N)`` (1-based), so keys stay unique.
    """

    pathways: list[str]
    criteria: list[str]
    cells: dict[str, dict[str, str]]
    verdicts: dict[str, str]
    recommended: str | None = None
    raw_header: list[str] = Field(default_factory=list)
    recommended_count: int = 0
    #: the table as the model wrote it (header first), each cell's inline Markdown
    #: source, for display; untrusted, so escape it before rendering
    source_rows: list[list[str]] = Field(default_factory=list, exclude=True)


def strip_symbols(text: str) -> str:
    """Remove emoji and pictographic symbols from ``text``.

    Removed: non-ASCII characters of Unicode category ``So`` (other symbol: ✅ ❌ ⚠ ★)
    and ``Sk`` (modifier symbol, e.g. skin tones), variation selectors
    (U+FE00-U+FE0F), the zero-width joiner U+200D, the combining keycap U+20E3 and
    emoji tag characters (U+E0020-U+E007F). ASCII ``^`` and backtick stay.
    Whitespace is not touched.
    """
    out = []
    for ch in text:
        o = ord(ch)
        if o < 128:
            out.append(ch)
        elif unicodedata.category(ch) in ("So", "Sk") or 0xFE00 <= o <= 0xFE0F or o in (0x200D, 0x20E3) \
                or 0xE0020 <= o <= 0xE007F:
            continue
        else:
            out.append(ch)
    return "".join(out)


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind == "image":
            parts.append(child.content)  # alt text
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "html_inline" and _BR.match(child.content.strip()):
            parts.append("\n")
    return "".join(parts)


def plain_text(markdown_inline: str) -> str:
    """Plain text of one line of inline Markdown (emphasis, code, links removed;
    ``<br>`` -> newline; emoji removed; each line's whitespace collapsed)."""
    tokens = _MD.parseInline(markdown_inline)
    return _clean(_inline_text(tokens[0]) if tokens else "")


def _clean(text: str, *, keep_symbols: bool = False) -> str:
    lines = [" ".join((line if keep_symbols else strip_symbols(line)).split()) for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _name(text: str) -> str:
    """A row/column name: single line, emphasis and emoji gone, trailing colon dropped."""
    return " ".join(strip_symbols(text).split()).rstrip(":").strip()


def is_change_verdict_header(header: Sequence[str]) -> bool:
    """True for the "Verdict on this change" table's header (Constraint | Verdict | Severity | …)."""
    names = [_name(h).lower() for h in header]
    return bool(names) and names[0] == "constraint" and "severity" in names and "verdict" in names


def _unique(names: Sequence[str], blank: str) -> list[str]:
    seen: dict[str, int] = {}
    out: list[str] = []
    for i, name in enumerate(names, start=1):
        name = name or f"({blank} {i})"
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name} ({n})")
    return out


def _tables(tokens: Sequence[Token], depth: int = 0) -> Iterable[tuple[list[str], list[list[str]], list[list[str]]]]:
    """Yield ``(header, rows, source_rows)`` of every table: cell text cleaned,
    rows padded; ``source_rows`` is header + rows as inline Markdown source."""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "fence" and depth < _MAX_DEPTH and tok.info.strip().split(" ")[0].lower() in _MARKDOWN_FENCES:
            yield from _tables(_MD.parse(tok.content), depth + 1)
        if tok.type != "table_open":
            i += 1
            continue
        header: list[str] = []
        rows: list[list[str]] = []
        row: list[str] | None = None
        source: list[list[str]] = []
        source_row: list[str] = []
        in_head = False
        i += 1
        while i < len(tokens) and tokens[i].type != "table_close":
            t = tokens[i]
            if t.type == "thead_open":
                in_head = True
            elif t.type == "thead_close":
                in_head = False
            elif t.type == "tr_open":
                row, source_row = [], []
            elif t.type == "tr_close" and row is not None:
                if in_head:
                    header = row
                else:
                    rows.append(row)
                source.append(source_row)
                row = None
            elif t.type == "inline" and row is not None:
                row.append(_clean(_inline_text(t), keep_symbols=True))
                source_row.append(t.content.strip())
            elif t.type in ("td_close", "th_close") and row is not None and tokens[i - 1].type in ("td_open", "th_open"):
                row.append("")  # an empty cell has no inline token
                source_row.append("")
            i += 1
        width = len(header)
        yield header, [(r + [""] * width)[:width] for r in rows], [(r + [""] * width)[:width] for r in source]
        i += 1


def _is_verdict(cell: str) -> bool:
    return bool(_VERDICT.match(_name(cell)))


def _recommended(verdicts: dict[str, str]) -> tuple[str | None, int]:
    hits = [p for p, v in verdicts.items() if _RECOMMENDED.search(v) and not _NOT_RECOMMENDED.search(v)]
    return (hits[0] if len(hits) == 1 else None), len(hits)


def _from_table(header: list[str], rows: list[list[str]]) -> DecisionMatrix | None:
    if len(header) < 2 or not rows or is_change_verdict_header(header):
        return None
    verdict_rows = [r for r in rows if _is_verdict(r[0])]
    if verdict_rows:  # criteria as rows, pathways as columns
        pathways = _unique([_name(h) for h in header[1:]], "column")
        body = [r for r in rows if not _is_verdict(r[0])]
        criteria = _unique([_name(r[0]) for r in body], "row")
        cells = {c: dict(zip(pathways, r[1:])) for c, r in zip(criteria, body)}
        verdicts = {p: _clean(v) for p, v in zip(pathways, verdict_rows[0][1:])}
    else:
        cols = [j for j, h in enumerate(header) if j > 0 and _is_verdict(h)]
        if not cols:
            return None
        vcol = cols[0]
        keep = [j for j in range(1, len(header)) if not _is_verdict(header[j])]
        pathways = _unique([_name(r[0]) for r in rows], "row")
        criteria = _unique([_name(header[j]) for j in keep], "column")
        cells = {c: {p: r[j] for p, r in zip(pathways, rows)} for c, j in zip(criteria, keep)}
        verdicts = {p: _clean(r[vcol]) for p, r in zip(pathways, rows)}
    recommended, count = _recommended(verdicts)
    return DecisionMatrix(pathways=pathways, criteria=criteria, cells=cells, verdicts=verdicts,
                          recommended=recommended, recommended_count=count,
                          raw_header=[" ".join(strip_symbols(h).split()) for h in header])


def extract_matrices(markdown: str) -> list[DecisionMatrix]:
    """Every decision matrix in ``markdown``, in document order.

    A table is a decision matrix when a body row's first cell reads "Verdict"
    (case-insensitive; emphasis, emoji and a trailing colon ignored; "Final
    Verdict"/"Overall Verdict" too): its first column holds the criteria and the
    other header cells the pathways. A table whose header has a "Verdict" column
    (not the first) is the transposed form: its rows are pathways. Other tables
    (e.g. a pros/cons table) are ignored. Never raises on any input string.
    """
    found: list[DecisionMatrix] = []
    for header, rows, source in _tables(_MD.parse(markdown)):
        m = _from_table(header, rows)
        if m is not None:
            m.source_rows = source
            found.append(m)
    return found


def matrices_json(matrices: Sequence[DecisionMatrix]) -> dict[str, list[dict[str, object]]]:
    """The ``designsim matrix --json`` document: ``{"matrices": [DecisionMatrix as dict]}``."""
    return {"matrices": [m.model_dump() for m in matrices]}


def matrix_to_csv(matrices: Sequence[DecisionMatrix]) -> str:
    """``designsim matrix --csv``: one row per cell, in long ("tidy") form.

    Columns: ``matrix`` (1-based index), ``criterion``, ``pathway``, ``value``,
    ``recommended`` (``true`` for the recommended pathway's rows, else ``false``).
    Each matrix's verdicts follow its criteria as rows with criterion ``Verdict``.
    Quoting per RFC 4180 via :mod:`csv`; lines end in ``\\n``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["matrix", "criterion", "pathway", "value", "recommended"])
    for index, m in enumerate(matrices, start=1):
        rows = [(c, p, m.cells.get(c, {}).get(p, "")) for c in m.criteria for p in m.pathways]
        rows += [("Verdict", p, m.verdicts.get(p, "")) for p in m.pathways]
        for criterion, pathway, value in rows:
            writer.writerow([index, criterion, pathway, value, "true" if pathway == m.recommended else "false"])
    return buf.getvalue()
