"""``designsim batch``: run, recover, missing, merge.

Exit codes (DESIGN.md): 0 every id has a result, 1 incomplete, 2 bad input
(a :class:`~designsim.errors.ConfigError` reaching :func:`designsim.cli.main`).
Commands return their exit code; ``main()`` passes it through.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console

from designsim.batch.tables import DEFAULT_ID_COL, DEFAULT_PROMPT_COL

_id_col = click.option("--id-col", default=DEFAULT_ID_COL, show_default=True, help="Id column.")
_prompt_col = click.option("--prompt-col", default=DEFAULT_PROMPT_COL, show_default=True, help="Prompt column.")


def _runner_options(f):
    """Options shared by `run` and `recover` (which re-runs with our runner)."""
    options = [
        click.option("--rpm", type=float, default=60.0, show_default=True, help="Requests per minute (your Gemini project quota)."),
        click.option("--tpm", type=int, default=None, help="Tokens per minute (input estimate + output), unlimited if unset."),
        click.option("--concurrency", type=int, default=8, show_default=True, help="Requests in flight at most."),
        click.option("--max-attempts", type=int, default=3, show_default=True,
                     help="Passes per id in one run: the main pass plus recovery passes for transient failures."),
        click.option("--request-attempts", type=int, default=5, show_default=True,
                     help="HTTP tries per request (backoff with jitter, server retryDelay honoured)."),
        click.option("--retry-initial-delay", type=float, default=1.0, show_default=True, help="First backoff, seconds."),
        click.option("--retry-max-delay", type=float, default=10.0, show_default=True, help="Backoff cap, seconds."),
        click.option("--pass-delay", type=float, default=None, help="Seconds between passes (default: the backoff)."),
        click.option("--timeout", type=float, default=300.0, show_default=True, help="Per-request HTTP timeout, seconds."),
        click.option("--system", default=None, help="System instruction sent with every prompt."),
        click.option("--model", default=None, help="Gemini model (default gemini-2.5-flash)."),
        click.option("--progress-every", type=float, default=30.0, show_default=True,
                     help="Seconds between plain progress lines when not on a terminal."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _options(*, rpm, tpm, concurrency, max_attempts, request_attempts, retry_initial_delay, retry_max_delay,
             pass_delay, system, model, progress_every, shard=None, backend="live", **_):
    from designsim.batch.runner import RunOptions
    from designsim.errors import ConfigError
    from designsim.providers.retry import RetryPolicy

    if request_attempts < 1:
        raise ConfigError("--request-attempts must be >= 1", field="request_attempts")
    policy = RetryPolicy(attempts=request_attempts, initial_delay_s=retry_initial_delay,
                         max_delay_s=max(retry_max_delay, retry_initial_delay))
    return RunOptions(rpm=rpm, tpm=tpm, concurrency=concurrency, max_attempts=max_attempts, policy=policy,
                      pass_delay_s=pass_delay, progress_every_s=progress_every, system=system, model=model,
                      shard=shard, backend=backend)


def _provider_factory(model: str | None, timeout: float):
    def build():
        from designsim.providers.gemini import GeminiProvider

        return GeminiProvider(default_model=model, timeout_s=timeout)

    return build


@click.group()
def batch() -> None:
    """Rate-limited prompt batches with durable checkpoints and recovery."""


@batch.command("run")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Prompts table: .pkl, .csv, .jsonl or .parquet.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (holds the checkpoint; re-run to resume).")
@_id_col
@_prompt_col
@_runner_options
@click.option("--shard", default=None, help="I/N: run only shard I of N (1-based, stable hash of the id).")
@click.option("--backend", type=click.Choice(["live", "batch-api"]), default="live", show_default=True,
              help="live: rate-limited requests now; batch-api: Gemini Batch Mode (half price, up to 24 h; re-run to collect).")
def run_cmd(input_path: Path, out_dir: Path, id_col: str, prompt_col: str, shard: str | None, timeout: float, **kw) -> int:
    """Run or resume a batch into OUT."""
    from designsim.batch.runner import execute_run
    from designsim.batch.tables import load_job, parse_shard

    console = Console(stderr=True)
    job = load_job(input_path, id_col=id_col, prompt_col=prompt_col)
    shard_spec = parse_shard(shard)
    if shard_spec:
        job = job.shard(*shard_spec)
    options = _options(shard=shard, **kw)
    result = execute_run(job, out_dir, options, _provider_factory(options.model, timeout), console=console)
    s = result.summary
    click.echo(f"{s.succeeded}/{s.total} succeeded, {s.failed} without a result; "
               f"{s.run.requests} request(s) this run, {s.run.retries} retries, {s.duration_s:.1f}s -> {out_dir}")
    if s.failures:
        click.echo("failures: " + ", ".join(f"{k}={v}" for k, v in sorted(s.failures.items())))
    if result.message:
        click.echo(f"stopped: {result.message}", err=True)
    if s.open_batch_jobs:
        click.echo(f"Batch Mode job(s) still running: {', '.join(s.open_batch_jobs)}; re-run later to collect", err=True)
    return result.exit_code


@batch.command("recover")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The original prompts table.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The earlier run's RESULTS.pkl (replaced in place after a backup).")
@click.option("--legacy-script", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Re-run the missing ids with this unmodified legacy script instead of our runner.")
@click.option("--legacy-timeout", type=float, default=None, help="Seconds to allow the legacy script (default: no limit).")
@_id_col
@_prompt_col
@_runner_options
def recover_cmd(input_path: Path, output_path: Path, legacy_script: Path | None, legacy_timeout: float | None,
                id_col: str, prompt_col: str, timeout: float, **kw) -> int:
    """Find an earlier run's missing ids, re-run only those, merge by id."""
    from designsim.batch.recover import recover

    options = _options(**kw)
    report = recover(input_path, output_path, id_col=id_col, prompt_col=prompt_col, legacy_script=legacy_script,
                     legacy_timeout_s=legacy_timeout, options=options,
                     provider_factory=_provider_factory(options.model, timeout), console=Console(stderr=True))
    for line in report.lines():
        click.echo(line)
    return 0 if report.complete else 1


