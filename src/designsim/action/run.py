"""The action's orchestration: event -> plan -> (skip | refuse | override | run) -> publish.

:func:`run_action` is the whole action as one call; the click command in
:mod:`designsim.action.cli` only parses ``--dry-run``. Tests and rulebook
authors pass their own ``publisher`` (e.g.
:class:`designsim.testing.github.GitHubRecorder`) and ``provider``.

Order of work for a pull request (the reasons are in README):

1. ``::add-mask::`` for the Gemini key and the token — before anything else is printed.
2. Event -> :class:`~designsim.action.context.Target`, or a skip.
3. A ``/simulate`` comment: its author must have write, maintain or admin on
   the repository (``GET /collaborators/{user}/permission``); anyone else gets
   one polite reply per pull request, and nothing runs.
4. Pull request details (SHAs, fork?) from the API when the payload lacks them.
   A fork's ``pull_request`` run has a read-only token: stop here, before any
   write and any model call, with verdict ``skipped`` and a how-to in the step summary.
5. The rulebook from the **base** SHA through the contents API (never the PR head).
6. The diff of exactly ``base...head`` by SHA (compare API; on 406 the files
   list, after checking the head has not moved) -> the same evidence budget as
   ``designsim review``; the sealed inputs digest (:func:`seal_inputs`).
7. Our own status or check run on the head SHA (creator checked): if its tag
   carries the same digest, re-publish its verdict and stop — no model call.
8. No key: a configuration error (exit 2, status ``error``), never green.
9. pending -> run -> comment (upsert) -> status (tagged) -> summary, outputs, JSON report.

``/simulate accept C1 <reason>`` (:meth:`ActionRun.accept`) works from the
tag on our own latest status only. Every exception ends in :meth:`ActionRun.fatal`:
status ``error`` (never a pending one left behind), outputs and step summary
written, one ``::error::`` line, exit 3 (2 for configuration errors).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from designsim.action.context import (
    ACTIONS_BOT, COMMAND, MAINTAINER_ROLES, ActionEnv, ActionInputs, PullRequest, Refusal, Skip, Target,
    load_payload, read_env, read_input, read_inputs, resolve_event,
)
from designsim.action.publisher import (
    OwnResult, Publisher, ResultTag, StatusReporter, find_own_comments, upsert_comment, write_outputs,
    write_step_summary,
)
from designsim.errors import ConfigError, DesignsimError
from designsim.redact import Redactor
from designsim.report import GITHUB_COMMENT_LIMIT, rulebook_marker

Echo = Callable[[str], None]

#: Severity order of the gate (issue 8): a violated constraint at or above the rulebook's ``gate.fail_on`` fails.
SEVERITY_RANK = {"none": 0, "minor": 1, "major": 2, "blocker": 3}
#: Marker at the start of a refusal reply, so each user gets at most one per pull request.
_REFUSAL_RE = re.compile(r"<!-- designsim:refusal=(?P<login>[^\s>]+) -->")
_OVERRIDES_HEADING = "<!-- designsim:overrides -->"


@dataclass
class Outcome:
    """What a run produced (also written to ``$GITHUB_OUTPUT``)."""

    exit_code: int = 0
    verdict: str = ""
    comment_url: str = ""
    report_path: str = ""
    total_tokens: int = 0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, str]:
        return {"verdict": self.verdict, "comment-url": self.comment_url, "report-path": self.report_path,
                "total-tokens": str(self.total_tokens)}


class Cancelled(KeyboardInterrupt):
    """SIGTERM (a cancelled job: the runner stops the container) turned into an exception the top level catches."""


def _exit_for(verdict: str, inputs: ActionInputs) -> int:
    from designsim.simulation import EXIT_CODES

    code = {**EXIT_CODES, "warn": 0, "error": 3}.get(verdict, 0)
    return code if verdict in inputs.fail_on else 0


def _escape_command(text: str) -> str:
    """Workflow-command data escaping (``%``, CR, LF), so one message is one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def seal_inputs(review_digest: str, rulebook_blob_sha: str, key: str | None) -> str:
    """The inputs digest written into our own status: sha256 of everything that
    decides the review (:func:`designsim.simulation.inputs_hash`: head SHA,
    rulebook, templates, personas, models) plus the rulebook's git blob SHA,
    sealed with HMAC-SHA256 under the Gemini key when there is one. The plain
    digest is computable from public data; the sealed one only by a holder of
    the key, so a status forged under our context cannot name a matching digest.
    32 hex characters (128 bits). Rotating the key makes the next run a fresh review."""
    message = f"{review_digest}\0{rulebook_blob_sha}".encode()
    if key:
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]
    return hashlib.sha256(message).hexdigest()[:32]


def decision_verdict(review) -> str:
    """The pull request's verdict: ``review.decision.verdict`` (the gate's
    :class:`~designsim.decision.Decision`) when the review has one, else ``review.verdict``."""
    decision = getattr(review, "decision", None)
    return str(getattr(decision, "verdict", None) or review.verdict)


def decision_reason(review) -> str:
    """The one-line reason for :func:`decision_verdict` (the decision's, else the review summary)."""
    decision = getattr(review, "decision", None)
    return str(getattr(decision, "reason", None) or review.summary)


