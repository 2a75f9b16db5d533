"""The ``designsim`` command.

Each subcommand lives in the module that owns its feature and is imported only
when invoked (so ``designsim --help`` stays fast and one feature's import
error cannot break another). Exit codes follow DESIGN.md's contract: 0 pass /
complete, 1 fail / incomplete, 2 bad input or configuration, 3 inconclusive
(model unavailable, grades never passed).
"""

from __future__ import annotations

import importlib
import sys

import click

from designsim import __version__
from designsim.errors import DesignsimError

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "demo": "designsim.commands.review:demo",
    "review": "designsim.commands.review:review",
    "grade": "designsim.commands.review:grade",
    "matrix": "designsim.commands.review:matrix",
    "action": "designsim.action.cli:action",
    "batch": "designsim.batch.cli:batch",
    "lint": "designsim.kit.cli:lint",
    "init": "designsim.kit.cli:init",
    "test": "designsim.kit.cli:test_rulebook",
    "components": "designsim.kit.cli:components",
    "models": "designsim.commands.models:models",
}

HELP = {
    "demo": "Replay the bundled JIT case study from a cassette and print the PR comment.",
    "review": "Run a rulebook's staged simulations on a diff and grade them.",
    "grade": "Grade a saved simulation output with the scorecard.",
    "matrix": "Extract decision matrices from a simulation output.",
    "action": "GitHub Action entry point (reads GITHUB_* and INPUT_* variables).",
    "batch": "Rate-limited prompt batches with checkpoints and recovery.",
    "lint": "Validate a rulebook and advise on it.",
    "init": "Create a rulebook and PR workflow from the starter-kit worksheets.",
    "test": "Run a rulebook's regression suite of labelled outputs.",
    "components": "Manage the persona/protocol/constraint component library.",
    "models": "List the Gemini model catalogue: limits, thinking, prices, lifecycle.",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return _unavailable(name)
            if exc.name and exc.name.split(".")[0] in BATCH_EXTRA_MODULES:
                return _needs_batch_extra(name, exc.name)
            raise
        return getattr(module, attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


#: Top-level modules of the ``batch`` extra (pyproject.toml); the review image leaves them out.
BATCH_EXTRA_MODULES = ("pandas", "pyarrow", "numpy")


def missing_batch_extra() -> str | None:
    """The first module of the ``batch`` extra that is not installed (``None`` when all
    are), found without importing it."""
    import importlib.util

    return next((m for m in BATCH_EXTRA_MODULES if importlib.util.find_spec(m) is None), None)


def batch_extra_message(command: str, module: str) -> str:
    """What to tell a user whose ``command`` needs the batch extra that lacks ``module``."""
    return (f"'{command}' needs the batch extra ({module} is not installed): "
            "pip install 'designsim[batch]' — the action's review image leaves pandas and pyarrow out; "
            "use the batch image or build with --build-arg FLAVOUR=batch (README, \"The action's image\")")


def _needs_batch_extra(name: str, module: str) -> click.Command:
    """A stand-in for a command whose module needs the ``batch`` extra: exit 2
    with the install command, before anything is read or spent."""

    @click.command(name=name, help=HELP.get(name, ""), context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args):
        raise click.UsageError(batch_extra_message(f"designsim {name}", module))

    return missing


def _unavailable(name: str) -> click.Command:
    @click.command(name=name, help=HELP.get(name, ""))
    def missing():
        raise click.ClickException(f"'designsim {name}' is not available in this build")

    return missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="designsim")
def cli() -> None:
    """designsim: LLM design simulations on pull requests, and durable prompt batches."""


def main(argv: list[str] | None = None) -> int:
    """Console-script entry. Turns :class:`DesignsimError` into its exit code with
    one readable line on stderr (no traceback)."""
    try:
        result = cli.main(args=argv, prog_name="designsim", standalone_mode=False)
    except DesignsimError as exc:
        click.echo(f"designsim: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
