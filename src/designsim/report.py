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

#: GitHub's limit on an issue or pull-request comment body, in characters.
GITHUB_COMMENT_LIMIT = 65_536
VERDICT_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️", "neutral": "⚪"}
OUTCOME_ICON = {"passed": "✅", "failed": "❌", "inconclusive": "⚠️", "skipped": "⏭️"}
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


def defuse(text: str) -> str:
    """Make untrusted Markdown safe to embed in a comment: no @mentions that
    notify, no HTML comments (marker forgery), no details/summary tags that
    break the layout, no images (tracking pixels, fake badges)."""
    text = re.sub(r"(?<![\w`])@(?=[A-Za-z0-9])", "@\u200b", text)
    text = text.replace("<!--", "&lt;!--")
    text = re.sub(r"<(/?)(details|summary|img|picture|source)\b", r"&lt;\1\2", text, flags=re.IGNORECASE)
    return text.replace("![", "!\\[")


def escape_html(text: str) -> str:
    """Escape every HTML tag in untrusted inline Markdown except ``<br>`` (table
    cells use it for line breaks), so model text can never become live markup."""
    return re.sub(r"<(?!br\s*/?>)", "&lt;", text, flags=re.IGNORECASE)


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


def usage_line(review: Review) -> str:
    """Tokens and cost for the comment's footer: input (with the cached part),
    output (with the thinking part), total, and the cost in USD from the
    rulebook's pricing or the model catalogue (``price unverified`` when the
    catalogue marks it so; ``cost unknown`` when no price is known)."""
    u = review.usage
    parts = [f"Tokens: {u.input_tokens:,} in ({u.cached_tokens:,} cached), {u.output_tokens:,} out"
             + (f" ({u.thinking_tokens:,} thinking)" if u.thinking_tokens else "") + f", {u.total_tokens:,} total"]
    if review.cost is not None:
        unverified = " (price unverified)" if review.cost_verified is False else ""
        parts.append(f"cost {review.cost:.4f} {review.currency or 'USD'}{unverified}")
    elif review.cost_note:
        parts.append("cost unknown")
    return " · ".join(parts)


def models_line(review: Review) -> str:
    """"model `X`, judge `Y`", or "requested `X`, answered by `Y`" when the service
    said another model answered (``modelVersion``)."""
    def one(label: str, model: str) -> str:
        answered = review.answered_by.get(model)
        if answered:
            return f"{label} requested `{model}`, answered by " + ", ".join(f"`{a}`" for a in answered)
        return f"{label} `{model}`"

    return one("model", review.model) + ", " + one("judge", review.judge_model)


def run_notes(review: Review) -> list[str]:
    """Notes under the stage list: a substituted model and a limit that stopped calls (with what was spent)."""
    notes = []
    for requested, answered in review.answered_by.items():
        notes.append(f"Requested `{requested}`, answered by {', '.join(f'`{a}`' for a in answered)} "
                     "(Gemini's modelVersion): results and cost are those of the answering model.")
    if review.stopped:
        spent = f"{review.usage.total_tokens:,} tokens"
        if review.cost is not None:
            spent += f", {review.cost:.4f} {review.currency or 'USD'}"
        budget = ""
        if review.budget:
            caps = [f"${review.budget['max_usd']:.2f}" if review.budget.get("max_usd") else "",
                    f"{review.budget['max_tokens']:,} tokens" if review.budget.get("max_tokens") else ""]
            budget = " of a budget of " + " / ".join(c for c in caps if c)
        notes.append(f"Stopped: {review.stopped}. Spent {spent}{budget}.")
    return notes


def render_markdown(review: Review, *, library: PromptLibrary | None = None, max_chars: int = GITHUB_COMMENT_LIMIT,
                    notice: str | None = None) -> str:
    """The PR comment for ``review``, at most ``max_chars`` characters.

    Shortens the collapsible parts level by level until it fits; as a last
    resort cuts the body and says so. ``notice`` adds a note under the summary
    (e.g. "this pull request changes the rulebook; the new one applies after merge").
    """
    library = library or PromptLibrary()
    env = library.env
    env.filters.update(cell=_cell, inline=_inline, untrusted=_untrusted)
    marker = rulebook_marker(review.rulebook) + "\n" + inputs_marker(review.inputs_hash, review.verdict)
    text = ""
    for output_limit, show_history, reason_limit in _LEVELS:
        text = library.render(
            "comment.md.j2", review=review, marker=marker, mermaid=mermaid(review), verdict_icon=VERDICT_ICON[review.verdict],
            outcome_icon=OUTCOME_ICON, matrix_table=matrix_table, output_limit=output_limit,
            usage_line=usage_line(review), models_line=models_line(review), run_notes=run_notes(review),
            show_history=show_history, reason_limit=reason_limit, notice=notice,
        )
        if len(text) <= max_chars:
            return text
    note = "\n\n… (comment cut to GitHub's size limit; the JSON report has everything)"
    return text[: max_chars - len(note)] + note


def render_json(review: Review) -> dict[str, Any]:
    """Everything, transcripts included, as JSON-ready data."""
    return review.model_dump(mode="json")
