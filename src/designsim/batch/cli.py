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


def _rpm(value: str | None) -> float | None:
    """``--rpm``: a number of requests/min, or ``auto`` (the default)."""
    from designsim.errors import ConfigError

    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        rpm = float(value)
    except ValueError:
        raise ConfigError(f"--rpm must be a number or 'auto', got {value!r}", field="rpm") from None
    if rpm <= 0:
        raise ConfigError("--rpm must be > 0 or 'auto'", field="rpm")
    return rpm


def _runner_options(f):
    """Options shared by `run` and `recover` (which re-runs with our runner)."""
    options = [
        click.option("--rpm", default="auto", show_default=True,
                     help="Requests per minute (your project's Gemini quota), or 'auto': start low, raise the rate "
                          "until the server answers 429, settle just under it (Gemini no longer publishes per-model limits)."),
        click.option("--rpm-max", type=float, default=None, help="With --rpm auto: never go above this many requests/min."),
        click.option("--tpm", type=int, default=None, help="Tokens per minute (input estimate + output), unlimited if unset."),
        click.option("--concurrency", type=int, default=256, show_default=True,
                     help="Upper bound of requests in flight; the runner sizes it from the rate and the observed latency."),
        click.option("--max-attempts", type=int, default=3, show_default=True,
                     help="Passes per id in one run: the main pass plus recovery passes for transient failures."),
        click.option("--request-attempts", type=int, default=5, show_default=True,
                     help="HTTP tries per request (backoff with jitter, server retryDelay honoured)."),
        click.option("--retry-initial-delay", type=float, default=1.0, show_default=True, help="First backoff, seconds."),
        click.option("--retry-max-delay", type=float, default=10.0, show_default=True, help="Backoff cap, seconds."),
        click.option("--pass-delay", type=float, default=None, help="Seconds between passes (default: the backoff)."),
        click.option("--timeout", type=float, default=300.0, show_default=True, help="Per-request HTTP timeout, seconds."),
        click.option("--system", default=None, help="System instruction sent with every prompt."),
        click.option("--model", default=None, help="Gemini model (default: the catalogue's default, gemini-3.8-flash)."),
        click.option("--temperature", type=float, default=None,
                     help="Sampling temperature; not sent unless given (Google's Gemini 3 guide recommends the default 1.0)."),
        click.option("--retry-permanent", is_flag=True, default=False,
                     help="Also re-send ids whose last outcome was a permanent failure (400, blocked prompt, safety stop)."),
        click.option("--trust-pickle", is_flag=True, default=False,
                     help="Load .pkl files with plain pickle (runs any code they name). Only for pickles you made yourself; "
                          "by default only pandas/numpy/pyarrow data is loaded and anything else becomes None."),
        click.option("--checkpoint-every", type=int, default=100, show_default=True,
                     help="Rewrite RESULTS.pkl during the run after this many new results (or --checkpoint-seconds)."),
        click.option("--checkpoint-seconds", type=float, default=60.0, show_default=True,
                     help="Rewrite RESULTS.pkl during the run at least this often, seconds."),
        click.option("--progress-every", type=float, default=30.0, show_default=True,
                     help="Seconds between plain progress lines when not on a terminal."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def default_model() -> str:
    """The catalogue's default Gemini model (``gemini-3.8-flash``, DESIGN.md, read 2026-12-01)."""
    from designsim.providers.catalogue import default_model as catalogue_default

    return catalogue_default()


def _context_window(model: str) -> int | None:
    """The model's input window in tokens from the catalogue (``None`` if unknown)."""
    from designsim.providers.catalogue import context_window

    window, _known = context_window(model)
    return window


def _options(*, rpm, rpm_max=None, tpm, concurrency, max_attempts, request_attempts, retry_initial_delay, retry_max_delay,
             pass_delay, system, model, progress_every, temperature=None, retry_permanent=False, checkpoint_every=100,
             checkpoint_seconds=60.0, shard=None, backend="live", batch_deadline=None, **_):
    from designsim.batch.ratelimit import AUTO_MAX_RPM
    from designsim.batch.runner import RunOptions
    from designsim.errors import ConfigError
    from designsim.providers.retry import RetryPolicy

    if request_attempts < 1:
        raise ConfigError("--request-attempts must be >= 1", field="request_attempts")
    # a batch pauses for a 10-minute spend cap (up to 600 s, the server's hint); a review stops instead
    policy = RetryPolicy(attempts=request_attempts, initial_delay_s=retry_initial_delay,
                         max_delay_s=max(retry_max_delay, retry_initial_delay), max_spend_cap_wait_s=600.0)
    model = model or default_model()
    return RunOptions(rpm=_rpm(rpm), rpm_max=rpm_max or AUTO_MAX_RPM, tpm=tpm, concurrency=concurrency,
                      max_attempts=max_attempts, policy=policy, pass_delay_s=pass_delay, progress_every_s=progress_every,
                      system=system, model=model, temperature=temperature, retry_permanent=retry_permanent,
                      context_window=_context_window(model), checkpoint_every=checkpoint_every,
                      checkpoint_every_s=checkpoint_seconds, shard=shard, backend=backend,
                      batch_deadline_s=batch_deadline)


def _provider_factory(model: str | None, timeout: float, api_key: str | None = None):
    def build():
        from designsim.providers.gemini import GeminiProvider

        return GeminiProvider(default_model=model, timeout_s=timeout, api_key=api_key)

    return build


def process_started() -> float:
    """``time.monotonic()`` at this process's start (Linux: ``/proc/self/stat``
    field 22 against ``/proc/uptime``), so ``duration_s`` of a ``batch run``
    covers the whole process, interpreter start and imports included; elsewhere,
    now."""
    import os

    now = time.monotonic()
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 overall; fields[0] is field 3 (state)
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - age if 0 <= age < 86_400 * 30 else now


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
@click.option("--batch-deadline", type=float, default=None,
              help="With --backend batch-api: hours a Batch Mode job may stay unfinished; after that its ids are cancelled "
                   "there and sent live (jobs stuck in PENDING are a known Gemini problem, python-genai #2974).")
def run_cmd(input_path: Path, out_dir: Path, id_col: str, prompt_col: str, shard: str | None, timeout: float,
            trust_pickle: bool, batch_deadline: float | None, **kw) -> int:
    """Run or resume a batch into OUT."""
    from designsim.batch.runner import run_batch

    started = process_started()
    result = run_batch(input_path, out_dir, id_col=id_col, prompt_col=prompt_col, shard=shard, timeout_s=timeout,
                       trust_pickle=trust_pickle, started=started,
                       options=_options(shard=shard, batch_deadline=batch_deadline * 3600 if batch_deadline else None, **kw))
    s = result.summary
    rate = f", rpm auto settled at {s.run.rpm_settled:g}" if s.run.rpm_mode == "auto" and s.run.rpm_settled else ""
    click.echo(f"{s.succeeded}/{s.total} succeeded, {s.failed} without a result; "
               f"{s.run.requests} request(s) this run, {s.run.retries} retries, {s.run.http_429} answered 429{rate}, "
               f"{s.duration_s:.1f}s -> {out_dir}")
    if s.failures:
        click.echo("failures: " + ", ".join(f"{k}={v}" for k, v in sorted(s.failures.items())))
    if result.message:
        from designsim.redact import Redactor, secrets_from_env

        click.echo(f"stopped: {Redactor(secrets_from_env())(result.message)}", err=True)
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
                id_col: str, prompt_col: str, timeout: float, trust_pickle: bool, **kw) -> int:
    """Find an earlier run's missing ids, re-run only those, merge by id.

    OUTPUT in a designsim run directory (beside journal.jsonl) resumes that
    run from its journal; in a legacy directory, its RESULTS.pkl (even torn)
    and NN_result.txt files say what succeeded."""
    from designsim.batch.recover import recover

    options = _options(**kw)
    report = recover(input_path, output_path, id_col=id_col, prompt_col=prompt_col, legacy_script=legacy_script,
                     legacy_timeout_s=legacy_timeout, options=options, trust_pickle=trust_pickle,
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
