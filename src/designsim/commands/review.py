"""``designsim review``, ``grade``, ``matrix`` and ``demo``: the review flow's CLI.

Exit codes (DESIGN.md): review 0 pass, 1 fail, 2 bad input/config,
3 inconclusive; grade 0 passed, 1 failed, 2 bad input; matrix 0 found, 1 none.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from designsim.errors import ConfigError


def _write(path: str | None, text: str) -> None:
    """``--out``/``--json-out``: ``-`` (or none) is stdout, a device or FIFO is
    written in place, a file atomically (designsim.fileio.write_output).
    Secrets are redacted first (designsim.redact): an error body can echo a key."""
    from designsim.fileio import STDOUT, write_output
    from designsim.redact import redact

    to_stdout = path in (None, STDOUT)
    write_output(path, redact(text + "\n" if to_stdout and not text.endswith("\n") else text))


def _read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=path) from exc


def _check_evidence_files(rulebook, rulebook_path: str, repo: str) -> None:
    """Refuse (exit 2) an ``evidence.files`` glob that matches nothing under ``repo``,
    located at its line in the rulebook, before any model call."""
    from designsim.evidence import unmatched_patterns
    from designsim.rulebook import YamlPositions

    missing = unmatched_patterns(rulebook.evidence.files, repo)
    if not missing:
        return
    try:
        positions = YamlPositions.from_text(Path(rulebook_path).read_text(encoding="utf-8"))
    except OSError:
        positions = YamlPositions(None)
    line, column = positions.locate(("evidence", "files", missing[0]))
    names = ", ".join(repr(rulebook.evidence.files[i]) for i in missing)
    raise ConfigError(f"{names} match{'es' if len(missing) == 1 else ''} no file under {Path(repo).resolve()} "
                      "(paths are relative to the repository root, --repo)",
                      source=f"{rulebook_path}:{line}:{column}", field=f"evidence.files.{missing[0]}")


def _provider(name: str, cassette: str | None, model: str | None, record: str | None):
    from designsim.providers import make_provider
    from designsim.providers.replay import RecordingProvider

    provider = make_provider(name, model=model, cassette=cassette)
    return RecordingProvider(provider, record) if record else provider


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def _execute(plan, provider, *, out, json_out, head_sha=None, notice=None, console=None, clock=None):
    """Run the review with live progress on stderr and write the comment and report.

    Returns ``(review, console, comment_where, report_path)``. Where the Markdown
    comment goes: ``out`` (a path, or ``-`` for stdout); when ``out`` is None,
    stdout if stdout is not a terminal (pipes, CI), else a new temporary directory
    (with ``report.json`` beside it unless ``json_out`` is given), so a terminal
    is not flooded with 50 kB of comment HTML. ``console`` (stderr) and ``clock``
    (seconds) are injectable for tests.
    """
    import tempfile
    import time

    from rich.console import Console

    from designsim.report import render_json, render_markdown
    from designsim.review import review_diff
    from designsim.terminal import ReviewProgress

    console = console or Console(stderr=True)
    if out is None:
        if _stdout_is_terminal():
            where = Path(tempfile.mkdtemp(prefix="designsim-"))
            out = str(where / "comment.md")
            json_out = json_out or str(where / "report.json")
        else:
            out = "-"
    with ReviewProgress(console, [(s.id, s.title) for s in plan.stages], clock=clock or time.monotonic) as progress:
        review = review_diff(plan, provider, head_sha=head_sha, on_progress=progress.update)
    _write(out, render_markdown(review, library=plan.library, notice=notice))
    if json_out:
        _write(json_out, json.dumps(render_json(review), indent=2, ensure_ascii=False) + "\n")
    if hasattr(provider, "save"):
        provider.save()
    return review, console, ("stdout" if out == "-" else out), json_out


def _run_and_report(plan, provider, *, out, json_out, head_sha=None, notice=None, console=None, clock=None) -> int:
    """:func:`_execute`, then the summary (:func:`designsim.terminal.print_summary`); returns the exit code."""
    from designsim.terminal import print_summary

    review, console, where, report = _execute(plan, provider, out=out, json_out=json_out, head_sha=head_sha,
                                              notice=notice, console=console, clock=clock)
    print_summary(console, review, comment=where, report=report)
    return review.exit_code


@click.command()
@click.option("--rulebook", "-r", "rulebook_path", default=".simulation.yml", show_default=True, help="The rulebook (.simulation.yml).")
@click.option("--diff", "diff_path", type=click.Path(dir_okay=False, allow_dash=True), help="A unified diff file ('-' for stdin).")
@click.option("--git", "git_range", metavar="A..B", help="Diff a commit range of the local repository instead.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="Repository for --git and evidence.files globs.")
@click.option("--out", "-o", default=None,
              help="Where to write the Markdown comment ('-' for stdout) [default: stdout, or a temporary file when stdout is a terminal].")
@click.option("--json-out", help="Also write the full JSON report (transcripts included) here.")
@click.option("--provider", type=click.Choice(["gemini", "replay"]), default="gemini", show_default=True)
@click.option("--cassette", type=click.Path(dir_okay=False), help="Recorded responses for --provider replay.")
@click.option("--record", type=click.Path(dir_okay=False), help="Record the live run's responses to this cassette.")
@click.option("--model", help="Override the rulebook's model.")
@click.option("--prompts", "prompts_dir", type=click.Path(file_okay=False),
              help="Directory of templates/components overriding the bundled ones [default: REPO/.designsim/prompts if it exists].")
@click.option("--pr-title", help="Pull-request title to include as (untrusted) evidence.")
@click.option("--pr-body", help="Pull-request body to include as (untrusted) evidence.")
def review(rulebook_path, diff_path, git_range, repo, out, json_out, provider, cassette, record, model, prompts_dir, pr_title, pr_body) -> int:
    """Run a rulebook's staged simulations on a diff, grade them, print the decision-matrix comment.

    Exit 0 pass, 1 fail, 2 bad input or configuration, 3 inconclusive.
    """
    from designsim.evidence import check_diff, git_diff, load_diff_bytes
    from designsim.prompts import PromptLibrary
    from designsim.review import build_plan
    from designsim.rulebook import load_rulebook

    if bool(diff_path) == bool(git_range):
        raise ConfigError("give exactly one of --diff FILE or --git A..B")
    rulebook = load_rulebook(rulebook_path)
    if model:
        rulebook = rulebook.model_copy(update={"model": model})
    _check_evidence_files(rulebook, rulebook_path, repo)
    raw = sys.stdin.buffer.read() if diff_path == "-" else (load_diff_bytes(diff_path) if diff_path else git_diff(git_range, repo))
    check_diff(raw, "stdin" if diff_path == "-" else (diff_path or f"git diff {git_range}"))  # before any model call
    if prompts_dir is None and (Path(repo) / ".designsim" / "prompts").is_dir():
        prompts_dir = Path(repo) / ".designsim" / "prompts"  # the repository's own components, as lint and test use
    plan = build_plan(rulebook, raw, pr_title=pr_title, pr_body=pr_body, workdir=repo,
                      library=PromptLibrary(prompts_dir), source=diff_path or git_range)
    return _run_and_report(plan, _provider(provider, cassette, model or rulebook.model, record), out=out, json_out=json_out)


def grade_plan(rulebook, fmt: str, *, raw_diff: bytes | None = None, stage_id: str | None = None, library=None,
               source: str | None = None, workdir=None):
    """The plan and stage ``designsim grade`` grades with: exactly what a review
    stage would use. With ``raw_diff`` the evidence is built as ``review`` builds
    it (same budget, same "analysis is not a copy" check, same verdict section
    required); without it, the output is graded against the paper's blueprint
    alone (no verdict section required). ``stage_id`` picks the rulebook stage
    (default: the first whose format is ``fmt``). Returns ``(plan, stage)``;
    raises :class:`ConfigError` for an unknown stage or a format mismatch."""
    from designsim.review import build_plan
    from designsim.simulation import ResolvedStage, resolve_plan

    if raw_diff is not None:
        plan = build_plan(rulebook, raw_diff, library=library, source=source, workdir=workdir)
    else:
        plan = resolve_plan(rulebook, "", library)
    if stage_id is not None:
        stage = next((s for s in plan.stages if s.id == stage_id), None)
        if stage is None:
            raise ConfigError(f"no stage {stage_id!r} in the rulebook (stages: {', '.join(s.id for s in plan.stages)})", field="--stage")
        if stage.format != fmt:
            raise ConfigError(f"stage {stage_id!r} uses format {stage.format!r}, not {fmt!r}", field="--format")
        return plan, stage
    stage = next((s for s in plan.stages if s.format == fmt), None)
    if stage is None:
        first = plan.stages[0]
        stage = ResolvedStage("output", first.title, first.focus, fmt, [], [], first.persona)
    return plan, stage


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["pathways", "flaw"]), required=True, help="The blueprint the output should follow.")
@click.option("--rulebook", "rulebook_path", type=click.Path(dir_okay=False), help="Take constraints, anti-goals, criteria and limits from this rulebook.")
@click.option("--diff", "diff_path", type=click.Path(dir_okay=False), help="The diff the output reviewed: grade exactly as a review stage would (verdict section required).")
@click.option("--stage", "stage_id", help="The rulebook stage the output belongs to [default: the first with this format].")
@click.option("--no-llm", is_flag=True, help="Deterministic checks only; no judge call (not a full grade).")
@click.option("--json", "as_json", is_flag=True, help="Print the grade as JSON (DESIGN.md shape, plus change_verdict).")
@click.option("--provider", type=click.Choice(["gemini", "replay"]), default="gemini", show_default=True)
@click.option("--cassette", type=click.Path(dir_okay=False), help="Recorded judge replies (label 'judge:<stage id>', 'judge:output' without a rulebook stage).")
@click.option("--model", help="Judge model.")
def grade(file, fmt, rulebook_path, diff_path, stage_id, no_llm, as_json, provider, cassette, model) -> int:
    """Grade a saved simulation output with the scorecard, as a review stage would.

    Exit 0 trusted, 1 untrusted (a check or criterion failed), 2 bad input,
    3 the judge never gave a usable verdict.
    """
    import asyncio

    from designsim.evidence import load_diff_bytes
    from designsim.rulebook import Rulebook, Stage, load_rulebook
    from designsim.simulation import grade_output

    text = _read_text(file)
    if rulebook_path:
        rb = load_rulebook(rulebook_path)
    else:
        rb = Rulebook(scenario="(not given)", directive="(not given)",
                      stages=[Stage(id="output", title=Path(file).name, focus="(graded from a file)", format=fmt)])
    scorecard = rb.scorecard.model_copy(update={"judge": rb.scorecard.judge and not no_llm,
                                                  "judge_model": model or rb.scorecard.judge_model})
    rb = rb.model_copy(update={"scorecard": scorecard})
    raw = load_diff_bytes(diff_path) if diff_path else None
    plan, stage = grade_plan(rb, fmt, raw_diff=raw, stage_id=stage_id, source=diff_path)
    judge_provider = None if no_llm else _provider(provider, cassette, model, None)
    card = asyncio.run(grade_output(plan, stage, text, judge_provider, label=f"judge:{stage.id}"))
    if no_llm:
        card = card.model_copy(update={"judge_skipped": "--no-llm: deterministic checks only, no judge"})
    if as_json:
        data = card.as_contract()
        data["verdict_required"] = plan.requires_verdict
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for c in card.checks:
            click.echo(f"{'✅' if c.passed else '❌'} {c.name}: {c.detail}")
        for c in card.criteria:
            click.echo(f"{'✅' if c.passed else ('⚠️' if c.verdict == 'GRADER_ERROR' else '❌')} {c.name}: {c.reason}")
        if card.change_verdict:
            for r in card.change_verdict.rows:
                click.echo(f"verdict on the change: {r.constraint} {r.verdict} ({r.severity}) — {r.evidence}")
        if card.grader_error:
            click.echo("GRADER_ERROR: the judge never gave a usable verdict")
        elif no_llm:
            click.echo("CHECKS PASSED (no judge: --no-llm, not a full grade)" if card.passed else "CHECKS FAILED (no judge: --no-llm)")
        else:
            click.echo("TRUSTED: every check and criterion passed" if card.passed else "UNTRUSTED: a check or criterion failed")
    if card.grader_error:
        return 3
    return 0 if card.passed else 1


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print {\"matrices\": [...]} (DESIGN.md shape).")
@click.option("--csv", "as_csv", is_flag=True, help="Print the matrices as CSV rows.")
def matrix(file, as_json, as_csv) -> int:
    """Extract decision matrices from a simulation output. Exit 0 if any found, 1 if none."""
    from designsim.matrix import extract_matrices, matrix_to_csv
    from designsim.report import matrix_table

    if as_json and as_csv:
        raise ConfigError("choose one of --json or --csv")
    found = extract_matrices(_read_text(file))
    if as_json:
        click.echo(json.dumps({"matrices": [m.model_dump(include={"pathways", "criteria", "cells", "verdicts", "recommended"}) for m in found]},
                              indent=2, ensure_ascii=False))
    elif as_csv:
        click.echo(matrix_to_csv(found), nl=False)
    else:
        for i, m in enumerate(found, 1):
            click.echo(f"Matrix {i}: {len(m.pathways)} pathways; recommended: {m.recommended or '(none)'}\n")
            click.echo(matrix_table(m) + "\n")
        if not found:
            click.echo("no decision matrix found (a Markdown table with a Verdict row)", err=True)
    return 0 if found else 1


@click.command()
@click.option("--case", "case_name", type=click.Choice(["jit", "fixed"]), default="jit", show_default=True,
              help="jit: the white paper's proposed JIT function (decision fail); fixed: the synthesised algorithm (pass).")
@click.option("--out", "-o", default=None,
              help="Where to write the Markdown comment ('-' for stdout) [default: stdout, or a temporary file when stdout is a terminal].")
@click.option("--json-out", help="Also write the full JSON report here.")
@click.option("--live", is_flag=True, help="Call Gemini for real instead of replaying (needs GEMINI_API_KEY).")
def demo(case_name, out, json_out, live) -> int:
    """Run a bundled case study of the white paper (seed 002, Appendices F and H)
    and print the PR comment and the gate's decision.

    `--case jit` (default) reviews a diff implementing the paper's proposed, flawed
    JIT function: its simulations find C1 and C3 violated, so the decision is fail.
    `--case fixed` reviews the synthesised algorithm of Appendix H: every
    constraint is respected, so the decision is pass.

    By default it REPLAYS recorded model responses from the case's cassette, so it
    needs no API key and no network. With --live it calls Gemini. The demo exits 0
    when it ran as recorded, whatever the decision on the change (exit 3 if a live
    run was inconclusive, or if a replay did not reach the case's recorded decision).
    """
    from designsim.demo import CASES, demo_plan
    from designsim.providers.replay import ReplayProvider
    from designsim.terminal import print_summary

    case = CASES[case_name]
    plan = demo_plan(case)
    cassette = case.path / "cassette.json"
    if live:
        provider = _provider("gemini", None, plan.rulebook.model, None)
    else:
        click.echo(f"designsim demo: {case.summary}; replaying recorded model responses from "
                   f"examples/{case.folder}/cassette.json (no API key, no network). "
                   "Run `designsim demo --live` to call Gemini.", err=True)
        provider = ReplayProvider.from_file(cassette)
    review, console, where, report = _execute(plan, provider, out=out, json_out=json_out)
    decision = review.decision
    if console.is_terminal:
        print_summary(console, review, comment=where, report=report)
    else:
        click.echo(f"designsim demo: decision {decision.verdict.upper()} — {decision.reason} "
                   f"({review.usage.total_tokens:,} tokens; a review would exit {review.exit_code})", err=True)
    if decision.verdict == "inconclusive" or (not live and decision.verdict != case.decision):
        click.echo(f"designsim demo: expected decision {case.decision} for --case {case.name}; "
                   "see the comment for what went wrong", err=True)
        return 3
    return 0
