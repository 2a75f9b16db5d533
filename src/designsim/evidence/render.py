"""Rendering the evidence: file blocks, listing lines, the omitted summary, the fence.

Every piece that carries pull-request text is passed through :func:`_neutralise`
so that no content can close the ``<untrusted_pull_request_data>`` fence early.
Deterministic: the same inputs give byte-identical text.
"""

from __future__ import annotations

import re

from designsim.evidence.models import FENCE_TAG, PR_TITLE_MAX_CHARS, SUMMARY_MAX_CHARS, UNTRUSTED_NOTE, FileChange
from designsim.prompts import fence_safe

def _fence(content: str, minimum: int = 3) -> str:
    """A backtick fence longer than any backtick run inside ``content``."""
    longest = max((len(m) for m in re.findall(r"`+", content)), default=0)
    return "`" * max(minimum, longest + 1)


def _neutralise(text: str) -> str:
    """Make any ``</untrusted...`` inside untrusted text inert (:func:`designsim.prompts.fence_safe`)."""
    return fence_safe(text, "untrusted")


def _heading(fc: FileChange, shown: int) -> str:
    bits = [fc.status]
    if fc.old_path and fc.old_path != fc.path:
        bits[0] = f"{fc.status} from {fc.old_path}"
    bits.append(f"+{fc.added} -{fc.removed}")
    if fc.mode_change:
        bits.append(f"mode {fc.mode_change}")
    if shown < len(fc.hunks):
        bits.append(f"showing {shown} of {len(fc.hunks)} hunks")
    head = f"### {fc.path} ({', '.join(bits)})"
    if fc.notes:
        head += "\nNote: " + "; ".join(fc.notes)
    return head + "\n"


def _file_block(fc: FileChange, shown: int) -> str:
    body = "".join(fc.hunks[:shown])
    if not body.endswith("\n"):
        body += "\n"
    fence = _fence(body)
    return _neutralise(f"{_heading(fc, shown)}{fence}diff\n{body}{fence}\n\n")


def _listing_line(fc: FileChange) -> str:
    if fc.is_binary:
        line = f"- binary: {fc.path} ({fc.binary_change})"
        if fc.old_path and fc.old_path != fc.path:
            line += f" from {fc.old_path}"
    elif fc.status == "renamed":
        sim = f", {fc.similarity}% similar" if fc.similarity is not None else ""
        line = f"- renamed: {fc.old_path} → {fc.path} (no content change{sim})"
    elif fc.status == "mode-change":
        line = f"- mode change: {fc.path} {fc.mode_change}"
    else:
        line = f"- {fc.status}: {fc.path} (empty)"
    if fc.mode_change and fc.status != "mode-change":
        line += f", mode {fc.mode_change}"
    if fc.notes:
        line += f" [{'; '.join(fc.notes)}]"
    return _neutralise(line.replace("\n", " ") + "\n")


def _extra_block(path: str, text: str) -> str:
    body = text if text.endswith("\n") else text + "\n"
    fence = _fence(body)
    return _neutralise(f"### {path}\n{fence}text\n{body}{fence}\n\n")


def _truncate(text: str, max_chars: int, what: str) -> tuple[str, bool]:
    if len(text) <= max_chars:
        return text, False
    marker_room = 80
    cut = text[: max(0, max_chars - marker_room)]
    nl = cut.rfind("\n")
    if nl > len(cut) // 2:
        cut = cut[: nl + 1]
    return f"{cut}\n[... {what} truncated: {len(text) - len(cut):,} characters omitted]", True


def _summary(entries: list[str], n_files: int, n_lines: int) -> str:
    head = f"{n_files:,} file{'s' if n_files != 1 else ''}, {n_lines:,} line{'s' if n_lines != 1 else ''} omitted: "
    tail_room = len(", ... and 999,999 more")
    text = head
    for i, entry in enumerate(entries):
        sep = "" if i == 0 else ", "
        if len(text) + len(sep) + len(entry) + tail_room > SUMMARY_MAX_CHARS:
            return f"{text}{sep}... and {len(entries) - i:,} more"
        text += sep + entry
    return text


_SECTION_DIFF = "## Diff: {n} files changed, +{a} -{r}\n\n"
_SECTION_LISTED = "### Changes without content to show\n"
_SECTION_EXTRA = "## Extra files from the repository\n\n"
#: First inside the fence, so the model knows before reading that the evidence is partial.
_SECTION_OMITTED = "## Omitted\n"


def opening() -> str:
    """The trusted note and the opening tag of the fence."""
    return f"{UNTRUSTED_NOTE}\n<{FENCE_TAG}>\n"


def closing() -> str:
    """The closing tag of the fence."""
    return f"</{FENCE_TAG}>\n"


def diff_header(files: list[FileChange]) -> str:
    """``## Diff: N files changed, +A -R`` for the files of the diff (lines)."""
    return _SECTION_DIFF.format(n=len(files), a=sum(f.added for f in files), r=sum(f.removed for f in files))


def render_pull_request(pr_title: str | None, pr_body: str | None, body_max_chars: int) -> tuple[str, list[str]]:
    """The ``## Pull request`` part (title cut to :data:`PR_TITLE_MAX_CHARS`, body to
    ``body_max_chars`` characters) and the truncation notes; ``("", [])`` when both are empty."""
    if not (pr_title or pr_body):
        return "", []
    notes: list[str] = []
    title = " ".join((pr_title or "").split())
    title, cut_t = _truncate(title, PR_TITLE_MAX_CHARS, "title")
    body = (pr_body or "").strip("\n")
    body, cut_b = _truncate(body, body_max_chars, "pull request body")
    if cut_t:
        notes.append("pull request title truncated")
    if cut_b:
        notes.append(f"pull request body truncated to {body_max_chars:,} characters")
    part = f"## Pull request\nTitle: {title}\n"
    if body:
        fence = _fence(body)
        part += f"Body:\n{fence}text\n{body}\n{fence}\n"
    return _neutralise(part + "\n"), notes


def fixed_chars(pr_part: str, files: list[FileChange]) -> int:
    """Characters every rendering spends whatever is chosen: note, fence, PR part,
    section headers and the reserve for the omitted summary (:data:`SUMMARY_MAX_CHARS`)."""
    return (len(opening()) + len(closing()) + len(pr_part) + len(diff_header(files)) + len(_SECTION_LISTED) + 1
            + len(_SECTION_EXTRA) + len(_SECTION_OMITTED) + SUMMARY_MAX_CHARS + 2)


def assemble(*, pr_part: str, files: list[FileChange], diff_enabled: bool, shown_blocks: list[str],
             listed: list[str], extra_blocks: list[str], summary: str | None) -> str:
    """The whole evidence block, in order: note and opening tag, the omitted summary
    (at the top, so a reader knows the evidence is partial before reading it), the
    pull request, the diff (shown files in priority order, then listing-only
    changes), extra files, the closing tag."""
    parts = [opening()]
    if summary:
        parts.append(f"{_SECTION_OMITTED}{summary}\n\n")
    parts.append(pr_part)
    if files:
        parts.append(_neutralise(diff_header(files)))
        parts.extend(shown_blocks)
        if listed:
            parts.append(_SECTION_LISTED)
            parts.extend(listed)
            parts.append("\n")
    elif diff_enabled:
        parts.append("## Diff: no file changes\n\n")
    if extra_blocks:
        parts.append(_SECTION_EXTRA)
        parts.extend(extra_blocks)
    parts.append(closing())
    return "".join(parts)
