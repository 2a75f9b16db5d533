"""What a person at a terminal sees while ``review`` or ``demo`` runs, and after.

* :class:`ReviewProgress` — a live rich display on stderr, one row per stage:
  its state, the attempt (``2/3``), tokens so far and elapsed seconds. It is
  built with ``Progress(disable=not console.is_terminal)``, so in CI logs (stderr
  not a terminal) it prints nothing at all.
* :func:`print_summary` — the compact end: the decision, a per-stage table, and
  where the comment and the report were written. On a non-terminal console it
  prints one plain line instead (the format CI logs have always had).

The console and the clock are passed in (never looked up here), so tests drive
both: ``Console(file=StringIO(), force_terminal=True)`` and a fake clock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

if TYPE_CHECKING:
    from designsim.simulation import ProgressEvent, Review

__all__ = ["ReviewProgress", "print_summary", "summary_line", "OUTCOME_STYLE", "TRUST"]

#: rich style per stage outcome / review verdict.
OUTCOME_STYLE = {"passed": "green", "pass": "bold green", "failed": "red", "fail": "bold red", "warn": "bold yellow",
                 "trusted": "green", "untrusted": "red",
                 "inconclusive": "yellow", "skipped": "dim", "neutral": "cyan", "running": "blue", "waiting": "dim"}


#: A stage's outcome as the report names it: the scorecard says whether a simulation can be trusted.
TRUST = {"passed": "trusted", "failed": "untrusted"}


class ReviewProgress:
    """Live per-stage progress on ``console`` (stderr), fed by :class:`~designsim.simulation.ProgressEvent` s.

    ``stages`` are ``(id, title)`` in plan order; ``clock`` returns seconds
    (``time.monotonic`` by default) and times the elapsed column. Use as a
    context manager and pass :meth:`update` as the review's ``on_progress``.
    Disabled (prints nothing) when ``console.is_terminal`` is False.
    """

    def __init__(self, console: Console, stages: list[tuple[str, str]], *,
                 clock: Callable[[], float] = time.monotonic, title: str = "review"):
        self.console = console
        self.clock = clock
        self.started = clock()
        self.progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.fields[stage]}"),
            TextColumn("{task.fields[state]}"),
            TextColumn("attempt {task.fields[attempt]}"),
            TextColumn("{task.fields[tokens]:>8,} tokens"),
            TextColumn("{task.fields[elapsed]:>6.1f} s"),
            console=console, disable=not console.is_terminal, transient=False,
            get_time=clock,
        )
        width = max((len(s) for s, _ in stages), default=5)
        self.tasks: dict[str, TaskID] = {}
        self._start: dict[str, float] = {}
        for sid, _title in stages:
            self.tasks[sid] = self.progress.add_task(title, total=None, stage=sid.ljust(width), state="[dim]waiting[/]",
                                                     attempt="-", tokens=0, elapsed=0.0)

    def __enter__(self) -> "ReviewProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, event: "ProgressEvent") -> None:
        """Apply one event: ``attempt`` marks the stage running, ``graded`` shows
        whether that attempt passed, ``stage`` shows the final outcome."""
        task = self.tasks.get(event.stage)
        if task is None:
            return
        now = self.clock()
        start = self._start.setdefault(event.stage, now)
        fields = {"tokens": event.tokens, "elapsed": now - start}
        if event.attempts:
            fields["attempt"] = f"{event.attempt}/{event.attempts}" + (
                f" (sample {event.sample}/{event.samples})" if event.samples > 1 and event.kind != "stage" else "")
        if event.kind == "attempt":
            fields["state"] = "[blue]running[/]"
        elif event.kind == "graded":
            fields["state"] = "[green]trusted[/]" if event.passed else "[yellow]untrusted, retrying[/]"
        else:
            outcome = TRUST.get(event.outcome or "", event.outcome or "done")
            fields["state"] = f"[{OUTCOME_STYLE.get(outcome, 'white')}]{outcome}[/]"
            self.progress.update(task, total=1, completed=1, **fields)
            return
        self.progress.update(task, **fields)


def summary_line(review: "Review") -> str:
    """The one plain line for logs: ``designsim: PASS — summary (N tokens)``."""
    return f"designsim: {review.verdict.upper()} — {review.summary} ({review.usage.total_tokens:,} tokens)"


def print_summary(console: Console, review: "Review", *, comment: str | None, report: str | None) -> None:
    """The end of a run: on a terminal, the decision (the gate's, with its reason),
    a per-stage table (trusted / untrusted / inconclusive / skipped, attempts,
    tokens, seconds, reason) and where the ``comment`` and ``report`` were
    written (``"stdout"``, a path, or None when not written); elsewhere, :func:`summary_line`."""
    if not console.is_terminal:
        console.print(summary_line(review), markup=False, highlight=False, soft_wrap=True)
        return
    decision = getattr(review, "decision", None)
    verdict, reason = (decision.verdict, decision.reason) if decision is not None else (review.verdict, review.summary)
    style = OUTCOME_STYLE.get(verdict, "bold")
    console.print(f"\n[{style}]decision {verdict.upper()}[/] — {reason}", highlight=False)
    if decision is not None and review.verdict != verdict:
        console.print(f"check status {review.verdict}, exit {review.exit_code}", style="dim", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col, justify in (("stage", "left"), ("outcome", "left"), ("attempts", "right"), ("tokens", "right"),
                         ("seconds", "right"), ("why", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for s in review.stages:
        seconds = max((a.finished_s for a in s.attempts), default=0.0) - min((a.started_s for a in s.attempts), default=0.0)
        outcome = getattr(s, "trust", TRUST.get(s.outcome, s.outcome))
        table.add_row(s.id + (" (synthesis)" if s.is_synthesis and s.id != "synthesis" else ""),
                      f"[{OUTCOME_STYLE.get(outcome, 'white')}]{outcome}[/]", str(len(s.attempts)),
                      f"{s.usage.total_tokens:,}", f"{seconds:.1f}", s.reason)
    console.print(table)
    cost = f", cost {review.cost:.4f} {review.currency}" if review.cost is not None else ""
    console.print(f"{review.usage.total_tokens:,} tokens{cost} in {review.duration_s:.1f} s, model {review.model}",
                  style="dim", highlight=False)
    if comment:
        console.print(f"comment: {comment}", highlight=False)
    if report:
        console.print(f"report:  {report}", highlight=False)
