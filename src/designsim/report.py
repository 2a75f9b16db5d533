"""Render a :class:`~designsim.simulation.Review` as the PR comment (Markdown) and
as the JSON report.

The comment carries two hidden HTML markers: ``<!-- designsim:rulebook=NAME -->``
identifies the one comment per rulebook that is updated in place, and
``<!-- designsim:inputs=SHA256 verdict=V -->`` lets the action skip a re-run
when nothing that determines the result has changed.

GitHub rejects a comment body over 65,536 characters ("Body is too long
(maximum is 65536 characters)", see shared/realdata/github-api-errors); the
comment is shortened to fit by cutting the collapsible parts first (full
outputs, then attempt history, then reasons).

Model output derives from untrusted pull-request content, so before it is
placed in a comment, @mentions are defused, HTML comments (which could forge
our markers) and ``<details>``/``<summary>`` tags are escaped.
"""

from __future__ import annotations

import re
from typing import Any

from designsim.matrix import DecisionMatrix
from designsim.prompts import PromptLibrary
from designsim.scorecard import headings, open_fence
from designsim.simulation import Review
from designsim.untrusted import defuse, escape_html  # noqa: F401  (re-exported; defined in designsim.untrusted)

#: GitHub's limit on an issue or pull-request comment body, in characters.
GITHUB_COMMENT_LIMIT = 65_536
VERDICT_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️", "neutral": "⚪"}
#: The comment's headline icon per decision: a warning is never shown as a pass.
DECISION_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️", "inconclusive": "⚠️"}
FINDING_ICON = {"respected": "✅", "violated": "❌", "not applicable": "➖"}
OUTCOME_ICON = {"passed": "✅", "failed": "❌", "inconclusive": "⚠️", "skipped": "⏭️"}
#: Said in the comment whenever ``policy.on_inconclusive: neutral`` turned an
#: inconclusive run (model unavailable, quota gone, grades never passed) into a
#: verdict that a commit status reports as ``success``.
NEUTRAL_POLICY_NOTICE = ("**This run was inconclusive** (the model was unavailable or no attempt passed its grading), and the "
                         "rulebook's `policy.on_inconclusive: neutral` turned it into a neutral result, which a commit status "
                         "reports as success. Nothing was verified; re-run, or set `on_inconclusive: error`.")
_MARKER_RE = re.compile(r"<!-- designsim:rulebook=(?P<rulebook>[^\s>]+) -->")
_INPUTS_RE = re.compile(r"<!-- designsim:inputs=(?P<inputs>[0-9a-f]{64}) verdict=(?P<verdict>\w+) -->")
#: Output-shortening levels tried in order: (characters of each full output, attempt history, reason length)
_LEVELS = [(None, True, 400), (12_000, True, 300), (4_000, True, 200), (1_200, False, 160), (0, False, 120)]


def rulebook_marker(name: str) -> str:
    """The hidden marker that identifies a rulebook's comment."""
    return f"<!-- designsim:rulebook={name} -->"


def inputs_marker(inputs_hash: str, verdict: str) -> str:
    """The hidden marker carrying the inputs hash and verdict."""
    return f"<!-- designsim:inputs={inputs_hash} verdict={verdict} -->"


def parse_markers(body: str) -> dict[str, str] | None:
    """``{"rulebook", "inputs", "verdict"}`` from a comment body, or ``None`` if
    it is not a designsim comment. Only markers at the very start count, so a
    quoted marker inside model output cannot be mistaken for ours."""
    head = (body or "")[:400]
    m = _MARKER_RE.match(head)
    if not m:
        return None
    out = {"rulebook": m.group("rulebook")}
    i = _INPUTS_RE.search(head)
    if i:
        out.update(inputs=i.group("inputs"), verdict=i.group("verdict"))
    return out


