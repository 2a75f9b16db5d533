"""The action's orchestration: event -> plan -> (skip | run) -> publish.

:func:`run_action` is the whole action as one call; the click command in
:mod:`designsim.action.cli` only parses ``--dry-run``. Tests and rulebook
authors pass their own ``publisher`` (e.g.
:class:`designsim.testing.github.GitHubRecorder`) and ``provider``.

Order of work for a pull request (the reasons are in README):

1. ``::add-mask::`` for the Gemini key and the token — before anything else is printed.
2. Event -> :class:`~designsim.action.context.Target`, or a skip / a polite refusal.
3. Pull request details (SHAs, fork?) from the API when the payload lacks them.
4. The rulebook from the **base** SHA through the contents API (never the PR head).
5. The diff (diff media type; on 406, the files list) -> the same evidence
   budget as ``designsim review``; the inputs hash.
6. Our existing comment: if its hidden inputs hash matches, re-publish its
   verdict and stop — no model call, no tokens.
7. No key? A fork gets a neutral outcome and a how-to comment; otherwise the
   gate is ``error`` (never green).
8. pending -> run -> comment (upsert) -> status -> summary, outputs, JSON report.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from designsim.action.context import (
    ACTIONS_BOT, COMMAND, ActionEnv, ActionInputs, PullRequest, Refusal, Skip, Target,
    load_payload, read_env, read_inputs, resolve_event,
)
from designsim.action.publisher import (
    Publisher, StatusReporter, find_own_comments, upsert_comment, write_outputs, write_step_summary,
)
from designsim.errors import ConfigError, DesignsimError
from designsim.redact import Redactor
from designsim.report import parse_markers, rulebook_marker

Echo = Callable[[str], None]


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


def _exit_for(verdict: str, inputs: ActionInputs) -> int:
    from designsim.simulation import EXIT_CODES

    return EXIT_CODES.get(verdict, 0) if verdict in inputs.fail_on else 0


def _escape_command(text: str) -> str:
    """Workflow-command data escaping (``%``, CR, LF), so one message is one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class ActionRun:
    """One invocation. ``env`` defaults to ``os.environ``; ``publisher`` to a
    live :class:`~designsim.action.github_api.GitHubClient`; ``provider`` to
    Gemini built from the ``gemini-api-key`` input."""

    def __init__(self, env: Mapping[str, str] | None = None, *, dry_run: bool = False, publisher: Publisher | None = None,
                 provider: Any = None, retry: Any = None, echo: Echo | None = None):
        self.env = dict(os.environ if env is None else env)
        self.inputs = read_inputs(self.env)
        self.aenv: ActionEnv = read_env(self.env)
        if self.inputs.event_name or self.inputs.event_path:
            from dataclasses import replace

            path = self.inputs.event_path and str(self.workspace_path(self.inputs.event_path))
            self.aenv = replace(self.aenv, event_name=self.inputs.event_name or self.aenv.event_name,
                                event_path=path or self.aenv.event_path)
        self.dry_run = dry_run or self.inputs.dry_run
        self._publisher = publisher
        self._provider = provider
        self._retry = retry
        self.redact = Redactor(self.inputs.secrets)
        # a dry run keeps stdout for the plan JSON; workflow commands work on stderr too
        stream = sys.stderr if self.dry_run else sys.stdout
        self._echo = echo or (lambda line: print(line, file=stream, flush=True))
        self.reporter: StatusReporter | None = None

    # -- small helpers
    def echo(self, line: str) -> None:
        self._echo(self.redact(line))

    def workspace_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.aenv.workspace or ".") / p

    def client(self) -> Publisher:
        if self._publisher is None:
            from designsim.action.github_api import GitHubClient

            if not self.inputs.github_token:
                raise ConfigError("the github-token input is empty (the default is ${{ github.token }})", source="input github-token")
            self._publisher = GitHubClient(self.inputs.github_token, self.aenv.repository, api_url=self.aenv.api_url, retry=self._retry)
        return self._publisher

    @property
    def self_logins(self) -> set[str]:
        """Whose comments count as ours. ``GET /user`` is not allowed for a
        ``GITHUB_TOKEN`` (an installation token), whose comments are written by
        ``github-actions[bot]``; with another token set ``comment-author``."""
        return {self.inputs.comment_author} if self.inputs.comment_author else {ACTIONS_BOT}

    def finish(self, outcome: Outcome) -> int:
        write_outputs(self.aenv.output, {k: self.redact(v) for k, v in outcome.outputs().items()})
        return outcome.exit_code

    # -- entry
    def run(self) -> int:
        for secret in self.inputs.secrets:  # first, before anything that might print
            self._echo(f"::add-mask::{secret}")
        try:
            if self.inputs.mode in ("batch", "recover"):
                return self.run_batch()
            payload = load_payload(self.aenv.event_path)
            decision = resolve_event(self.aenv.event_name, payload, self.inputs, self.aenv.repository)
            if isinstance(decision, Skip):
                return self.skip(decision.reason)
            if isinstance(decision, Refusal):
                return self.refuse(decision)
            if self.dry_run:
                return self.plan(decision)
            return self.review(decision)
        except DesignsimError as exc:
            return self.fatal(exc)

    def fatal(self, exc: DesignsimError) -> int:
        message = self.redact(str(exc))
        if self.reporter is not None and self.reporter.final_state is None:
            try:
                self.reporter.complete("inconclusive", f"designsim could not finish: {message}")
            except DesignsimError:
                pass
        self.echo(f"::error title=designsim::{_escape_command(message)}")
        if not self.dry_run:
            write_step_summary(self.aenv.step_summary, f"## ⚠️ designsim failed\n\n```text\n{message}\n```\n")
            write_outputs(self.aenv.output, {"verdict": "error", "comment-url": "", "report-path": "", "total-tokens": "0"})
        return exc.exit_code

    def skip(self, reason: str) -> int:
        if self.dry_run:
            print(json.dumps({"skipped": reason}))
            return 0
        self.echo(f"designsim: skipped: {reason}")
        write_step_summary(self.aenv.step_summary, f"designsim: skipped — {reason}\n")
        return self.finish(Outcome(verdict="skipped", skipped=reason))

    def refuse(self, refusal: Refusal) -> int:
        reason = f"{COMMAND} from {refusal.login} ({refusal.association}) is not allowed: only OWNER, MEMBER or COLLABORATOR may run it"
        if self.dry_run:
            print(json.dumps({"skipped": reason}))
            return 0
        self.echo(f"designsim: {reason}")
        if self.inputs.github_token or self._publisher is not None:
            body = (f"Thanks for asking, `{refusal.login}`! `{COMMAND}` runs the design simulations with this repository's "
                    f"Gemini key, so only the repository's owners, members and collaborators can start it. "
                    f"A maintainer can comment `{COMMAND}` here to run it.")
            self.client().create_comment(refusal.number, body)
        return self.finish(Outcome(verdict="skipped", skipped=reason))

    # -- dry run
    def plan(self, target: Target) -> int:
        """Print the plan JSON (DESIGN.md contract). Without a token: no network at all."""
        from designsim.rulebook import load_rulebook

        if self.inputs.github_token or self._publisher is not None:
            self.fill_target(target)
            rulebook, ref = self.base_rulebook(target)
        else:
            rulebook, ref = load_rulebook(self.workspace_path(self.inputs.rulebook)), "working-directory"
        print(json.dumps({
            "event": target.event, "repository": target.repository, "pull_request": target.number,
            "head_sha": target.head_sha, "base_sha": target.base_sha, "base_ref": target.base_ref,
            "rulebook_ref": ref, "stages": rulebook.stage_ids(),
        }))
        return 0

    # -- the review
    def fill_target(self, target: Target) -> None:
        if target.head_sha and target.base_sha and target.head_repo and target.event.startswith("pull_request"):
            return
        data = self.client().get_pull(target.number)
        target.fill_from(PullRequest.model_validate(data))
        if not target.head_sha:
            raise ConfigError(f"pull request #{target.number} has no head SHA")

    def base_rulebook(self, target: Target):
        from designsim.rulebook import parse_rulebook

        ref = target.base_sha or target.base_ref
        if not ref:
            raise ConfigError(f"pull request #{target.number} has no base ref to read the rulebook from")
        text = self.client().get_file_text(self.inputs.rulebook, ref)
        if text is None:
            raise ConfigError(f"no rulebook {self.inputs.rulebook!r} on the base branch ({target.base_ref or ''} @ {ref[:12]}); "
                              "add one there first (designsim init), or set the rulebook input", source="input rulebook")
        rulebook = parse_rulebook(text, f"{self.inputs.rulebook}@{ref[:12]}")
        if self.inputs.model:
            rulebook = rulebook.model_copy(update={"model": self.inputs.model})
        return rulebook, ref

    def fetch_diff(self, target: Target) -> tuple[bytes, list[str]]:
        from designsim.action.github_api import DiffTooLarge, unified_diff_from_files

        client = self.client()
        try:
            return client.get_pull_diff(target.number), []
        except DiffTooLarge:
            files = client.list_pull_files(target.number)
            raw, notes = unified_diff_from_files(files)
            return raw, ["GitHub refused the full diff as too large (406); rebuilt it from the files list "
                         f"({len(files)} files)"] + notes

    def extra_files(self, rulebook, ref: str) -> dict[str, str]:
        """The rulebook's ``evidence.files`` read from the base ref. Only literal
        paths: globs would need the git trees API, so they are skipped with a note."""
        out: dict[str, str] = {}
        for pattern in rulebook.evidence.files:
            if any(ch in pattern for ch in "*?["):
                self.echo(f"::warning::evidence.files glob {pattern!r} is not expanded in the action; list the paths")
                continue
            text = self.client().get_file_text(pattern, ref)
            if text is not None:
                out[pattern] = text
        return out

    def review(self, target: Target) -> int:
        from designsim.action.github_api import changes_path
        from designsim.prompts import PromptLibrary
        from designsim.review import build_plan
        from designsim.simulation import inputs_hash

        client = self.client()
        self.fill_target(target)
        rulebook, ref = self.base_rulebook(target)
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
        digest = inputs_hash(plan, head_sha=target.head_sha)
        comments = client.list_issue_comments(target.number) if self.inputs.comment else []
        own = find_own_comments(comments, rulebook.name, self.self_logins)
        self.reporter = StatusReporter(client, self.inputs.status, target.head_sha, rulebook.name, target_url=self.aenv.run_url)
        markers = parse_markers(own[0].get("body", "")) if own else None
        # an inconclusive verdict (model down, quota, grader) is never reused: the next run retries it
        if markers and markers.get("inputs") == digest and markers.get("verdict") in ("pass", "fail", "neutral"):
            return self.republish(target, rulebook.name, markers["verdict"], own, comments)
        key = self.inputs.gemini_api_key or self.env.get("GEMINI_API_KEY") or self.env.get("GOOGLE_API_KEY")
        if not key and not self.inputs.vertex_project and self._provider is None:
            return self.no_key(target, rulebook.name, comments)
        self.reporter.pending()
        provider = self._provider
        if provider is None:
            from designsim.providers import make_provider
            from designsim.providers.client import adc_file_in_container

            exported = self.env.get("GOOGLE_APPLICATION_CREDENTIALS")
            mounted = adc_file_in_container(self.env)  # google-github-actions/auth's file, as mounted in this container
            if mounted and os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") == exported != mounted:
                os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = mounted  # google-auth reads the process environment
            provider = make_provider("gemini", model=rulebook.model, api_key=key or None,
                                     vertex_project=self.inputs.vertex_project or None,
                                     vertex_location=self.inputs.vertex_location or None)
        return self.run_review(target, plan, provider, notice, comments)

    def run_review(self, target: Target, plan, provider, notice: str | None, comments: list[dict]) -> int:
        from designsim.fileio import atomic_write_text
        from designsim.report import render_json, render_markdown
        from designsim.review import review_diff

        self.write_estimate(plan, provider)
        review = review_diff(plan, provider, head_sha=target.head_sha)
        body = self.redact(render_markdown(review, library=plan.library, notice=notice))
        outcome = Outcome(verdict=review.verdict, total_tokens=review.usage.total_tokens, exit_code=_exit_for(review.verdict, self.inputs))
        if self.inputs.comment:
            result = upsert_comment(self.client(), target.number, review.rulebook, body, self.self_logins, existing=comments)
            outcome.comment_url = result.url or ""
            self.echo(f"designsim: comment {result.action}: {outcome.comment_url}")
        self.reporter.complete(review.verdict, review.summary, summary=body)
        if self.inputs.report_path:
            path = self.workspace_path(self.inputs.report_path)
            atomic_write_text(path, self.redact(json.dumps(render_json(review), indent=2, ensure_ascii=False)) + "\n")
            # as given: a relative path means the same file inside the container and on the runner
            outcome.report_path = self.inputs.report_path
        write_step_summary(self.aenv.step_summary, self.redact(step_summary(review, target)))
        self.echo(f"designsim: {review.verdict.upper()} — {review.summary} ({review.usage.total_tokens:,} tokens)")
        return self.finish(outcome)

    def write_estimate(self, plan, provider) -> None:
        """The cost estimate (countTokens only, no generation) in the step summary
        before the review starts (issue 10). A provider error only skips it."""
        from designsim.errors import ProviderError
        from designsim.estimate import estimate_step_summary

        try:
            write_step_summary(self.aenv.step_summary, self.redact(estimate_step_summary(plan, provider)))
        except ProviderError as exc:
            self.echo(f"designsim: no cost estimate before the review ({exc.reason})")

    def republish(self, target: Target, rulebook: str, verdict: str, own: list[dict], comments: list[dict]) -> int:
        """Inputs unchanged since our comment: set the status again from its
        verdict, remove duplicate comments, spend no tokens."""
        description = f"{verdict}: unchanged since the last run (same head, rulebook, templates and model)"
        self.reporter.complete(verdict, description, summary=f"{description}. See the pull request comment.")
        result = upsert_comment(self.client(), target.number, rulebook, own[0].get("body", ""), self.self_logins, existing=comments)
        self.echo(f"designsim: inputs unchanged since the last run; re-published verdict {verdict!r}, no model calls")
        write_step_summary(self.aenv.step_summary, f"## designsim — `{rulebook}`: {verdict}\n\n"
                                                   "Inputs unchanged since the last run: verdict re-published, no model calls, 0 tokens.\n")
        return self.finish(Outcome(verdict=verdict, comment_url=result.url or "", exit_code=_exit_for(verdict, self.inputs)))

    def no_key(self, target: Target, rulebook: str, comments: list[dict]) -> int:
        number = target.number
        if target.is_fork:
            body = (f"{rulebook_marker(rulebook)}\n### ⚪ designsim — `{rulebook}`: not run\n\n"
                    f"This pull request comes from a fork (`{target.head_repo}`). GitHub does not give workflows triggered by "
                    "a fork access to secrets, so the design simulations could not call Gemini. Nothing was judged: "
                    "this is **not** a pass.\n\n**A maintainer can run it:**\n"
                    f"- comment `{COMMAND}` on this pull request, or\n"
                    f"- run the workflow by hand (Actions → designsim → Run workflow) with `pull_request: {number}`.\n")
            outcome = Outcome(verdict="neutral", exit_code=0)
            if self.inputs.comment:
                outcome.comment_url = upsert_comment(self.client(), number, rulebook, body, self.self_logins, existing=comments).url or ""
            self.reporter.complete("fork", f"Not run: fork PR has no secrets. A maintainer can comment {COMMAND}.", summary=body)
            self.echo(f"::notice title=designsim::fork pull request without secrets: not run; a maintainer can comment {COMMAND}")
            write_step_summary(self.aenv.step_summary, body)
            return self.finish(outcome)
        message = "no Gemini API key: set the gemini-api-key input (e.g. ${{ secrets.GEMINI_API_KEY }})"
        self.reporter.complete("inconclusive", message)
        self.echo(f"::error title=designsim::{message}")
        write_step_summary(self.aenv.step_summary, f"## ⚠️ designsim — `{rulebook}`: inconclusive\n\n{message}\n")
        return self.finish(Outcome(verdict="inconclusive", exit_code=_exit_for("inconclusive", self.inputs)))

    # -- batch modes
    def run_batch(self) -> int:
        """``mode: batch`` runs ``designsim batch run --input I --out O [run-args]``;
        ``mode: recover`` runs ``designsim batch recover --input I --output O [run-args]``."""
        from designsim.cli import main

        i = self.inputs
        if not i.batch_input or not i.batch_output:
            raise ConfigError(f"mode {i.mode} needs the batch-input and batch-output inputs", source="input mode")
        if i.mode == "batch":
            args = ["batch", "run", "--input", i.batch_input, "--out", i.batch_output]
            summary_path = self.workspace_path(i.batch_output) / "summary.json"
        else:
            args = ["batch", "recover", "--input", i.batch_input, "--output", i.batch_output]
            summary_path = self.workspace_path(i.batch_output).parent / "summary.json"
        extra = shlex.split(i.run_args)
        if i.model and "--model" not in extra:
            extra += ["--model", i.model]
        args += extra
        if self.dry_run:
            print(json.dumps({"skipped": f"mode {i.mode}: dry run; would run designsim " + " ".join(shlex.quote(a) for a in args)}))
            return 0
        if i.gemini_api_key:
            os.environ["GEMINI_API_KEY"] = i.gemini_api_key
        self.echo("designsim: running designsim " + " ".join(shlex.quote(a) for a in args))
        rc = main(args)
        outcome = Outcome(verdict="pass" if rc == 0 else "fail", exit_code=rc if (rc == 0 or "fail" in i.fail_on) else 0)
        if summary_path.is_file():
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
            except ValueError:
                summary = {}
            outcome.report_path = str(summary_path)
            outcome.total_tokens = int(summary.get("input_tokens", 0) or 0) + int(summary.get("output_tokens", 0) or 0)
            rows = "\n".join(f"| {k} | {summary.get(k)} |" for k in ("total", "succeeded", "failed", "requests", "retries",
                                                                        "input_tokens", "output_tokens", "duration_s") if k in summary)
            write_step_summary(self.aenv.step_summary, self.redact(f"## designsim {i.mode}\n\n| | |\n| --- | --- |\n{rows}\n"))
        return self.finish(outcome)


def step_summary(review, target: Target) -> str:
    """The job summary: verdict, stage table, decision matrices and token totals (Markdown)."""
    from designsim.report import OUTCOME_ICON, VERDICT_ICON, defuse, matrix_table

    u = review.usage
    lines = [f"## {VERDICT_ICON[review.verdict]} designsim — `{review.rulebook}` on #{target.number}: {review.verdict}", "",
             defuse(review.summary), "", "| Stage | Outcome | Attempts | Tokens |", "| --- | --- | --- | --- |"]
    for s in review.stages:
        lines.append(f"| {defuse(s.title)} | {OUTCOME_ICON[s.outcome]} {s.outcome} | {len(s.attempts)} | {s.usage.total_tokens:,} |")
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
