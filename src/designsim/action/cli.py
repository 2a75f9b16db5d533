"""``designsim action``: the GitHub Action entry point (``ENTRYPOINT ["designsim", "action"]``).

Reads ``GITHUB_EVENT_NAME``, ``GITHUB_EVENT_PATH``, ``GITHUB_REPOSITORY``,
``GITHUB_API_URL``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT`` and the
``INPUT_*`` variables. Exit codes as ``designsim review`` (0 pass, 1 fail,
2 bad input/config, 3 inconclusive), limited by the ``fail-on`` input.
"""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--dry-run", is_flag=True,
              help="Print the plan as JSON and exit: writes nothing, calls no model; without a token, no network at all "
                   "(the rulebook is read from the working directory).")
def action(dry_run: bool) -> int:
    """GitHub Action entry point: review the pull request named by the event and publish the result.

    \b
    Handles pull_request / pull_request_target (opened, synchronize, reopened,
    ready_for_review), issue_comment "/simulate" on a pull request (owners,
    members, collaborators) and workflow_dispatch with a pull_request input.
    mode: batch|recover runs `designsim batch run|recover` instead.
    """
    from designsim.action.run import ActionRun, _escape_command
    from designsim.errors import DesignsimError

    try:
        run = ActionRun(dry_run=dry_run)
    except DesignsimError as exc:  # a bad input value: say which, as an ::error:: line
        click.echo(f"::error title=designsim::{_escape_command(str(exc))}")
        return exc.exit_code
    return run.run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(action.main(standalone_mode=False))
