"""``designsim action``: the GitHub Action entry point (``ENTRYPOINT ["designsim", "action"]``).

Reads ``GITHUB_EVENT_NAME``, ``GITHUB_EVENT_PATH``, ``GITHUB_REPOSITORY``,
``GITHUB_API_URL``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_OUTPUT`` and the
``INPUT_*`` variables. Exit codes as ``designsim review`` (0 pass, 1 fail,
2 bad input/config — a missing Gemini key included, 3 inconclusive or any
unexpected error), 1 and 3 limited by the ``fail-on`` input.
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
    ready_for_review), issue_comment "/simulate" and "/simulate accept C1 <reason>"
    on a pull request (write, maintain or admin only) and workflow_dispatch with
    a pull_request input. A fork's pull_request run (read-only token) is skipped
    before any write. mode: batch|recover runs the batch runner instead.
    """
    from designsim.action.run import ActionRun

    # ActionRun never raises (a bad input is reported by run() like any fatal
    # error: ::error::, step summary, outputs), and run() catches everything.
    return ActionRun(dry_run=dry_run).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(action.main(standalone_mode=False))