def failing_constraints(review, rulebook) -> tuple[str, ...]:
    """Blocking constraint ids whose violation failed the gate
    (:func:`designsim.decision.failing_findings`: violated by a trusted
    deciding stage, not ``blocking: false``, at or above ``gate.fail_on``).
    Empty when the review did not fail."""
    from designsim.decision import failing_findings

    decision = getattr(review, "decision", None)
    if decision is None or decision.verdict not in ("fail", "warn"):
        return ()
    return tuple(dict.fromkeys(f.constraint for f in failing_findings(decision, rulebook)))


def constraint_ids(rulebook) -> list[str]:
    """The rulebook's constraint ids, in order (empty when it has none)."""
    return [str(c.id) for c in getattr(rulebook, "constraints", []) or [] if getattr(c, "id", None)]


class ActionRun:
    """One invocation. ``env`` defaults to ``os.environ``; ``publisher`` to a
    live :class:`~designsim.action.github_api.GitHubClient`; ``provider`` to
    Gemini built from the ``gemini-api-key`` input. Never raises: a bad input
    is kept and reported by :meth:`run` like any other fatal error."""

    def __init__(self, env: Mapping[str, str] | None = None, *, dry_run: bool = False, publisher: Publisher | None = None,
                 provider: Any = None, retry: Any = None, echo: Echo | None = None):
        self.env = dict(os.environ if env is None else env)
        self.input_error: DesignsimError | None = None
        try:
            self.inputs = read_inputs(self.env)
        except DesignsimError as exc:
            self.input_error = exc
            self.inputs = ActionInputs(github_token=read_input("github-token", self.env),
                                       gemini_api_key=read_input("gemini-api-key", self.env))
        self.aenv: ActionEnv = read_env(self.env)
        if self.inputs.event_name or self.inputs.event_path:
            path = self.inputs.event_path and str(self.workspace_path(self.inputs.event_path))
            self.aenv = replace(self.aenv, event_name=self.inputs.event_name or self.aenv.event_name,
                                event_path=path or self.aenv.event_path)
        self.dry_run = dry_run or self.inputs.dry_run
        self._publisher = publisher
        self._provider = provider
        self._retry = retry
        self.redact = Redactor(self.inputs.secrets + [v for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GITHUB_TOKEN")
                                                      if (v := self.env.get(k, ""))])
        # a dry run keeps stdout for the plan JSON; workflow commands work on stderr too
        stream = sys.stderr if self.dry_run else sys.stdout
        self._echo = echo or (lambda line: print(line, file=stream, flush=True))
        self.reporter: StatusReporter | None = None
        self.outputs_written = False

    # -- small helpers
    def echo(self, line: str) -> None:
        self._echo(self.redact(line))

    def workspace_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.aenv.workspace or ".") / p

    def host_path(self, path: Path) -> str:
        """``path`` as the runner sees it: relative to ``GITHUB_WORKSPACE``
        (inside a Docker action the workspace is mounted at
        ``/github/workspace``, a path that does not exist on the runner)."""
        root = Path(self.aenv.workspace or ".").resolve()
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            return str(path)

    @property
    def gemini_key(self) -> str:
        """The key from the ``gemini-api-key`` input, else ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``."""
        return self.inputs.gemini_api_key or self.env.get("GEMINI_API_KEY") or self.env.get("GOOGLE_API_KEY") or ""

    def client(self) -> Publisher:
        if self._publisher is None:
            from designsim.action.github_api import GitHubClient

            if not self.inputs.github_token:
                raise ConfigError("the github-token input is empty (the default is ${{ github.token }})", source="input github-token")
            self._publisher = GitHubClient(self.inputs.github_token, self.aenv.repository, api_url=self.aenv.api_url, retry=self._retry)
        return self._publisher

    @property
    def self_logins(self) -> set[str]:
        """Whose comments and statuses count as ours. ``GET /user`` is not
        allowed for a ``GITHUB_TOKEN`` (an installation token), whose comments
        and statuses are written by ``github-actions[bot]``; with another token
        set ``comment-author``."""
        return {self.inputs.comment_author} if self.inputs.comment_author else {ACTIONS_BOT}

    def finish(self, outcome: Outcome) -> int:
        write_outputs(self.aenv.output, {k: self.redact(v) for k, v in outcome.outputs().items()})
        self.outputs_written = True
        return outcome.exit_code

    def summary(self, markdown: str) -> None:
        write_step_summary(self.aenv.step_summary, self.redact(markdown))

    # -- entry
    def run(self) -> int:
        """Run once; returns the exit code. Catches everything (see :meth:`fatal`)."""
        for secret in self.inputs.secrets:  # first, before anything that might print
            self._echo(f"::add-mask::{secret}")
        previous = None
        try:
            try:
                previous = signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # not the main thread (a test harness): no handler
                previous = None
            if self.input_error is not None:
                raise self.input_error
            if self.inputs.mode in ("batch", "recover"):
                return self.run_batch()
            payload = load_payload(self.aenv.event_path)
            target = resolve_event(self.aenv.event_name, payload, self.inputs, self.aenv.repository)
            if isinstance(target, Skip):
                return self.skip(target.reason)
            if self.dry_run:
                return self.plan(target)
            if target.command is not None:
                refusal = self.authorize(target)
                if refusal is not None:
                    return self.refuse(refusal)
                if target.command.kind == "accept":
                    return self.accept(target)
            return self.review(target)
        except DesignsimError as exc:
            return self.fatal(str(exc), exc.exit_code)
        except Cancelled:
            return self.fatal("the job was cancelled (SIGTERM) before designsim finished", 3)
        except KeyboardInterrupt:
            return self.fatal("interrupted before designsim finished", 3)
        except Exception as exc:  # noqa: BLE001 - the action's one catch-all (issue 11): never a traceback
            first = (str(exc).strip().splitlines() or [""])[0]
            return self.fatal(f"unexpected {type(exc).__name__}: {first}" if first else f"unexpected {type(exc).__name__}", 3)
        finally:
            if previous is not None:
                try:
                    signal.signal(signal.SIGTERM, previous)
                except (ValueError, TypeError):
                    pass

    def fatal(self, message: str, exit_code: int = 3) -> int:
        """The one fatal-error path: the status (if this run set one, or knows
        which) becomes ``error``; ``::error::`` with a one-line reason; step
        summary and outputs (``verdict=error``) written; exit ``exit_code``.
        Failures while reporting are swallowed: the exit code still tells."""
        message = _one_line(self.redact(message), 600)
        if self.reporter is not None and self.reporter.final_state is None:
            try:
                self.reporter.complete("error", f"designsim could not finish: {message}")
            except Exception:  # noqa: BLE001 - best effort: GitHub may be what failed
                pass
        self.echo(f"::error title=designsim::{_escape_command(message)}")
        if not self.dry_run:
            try:
                self.summary(f"## ⚠️ designsim: error\n\n{_fenced(message)}\n")
            except Exception:  # noqa: BLE001
                pass
            if not self.outputs_written:
                try:
                    write_outputs(self.aenv.output, {"verdict": "error", "comment-url": "", "report-path": "", "total-tokens": "0"})
                except Exception:  # noqa: BLE001
                    pass
        return exit_code

    def skip(self, reason: str) -> int:
        if self.dry_run:
            print(json.dumps({"skipped": reason}))
            return 0
        self.echo(f"designsim: skipped: {reason}")
        self.summary(f"designsim: skipped — {reason}\n")
        return self.finish(Outcome(verdict="skipped", skipped=reason))

    # -- who may run it
    def authorize(self, target: Target) -> Refusal | None:
        """``None`` when the commenter has write, maintain or admin on the
        repository (GitHub's collaborator-permission endpoint), else a :class:`Refusal`."""
        from designsim.action.github_api import WRITE_PERMISSIONS

        login = target.commenter or ""
        data = self.client().get_collaborator_permission(login)
        role = str(data.get("role_name") or "").lower()
        permission = str(data.get("permission") or "none").lower()
        if role in MAINTAINER_ROLES or (role not in ("triage", "read", "none") and permission in WRITE_PERMISSIONS):
            return None
        return Refusal(target.repository, target.number, login, target.association or "NONE", role or permission)

    def refuse(self, refusal: Refusal) -> int:
        """One polite reply per user per pull request (found again by its
        hidden marker in a comment of ours); nothing runs."""
        reason = (f"{COMMAND} from {refusal.login} (role {refusal.role or 'none'}) is not allowed: "
                  "it needs write, maintain or admin access to the repository")
        self.echo(f"designsim: {reason}")
        client = self.client()
        earlier = [c for c in client.list_issue_comments(refusal.number)
                   if ((c.get("user") or {}).get("login") or "") in self.self_logins
                   and (m := _REFUSAL_RE.match(c.get("body") or "")) and m.group("login").lower() == refusal.login.lower()]
        if earlier:
            self.echo(f"designsim: {refusal.login} was already answered on #{refusal.number}; no second reply")
        else:
            body = (f"<!-- designsim:refusal={refusal.login} -->\n"
                    f"Thanks for asking, `{refusal.login}`! `{COMMAND}` runs the design simulations with this repository's "
                    "Gemini key, so only people with write, maintain or admin access to the repository can start it "
                    "(or accept a finding). A maintainer can comment `/simulate` here to run it.")
            client.create_comment(refusal.number, body)
        self.summary(f"designsim: skipped — {reason}\n")
        return self.finish(Outcome(verdict="skipped", skipped=reason))

    # -- dry run
    def plan(self, target: Target) -> int:
        """Print the plan JSON (DESIGN.md contract). Without a token: no network at all."""
        from designsim.rulebook import load_rulebook

        if self.inputs.github_token or self._publisher is not None:
            self.fill_target(target)
            rulebook, ref, _ = self.base_rulebook(target)
        else:
            rulebook, ref = load_rulebook(self.workspace_path(self.inputs.rulebook)), "working-directory"
        plan = {
            "event": target.event, "repository": target.repository, "pull_request": target.number,
            "head_sha": target.head_sha, "base_sha": target.base_sha, "base_ref": target.base_ref,
            "rulebook_ref": ref, "stages": rulebook.stage_ids(),
        }
        if target.command is not None:
            plan["command"] = target.command.kind
        if target.event == "pull_request" and target.is_fork:
            plan["fork"] = True
        print(json.dumps(plan))
        return 0

    # -- reading the pull request
    def fill_target(self, target: Target) -> None:
        if target.head_sha and target.base_sha and target.head_repo and target.event.startswith("pull_request"):
            return
        data = self.client().get_pull(target.number)
        target.fill_from(PullRequest.model_validate(data))
        if not target.head_sha:
            raise ConfigError(f"pull request #{target.number} has no head SHA")

    def base_rulebook(self, target: Target):
        """``(rulebook, ref, blob_sha)``: the rulebook read from the base SHA."""
        from designsim.action.github_api import repo_path
        from designsim.rulebook import parse_rulebook

        ref = target.base_sha or target.base_ref
        if not ref:
            raise ConfigError(f"pull request #{target.number} has no base ref to read the rulebook from")
        try:
            path = repo_path(self.inputs.rulebook, what="rulebook")
        except ValueError as exc:
            raise ConfigError(str(exc), source="input rulebook") from exc
        found = _get_file(self.client(), path, ref)
        if found is None:
            raise ConfigError(f"no rulebook {path!r} on the base branch ({target.base_ref or ''} @ {ref[:12]}); "
                              "add one there first (designsim init), or set the rulebook input", source="input rulebook")
        text, blob = found
        rulebook = parse_rulebook(text, f"{path}@{ref[:12]}")
        if self.inputs.model:
            rulebook = rulebook.model_copy(update={"model": self.inputs.model})
        return rulebook, ref, blob

    def fetch_diff(self, target: Target) -> tuple[bytes, list[str]]:
        """The diff of exactly ``base_sha...head_sha`` (the SHAs this run
        reviews and sets the status on), never "the pull request's diff now".
        On 406 (too large) the files list is used, and the pull request is
        read again: if its head moved meanwhile, the run stops (the push
        triggers its own review)."""
        from designsim.action.github_api import DiffTooLarge, unified_diff_from_files

        client = self.client()
        if not (target.base_sha and target.head_sha):
            raise ConfigError(f"pull request #{target.number} lacks a base or head SHA to compare")
        compare = getattr(client, "compare_diff", None)
        try:
            if compare is None:  # a publisher without the compare call (an older recorder)
                return client.get_pull_diff(target.number), []
            return compare(target.base_sha, target.head_sha), []
        except DiffTooLarge:
            files = client.list_pull_files(target.number)
            now = PullRequest.model_validate(client.get_pull(target.number))
            head_now = now.head.sha if now.head else None
            if head_now and head_now != target.head_sha:
                from designsim.errors import GitHubError

                raise GitHubError(f"the head of #{target.number} moved from {target.head_sha[:12]} to {head_now[:12]} "
                                  "while its files were read; the new push is reviewed by its own run")
            raw, notes = unified_diff_from_files(files)
            return raw, ["GitHub refused the full diff as too large (406); rebuilt it from the files list "
                         f"({len(files)} files)"] + notes

    def extra_files(self, rulebook, ref: str) -> dict[str, str]:
        """The rulebook's ``evidence.files`` read from the base ref. Each path
        is normalised first and refused (exit 2, naming the rulebook field)
        when absolute or leaving the repository; globs would need the git
        trees API, so they are skipped with a note."""
        from designsim.action.github_api import repo_path

        out: dict[str, str] = {}
        for i, pattern in enumerate(rulebook.evidence.files):
            try:
                path = repo_path(pattern, what="evidence file")
            except ValueError as exc:
                raise ConfigError(str(exc), source=f"{self.inputs.rulebook}@{ref[:12]}", field=f"evidence.files.{i}") from exc
            if any(ch in path for ch in "*?["):
                self.echo(f"::warning::evidence.files glob {pattern!r} is not expanded in the action; list the paths")
                continue
            found = _get_file(self.client(), path, ref)
            if found is not None:
                out[path] = found[0]
        return out

    # -- the review
    def review(self, target: Target) -> int:
        from designsim.action.github_api import changes_path
        from designsim.prompts import PromptLibrary
        from designsim.review import build_plan
        from designsim.simulation import inputs_hash

        client = self.client()
        self.fill_target(target)
        if target.event == "pull_request" and target.is_fork:
            return self.fork_skip(target)
        rulebook, ref, blob = self.base_rulebook(target)
        raw, diff_notes = self.fetch_diff(target)
        for note in diff_notes:
            self.echo(f"designsim: {note}")
        notice = None
        if changes_path(raw, self.inputs.rulebook):
            notice = (f"This pull request changes `{self.inputs.rulebook}`. The gate uses the base branch's rulebook; "
                      "the new one applies after merge.")
        library = PromptLibrary()
        plan = build_plan(rulebook, raw, pr_title=target.title, pr_body=target.body, extra_files=self.extra_files(rulebook, ref),
                          library=library, source=f"pull request #{target.number}")
        key = self.gemini_key
        seal = seal_inputs(inputs_hash(plan, head_sha=target.head_sha), blob, key or None)
        comments = client.list_issue_comments(target.number) if self.inputs.comment else []
        self.reporter = StatusReporter(client, self.inputs.status, target.head_sha, rulebook.name, target_url=self.aenv.run_url)
        previous = self.reporter.own_result(self.self_logins)
        # an inconclusive or errored verdict (model down, quota, grader) is never reused: the next run retries it
        if previous and previous.tag.inputs == seal and previous.tag.verdict in ("pass", "fail", "neutral", "warn"):
            return self.republish(target, rulebook.name, previous, comments)
        if not key and self._provider is None:
            raise ConfigError("no Gemini API key: set the gemini-api-key input (e.g. ${{ secrets.GEMINI_API_KEY }}); "
                              "fork pull requests are skipped before this point", source="input gemini-api-key")
        self.reporter.pending()
        provider = self._provider
        if provider is None:
            from designsim.providers import make_provider

            provider = make_provider("gemini", model=rulebook.model, api_key=key)
        return self.run_review(target, plan, provider, notice, comments, seal)

    def run_review(self, target: Target, plan, provider, notice: str | None, comments: list[dict], seal: str = "") -> int:
        from designsim.fileio import atomic_write_text
        from designsim.report import render_json, render_markdown
        from designsim.review import review_diff

        review = review_diff(plan, provider, head_sha=target.head_sha)
        verdict = decision_verdict(review)
        reason = decision_reason(review)
        body = self.redact(render_markdown(review, library=plan.library, notice=notice))
        outcome = Outcome(verdict=verdict, total_tokens=review.usage.total_tokens, exit_code=_exit_for(verdict, self.inputs))
        if self.inputs.comment:
            result = upsert_comment(self.client(), target.number, review.rulebook, body, self.self_logins, existing=comments)
            outcome.comment_url = result.url or ""
            self.echo(f"designsim: comment {result.action}: {outcome.comment_url}")
        tag = ResultTag(verdict if verdict in ("pass", "fail", "warn", "neutral") else "inconclusive", seal,
                        failing_constraints(review, plan.rulebook))
        self.reporter.complete(verdict if verdict in ("pass", "fail", "warn", "neutral") else "inconclusive",
                               self.redact(_status_description(verdict, reason, tag)), summary=body, tag=tag)
        if self.inputs.report_path:
            path = self.workspace_path(self.inputs.report_path)
            atomic_write_text(path, self.redact(json.dumps(render_json(review), indent=2, ensure_ascii=False)) + "\n")
            outcome.report_path = self.host_path(path)
        self.summary(step_summary(review, target))
        self.echo(f"designsim: {verdict.upper()} — {reason} ({review.usage.total_tokens:,} tokens)")
        return self.finish(outcome)

    def republish(self, target: Target, rulebook: str, previous: OwnResult, comments: list[dict]) -> int:
        """Inputs unchanged since our own last status on this head SHA: set it
        again from its tag (overrides included), remove duplicate comments,
        spend no tokens. The comment is not read for any of this."""
        tag = previous.tag
        outcome_name = tag.outcome
        if outcome_name == "accepted":
            description = previous.description or f"accepted by {', '.join(tag.by)}"
        else:
            description = f"{tag.verdict}: unchanged since the last run (same head, rulebook, templates and model)"
        self.reporter.complete(outcome_name, description, summary=f"{description}. See the pull request comment.", tag=tag)
        url = ""
        own = find_own_comments(comments, rulebook, self.self_logins)
        if own:
            url = upsert_comment(self.client(), target.number, rulebook, own[0].get("body", ""), self.self_logins,
                                 existing=comments).url or ""
        self.echo(f"designsim: inputs unchanged since the last run; re-published verdict {outcome_name!r}, no model calls")
        verdict = "pass" if outcome_name == "accepted" else tag.verdict
        self.summary(f"## designsim — `{rulebook}`: {outcome_name}\n\n"
                     "Inputs unchanged since the last run (our own status on this head SHA says so): verdict re-published, "
                     "no model calls, 0 tokens.\n")
        return self.finish(Outcome(verdict=verdict, comment_url=url, exit_code=_exit_for(verdict, self.inputs)))

    def fork_skip(self, target: Target) -> int:
        """A fork's ``pull_request`` run: GitHub gives it a read-only token and
        no secrets. Detected before any write and any model call; exit 0,
        verdict ``skipped``; the step summary tells the maintainer how to run it."""
        head = target.head_repo or "a fork"
        text = (f"## ⚪ designsim: not run on #{target.number} (fork pull request)\n\n"
                f"This pull request comes from `{head}`. GitHub runs a fork's `pull_request` workflow with a **read-only** "
                "token and without secrets, so designsim cannot call Gemini, comment or set a status. Nothing was judged: "
                "this is **not** a pass; a required `designsim/…` check stays *expected* until it is run.\n\n"
                "**A maintainer can run it:**\n\n"
                f"- comment `{COMMAND}` on the pull request (an `issue_comment` run has the base repository's token and "
                "secrets; only write, maintain or admin may start it), or\n"
                "- trigger the workflow on `pull_request_target` **without checking out the pull request**. designsim "
                "never executes pull-request code: it reads the diff and the base branch's rulebook through the API, "
                "which is what makes that trigger safe for it. It still costs: every fork push spends Gemini tokens "
                "and quota, and the diff (untrusted text) reaches the model with your key.\n")
        self.echo(f"::notice title=designsim::fork pull request (read-only token): not run; a maintainer can comment {COMMAND}")
        self.summary(text)
        return self.finish(Outcome(verdict="skipped", skipped="fork pull request with a read-only token"))

    # -- the override
    def accept(self, target: Target) -> int:
        """``/simulate accept C1 <reason>`` or ``/simulate accept all <reason>``
        from a maintainer (already authorised by :meth:`authorize`).

        Works only from designsim's own latest completed status or check run
        on the pull request's CURRENT head SHA: its tag says which blocking
        constraints failed. When every one of them is accepted (cumulatively
        across accept comments, or ``all``) the status becomes ``success``,
        described as accepted by the login; otherwise it stays ``failure``
        with a note naming what is still violated. The designsim comment gains
        an audit line (who, what, why, which SHA). The next push has no status
        and is reviewed normally."""
        cmd = target.command
        login = target.commenter or "someone"
        client = self.client()
        self.fill_target(target)
        rulebook, _, _ = self.base_rulebook(target)
        sha = target.head_sha or ""
        self.reporter = StatusReporter(client, self.inputs.status, sha, rulebook.name, target_url=self.aenv.run_url)
        known = constraint_ids(rulebook)
        problem = None
        previous = self.reporter.own_result(self.self_logins)
        if self.inputs.status == "none":
            problem = "the action runs with `status: none`, so there is no designsim status to accept"
        elif not cmd.reason:
            problem = f"say why: `{COMMAND} accept {'all' if cmd.all else ','.join(cmd.constraints) or 'C1'} <reason>`"
        elif not cmd.all and not cmd.constraints:
            problem = f"name the constraints: `{COMMAND} accept C1 <reason>` or `{COMMAND} accept all <reason>`"
        elif unknown := [c for c in cmd.constraints if known and c not in known]:
            problem = f"unknown constraint id(s) {', '.join(unknown)}; this rulebook has {', '.join(known) or 'none'}"
        elif previous is None:
            problem = f"there is no designsim result on the current head `{sha[:12]}` to accept (run `{COMMAND}` first)"
        elif previous.tag.outcome in ("pass", "neutral", "accepted"):
            problem = f"the current head `{sha[:12]}` is not failing ({previous.tag.outcome}); nothing to accept"
        elif previous.tag.verdict not in ("fail", "warn"):
            problem = (f"the result on `{sha[:12]}` is {previous.tag.verdict}: nothing trusted was judged violated, so there "
                       f"is nothing to accept; re-run it with `{COMMAND}`")
        elif not cmd.all and not previous.tag.violated:
            problem = "the failing result names no constraint ids; use `accept all <reason>`"
        elif not cmd.all and not (set(cmd.constraints) & set(previous.tag.violated)):
            problem = (f"{', '.join(cmd.constraints)} did not fail on `{sha[:12]}`; the failing constraints are "
                       f"{', '.join(previous.tag.remaining or previous.tag.violated)}")
        if problem:
            return self.accept_refused(target, problem)
        tag = previous.tag
        newly = ("*",) if cmd.all else tuple(c for c in cmd.constraints)
        tag = replace(tag, accepted=tuple(dict.fromkeys(tag.accepted + newly)), by=tuple(dict.fromkeys(tag.by + (login,))))
        what = "all findings" if cmd.all else ", ".join(cmd.constraints)
        if tag.outcome == "accepted":
            description = f"Accepted by {login}: {what} — {cmd.reason}"
            self.reporter.complete("accepted", self.redact(description), summary=self.redact(description), tag=tag)
            verdict = "pass"
        else:
            still = ", ".join(tag.remaining)
            description = f"{what} accepted by {login}; still violated: {still}"
            self.reporter.complete(tag.verdict, self.redact(description), summary=self.redact(description), tag=tag)
            verdict = tag.verdict
        comment_url = self.record_override(target, rulebook.name, login, what, cmd.reason, sha, still_violated=tag.remaining)
        self.echo(f"designsim: {description}")
        self.summary(f"## designsim — `{rulebook.name}` on #{target.number}: "
                     f"{'✅ accepted' if verdict == 'pass' else '❌ still failing'}\n\n{_defuse(description)} (head `{sha[:12]}`)\n")
        return self.finish(Outcome(verdict=verdict, comment_url=comment_url, exit_code=_exit_for(verdict, self.inputs)))

    def record_override(self, target: Target, rulebook: str, login: str, what: str, reason: str, sha: str,
                        *, still_violated: tuple[str, ...]) -> str:
        """Append the audit line to designsim's comment (or post one when there
        is none); returns its URL. The comment is the record people read; the
        tag on our status is what the gate trusts."""
        client = self.client()
        link = ""
        if target.command_comment_id:
            link = f" ([comment]({self.aenv.server_url.rstrip('/')}/{target.repository}/pull/{target.number}"\
                   f"#issuecomment-{target.command_comment_id}))"
        note = f" — still violated: {', '.join(still_violated)}" if still_violated else ""
        line = f"- `{login}` accepted **{_defuse(what)}** on `{sha[:12]}`: {_defuse(reason)}{link}{note}"
        comments = client.list_issue_comments(target.number)
        own = find_own_comments(comments, rulebook, self.self_logins)
        if own:
            body = own[0].get("body") or ""
            if _OVERRIDES_HEADING not in body:
                body = body.rstrip("\n") + f"\n\n{_OVERRIDES_HEADING}\n### Accepted by a maintainer\n"
            body = body.rstrip("\n") + "\n" + line + "\n"
            if len(body) > GITHUB_COMMENT_LIMIT:
                body = body[: GITHUB_COMMENT_LIMIT - len(line) - 40] + "\n…\n" + line + "\n"
            result = upsert_comment(client, target.number, rulebook, self.redact(body), self.self_logins, existing=comments)
            return result.url or ""
        body = f"{rulebook_marker(rulebook)}\n{_OVERRIDES_HEADING}\n### designsim — `{rulebook}`: accepted by a maintainer\n{line}\n"
        return upsert_comment(client, target.number, rulebook, self.redact(body), self.self_logins, existing=comments).url or ""

    def accept_refused(self, target: Target, problem: str) -> int:
        """A maintainer's accept that cannot apply: one reply saying why; the status is left as it is."""
        self.echo(f"designsim: {COMMAND} accept not applied: {problem}")
        self.client().create_comment(target.number, f"`{COMMAND} accept` was not applied, `{target.commenter}`: {problem}.")
        self.summary(f"designsim: `{COMMAND} accept` not applied — {problem}\n")
        return self.finish(Outcome(verdict="skipped", skipped=problem))

    # -- batch modes
    def run_batch(self) -> int:
        """``mode: batch`` runs the batch runner on ``batch-input`` into
        ``batch-output``; ``mode: recover`` recovers ``batch-output``
        (a RESULTS.pkl) from ``batch-input``. ``run-args`` are the CLI's options
        (``--rpm 30 --concurrency 4``). The key is passed to the provider as an
        argument (never put into ``os.environ``). ``report-path`` is the run's
        ``summary.json`` relative to the workspace (a path the runner has)."""
        i = self.inputs
        if not i.batch_input or not i.batch_output:
            raise ConfigError(f"mode {i.mode} needs the batch-input and batch-output inputs", source="input mode")
        extra = shlex.split(i.run_args)
        if i.model and "--model" not in extra:
            extra += ["--model", i.model]
        if i.mode == "batch":
            summary_path = self.workspace_path(i.batch_output) / "summary.json"
        else:
            summary_path = self.workspace_path(i.batch_output).parent / "summary.json"
        words = (["batch", "run", "--input", i.batch_input, "--out", i.batch_output] if i.mode == "batch"
                 else ["batch", "recover", "--input", i.batch_input, "--output", i.batch_output]) + extra
        shown = "designsim " + " ".join(shlex.quote(a) for a in words)
        if self.dry_run:
            print(json.dumps({"skipped": f"mode {i.mode}: dry run; would run {shown}"}))
            return 0
        from designsim.cli import batch_extra_message, missing_batch_extra

        try:
            missing = missing_batch_extra()  # the review image leaves pandas and pyarrow out
        except ModuleNotFoundError as exc:
            missing = exc.name or "pandas"
        if missing:
            raise ConfigError(batch_extra_message(f"mode: {i.mode}", missing), source="input mode")
        self.echo(f"designsim: running {shown} (the batch runner, called directly)")
        try:
            rc = run_batch_mode(i.mode, self.workspace_path(i.batch_input), self.workspace_path(i.batch_output), extra,
                                api_key=self.gemini_key or None, echo=self.echo)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in ("pandas", "pyarrow", "numpy"):
                raise
            raise ConfigError(batch_extra_message(f"mode: {i.mode}", exc.name), source="input mode") from exc
        outcome = Outcome(verdict="pass" if rc == 0 else "fail", exit_code=rc if (rc == 0 or "fail" in i.fail_on) else 0)
        if summary_path.is_file():
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
            except ValueError:
                summary = {}
            outcome.report_path = self.host_path(summary_path)
            outcome.total_tokens = int(summary.get("input_tokens", 0) or 0) + int(summary.get("output_tokens", 0) or 0)
            rows = "\n".join(f"| {k} | {summary.get(k)} |" for k in ("total", "succeeded", "failed", "requests", "retries",
                                                                        "input_tokens", "output_tokens", "duration_s") if k in summary)
            self.summary(f"## designsim {i.mode}\n\n| | |\n| --- | --- |\n{rows}\n")
        return self.finish(outcome)


