"""Where a review's result goes: the PR comment, the status, the job summary, the outputs.

* :class:`Publisher` — the five writes the action makes on GitHub. The live one
  is :class:`designsim.action.github_api.GitHubClient`; the offline one is
  :class:`designsim.testing.github.GitHubRecorder`.
* :func:`upsert_comment` — one comment per rulebook, found by its hidden marker
  (``<!-- designsim:rulebook=NAME -->`` at the very start) AND written by us
  (``self_logins``); updated in place, duplicates deleted, never a second one.
* :class:`StatusReporter` — a commit status or a check run on the head SHA,
  named ``designsim/<rulebook>``: pending/in_progress first, then the outcome.
* :func:`write_step_summary` / :func:`write_outputs` — ``$GITHUB_STEP_SUMMARY``
  (capped at 1 MiB, GitHub's limit per step) and ``$GITHUB_OUTPUT`` (the
  multiline-safe ``name<<DELIMITER`` form).

Verdict → GitHub state (decided here, documented in README):

=================  ===================  ================================
verdict            commit status        check run conclusion
=================  ===================  ================================
pass               success              success
fail               failure              failure
inconclusive       error                failure (title says inconclusive)
neutral (policy)   success ("neutral")  neutral
fork, no key       pending              neutral
=================  ===================  ================================

A check run's ``action_required`` was considered for "inconclusive" and not
chosen: GitHub wants a ``details_url`` page to resolve it, which we do not have.
A commit status cannot be neutral: for a fork without secrets it stays
``pending`` with a description saying how to run it, so a required check keeps
the PR unmergeable until a maintainer runs ``/simulate`` (``success`` would be
a silent pass, ``error`` would look like a broken tool).

Limits (shared/realdata/SOURCES.md §2): comment body ≤ 65,536 characters;
check run ``output.summary``/``text`` ≤ 65,535 BYTES (the server counts bytes:
"summary exceeds a maximum bytesize of 65535"); ``output.title`` ≤ 255
characters (we keep it short); commit status ``description`` is shown cut at
140 characters.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol

from designsim.report import GITHUB_COMMENT_LIMIT, parse_markers

CHECK_SUMMARY_MAX_BYTES = 65_535
STEP_SUMMARY_MAX_BYTES = 1024 * 1024
STATUS_DESCRIPTION_MAX = 140
CHECK_TITLE_MAX = 255

COMMIT_STATE = {"pass": "success", "fail": "failure", "inconclusive": "error", "neutral": "success", "fork": "pending"}
CHECK_CONCLUSION = {"pass": "success", "fail": "failure", "inconclusive": "failure", "neutral": "neutral", "fork": "neutral"}


class Publisher(Protocol):
    """The GitHub writes (and the one read) the action needs. Methods return
    the API's JSON (``html_url``, ``id``…) and raise
    :class:`~designsim.errors.GitHubError`."""

    def list_issue_comments(self, number: int) -> list[dict]: ...
    def create_comment(self, number: int, body: str) -> dict: ...
    def update_comment(self, comment_id: int, body: str) -> dict: ...
    def delete_comment(self, comment_id: int) -> None: ...
    def create_status(self, sha: str, *, state: str, context: str, description: str, target_url: str | None) -> dict: ...
    def create_check_run(self, body: dict) -> dict: ...
    def update_check_run(self, check_run_id: int, body: dict) -> dict: ...


# ----------------------------------------------------------------- text limits


def truncate_utf8(text: str, max_bytes: int, note: str = "\n\n… (cut to GitHub's size limit)") -> str:
    """``text`` cut so its UTF-8 encoding is at most ``max_bytes`` bytes, on a
    character boundary (never half an "é" or emoji), with ``note`` appended
    when anything was cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    if len(note.encode("utf-8")) * 2 > max_bytes:  # no room for the note: cut only
        note = ""
    room = max(0, max_bytes - len(note.encode("utf-8")))
    return data[:room].decode("utf-8", errors="ignore") + note


def truncate_chars(text: str, max_chars: int = GITHUB_COMMENT_LIMIT, note: str = "\n\n… (cut to GitHub's size limit)") -> str:
    """``text`` cut to at most ``max_chars`` characters (GitHub counts comment length in characters)."""
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - len(note))] + note


# ----------------------------------------------------------------- the comment


@dataclass
class CommentResult:
    """What :func:`upsert_comment` did: ``action`` is ``created``/``updated``/``unchanged``."""

    url: str | None
    id: int | None
    action: str
    deleted: list[int]


def find_own_comments(comments: list[dict], rulebook: str, self_logins: set[str]) -> list[dict]:
    """Our comments for ``rulebook``: marker at the start and authored by one of
    ``self_logins`` (a marker typed by anyone else is ignored). Oldest first."""
    mine = []
    for c in comments:
        markers = parse_markers(c.get("body") or "")
        login = ((c.get("user") or {}).get("login") or "")
        if markers and markers.get("rulebook") == rulebook and login in self_logins:
            mine.append(c)
    return sorted(mine, key=lambda c: (c.get("created_at") or "", c.get("id") or 0))