@batch.command("missing")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Results so far (RESULTS.pkl, results.parquet, ...); a missing file means nothing succeeded.")
@click.option("--retry-table", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the input rows of the missing ids here (format by extension).")
@_id_col
@_prompt_col
def missing_cmd(input_path: Path, output_path: Path, retry_table: Path | None, id_col: str, prompt_col: str) -> int:
    """Print the ids of INPUT without a result in OUTPUT (and a retry table)."""
    from designsim.batch.recover import find_missing
    from designsim.batch.tables import atomic_write_table

    job, _results, missing = find_missing(input_path, output_path, id_col=id_col, prompt_col=prompt_col)
    click.echo(f"{len(missing)} of {len(job)} id(s) missing in {output_path}")
    for key in missing:
        click.echo(str(job.ids[key]))
    if retry_table is not None:
        frame = job.subset(missing).frame
        atomic_write_table(frame, retry_table)
        click.echo(f"retry table: {len(frame)} row(s) -> {retry_table}", err=True)
    return 0


@batch.command("merge")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@_id_col
def merge_cmd(out: Path, inputs: tuple[Path, ...], id_col: str) -> int:
    """Merge result tables or shard directories into OUT by id (earliest input wins a conflict)."""
    from designsim.batch.recover import merge_files

    started = time.perf_counter()
    report, backup = merge_files(out, list(inputs), id_col=id_col)
    click.echo(f"merged {len(inputs)} input(s), {report.rows_in} row(s) -> {report.ids} id(s), {report.succeeded} with a result, "
               f"{report.duplicates_dropped} duplicate row(s) dropped, {time.perf_counter() - started:.1f}s -> {out}")
    if report.conflicts:
        examples = "; ".join(f"id {k}: kept input {a}, ignored input {b}" for k, a, b in report.conflict_examples)
        ids = ", ".join(report.conflict_keys[:20]) + (" ..." if len(report.conflict_keys) > 20 else "")
        click.echo(f"warning: {report.conflicts} id(s) have different successful results; kept the earliest input's "
                   f"(ids {ids}; {examples})", err=True)
    if backup:
        click.echo(f"previous {out.name} backed up to {backup}", err=True)
    return 0