def run_batch_mode(mode: str, input_path: Path, output_path: Path, args: list[str], *, api_key: str | None,
                   echo: Echo = print) -> int:
    """The action's one call into :mod:`designsim.batch`: ``mode`` ``batch``
    (:func:`designsim.batch.runner.execute_run` into the directory
    ``output_path``) or ``recover`` (:func:`designsim.batch.recover.recover`
    of the RESULTS.pkl ``output_path``). ``args`` are the CLI options of
    ``designsim batch run|recover`` (parsed by the same click command, so they
    mean the same); ``api_key`` goes to the provider as an argument.
    Returns 0 complete, 1 incomplete; raises :class:`ConfigError` (exit 2) for
    bad options or a missing key when something is pending, as the CLI does."""
    import click
    from rich.console import Console

    from designsim.batch import cli as batch_cli

    command = batch_cli.run_cmd if mode == "batch" else batch_cli.recover_cmd
    fixed = ["--input", str(input_path), "--out" if mode == "batch" else "--output", str(output_path)]
    try:
        ctx = command.make_context(f"designsim batch {'run' if mode == 'batch' else 'recover'}", fixed + list(args))
    except click.UsageError as exc:
        raise ConfigError(exc.format_message(), source="input run-args") from exc
    params = dict(ctx.params)
    timeout = params.pop("timeout")
    console = Console(stderr=True)

    def factory():
        from designsim.providers.gemini import GeminiProvider

        return GeminiProvider(api_key=api_key, default_model=params.get("model"), timeout_s=timeout)

    def no_key_guard():
        if not api_key:
            raise ConfigError("no Gemini API key: set the gemini-api-key input (e.g. ${{ secrets.GEMINI_API_KEY }})",
                              source="input gemini-api-key")
        return factory()

    if mode == "batch":
        from designsim.batch.runner import execute_run
        from designsim.batch.tables import load_job, parse_shard

        job = load_job(params.pop("input_path"), id_col=params.pop("id_col"), prompt_col=params.pop("prompt_col"))
        out_dir = params.pop("out_dir")
        shard_spec = parse_shard(params.get("shard"))
        if shard_spec:
            job = job.shard(*shard_spec)
        options = batch_cli._options(**params)
        result = execute_run(job, out_dir, options, no_key_guard, console=console)
        s = result.summary
        echo(f"designsim: {s.succeeded}/{s.total} succeeded, {s.failed} without a result; {s.run.requests} request(s)")
        if result.message:
            echo(f"designsim: stopped: {result.message}")
        return result.exit_code
    from designsim.batch.recover import recover

    input_p, output_p = params.pop("input_path"), params.pop("output_path")
    legacy, legacy_timeout = params.pop("legacy_script"), params.pop("legacy_timeout")
    id_col, prompt_col = params.pop("id_col"), params.pop("prompt_col")
    options = batch_cli._options(**params)
    report = recover(input_p, output_p, id_col=id_col, prompt_col=prompt_col, legacy_script=legacy, legacy_timeout_s=legacy_timeout,
                     options=options, provider_factory=no_key_guard, console=console)
    for line in report.lines():
        echo(f"designsim: {line}")
    return 0 if report.complete else 1