def upsert_comment(publisher: Publisher, number: int, rulebook: str, body: str, self_logins: set[str],
                   existing: list[dict] | None = None) -> CommentResult:
    """Create, or update in place, the one comment for ``rulebook`` on PR ``number``.

    ``existing`` is the list of comments if already fetched. The oldest own
    comment is kept and updated; newer duplicates are deleted. ``body`` is cut
    to 65,536 characters if needed."""
    body = truncate_chars(body, GITHUB_COMMENT_LIMIT)
    comments = existing if existing is not None else publisher.list_issue_comments(number)
    own = find_own_comments(comments, rulebook, self_logins)
    if not own:
        made = publisher.create_comment(number, body)
        return CommentResult(made.get("html_url"), made.get("id"), "created", [])
    keep, dupes = own[0], own[1:]
    deleted = []
    for d in dupes:
        publisher.delete_comment(int(d["id"]))
        deleted.append(int(d["id"]))
    if keep.get("body") == body:
        return CommentResult(keep.get("html_url"), keep.get("id"), "unchanged", deleted)
    made = publisher.update_comment(int(keep["id"]), body)
    return CommentResult(made.get("html_url") or keep.get("html_url"), keep.get("id"), "updated", deleted)


# ----------------------------------------------------------------- status / check run


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusReporter:
    """The gate on the head SHA: a commit status (``kind="commit-status"``), a
    check run (``"check-run"``) or nothing (``"none"``). Context / check name
    is ``designsim/<rulebook>``."""

    def __init__(self, publisher: Publisher | None, kind: str, sha: str | None, rulebook: str, *, target_url: str | None = None):
        self.publisher = publisher
        self.kind = kind if (publisher is not None and sha) else "none"
        self.sha = sha
        self.name = f"designsim/{rulebook}"
        self.target_url = target_url
        self.check_run_id: int | None = None
        self.final_state: str | None = None

    def pending(self, description: str = "Running the design simulations…") -> None:
        if self.kind == "commit-status":
            self.publisher.create_status(self.sha, state="pending", context=self.name,
                                         description=description[:STATUS_DESCRIPTION_MAX], target_url=self.target_url)
        elif self.kind == "check-run":
            body: dict[str, Any] = {"name": self.name, "head_sha": self.sha, "status": "in_progress", "started_at": _now(),
                                    "output": {"title": "Running", "summary": description}}
            if self.target_url:
                body["details_url"] = self.target_url
            made = self.publisher.create_check_run(body)
            self.check_run_id = made.get("id")

    def complete(self, outcome: str, description: str, summary: str = "") -> str | None:
        """Report ``outcome`` (a verdict, or ``"fork"``). Returns the state or
        conclusion set. ``summary`` (Markdown) goes into the check run output,
        cut to 65,535 bytes."""
        if self.kind == "commit-status":
            state = COMMIT_STATE[outcome]
            self.publisher.create_status(self.sha, state=state, context=self.name,
                                         description=_one_line(description, STATUS_DESCRIPTION_MAX), target_url=self.target_url)
        elif self.kind == "check-run":
            state = CHECK_CONCLUSION[outcome]
            title = _one_line(_check_title(outcome, description), CHECK_TITLE_MAX)
            output = {"title": title, "summary": truncate_utf8(summary or description, CHECK_SUMMARY_MAX_BYTES)}
            body: dict[str, Any] = {"status": "completed", "conclusion": state, "completed_at": _now(), "output": output}
            if self.target_url:
                body["details_url"] = self.target_url
            if self.check_run_id is not None:
                self.publisher.update_check_run(int(self.check_run_id), body)
            else:
                made = self.publisher.create_check_run({"name": self.name, "head_sha": self.sha, **body})
                self.check_run_id = made.get("id")
        else:
            return None
        self.final_state = state
        return state


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _check_title(outcome: str, description: str) -> str:
    prefix = {"pass": "Passed", "fail": "Failed", "inconclusive": "Inconclusive (model unavailable or grades never usable)",
              "neutral": "Neutral", "fork": "Not run: fork pull request without secrets"}[outcome]
    return f"{prefix} — {description}" if description else prefix


# ----------------------------------------------------------------- summary and outputs


def write_step_summary(path: str | os.PathLike | None, markdown: str) -> None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``, keeping the file under
    1 MiB (GitHub rejects a larger step summary)."""
    if not path:
        return
    p = Path(path)
    used = p.stat().st_size if p.exists() else 0
    room = STEP_SUMMARY_MAX_BYTES - used - 1
    if room <= 0:
        return
    text = truncate_utf8(markdown.rstrip("\n") + "\n", room)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(text)


def write_outputs(path: str | os.PathLike | None, values: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` as ``name<<DELIM`` blocks, each
    with a random delimiter that does not occur in its value."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            value = "" if value is None else str(value)
            delim = f"ghadelimiter_{secrets.token_hex(8)}"
            while delim in value:
                delim = f"ghadelimiter_{secrets.token_hex(8)}"
            fh.write(f"{name}<<{delim}\n{value}\n{delim}\n")
