"""Click commands of the starter kit: ``lint``, ``init``, ``test``, ``components``.

Each command returns its exit code (see :func:`designsim.cli.main`):

* ``lint``: 0 valid (advice alone is fine), 2 errors;
* ``init``: 0 written, 2 bad answers or a target exists without ``--force``;
* ``test``: 0 every golden output got its expected grade, 1 a mismatch,
  2 bad input (rulebook, golden labels);
* ``components list|show|generate``: 0 done, 2 bad input, 3 model unavailable.

The repository's prompt directory (templates and components that override the
bundled ones) is ``--prompts DIR``, else ``.designsim/prompts`` beside the
rulebook (``lint``, ``test``) or in the current directory (``init``,
``components``) when it exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from designsim.errors import ConfigError
from designsim.kit import GOLDEN_DIR, USER_PROMPTS_DIR


def _library(prompts_dir: str | None, base: Path):
    from designsim.prompts import PromptLibrary

    if prompts_dir:
        if not Path(prompts_dir).is_dir():
            raise ConfigError("prompts directory not found", source=prompts_dir)
        return PromptLibrary(prompts_dir)
    local = base / USER_PROMPTS_DIR
    return PromptLibrary(local if local.is_dir() else None)


_prompts_option = click.option("--prompts", "prompts_dir", type=click.Path(file_okay=False),
                               help=f"Templates/components overriding the bundled ones (default: {USER_PROMPTS_DIR} if present).")


# --------------------------------------------------------------------------- lint


@click.command()
@click.argument("rulebook", default=".simulation.yml", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help='Print {"errors": [...], "advice": [...], "stages": [...]}.')
@_prompts_option
@click.option("--context-window", type=click.IntRange(min=1), metavar="TOKENS",
              help="Check prompt sizes against this many input tokens instead of the model's window.")
@click.option("--repo", type=click.Path(file_okay=False), default=None,
              help="Repository root that evidence.files globs must match [default: the rulebook's directory].")
def lint(rulebook, as_json, prompts_dir, context_window, repo) -> int:
    """Validate a rulebook and advise on it.

    Errors (exit 2): schema problems at file:line:column, unknown goal, missing
    component, a template that does not render, a prompt larger than the
    model's context window, an evidence.files glob that matches no file. Advice (exit 0): the white paper's heuristic — no
    constraints, anti-goals or success criteria; a directive asking for a fix;
    stages to split or chain; too few pathways.
    """
    from designsim.kit.lint import format_report, lint_file

    library = _library(prompts_dir, Path(rulebook).resolve().parent)
    report = lint_file(rulebook, library=library, context_window_override=context_window, root=repo)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(report))
    return report.exit_code


# --------------------------------------------------------------------------- init


@click.command()
@click.option("--answers", type=click.Path(dir_okay=False, exists=True), help="Take the worksheet answers from this YAML file.")
@click.option("--answers-template", is_flag=True,
              help="Print a complete, commented answers file (for --answers) and exit; nothing is written.")
@click.option("--dir", "target", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Repository root to write into.")
@click.option("--rulebook", "rulebook_name", default=".simulation.yml", show_default=True, help="Rulebook path, relative to --dir.")
@click.option("--action", "action", default=None, metavar="OWNER/REPO@REF",
              help="The designsim action for the workflow's `uses:` (default: the <owner>/designsim@v1 placeholder).")
@click.option("--no-workflow", is_flag=True, help="Write only the rulebook.")
@click.option("--force", is_flag=True, help="Replace existing files (each old file is kept as NAME.bak).")
@_prompts_option
def init(answers, answers_template, target, rulebook_name, action, no_workflow, force, prompts_dir) -> int:
    """Create a rulebook and a PR workflow from the Starter Kit's four worksheets.

    Interactive unless --answers is given (`--answers-template > answers.yml` prints
    one to edit). Also writes .designsim/simulation.schema.json, which the rulebook's
    first line points editors at. Never overwrites an existing file without --force.
    """
    import os

    from designsim.kit.init import (DEFAULT_ACTION, SCHEMA_COPY, WORKFLOW_PATH, answers_template as template,
                                    ask_answers, build_rulebook_text, check_targets, load_answers, render_workflow,
                                    write_outputs)
    from designsim.schema import render_schema

    if answers_template:
        click.echo(template(), nl=False)
        return 0
    root = Path(target)
    library = _library(prompts_dir, root)
    rulebook_path = root / rulebook_name
    workflow_path = root / WORKFLOW_PATH
    schema_path = root / SCHEMA_COPY
    schema_text = render_schema()
    fresh_schema = not (schema_path.is_file() and schema_path.read_text(encoding="utf-8") == schema_text)
    targets = [rulebook_path] + ([] if no_workflow else [workflow_path]) + ([schema_path] if fresh_schema else [])
    check_targets(targets, force=force)  # before a five-minute interview, not after
    if answers:
        data = load_answers(answers)
    else:
        click.echo("designsim init — the Developer Simulation Starter Kit, four worksheets. Ctrl-C aborts; nothing is "
                   "written until the end.")
        data = ask_answers(library)
    schema_ref = Path(os.path.relpath(schema_path, rulebook_path.parent)).as_posix()
    files = {rulebook_path: build_rulebook_text(data, library=library, source=str(rulebook_path), schema_ref=schema_ref)}
    if fresh_schema:
        files[schema_path] = schema_text
    if not no_workflow:
        files[workflow_path] = render_workflow(name=data.name, rulebook_path=rulebook_name, action=action or DEFAULT_ACTION,
                                               library=library)
    for w in write_outputs(files, force=force):
        click.echo(f"wrote {w.path}" + (f" (previous version kept as {w.backup})" if w.backup else ""))
    click.echo("next: `designsim lint` to check it; add a GEMINI_API_KEY repository secret"
               + ("; set the action in the workflow's `uses:`" if not no_workflow and not action else ""))
    return 0


# --------------------------------------------------------------------------- test


@click.command()
@click.argument("rulebook", default=".simulation.yml", type=click.Path(dir_okay=False))
@click.option("--golden", "golden_dir", type=click.Path(file_okay=False),
              help=f"Folder of labelled outputs (default: {GOLDEN_DIR} beside the rulebook).")
@click.option("--cassette", type=click.Path(dir_okay=False, exists=True),
              help="Recorded judge replies (labels judge:<stage id>, in order).")
@click.option("--judge/--no-judge", "use_judge", default=None,
              help="Force the LLM judge on (needs GEMINI_API_KEY or --cassette) or off. Default: on when either is available.")
@click.option("--model", help="Judge model (default: the rulebook's).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@_prompts_option
def test_rulebook(rulebook, golden_dir, cassette, use_judge, model, as_json, prompts_dir) -> int:
    """Run a rulebook's regression suite: grade each labelled output and compare.

    Exit 0 all match, 1 a mismatch, 2 bad input.
    """
    from rich.console import Console

    from designsim.kit.golden import load_golden, results_table, run_golden
    from designsim.providers import make_provider
    from designsim.providers.gemini import api_key_from_env
    from designsim.rulebook import load_rulebook

    rb = load_rulebook(rulebook)
    if model:
        rb = rb.model_copy(update={"scorecard": rb.scorecard.model_copy(update={"judge_model": model})})
    base = Path(rulebook).resolve().parent
    library = _library(prompts_dir, base)
    cases = load_golden(golden_dir or base / GOLDEN_DIR, rb)
    provider = None
    if use_judge is not False and rb.scorecard.judge:
        if cassette:
            provider = make_provider("replay", cassette=cassette)
        elif api_key_from_env():
            provider = make_provider("gemini", model=model or rb.model)
        elif use_judge:
            raise ConfigError("--judge needs GEMINI_API_KEY or --cassette FILE")
    results = run_golden(rb, cases, rulebook_dir=base, library=library, provider=provider)
    mismatches = [r for r in results if not r.matched]
    if provider is not None:
        judge = provider.name
    elif use_judge is False:
        judge = "off (--no-judge: deterministic checks only)"
    elif not rb.scorecard.judge:
        judge = "off (scorecard.judge is false in the rulebook)"
    else:
        judge = "off (no GEMINI_API_KEY or --cassette)"
    if as_json:
        click.echo(json.dumps({"rulebook": str(rulebook), "judge": judge, "results": [r.as_dict() for r in results],
                               "mismatches": len(mismatches)}, indent=2, ensure_ascii=False))
    else:
        console = Console(width=max(100, Console().width))
        console.print(results_table(results, f"{rb.name}: {len(results)} golden output(s); judge {judge}"))
        click.echo(f"{len(results) - len(mismatches)} of {len(results)} matched"
                   + (f"; MISMATCH: {', '.join(r.case.name for r in mismatches)}" if mismatches else ""))
    return 1 if mismatches else 0


# --------------------------------------------------------------------------- components


@click.group()
def components() -> None:
    """List, show and generate persona/protocol/constraint components."""


@components.command("list")
@_prompts_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {kind, name, path, source, overridden, overrides}.")
def list_cmd(prompts_dir, as_json) -> int:
    """Every component on the search path: kind, name, source dir, overridden?"""
    from rich.console import Console
    from rich.table import Table

    from designsim.kit.components import list_components

    entries = list_components(_library(prompts_dir, Path.cwd()))
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    table = Table(title="designsim components (first match wins)", title_justify="left")
    for column in ("kind", "name", "source", "status", "path"):
        table.add_column(column, overflow="fold")
    for e in entries:
        status = "overridden" if e.overridden else ("overrides" if e.overrides else "active")
        try:
            shown = e.path.relative_to(Path.cwd())
        except ValueError:
            shown = e.path
        table.add_row(e.kind[:-1], e.name, e.source, status, str(shown))
    Console(width=max(100, Console().width)).print(table)
    return 0


@components.command("show")
@click.argument("kind")
@click.argument("name")
@_prompts_option
def show_cmd(kind, name, prompts_dir) -> int:
    """Print the active component KIND (persona|protocol|constraint) NAME."""
    from designsim.kit.components import show_component

    path, text = show_component(_library(prompts_dir, Path.cwd()), kind, name)
    click.echo(f"# {path}", err=True)
    click.echo(text, nl=not text.endswith("\n"))
    return 0


@components.command("generate")
@click.argument("kind")
@click.argument("name")
@click.option("--describe", help="One-line description of the component's purpose (asked for when missing).")
@click.option("--dir", "target_dir", type=click.Path(file_okay=False),
              help=f"Prompts directory to write into (default: {USER_PROMPTS_DIR}).")
@click.option("--provider", type=click.Choice(["gemini", "replay"]), default="gemini", show_default=True)
@click.option("--cassette", type=click.Path(dir_okay=False), help="Recorded reply for --provider replay (label component:<kind>:<name>).")
@click.option("--model", help="Gemini model (default: gemini-2.5-flash).")
def generate_cmd(kind, name, describe, target_dir, provider, cassette, model) -> int:
    """Generate a missing component under its required NAME (white paper, seed 002 Appendix H).

    Does nothing if it exists in --dir or the bundled library (no model call);
    never edits the goal map; writes atomically into --dir.
    """
    from designsim.kit.components import generate_component
    from designsim.prompts import PromptLibrary
    from designsim.providers import make_provider

    target = Path(target_dir or USER_PROMPTS_DIR)
    library = PromptLibrary(target)  # the idempotency check sees the target first, then the bundled library
    result = generate_component(
        kind, name, target_dir=target, library=library,
        describe=describe if describe is not None else (lambda: click.prompt(
            f"Please provide a one-line description for the purpose of the '{name}' component", default="", show_default=False)),
        provider_factory=lambda: make_provider(provider, model=model, cassette=cassette),
        model=model, echo=lambda line: click.echo(line, err=True),
    )
    click.echo(str(result.path))
    return 0


__all__ = ["components", "init", "lint", "test_rulebook"]
