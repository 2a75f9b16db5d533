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
    written in place, a file atomically (designsim.fileio.write_output)."""
    from designsim.fileio import STDOUT, write_output

    to_stdout = path in (None, STDOUT)
    write_output(path, text + "\n" if to_stdout and not text.endswith("\n") else text)


def _read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=path) from exc


def _provider(name: str, cassette: str | None, model: str | None, record: str | None):
    from designsim.providers import make_provider
    from designsim.providers.replay import RecordingProvider

    provider = make_provider(name, model=model, cassette=cassette)
    return RecordingProvider(provider, record) if record else provider


def _run_and_report(plan, provider, *, out, json_out, head_sha=None, notice=None) -> int:
    from designsim.report import render_json, render_markdown
    from designsim.review import review_diff

    review = review_diff(plan, provider, head_sha=head_sha)
    _write(out, render_markdown(review, library=plan.library, notice=notice))
    if json_out:
        _write(json_out, json.dumps(render_json(review), indent=2, ensure_ascii=False) + "\n")
    if hasattr(provider, "save"):
        provider.save()
    cost = f", {review.cost:.4f} {review.currency}" if review.cost is not None else ""
    click.echo(f"designsim: {review.verdict.upper()} — {review.summary} "
               f"({review.usage.total_tokens:,} tokens{cost})", err=True)
    return review.exit_code


@click.command()
@click.option("--rulebook", "-r", "rulebook_path", default=".simulation.yml", show_default=True, help="The rulebook (.simulation.yml).")
@click.option("--diff", "diff_path", type=click.Path(dir_okay=False, allow_dash=True), help="A unified diff file ('-' for stdin).")
@click.option("--git", "git_range", metavar="A..B", help="Diff a commit range of the local repository instead.")
@click.option("--repo", default=".", show_default=True, type=click.Path(file_okay=False), help="Repository for --git and evidence.files globs.")
@click.option("--out", "-o", default="-", show_default=True, help="Where to write the Markdown comment.")
@click.option("--json-out", help="Also write the full JSON report (transcripts included) here.")
@click.option("--provider", type=click.Choice(["gemini", "replay"]), default="gemini", show_default=True)
@click.option("--cassette", type=click.Path(dir_okay=False), help="Recorded responses for --provider replay.")
@click.option("--record", type=click.Path(dir_okay=False), help="Record the live run's responses to this cassette.")
@click.option("--model", help="Override the rulebook's model.")
@click.option("--prompts", "prompts_dir", type=click.Path(file_okay=False),
              help="Directory of templates/components overriding the bundled ones [default: REPO/.designsim/prompts if it exists].")
@click.option("--pr-title", help="Pull-request title to include as (untrusted) evidence.")
@click.option("--pr-body", help="Pull-request body to include as (untrusted) evidence.")
@click.option("--estimate", is_flag=True,
              help="Count tokens with countTokens and print the cost estimate as JSON; no generation call is made.")
def review(rulebook_path, diff_path, git_range, repo, out, json_out, provider, cassette, record, model, prompts_dir, pr_title, pr_body,
           estimate) -> int:
    """Run a rulebook's staged simulations on a diff, grade them, print the decision-matrix comment.

    Exit 0 pass, 1 fail, 2 bad input or configuration, 3 inconclusive. With
    --estimate: print {"stages": [{"id", "input_tokens", "max_output_tokens",
    "estimated_usd"}], "total_usd"} and exit 0, having spent nothing.
    """
    from designsim.evidence import git_diff, load_diff_bytes
    from designsim.prompts import PromptLibrary
    from designsim.review import build_plan
    from designsim.rulebook import load_rulebook

    if bool(diff_path) == bool(git_range):
        raise ConfigError("give exactly one of --diff FILE or --git A..B")
    rulebook = load_rulebook(rulebook_path)
    if model:
        rulebook = rulebook.model_copy(update={"model": model})
    raw = sys.stdin.buffer.read() if diff_path == "-" else (load_diff_bytes(diff_path) if diff_path else git_diff(git_range, repo))
    if prompts_dir is None and (Path(repo) / ".designsim" / "prompts").is_dir():
        prompts_dir = Path(repo) / ".designsim" / "prompts"  # the repository's own components, as lint and test use
    plan = build_plan(rulebook, raw, pr_title=pr_title, pr_body=pr_body, workdir=repo,
                      library=PromptLibrary(prompts_dir), source=diff_path or git_range)
    if estimate:
        from designsim.estimate import estimate_review_sync

        result = estimate_review_sync(plan, _provider(provider, cassette, model or rulebook.model, None))
        _write(out, json.dumps(result, indent=2) + "\n")
        return 0
    return _run_and_report(plan, _provider(provider, cassette, model or rulebook.model, record), out=out, json_out=json_out)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["pathways", "flaw"]), required=True, help="The blueprint the output should follow.")
@click.option("--rulebook", "rulebook_path", type=click.Path(dir_okay=False), help="Take constraints, anti-goals and criteria from this rulebook.")
@click.option("--no-llm", is_flag=True, help="Deterministic checks only; no judge call.")
@click.option("--json", "as_json", is_flag=True, help="Print the grade as JSON (DESIGN.md shape).")
@click.option("--provider", type=click.Choice(["gemini", "replay"]), default="gemini", show_default=True)
@click.option("--cassette", type=click.Path(dir_okay=False), help="Recorded judge replies (label 'judge:output').")
@click.option("--model", help="Judge model.")
def grade(file, fmt, rulebook_path, no_llm, as_json, provider, cassette, model) -> int:
    """Grade a saved simulation output with the scorecard. Exit 0 passed, 1 failed, 2 bad input, 3 judge unavailable."""
    import asyncio

    from designsim.rulebook import Rulebook, Stage, load_rulebook
    from designsim.simulation import ResolvedStage, resolve_plan, grade_output

    text = _read_text(file)
    if rulebook_path:
        rb = load_rulebook(rulebook_path)
    else:
        rb = Rulebook(scenario="(not given)", directive="(not given)",
                      stages=[Stage(id="output", title=Path(file).name, focus="(graded from a file)")])
    scorecard = rb.scorecard.model_copy(update={"judge": rb.scorecard.judge and not no_llm,
                                                  "judge_model": model or rb.scorecard.judge_model})
    rb = rb.model_copy(update={"output": rb.output.model_copy(update={"format": fmt, "min_chars": min(rb.output.min_chars, 200)}),
                               "scorecard": scorecard})
    plan = resolve_plan(rb, "")
    stage = ResolvedStage("output", Path(file).name, "(graded from a file)", fmt, [], [], plan.stages[0].persona)
    judge_provider = None if no_llm else _provider(provider, cassette, model, None)
    card = asyncio.run(grade_output(plan, stage, text, judge_provider, label="judge:output"))
    if no_llm:
        card = card.model_copy(update={"judge_skipped": "--no-llm"})
    if as_json:
        click.echo(json.dumps(card.as_contract(), indent=2, ensure_ascii=False))
    else:
        for c in card.checks:
            click.echo(f"{'✅' if c.passed else '❌'} {c.name}: {c.detail}")
        for c in card.criteria:
            click.echo(f"{'✅' if c.passed else ('⚠️' if c.verdict == 'GRADER_ERROR' else '❌')} {c.name}: {c.reason}")
        click.echo("PASSED" if card.passed else ("GRADER_ERROR" if card.grader_error else "FAILED"))
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
@click.option("--out", "-o", default="-", show_default=True, help="Where to write the Markdown comment.")
@click.option("--json-out", help="Also write the full JSON report here.")
@click.option("--live", is_flag=True, help="Call Gemini for real instead of replaying (needs GEMINI_API_KEY).")
def demo(out, json_out, live) -> int:
    """Run the bundled JIT component-generation case study (white paper, seed 002
    Appendices F and H) and print the PR comment.

    By default it REPLAYS recorded model responses from a cassette, so it needs
    no API key and no network. With --live it calls Gemini.
    """
    from designsim.prompts import PromptLibrary
    from designsim.providers.replay import ReplayProvider
    from designsim.resources import examples_dir
    from designsim.review import build_plan
    from designsim.rulebook import load_rulebook

    case = examples_dir() / "jit-generation"
    rulebook = load_rulebook(case / ".simulation.yml")
    plan = build_plan(rulebook, (case / "change.diff").read_bytes(), pr_title="JIT component generation for missing library parts",
                      pr_body=(case / "pr_body.md").read_text(encoding="utf-8"), library=PromptLibrary(), source=str(case / "change.diff"))
    if live:
        provider = _provider("gemini", None, rulebook.model, None)
    else:
        click.echo("designsim demo: replaying recorded model responses from examples/jit-generation/cassette.json "
                   "(no API key, no network). Run `designsim demo --live` to call Gemini.", err=True)
        provider = ReplayProvider.from_file(case / "cassette.json")
    return _run_and_report(plan, provider, out=out, json_out=json_out)