def _demote_headings(text: str, by: int = 2) -> str:
    """Push Markdown headings down ``by`` levels (max 6) so an embedded output's
    sections do not read as the comment's own. Heading lines come from
    markdown-it (:func:`designsim.scorecard.headings`), so code blocks are left alone."""
    lines = text.splitlines()
    for head in headings(text):
        if head.level <= 6:  # level 7 marks a bold paragraph used as a heading: leave it
            lines[head.line] = re.sub(r"^(\s{0,3})(#{1,6})(?=\s|$)", lambda h: h.group(1) + "#" * min(6, len(h.group(2)) + by), lines[head.line])
    return "\n".join(lines)


def _shorten(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def _inline(text: Any, limit: int | None = None) -> str:
    flat = re.sub(r"\s+", " ", str(text or "")).strip()
    return defuse(_shorten(flat, limit))


def _cell(text: Any, limit: int | None = 120) -> str:
    return escape_html(_inline(text, limit)).replace("|", "\\|")


def _untrusted(text: str, limit: int | None) -> str:
    body = text if limit is None or len(text) <= limit else text[:limit] + "\n\n… (shortened)"
    body = defuse(_demote_headings(body))
    # close any fence the cut left open, so the rest of the comment renders
    unclosed = open_fence(body)
    return body + "\n" + unclosed if unclosed else body


def _source_cell(text: str, limit: int) -> str:
    return escape_html(_inline(text, limit)).replace("\\|", "|").replace("|", "\\|")


def matrix_table(matrix: DecisionMatrix) -> str:
    """A decision matrix as a Markdown table.

    Shown as the model wrote it (``source_rows``: its emphasis and ✅/❌ marks
    carry meaning) with every HTML tag escaped; when the source is not
    available, rebuilt from the plain cells (criteria rows, pathway columns,
    Verdict last).
    """
    if matrix.source_rows and len(matrix.source_rows) >= 2:
        header, *rows = matrix.source_rows
        lines = ["| " + " | ".join(_source_cell(c, 60) for c in header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(_source_cell(c, 100) for c in row) + " |" for row in rows]
        return "\n".join(lines)
    head = "| Criteria | " + " | ".join(_cell(p, 60) for p in matrix.pathways) + " |"
    sep = "| --- |" + " --- |" * len(matrix.pathways)
    rows = [
        "| " + _cell(c, 80) + " | " + " | ".join(_cell(matrix.cells.get(c, {}).get(p, ""), 80) for p in matrix.pathways) + " |"
        for c in matrix.criteria
    ]
    verdicts = "| **Verdict** | " + " | ".join(
        (f"**{_cell(matrix.verdicts.get(p, ''), 40)}**" if p == matrix.recommended else _cell(matrix.verdicts.get(p, ""), 40))
        for p in matrix.pathways
    ) + " |"
    return "\n".join([head, sep, *rows, verdicts])


def mermaid(review: Review) -> str:
    """A Mermaid flowchart of the stage DAG, nodes coloured by outcome (GitHub renders it)."""
    ids = {s.id: f"s{i}" for i, s in enumerate(review.stages)}
    lines = ["flowchart LR"]
    for s in review.stages:
        label = re.sub(r"[\"<>`\[\]{}|]", "'", s.title)[:60]
        lines.append(f'  {ids[s.id]}["{OUTCOME_ICON[s.outcome]} {label}"]:::{s.outcome}')
    for s in review.stages:
        for dep in s.depends_on:
            if dep in ids:
                lines.append(f"  {ids[dep]} --> {ids[s.id]}")
    lines += [
        "  classDef passed fill:#dafbe1,stroke:#1a7f37,color:#1f2328",
        "  classDef failed fill:#ffebe9,stroke:#cf222e,color:#1f2328",
        "  classDef inconclusive fill:#fff8c5,stroke:#9a6700,color:#1f2328",
        "  classDef skipped fill:#f6f8fa,stroke:#8c959f,color:#57606a",
    ]
    return "\n".join(lines)


def headline(review: Review) -> str:
    """The comment's first line, from the decision: ``"❌ C1 violated (blocker) —
    State management: …"``, ``"✅ every constraint respected (4 stages)"``,
    ``"⚠️ inconclusive: …"``, ``"⚠️ warning (policy on_failed: warn): …"``."""
    d = review.decision
    text = d.reason
    if d.verdict == "warn":
        text = "warning, not blocking: " + text
    return f"{DECISION_ICON[d.verdict]} {text}"


def _finding_icon(finding) -> str:
    return FINDING_ICON.get(finding.verdict, "")


def verdict_rows(review: Review) -> list[dict[str, Any]]:
    """The constraint × stage table: one row per constraint any trusted stage
    ruled on, one cell per stage (``"❌ violated (blocker)"``, with the
    agreement when the stage took samples; ``"⚠️ untrusted"``, ``"⏭️ skipped"``…)."""
    order: list[str] = []
    for s in review.stages:
        for f in s.findings:
            if f.constraint not in order:
                order.append(f.constraint)
    rows = []
    for cid in order:
        cells = []
        for s in review.stages:
            f = next((f for f in s.findings if f.constraint == cid), None)
            if s.outcome != "passed" or f is None:
                cells.append(f"{OUTCOME_ICON[s.outcome]} {s.trust}" if s.outcome != "passed" else "—")
                continue
            sev = f" ({f.severity})" if f.severity != "none" else ""
            agree = f" {f.agreement}" if s.samples > 1 else ""
            cells.append(f"{FINDING_ICON.get(f.verdict, '')} {f.verdict}{sev}{agree}")
        rows.append({"label": cid, "cells": cells})
    return rows


def stage_line(review: Review) -> str:
    """``"Stages: 3 trusted, 1 skipped · 4,620 tokens"`` (each stage counted once, by its own outcome)."""
    from designsim.simulation import stage_counts

    return f"Stages: {stage_counts(review.stages) or 'none'} · {review.usage.total_tokens:,} tokens"


def render_markdown(review: Review, *, library: PromptLibrary | None = None, max_chars: int = GITHUB_COMMENT_LIMIT,
                    notice: str | None = None) -> str:
    """The PR comment for ``review``, at most ``max_chars`` characters.

    It leads with the decision (:func:`headline`), then the constraint × stage
    table of verdicts (:func:`verdict_rows`), then trust (the scorecard) per
    stage, then each stage's details (its verdict rows with evidence, matrix,
    scorecard, full output, earlier attempts).

    Shortens the collapsible parts level by level until it fits; as a last
    resort cuts the body and says so. ``notice`` adds a note under the summary
    (e.g. "this pull request changes the rulebook; the new one applies after merge").
    """
    library = library or PromptLibrary()
    if review.verdict == "neutral":  # only the policy makes a neutral verdict; say what it hid
        notice = "\n> ".join(filter(None, [notice, NEUTRAL_POLICY_NOTICE]))
    env = library.env
    env.filters.update(cell=_cell, inline=_inline, untrusted=_untrusted)
    marker = rulebook_marker(review.rulebook) + "\n" + inputs_marker(review.inputs_hash, review.verdict)
    text = ""
    for output_limit, show_history, reason_limit in _LEVELS:
        text = library.render(
            "comment.md.j2", review=review, marker=marker, mermaid=mermaid(review), verdict_icon=VERDICT_ICON[review.verdict],
            decision_icon=DECISION_ICON[review.decision.verdict], headline=headline(review), stage_line=stage_line(review),
            verdict_rows=verdict_rows(review), finding_icon=_finding_icon,
            outcome_icon=OUTCOME_ICON, matrix_table=matrix_table, output_limit=output_limit,
            show_history=show_history, reason_limit=reason_limit, notice=notice,
        )
        if len(text) <= max_chars:
            return text
    note = "\n\n… (comment cut to GitHub's size limit; the JSON report has everything)"
    return text[: max_chars - len(note)] + note


def render_json(review: Review) -> dict[str, Any]:
    """Everything, transcripts included, as JSON-ready data; ``"decision"`` is
    :class:`designsim.decision.Decision` (issue 8's fixed shape)."""
    data = review.model_dump(mode="json")
    data["decision"] = review.decision.model_dump(mode="json")
    return data
