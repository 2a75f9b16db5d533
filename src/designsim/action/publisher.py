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

=====================  ===================  ================================
verdict                commit status        check run conclusion
=====================  ===================  ================================
pass                   success              success
fail                   failure              failure
warn (``on_failed``)   success ("warning")  neutral
inconclusive / error   error                failure (title says inconclusive)
neutral (policy)       success ("neutral")  neutral
accepted (override)    success ("accepted   success
                       by LOGIN")
=====================  ===================  ================================

A check run's ``action_required`` was considered for "inconclusive" and not
chosen: GitHub wants a ``details_url`` page to resolve it, which we do not have.
A fork's ``pull_request`` run (read-only token) writes nothing at all: no
status, so a required ``designsim/<rulebook>`` stays "expected" and the pull
request unmergeable until a maintainer runs ``/simulate``.

**What designsim trusts later** (the unchanged-inputs skip, the override) is
only what its own token wrote: a :class:`ResultTag` carried by its own commit
status (in the ``target_url`` fragment; the ``creator.login`` must be one of our
logins) or its own check run (``external_id``; the ``app.slug`` must be ours).
Comment text (markers included) is display only: anyone with write access can
edit a comment, and any workflow can post as ``github-actions[bot]``.

Limits (shared/realdata/SOURCES.md §2): comment body ≤ 65,536 characters;
check run ``output.summary``/``text`` ≤ 65,535 BYTES (the server counts bytes:
"summary exceeds a maximum bytesize of 65535"); ``output.title`` ≤ 255
characters (we keep it short); commit status ``description`` is shown cut at
140 characters.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol
from urllib.parse import quote, unquote

from designsim.report import GITHUB_COMMENT_LIMIT, parse_markers

CHECK_SUMMARY_MAX_BYTES = 65_535
STEP_SUMMARY_MAX_BYTES = 1024 * 1024
STATUS_DESCRIPTION_MAX = 140
CHECK_TITLE_MAX = 255

COMMIT_STATE = {"pass": "success", "fail": "failure", "inconclusive": "error", "error": "error", "neutral": "success",
                "warn": "success", "accepted": "success", "fork": "pending"}
CHECK_CONCLUSION = {"pass": "success", "fail": "failure", "inconclusive": "failure", "error": "failure", "neutral": "neutral",
                    "warn": "neutral", "accepted": "success", "fork": "neutral"}
#: The GitHub App whose installation token is a workflow's ``GITHUB_TOKEN``: its
#: check runs carry ``app.slug == "github-actions"``, its statuses and comments
#: ``github-actions[bot]``.
ACTIONS_APP_SLUG = "github-actions"
TAG_PREFIX = "designsim:v1"


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
    def list_commit_statuses(self, sha: str) -> list[dict]: ...
    def list_check_runs(self, sha: str, name: str) -> list[dict]: ...


# ----------------------------------------------------------------- what our own status carries


_TAG_IDS = re.compile(r"^[^;=]*$")


@dataclass(frozen=True)
class ResultTag:
    """The machine-readable part of designsim's own status or check run.

    ``verdict`` is the review's decision (pass / fail / warn / inconclusive /
    neutral); ``inputs`` the sealed inputs digest (see
    :func:`designsim.action.run.seal_inputs`); ``violated`` the blocking
    constraint ids that failed the gate; ``accepted`` the ids maintainers
    accepted (``["*"]`` for ``accept all``) and ``by`` who did. Encoded as
    ``designsim:v1;verdict=fail;inputs=…;violated=C1,C3;accepted=C1;by=alice``
    (ids URL-quoted), in a commit status's ``target_url`` fragment or a check
    run's ``external_id``."""

    verdict: str
    inputs: str = ""
    violated: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    by: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        """The verdict after overrides: ``accepted`` when maintainers accepted
        every violated blocking constraint (or ``all``), else :attr:`verdict`."""
        if self.by and self.verdict in ("fail", "warn"):  # inconclusive: nothing trusted to accept (decision.apply_overrides)
            if "*" in self.accepted or (self.violated and set(self.violated) <= set(self.accepted)):
                return "accepted"
        return self.verdict

    @property
    def remaining(self) -> tuple[str, ...]:
        """Violated blocking constraints no one has accepted yet."""
        if "*" in self.accepted:
            return ()
        return tuple(c for c in self.violated if c not in self.accepted)

    def encode(self) -> str:
        def ids(values) -> str:
            return ",".join(quote(v, safe="") for v in values)

        parts = [TAG_PREFIX, f"verdict={self.verdict}"]
        if self.inputs:
            parts.append(f"inputs={self.inputs}")
        for name, values in (("violated", self.violated), ("accepted", self.accepted), ("by", self.by)):
            if values:
                parts.append(f"{name}={ids(values)}")
        return ";".join(parts)

    @classmethod
    def decode(cls, text: str | None) -> "ResultTag | None":
        """The tag in ``text`` (a bare tag, or a URL whose fragment is one), or ``None``."""
        if not text:
            return None
        raw = text.split("#", 1)[1] if "#" in text else text
        if not raw.startswith(TAG_PREFIX + ";"):
            return None
        fields: dict[str, str] = {}
        for part in raw.split(";")[1:]:
            name, _, value = part.partition("=")
            fields[name] = value
        verdict = fields.get("verdict", "")
        if verdict not in COMMIT_STATE or verdict in ("fork", "accepted"):
            return None

        def ids(name: str) -> tuple[str, ...]:
            return tuple(unquote(v) for v in fields.get(name, "").split(",") if v)

        inputs = fields.get("inputs", "")
        if inputs and not re.fullmatch(r"[0-9a-f]{16,64}", inputs):
            return None
        return cls(verdict, inputs, ids("violated"), ids("accepted"), ids("by"))


@dataclass(frozen=True)
class OwnResult:
    """designsim's latest completed result on a head SHA, as its own token wrote it."""

    tag: ResultTag
    state: str
    description: str = ""


def own_app_slugs(self_logins: set[str]) -> set[str]:
    """GitHub App slugs whose check runs are ours: ``github-actions`` for a
    ``GITHUB_TOKEN``, ``my-app`` for a ``my-app[bot]`` comment author."""
    slugs = {login[: -len("[bot]")] for login in self_logins if login.endswith("[bot]")}
    return slugs or {ACTIONS_APP_SLUG}


def find_own_result(publisher: Publisher, kind: str, sha: str | None, name: str, self_logins: set[str]) -> OwnResult | None:
    """designsim's newest completed status (``kind="commit-status"``) or check
    run (``"check-run"``) named ``name`` on ``sha`` that its own identity
    created and that carries a :class:`ResultTag`; ``None`` otherwise (also
    for ``kind="none"``: with no status there is nothing trustworthy to reuse).

    Statuses count when ``creator.login`` is in ``self_logins``; check runs
    when ``app.slug`` is in :func:`own_app_slugs`. Anything else — a status
    another token set under our context, a comment marker — is ignored."""
    if not sha or kind == "none":
        return None
    if kind == "commit-status":
        for st in publisher.list_commit_statuses(sha):
            if st.get("context") != name or ((st.get("creator") or {}).get("login") or "") not in self_logins:
                continue
            tag = ResultTag.decode(st.get("target_url"))
            if tag is not None and st.get("state") != "pending":
                return OwnResult(tag, str(st.get("state")), str(st.get("description") or ""))
        return None
    slugs = own_app_slugs(self_logins)
    for run in publisher.list_check_runs(sha, name):
        if run.get("name") != name or ((run.get("app") or {}).get("slug") or "") not in slugs:
            continue
        tag = ResultTag.decode(run.get("external_id"))
        if tag is not None and run.get("status") == "completed":
            return OwnResult(tag, str(run.get("conclusion")), str(((run.get("output") or {}).get("title")) or ""))
    return None


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
        self.name = status_name(rulebook)
        self.target_url = target_url
        self.check_run_id: int | None = None
        self.final_state: str | None = None
        self.pending_sent = False

    def own_result(self, self_logins: set[str]) -> OwnResult | None:
        """Our own latest completed result on this SHA (:func:`find_own_result`)."""
        if self.kind == "none":
            return None
        return find_own_result(self.publisher, self.kind, self.sha, self.name, self_logins)

    def _url(self, tag: ResultTag | None) -> str | None:
        if tag is None:
            return self.target_url
        return f"{(self.target_url or 'https://github.com').split('#', 1)[0]}#{tag.encode()}"

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
        self.pending_sent = self.kind != "none"

    def complete(self, outcome: str, description: str, summary: str = "", tag: ResultTag | None = None) -> str | None:
        """Report ``outcome`` (a verdict, ``"error"``, ``"accepted"`` or ``"fork"``).
        Returns the state or conclusion set. ``summary`` (Markdown) goes into
        the check run output, cut to 65,535 bytes; ``tag`` (what later runs may
        trust) into the status's ``target_url`` fragment or the check run's
        ``external_id``."""
        if self.kind == "commit-status":
            state = COMMIT_STATE[outcome]
            self.publisher.create_status(self.sha, state=state, context=self.name,
                                         description=_one_line(description, STATUS_DESCRIPTION_MAX), target_url=self._url(tag))
        elif self.kind == "check-run":
            state = CHECK_CONCLUSION[outcome]
            title = _one_line(_check_title(outcome, description), CHECK_TITLE_MAX)
            output = {"title": title, "summary": truncate_utf8(summary or description, CHECK_SUMMARY_MAX_BYTES)}
            body: dict[str, Any] = {"status": "completed", "conclusion": state, "completed_at": _now(), "output": output}
            if self.target_url:
                body["details_url"] = self.target_url
            if tag is not None:
                body["external_id"] = tag.encode()
            if self.check_run_id is not None:
                self.publisher.update_check_run(int(self.check_run_id), body)
            else:
                made = self.publisher.create_check_run({"name": self.name, "head_sha": self.sha, "started_at": body["completed_at"], **body})
                self.check_run_id = made.get("id")
        else:
            return None
        self.final_state = state
        return state


def status_name(rulebook: str) -> str:
    """The commit-status context / check-run name of a rulebook: ``designsim/<rulebook>``."""
    return f"designsim/{rulebook}"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _check_title(outcome: str, description: str) -> str:
    prefix = {"pass": "Passed", "fail": "Failed", "inconclusive": "Inconclusive (model unavailable or grades never usable)",
              "error": "Error", "neutral": "Neutral", "warn": "Warning", "accepted": "Accepted by a maintainer",
              "fork": "Not run: fork pull request without secrets"}[outcome]
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
