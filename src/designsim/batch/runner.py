"""The live batch runner: rate-limited, concurrent, checkpointed, resumable.

One :func:`execute_run` call:

1. opens the checkpoint (:class:`~designsim.batch.checkpoint.Journal`) in the
   output directory and selects the *pending* ids — those without a success
   for the same prompt/system/model (a complete job sends zero requests);
2. main pass: ``concurrency`` asyncio workers send one request each (one user
   turn, optional system instruction) through a :class:`RateLimiter`
   (requests/min and tokens/min, aiolimiter) and
   :func:`~designsim.providers.retry.call_with_retries` (exponential backoff
   with jitter, honouring the server's ``retryDelay``); every outcome is
   appended to the journal the moment it arrives;
3. recovery passes 2..``max_attempts`` re-send what failed *transiently*;
   permanent failures (400, blocked prompt, safety stop) are recorded with
   their reason and not re-sent in this run; a daily quota
   (:class:`~designsim.errors.QuotaExhausted`) stops the run cleanly;
4. writes the outputs (:mod:`designsim.batch.outputs`) at the end and on
   interrupt (SIGINT / SIGTERM).

Rate limits follow Gemini's published per-project limits, which are counted
per minute (RPM, TPM): :func:`strict_limiter` sizes the leaky bucket so that
no 60 s window ever sees more than ``rpm`` requests (or ``tpm`` tokens).
Input tokens are estimated at 4 characters per token (Gemini's documented
rule of thumb) before sending; the real count is debited afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aiolimiter import AsyncLimiter
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from designsim.batch.checkpoint import Journal, ResultRecord, RunRecord, prompt_digest
from designsim.batch.outputs import LOG_NAME, RunCounters, Summary, build_summary, write_outputs
from designsim.batch.tables import Job
from designsim.tokens import estimate_tokens
from designsim.redact import RedactingFilter
from designsim.errors import ConfigError, PermanentProviderError, ProviderError, QuotaExhausted, TransientProviderError
from designsim.providers.base import GenerationRequest, Provider
from designsim.providers.retry import RetryPolicy, call_with_retries

log = logging.getLogger("designsim.batch")



@dataclass
class RunOptions:
    """Knobs of one run.

    ``rpm`` requests per minute and ``tpm`` tokens per minute (``None`` = no
    token limit) — set them to your project's Gemini quota; ``concurrency``
    requests in flight at most; ``max_attempts`` passes per id in one run
    (1 main + recovery passes); ``policy`` per-request retries;
    ``pass_delay_s`` seconds between passes (``None``: the policy's backoff);
    ``progress_every_s`` seconds between plain progress lines when not on a
    terminal; ``system`` / ``model`` / ``temperature`` / ``max_output_tokens``
    go into every request; ``shard`` is only echoed into the summary.
    """

    rpm: float = 60.0
    tpm: int | None = None
    concurrency: int = 8
    max_attempts: int = 3
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    pass_delay_s: float | None = None
    progress_every_s: float = 30.0
    system: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    shard: str | None = None
    backend: str = "live"

    def __post_init__(self) -> None:
        if not self.rpm or self.rpm <= 0:
            raise ConfigError("--rpm must be > 0", field="rpm")
        if self.tpm is not None and self.tpm <= 0:
            raise ConfigError("--tpm must be > 0", field="tpm")
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be >= 1", field="concurrency")
        if self.max_attempts < 1:
            raise ConfigError("--max-attempts must be >= 1", field="max_attempts")


def strict_limiter(limit: float, period_s: float = 60.0, burst: int | None = None) -> AsyncLimiter:
    """An aiolimiter leaky bucket that never lets more than ``limit`` through
    in any window of ``period_s`` seconds (default: per minute).

    The bucket holds ``b`` (default one second's worth, ``limit/period_s``,
    at least 1, so a start is not a thundering herd) and leaks ``r`` per
    second. An empty bucket admits at most ``b - 1 + r * period_s`` in a
    window, so ``r = (limit - b + 1) / period_s`` keeps that at ``limit``
    (for 600/min: a bucket of 10 leaking 9.85/s, 98.5 % of the nominal rate).
    """
    b = burst or max(1, int(limit / period_s))
    b = min(b, max(1, int(limit)))
    rate_per_s = (limit - b + 1) / period_s
    return AsyncLimiter(b, b / rate_per_s)


class RateLimiter:
    """Requests/min and tokens/min limits shared by all workers, plus a
    shared cool-down: when the server answers 429 with a ``retryDelay``,
    every worker waits it out (a 429 storm is not hammered by the others).

    ``rpm`` requests per minute; ``tpm`` tokens per minute or ``None``;
    ``clock`` a monotonic seconds function.
    """

    def __init__(self, rpm: float, tpm: int | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.requests = strict_limiter(rpm)
        self.tokens: AsyncLimiter | None = strict_limiter(tpm) if tpm else None
        self.clock = clock
        self.cooldown_until = 0.0

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for a request slot (and ``tokens`` estimated tokens)."""
        while (delay := self.cooldown_until - self.clock()) > 0:
            await asyncio.sleep(delay)
        if self.tokens is not None and tokens > 0:
            await self._take_tokens(tokens)
        await self.requests.acquire()

    async def _take_tokens(self, tokens: int) -> None:
        assert self.tokens is not None
        while tokens > 0:  # aiolimiter refuses amounts above its bucket size
            chunk = min(tokens, self.tokens.max_rate)
            await self.tokens.acquire(chunk)
            tokens -= chunk

    async def debit(self, tokens: int) -> None:
        """Charge tokens learned after the fact (output tokens, estimate error)."""
        if self.tokens is not None and tokens > 0:
            await self._take_tokens(tokens)

    def cool_down(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a server-requested delay)."""
        self.cooldown_until = max(self.cooldown_until, self.clock() + seconds)


def estimate_input_tokens(prompt: str, system: str | None = None) -> int:
    """Input tokens of a request before sending, by the same 4-characters-per-token
    rule as the evidence budget (:func:`designsim.tokens.estimate_tokens`)."""
    return estimate_tokens(prompt + (system or ""))


class _Reporter:
    """A rich progress bar on a terminal; plain lines every ``every_s`` seconds otherwise."""

    def __init__(self, console: Console, total: int, every_s: float, clock: Callable[[], float]):
        self.console = console
        self.total = total
        self.every_s = every_s
        self.clock = clock
        self.started = clock()
        self.last_line = self.started
        self.done = self.ok = self.failed = 0
        self.progress = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("ok {task.fields[ok]} failed {task.fields[failed]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not console.is_terminal)
        self.task = self.progress.add_task("batch", total=total, ok=0, failed=0)

    def __enter__(self) -> "_Reporter":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def update(self, ok: bool, final: bool) -> None:
        if final:
            self.done += 1
        self.ok += ok
        self.failed += (not ok) and final
        self.progress.update(self.task, completed=self.done, ok=self.ok, failed=self.failed)
        now = self.clock()
        if self.progress.disable and now - self.last_line >= self.every_s:
            self.last_line = now
            self.line()

    def line(self) -> None:
        elapsed = max(self.clock() - self.started, 1e-9)
        self.console.print(f"batch: {self.done}/{self.total} done, {self.ok} ok, {self.failed} failed, "
                           f"{elapsed:.0f}s, {self.done / elapsed * 60:.1f}/min", highlight=False)


class _LiveRun:
    """One invocation's live passes over ``keys`` (see the module docstring)."""

    def __init__(self, job: Job, journal: Journal, provider: Provider, options: RunOptions, console: Console,
                 clock: Callable[[], float]):
        self.job = job
        self.journal = journal
        self.provider = provider
        self.options = options
        self.console = console
        self.clock = clock
        self.limiter = RateLimiter(options.rpm, options.tpm, clock=clock)
        self.requests = 0
        self.retries = 0
        self.stopped = ""
        self.stop = asyncio.Event()

    def digest(self, key: str) -> str:
        return prompt_digest(self.job.prompts[key], self.options.system, self.options.model)

    async def run(self, keys: list[str], reporter: _Reporter) -> None:
        todo = list(keys)
        for pass_no in range(1, self.options.max_attempts + 1):
            if not todo or self.stop.is_set():
                break
            if pass_no > 1:
                delay = self.options.pass_delay_s
                if delay is None:
                    delay = self.options.policy.wait_seconds(pass_no - 1, None)
                log.info("recovery pass %d: re-sending %d transiently failed id(s) after %.2fs", pass_no, len(todo), delay)
                await asyncio.sleep(delay)
            last = pass_no == self.options.max_attempts
            await self._pass(todo, pass_no, last, reporter)
            todo = [k for k in todo if self._retryable(k)]

    def _retryable(self, key: str) -> bool:
        rec = self.journal.state.best.get(key)
        return rec is not None and rec.status == "failed" and rec.transient

    async def _pass(self, keys: list[str], pass_no: int, last: bool, reporter: _Reporter) -> None:
        queue = deque(keys)

        async def worker() -> None:
            while queue and not self.stop.is_set():
                await self._one(queue.popleft(), pass_no, last, reporter)

        await asyncio.gather(*(worker() for _ in range(min(self.options.concurrency, len(keys)))))

    async def _one(self, key: str, pass_no: int, last: bool, reporter: _Reporter) -> None:
        opts = self.options
        prompt = self.job.prompts[key]
        request = GenerationRequest(prompt=prompt, system=opts.system, model=opts.model, temperature=opts.temperature,
                                    max_output_tokens=opts.max_output_tokens, label=f"batch:{key}")
        estimate = estimate_input_tokens(prompt, opts.system)
        tries = 0

        async def attempt():
            nonlocal tries
            await self.limiter.acquire(estimate)
            if self.stop.is_set():
                raise asyncio.CancelledError
            tries += 1
            self.requests += 1
            return await self.provider.generate(request)

        def on_retry(exc: TransientProviderError, delay: float) -> None:
            # not counted here: tenacity computes the wait before its stop check, so this
            # also fires after the last try; retries are counted from ``tries`` below
            if exc.status == 429 and exc.retry_delay:
                self.limiter.cool_down(delay)
            log.info("id=%s retry in %.2fs after %s", key, delay, exc.reason)

        base = dict(key=key, digest=self.digest(key), pass_no=pass_no)
        try:
            try:
                done = await call_with_retries(attempt, opts.policy, on_retry=on_retry)
            finally:
                self.retries += max(0, tries - 1)
        except asyncio.CancelledError:
            if self.stop.is_set():
                return  # stopping: the id stays pending, nothing to record
            raise
        except QuotaExhausted as exc:
            self.stopped = self.stopped or f"quota exhausted: {exc}"
            self.stop.set()
            log.error("id=%s: %s; stopping the run (resumable: re-run the same command later)", key, exc)
            return
        except TransientProviderError as exc:
            record = ResultRecord(status="failed", reason=exc.reason, error=str(exc), transient=True, requests=tries, **base)
        except PermanentProviderError as exc:
            record = ResultRecord(status="failed", reason=exc.reason, error=str(exc), transient=False, requests=tries, **base)
        except ProviderError as exc:
            record = ResultRecord(status="failed", reason=exc.reason, error=str(exc), transient=False, requests=tries, **base)
        except Exception as exc:  # a bug or an unmapped SDK error: record it, keep the batch going
            log.exception("id=%s: unexpected error", key)
            record = ResultRecord(status="failed", reason=f"internal:{type(exc).__name__}", error=str(exc)[:500],
                                  transient=False, requests=tries, **base)
        else:
            record = ResultRecord(status="ok", text=done.text, requests=tries, input_tokens=done.usage.input_tokens,
                                  output_tokens=done.usage.output_tokens, latency_s=round(done.latency_s, 4), **base)
            self.journal.append(record)
            log.info("id=%s ok (pass %d, %d request(s), %d+%d tokens)", key, pass_no, tries,
                     done.usage.input_tokens, done.usage.output_tokens)
            reporter.update(ok=True, final=True)
            await self.limiter.debit(done.usage.input_tokens + done.usage.output_tokens - estimate)
            return
        self.journal.append(record)
        final = not record.transient or last
        log.warning("id=%s failed (pass %d, %d request(s)): %s%s", key, pass_no, tries, record.error,
                    "" if final else " [will retry in a recovery pass]")
        reporter.update(ok=False, final=final)


def attach_log(out_dir: Path) -> logging.Handler:
    """Append this logger's records to ``DIR/LOG.log`` (legacy format), keys redacted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out_dir / LOG_NAME, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    handler.addFilter(RedactingFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def detach_log(handler: logging.Handler) -> None:
    """Undo :func:`attach_log`: stop writing ``LOG.log`` and close the file."""
    log.removeHandler(handler)
    handler.close()


@dataclass
class RunResult:
    """What :func:`execute_run` returns: the summary and the exit code
    (0 every id has a result, 1 otherwise)."""

    summary: Summary
    exit_code: int
    message: str = ""


def pending_keys(job: Job, journal: Journal, options: RunOptions) -> list[str]:
    """Ids without a success for the same prompt, system instruction and model."""
    out = []
    for key in job.keys:
        digest = prompt_digest(job.prompts[key], options.system, options.model)
        rec = journal.state.best.get(key)
        if rec is not None and rec.status == "ok" and rec.digest and rec.digest != digest:
            log.warning("id=%s: prompt, system or model changed since its result; sending it again", key)
        if not journal.state.succeeded(key, digest):
            out.append(key)
    return out


def execute_run(job: Job, out_dir: str | Path, options: RunOptions, provider_factory: Callable[[], Provider], *,
                console: Console | None = None, clock: Callable[[], float] = time.monotonic) -> RunResult:
    """Run or resume ``job`` into ``out_dir`` (see the module docstring).

    ``provider_factory`` is called only if something is pending (so a
    complete job needs no API key). Raises :class:`ConfigError` for bad
    options, a locked directory, or a provider that cannot be built.
    KeyboardInterrupt / SIGTERM: outputs are written, then exit code 1.
    """
    out_dir = Path(out_dir)
    console = console or Console(stderr=True)
    started = clock()
    handler = attach_log(out_dir)
    journal = Journal.open(out_dir)
    run: _LiveRun | None = None
    interrupted = False
    try:
        pending = pending_keys(job, journal, options)
        log.info("batch run: %d id(s) in job, %d pending, backend %s, rpm %s, tpm %s, concurrency %d",
                 len(job), len(pending), options.backend, options.rpm, options.tpm, options.concurrency)
        if options.backend == "batch-api":
            from designsim.batch.batch_api import run_batch_api

            stopped = run_batch_api(job, journal, pending, options, console)
            counters = RunCounters(duration_s=round(clock() - started, 3), stopped=stopped)
        else:
            if pending:
                try:
                    provider = provider_factory()
                except QuotaExhausted as exc:  # no API key: a configuration problem, before any request
                    raise ConfigError(str(exc), field="GEMINI_API_KEY") from exc
                run = _LiveRun(job, journal, provider, options, console, clock)
                try:
                    _run_async(run, pending)
                except KeyboardInterrupt:
                    interrupted = True
                    run.stopped = "interrupted"
                    log.warning("interrupted: writing outputs; re-run the same command to resume")
            counters = RunCounters(requests=run.requests if run else 0, retries=run.retries if run else 0,
                                   duration_s=round(clock() - started, 3), stopped=run.stopped if run else "")
        summary = build_summary(job, journal.state, counters, shard=options.shard, backend=options.backend)
        write_outputs(out_dir, job, journal.state, summary)
        journal.append(RunRecord(requests=counters.requests, retries=counters.retries,
                                 duration_s=round(counters.duration_s, 3), stopped=counters.stopped))
        log.info("batch done: %d/%d succeeded, %d HTTP request(s) this run, %d retries, %.1fs%s", summary.succeeded,
                 summary.total, counters.requests, counters.retries, counters.duration_s,
                 f"; stopped: {counters.stopped}" if counters.stopped else "")
        message = counters.stopped
        if interrupted:
            message = "interrupted; outputs written; re-run the same command to resume"
        return RunResult(summary, 0 if summary.complete else 1, message)
    finally:
        journal.close()
        detach_log(handler)


def _run_async(run: _LiveRun, pending: list[str]) -> None:
    """Drive the passes on a fresh event loop. SIGTERM (a cancelled CI job)
    is turned into the same clean stop as Ctrl-C."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        try:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            installed = False
        reporter = _Reporter(run.console, len(pending), run.options.progress_every_s, run.clock)
        try:
            with reporter:
                await run.run(pending, reporter)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)
            if reporter.progress.disable:
                reporter.line()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