def _on_sigterm(signum, frame):  # pragma: no cover - exercised through a subprocess test
    raise Cancelled()


def _get_file(client, path: str, ref: str) -> tuple[str, str] | None:
    """``(text, blob_sha)`` of ``path`` at ``ref``; ``None`` if absent. Uses
    ``get_file`` when the publisher has it (blob SHA known), else ``get_file_text``."""
    getter = getattr(client, "get_file", None)
    if getter is not None:
        found = getter(path, ref)
        return (found.text, found.sha) if found is not None else None
    text = client.get_file_text(path, ref)
    return (text, "") if text is not None else None


def _defuse(text: str) -> str:
    from designsim.report import defuse

    return defuse(text)


def _fenced(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def _status_description(verdict: str, reason: str, tag: ResultTag) -> str:
    """The status line people read; the tag beside it is for designsim."""
    icon = {"pass": "✅", "fail": "❌", "warn": "⚠️", "neutral": "⚪"}.get(verdict, "⚠️")
    lead = reason
    if tag.violated and verdict in ("fail", "warn"):
        lead = f"{', '.join(tag.violated)} violated — {reason}"
    return f"{icon} {lead}"


def step_summary(review, target: Target) -> str:
    """The job summary, leading with the decision (verdict and its reason),
    then the constraint × stage verdicts when the review has a decision, the
    stage table, decision matrices and token totals (Markdown)."""
    from designsim.report import OUTCOME_ICON, VERDICT_ICON, defuse, matrix_table

    u = review.usage
    verdict = decision_verdict(review)
    icon = VERDICT_ICON.get(verdict, {"warn": "⚠️", "error": "⚠️"}.get(verdict, "⚪"))
    lines = [f"## {icon} {defuse(decision_reason(review))}", "",
             f"designsim — `{review.rulebook}` on #{target.number}: **{verdict}**", ""]
    decision = getattr(review, "decision", None)
    findings = list(getattr(decision, "findings", []) or []) if decision is not None else []
    if findings:
        stages = list(dict.fromkeys(str(f.stage) for f in findings))
        cells: dict[str, dict[str, str]] = {}
        for f in findings:
            mark = {"violated": "❌", "respected": "✅"}.get(str(f.verdict), "➖")
            sev = f" ({f.severity})" if str(f.verdict) == "violated" else ""
            agree = f" {f.agreement}" if getattr(f, "agreement", "") and str(getattr(f, "agreement", "")) not in ("1/1", "") else ""
            cells.setdefault(str(f.constraint), {})[str(f.stage)] = f"{mark} {f.verdict}{sev}{agree}"
        lines += ["| Constraint | " + " | ".join(defuse(s) for s in stages) + " |", "| --- |" + " --- |" * len(stages)]
        for cid, row in cells.items():
            lines.append(f"| {defuse(cid)} | " + " | ".join(row.get(s, "") for s in stages) + " |")
        lines.append("")
    lines += ["| Stage | Trust | Attempts | Tokens |", "| --- | --- | --- | --- |"]
    for s in review.stages:
        lines.append(f"| {defuse(s.title)} | {OUTCOME_ICON.get(s.outcome, '')} {s.outcome} | {len(s.attempts)} | {s.usage.total_tokens:,} |")
    for s in review.stages:
        if s.matrix is not None:
            lines += ["", f"### {defuse(s.title)}", "", matrix_table(s.matrix)]
    lines += ["", f"**Tokens:** {u.input_tokens:,} input + {u.output_tokens:,} output = {u.total_tokens:,} total"
              + (f" ({u.cached_tokens:,} cached)" if u.cached_tokens else ""),
              f"**Model:** `{review.model}` · judge `{review.judge_model}` · {review.duration_s:.1f} s"]
    return "\n".join(lines) + "\n"


def run_action(env: Mapping[str, str] | None = None, **kwargs) -> int:
    """Run the action once; returns the exit code. See :class:`ActionRun` for ``kwargs``."""
    return ActionRun(env, **kwargs).run()
