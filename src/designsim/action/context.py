"""What the action was asked to do: inputs, runner environment, and the event.

* :func:`read_inputs` — action inputs. GitHub passes each input as an
  environment variable ``INPUT_<NAME>``: the name upper-cased with spaces
  replaced by ``_`` and hyphens KEPT (``INPUT_GITHUB-TOKEN``). Some runners and
  wrappers rewrite hyphens to ``_``, so both spellings are read (hyphen first).
* :func:`read_env` — the ``GITHUB_*`` variables the runner sets.
* :func:`resolve_event` — the event payload (``$GITHUB_EVENT_PATH``) to a
  :class:`Target` (a pull request to review, with the :class:`Command` when a
  ``/simulate`` comment asked) or a :class:`Skip` (an event we do not act on,
  with the reason). Whether the commenter may run the command needs the
  network (GitHub's collaborator-permission endpoint), so the runner decides
  it and answers a :class:`Refusal`.

Payload models are lenient on purpose (``extra="ignore"``, every field
optional): real payloads, older GHES ones and the fixtures in
``shared/realdata/webhooks`` lack fields that newer schemas mark required.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from designsim.errors import ConfigError

#: ``pull_request`` / ``pull_request_target`` actions that trigger a review.
REVIEW_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})
#: Repository roles allowed to run ``/simulate`` (``role_name`` of GitHub's
#: "Get repository permissions for a user" endpoint,
#: ``GET /repos/{owner}/{repo}/collaborators/{username}/permission``; its
#: coarser ``permission`` field says ``write`` for maintain and ``read`` for triage).
#: ``author_association`` is NOT used: it says MEMBER for any organisation member
#: and COLLABORATOR for a read-only collaborator.
MAINTAINER_ROLES = frozenset({"admin", "maintain", "write"})
COMMAND = "/simulate"
#: The login that owns comments made with the workflow's ``GITHUB_TOKEN``.
ACTIONS_BOT = "github-actions[bot]"
MODES = ("review", "batch", "recover")
STATUS_KINDS = ("commit-status", "check-run", "none")
VERDICTS = ("pass", "fail", "inconclusive", "neutral", "warn")


# ----------------------------------------------------------------- inputs


def read_input(name: str, env: Mapping[str, str] | None = None, default: str = "") -> str:
    """One action input by its kebab-case ``name`` (``"github-token"``), stripped.

    Reads ``INPUT_GITHUB-TOKEN`` then ``INPUT_GITHUB_TOKEN``; an empty value
    counts as unset (GitHub passes unset inputs as ``""``)."""
    env = os.environ if env is None else env
    key = "INPUT_" + name.replace(" ", "_").upper()
    for candidate in (key, key.replace("-", "_")):
        value = env.get(candidate)
        if value is not None and value.strip():
            return value.strip()
    return default


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0", ""):
        return False
    raise ConfigError(f"expected true or false, got {value!r}", source=f"input {name}")


@dataclass(frozen=True)
class ActionInputs:
    """The action's inputs (see ``action.yml`` for each one's meaning).

    ``fail_on`` is the set of verdicts that make the step exit non-zero (with
    the review's exit code: 1 fail, 3 inconclusive); the status/check run is
    reported either way. Secrets (``github_token``, ``gemini_api_key``) are
    excluded from ``repr``.
    """

    github_token: str = field(default="", repr=False)
    gemini_api_key: str = field(default="", repr=False)
    rulebook: str = ".simulation.yml"
    model: str = ""
    mode: str = "review"
    comment: bool = True
    status: str = "commit-status"
    fail_on: frozenset[str] = frozenset({"fail", "inconclusive"})
    include_drafts: bool = False
    pull_request: int | None = None
    comment_author: str = ""
    report_path: str = "designsim-report.json"
    dry_run: bool = False
    batch_input: str = ""
    batch_output: str = ""
    run_args: str = ""
    #: override ``GITHUB_EVENT_NAME`` / ``GITHUB_EVENT_PATH`` (self-tests, offline runs on a saved payload)
    event_name: str = ""
    event_path: str = ""

    @property
    def secrets(self) -> list[str]:
        """Values that must never appear in any output."""
        return [s for s in (self.gemini_api_key, self.github_token) if s]


def read_inputs(env: Mapping[str, str] | None = None) -> ActionInputs:
    """Parse every ``INPUT_*`` variable. Raises :class:`ConfigError` naming the
    input for a bad value."""
    env = os.environ if env is None else env

    def get(name: str, default: str = "") -> str:
        return read_input(name, env, default)

    mode = get("mode", "review").lower()
    if mode not in MODES:
        raise ConfigError(f"expected one of {', '.join(MODES)}, got {mode!r}", source="input mode")
    status = get("status", "commit-status").lower()
    if status not in STATUS_KINDS:
        raise ConfigError(f"expected one of {', '.join(STATUS_KINDS)}, got {status!r}", source="input status")
    raw_fail_on = get("fail-on", "fail,inconclusive").lower()
    fail_on = frozenset(v for v in re.split(r"[\s,]+", raw_fail_on) if v and v not in ("none", "never"))
    unknown = sorted(fail_on - set(VERDICTS))
    if unknown:
        raise ConfigError(f"unknown verdict(s) {', '.join(unknown)}; use any of {', '.join(VERDICTS)} or 'none'", source="input fail-on")
    pr_text = get("pull-request")
    pr = None
    if pr_text:
        if not pr_text.lstrip("#").isdigit():
            raise ConfigError(f"expected a pull request number, got {pr_text!r}", source="input pull-request")
        pr = int(pr_text.lstrip("#"))
    return ActionInputs(
        github_token=get("github-token"),
        gemini_api_key=get("gemini-api-key"),
        rulebook=get("rulebook", ".simulation.yml"),
        model=get("model"),
        mode=mode,
        comment=_bool("comment", get("comment", "true")),
        status=status,
        fail_on=fail_on,
        include_drafts=_bool("include-drafts", get("include-drafts", "false")),
        pull_request=pr,
        comment_author=get("comment-author"),
        report_path=get("report-path", "designsim-report.json"),
        dry_run=_bool("dry-run", get("dry-run", "false")),
        batch_input=get("batch-input"),
        batch_output=get("batch-output"),
        run_args=get("run-args"),
        event_name=get("event-name"),
        event_path=get("event-path"),
    )


# ----------------------------------------------------------------- runner environment


@dataclass(frozen=True)
class ActionEnv:
    """The runner's ``GITHUB_*`` variables. Paths are ``None`` when unset
    (running outside Actions); ``api_url`` defaults to ``https://api.github.com``
    (GitHub Enterprise Server sets e.g. ``https://ghe.example.com/api/v3``)."""

    event_name: str = ""
    event_path: str | None = None
    repository: str = ""
    api_url: str = "https://api.github.com"
    server_url: str = "https://github.com"
    run_id: str = ""
    step_summary: str | None = None
    output: str | None = None
    workspace: str | None = None

    @property
    def run_url(self) -> str | None:
        """Link to this workflow run (for ``target_url``/``details_url``)."""
        if self.run_id and self.repository:
            return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"
        return None


def read_env(env: Mapping[str, str] | None = None) -> ActionEnv:
    """The runner's ``GITHUB_*`` variables (GitHub docs, "Default environment
    variables"); ``GITHUB_API_URL`` defaults to api.github.com, so GitHub
    Enterprise works when the runner sets it. Never raises."""
    env = os.environ if env is None else env
    return ActionEnv(
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        event_path=env.get("GITHUB_EVENT_PATH") or None,
        repository=env.get("GITHUB_REPOSITORY", ""),
        api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
        server_url=env.get("GITHUB_SERVER_URL") or "https://github.com",
        run_id=env.get("GITHUB_RUN_ID", ""),
        step_summary=env.get("GITHUB_STEP_SUMMARY") or None,
        output=env.get("GITHUB_OUTPUT") or None,
        workspace=env.get("GITHUB_WORKSPACE") or None,
    )


# ----------------------------------------------------------------- payload models


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class User(_Lenient):
    """A GitHub account as payloads show it (every field optional: old payloads lack some)."""

    login: str | None = None
    type: str | None = None


class Repo(_Lenient):
    """A repository in a payload; ``full_name`` is ``owner/name``."""

    full_name: str | None = None
    name: str | None = None
    owner: User | None = None
    default_branch: str | None = None
    fork: bool | None = None


class Ref(_Lenient):
    """A pull request's ``head`` or ``base``: branch ``ref``, commit ``sha``, and its repository."""

    ref: str | None = None
    sha: str | None = None
    label: str | None = None
    repo: Repo | None = None


class PullRequest(_Lenient):
    """The pull-request fields the action reads, from a payload or ``GET /pulls/{n}``."""

    number: int | None = None
    state: str | None = None
    draft: bool | None = None
    title: str | None = None
    body: str | None = None
    html_url: str | None = None
    user: User | None = None
    head: Ref | None = None
    base: Ref | None = None


class Issue(_Lenient):
    """An issue in an ``issue_comment`` payload; ``pull_request`` is present only on a pull request."""

    number: int | None = None
    title: str | None = None
    pull_request: dict[str, Any] | None = None


class Comment(_Lenient):
    """A comment in an ``issue_comment`` payload. ``author_association`` is
    shown in messages only: who may run ``/simulate`` is decided by the
    collaborator-permission endpoint (see :data:`MAINTAINER_ROLES`)."""

    id: int | None = None
    body: str | None = None
    author_association: str | None = None
    user: User | None = None


class EventPayload(_Lenient):
    """The parts of a webhook payload the action reads."""

    action: str | None = None
    number: int | None = None
    pull_request: PullRequest | None = None
    issue: Issue | None = None
    comment: Comment | None = None
    repository: Repo | None = None
    sender: User | None = None
    inputs: dict[str, Any] | None = None


def load_payload(path: str | None) -> EventPayload:
    """Read ``$GITHUB_EVENT_PATH``. Raises :class:`ConfigError` if unreadable."""
    if not path:
        raise ConfigError("GITHUB_EVENT_PATH is not set (run inside GitHub Actions, or set it to a saved payload)")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the event payload: {exc}", source=path) from exc
    try:
        return EventPayload.model_validate(data if isinstance(data, dict) else {})
    except ValidationError as exc:  # only a wrongly-typed field can get here
        raise ConfigError(f"unexpected event payload: {exc.errors(include_url=False)[0]['msg']}", source=path) from exc


# ----------------------------------------------------------------- event -> target


@dataclass
class Target:
    """The pull request to review. SHAs and refs are ``None`` when the payload
    does not carry them (``issue_comment``, ``workflow_dispatch``): the action
    fetches the pull request to fill them in."""

    event: str
    repository: str
    number: int
    head_sha: str | None = None
    base_sha: str | None = None
    base_ref: str | None = None
    head_repo: str | None = None
    base_repo: str | None = None
    title: str | None = None
    body: str | None = None
    draft: bool | None = None
    #: the ``/simulate`` comment that asked for this run, if any
    command_comment_id: int | None = None
    #: the parsed ``/simulate`` command and its author (``issue_comment`` only)
    command: "Command | None" = None
    commenter: str | None = None
    association: str | None = None

    @property
    def is_fork(self) -> bool:
        """True when the head lives in another repository (a fork gets no secrets)."""
        return bool(self.head_repo and self.base_repo and self.head_repo.lower() != self.base_repo.lower())

    def fill_from(self, pr: PullRequest) -> None:
        """Take SHAs, refs, repos, title, body and draft state from a fetched pull request."""
        if pr.head:
            self.head_sha = pr.head.sha or self.head_sha
            self.head_repo = (pr.head.repo.full_name if pr.head.repo else None) or self.head_repo
        if pr.base:
            self.base_sha = pr.base.sha or self.base_sha
            self.base_ref = pr.base.ref or self.base_ref
            self.base_repo = (pr.base.repo.full_name if pr.base.repo else None) or self.base_repo
        self.title = pr.title if pr.title is not None else self.title
        self.body = pr.body if pr.body is not None else self.body
        self.draft = pr.draft if pr.draft is not None else self.draft


@dataclass(frozen=True)
class Skip:
    """An event the action does not act on; ``reason`` says why (shown in the log)."""

    reason: str


@dataclass(frozen=True)
class Refusal:
    """A ``/simulate`` command from someone without write, maintain or admin
    access: reply politely (once per user per pull request), run nothing."""

    repository: str
    number: int
    login: str
    association: str
    #: the role GitHub reported (``read``, ``triage``, ``none``…), when it was asked
    role: str = ""


@dataclass(frozen=True)
class Command:
    """A parsed ``/simulate`` comment.

    ``kind`` is ``"run"`` (review the pull request's current head) or
    ``"accept"`` (a maintainer's override: ``/simulate accept C1 <reason>``,
    ``/simulate accept C1,C3 <reason>`` or ``/simulate accept all <reason>``).
    ``constraints`` are the ids as typed (empty with ``all``); ``reason`` is the
    rest of the comment's first line, then its following lines, stripped."""

    kind: str = "run"
    constraints: tuple[str, ...] = ()
    all: bool = False
    reason: str = ""


def is_command(body: str | None) -> bool:
    """True when the comment body starts with ``/simulate``, compared without
    case: exactly what ``startsWith(github.event.comment.body, '/simulate')``
    tests in a workflow's ``if:`` (GitHub's expression functions ignore case),
    so a job the workflow starts is never silently skipped by the action."""
    return (body or "")[: len(COMMAND)].casefold() == COMMAND.casefold()


_ACCEPT_ID = re.compile(r"[A-Za-z][\w.-]*")


def parse_command(body: str | None) -> Command | None:
    """The :class:`Command` in a comment, or ``None`` when :func:`is_command` is false.

    After ``/simulate`` the first word ``accept`` (any case) makes an override:
    the next word is ``all`` or a comma-separated list of constraint ids, and
    further words are ids too while they are joined by commas
    (``accept C1, C3 reason``); whatever follows is the reason. Anything else
    after ``/simulate`` is a plain run."""
    if not is_command(body):
        return None
    rest = (body or "")[len(COMMAND):]
    words = rest.split(None, 1)
    if not words or words[0].casefold() != "accept":
        return Command("run")
    tail = words[1] if len(words) > 1 else ""
    m = re.match(r"\s*(?P<ids>[^\s,]+(?:\s*,\s*[^\s,]+)*)\s*", tail)
    if not m:
        return Command("accept", reason="")
    ids = [i.rstrip(":;.") for i in re.split(r"\s*,\s*", m.group("ids")) if i.rstrip(":;.")]
    reason = " ".join(tail[m.end():].split())
    if len(ids) == 1 and ids[0].casefold() == "all":
        return Command("accept", all=True, reason=reason)
    return Command("accept", constraints=tuple(dict.fromkeys(ids)), reason=reason)


def _dispatch_number(payload: EventPayload, inputs: ActionInputs) -> int | None:
    raw = None
    for key in ("pull_request", "pull-request", "pr", "number"):
        if payload.inputs and str(payload.inputs.get(key, "")).strip():
            raw = str(payload.inputs[key]).strip()
            break
    if raw is None:
        return inputs.pull_request
    raw = raw.lstrip("#")
    if not raw.isdigit():
        raise ConfigError(f"workflow_dispatch input pull_request must be a number, got {raw!r}", source="event inputs")
    return int(raw)


def resolve_event(event_name: str, payload: EventPayload, inputs: ActionInputs, repository: str = "") -> Target | Skip:
    """Decide what this run acts on. Never calls the network."""
    repo = repository or (payload.repository.full_name if payload.repository else "") or ""
    if event_name in ("pull_request", "pull_request_target"):
        pr = payload.pull_request
        if pr is None:
            return Skip(f"{event_name} event without a pull_request object")
        if payload.action not in REVIEW_ACTIONS:
            return Skip(f"{event_name} action {payload.action!r} is not reviewed (only {', '.join(sorted(REVIEW_ACTIONS))})")
        if pr.draft and not inputs.include_drafts:
            return Skip("draft pull request (set include-drafts: true to review drafts)")
        number = pr.number or payload.number
        if not number:
            return Skip(f"{event_name} event without a pull request number")
        target = Target(event=event_name, repository=repo, number=number)
        target.fill_from(pr)
        return target
    if event_name == "issue_comment":
        issue, comment = payload.issue, payload.comment
        if payload.action != "created":
            return Skip(f"issue_comment action {payload.action!r}: only new comments are commands")
        if issue is None or not issue.pull_request or not issue.number:
            return Skip("comment on an issue, not a pull request")
        if comment is None or not is_command(comment.body):
            return Skip(f"comment is not a {COMMAND} command")
        association = (comment.author_association or "NONE").upper()
        login = (comment.user.login if comment.user else None) or ""
        if not login:
            return Skip("command comment without an author login")
        # who may run it is asked of GitHub (collaborator permission) by the runner, not read from the payload
        return Target(event=event_name, repository=repo, number=issue.number, command_comment_id=comment.id,
                      command=parse_command(comment.body), commenter=login, association=association)
    if event_name == "workflow_dispatch":
        number = _dispatch_number(payload, inputs)
        if number is None:
            return Skip("workflow_dispatch without a pull_request input (add `inputs.pull_request` to the workflow)")
        return Target(event=event_name, repository=repo, number=number)
    return Skip(f"event {event_name or '(none)'!r} is not handled (pull_request, pull_request_target, issue_comment, workflow_dispatch)")
