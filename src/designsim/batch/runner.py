"""The live batch runner: rate-limited, concurrent, checkpointed, resumable.

One :func:`execute_run` call:

1. opens the checkpoint (:class:`~designsim.batch.checkpoint.Journal`) in the
   output directory, removes temp files a killed run left, and selects the
   *pending* ids — those without a success for the same prompt/system/model,
   and not permanently failed (unless ``--retry-permanent``); a complete job
   sends zero requests; prompts over the context window or ``--tpm`` stop the
   run before anything is spent (exit 2, ids named);
2. main pass: asyncio workers, as many in flight as
   :class:`~designsim.batch.ratelimit.ConcurrencyGate` sizes from the rate and
   the observed latency (``--concurrency`` is the upper bound), send one
   request each (one user turn, optional system instruction) through a
   :class:`~designsim.batch.ratelimit.WindowLimiter` (requests/min and
   tokens/min that no 60 s window at the server exceeds, 2 % margin; ``--rpm
   auto`` searches for the limit) and
   :func:`~designsim.providers.retry.call_with_retries` (exponential backoff
   with jitter, honouring the server's ``retryDelay``; a 429 pauses every
   worker); every outcome is appended to the journal (fsync'd) the moment it
   arrives, and ``RESULTS.pkl`` is rewritten every N results or seconds;
3. recovery passes 2..``max_attempts`` re-send what failed *transiently*;
   permanent failures (400, blocked prompt, safety stop) are recorded with
   their reason and never re-sent; a daily quota
   (:class:`~designsim.errors.QuotaExhausted`) stops the run cleanly;
4. writes the outputs (:mod:`designsim.batch.outputs`) at the end and on
   interrupt (SIGINT / SIGTERM).

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

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from designsim.batch.checkpoint import Journal, ResultRecord, RunRecord, prompt_digest
from designsim.batch.ratelimit import AUTO_MAX_RPM, AUTO_START_RPM, DEFAULT_MARGIN, AutoRate, ConcurrencyGate, WindowLimiter
from designsim.batch.outputs import (
    LOG_NAME,
    RunCounters,
    Summary,
    build_summary,
    clean_stale_temp_files,
    write_outputs,
    write_results_pickle,
    write_summary,
)
from designsim.batch.tables import DEFAULT_ID_COL, DEFAULT_PROMPT_COL, Job
from designsim.tokens import estimate_tokens
from designsim.redact import RedactingFilter, Redactor, secrets_from_env
from designsim.errors import ConfigError, PermanentProviderError, ProviderError, QuotaExhausted, TransientProviderError
from designsim.providers.base import GenerationRequest, Provider
from designsim.providers.retry import RetryPolicy, call_with_retries

log = logging.getLogger("designsim.batch")



@dataclass
class RunOptions:
    """Knobs of one run.

    ``rpm`` requests per minute, or ``None`` for ``--rpm auto`` (the default:
    :class:`~designsim.batch.ratelimit.AutoRate` finds the limit, bounded by
    ``rpm_max``); ``tpm`` tokens per minute (``None`` = no token limit);
    ``margin`` the share of each limit kept free for jitter (0.02 = 2 %);
    ``concurrency`` the *upper bound* of requests in flight (the gate sizes
    it from the rate and the observed latency); ``max_attempts`` passes per
    id in one run (1 main + recovery passes); ``policy`` per-request retries;
    ``pass_delay_s`` seconds between passes (``None``: the policy's backoff);
    ``progress_every_s`` seconds between plain progress lines when not on a
    terminal; ``system`` / ``model`` / ``temperature`` / ``max_output_tokens``
    go into every request (no temperature is sent unless given: Google's
    Gemini 3 guide recommends the default 1.0); ``retry_permanent`` re-sends
    ids whose last outcome was a permanent failure; ``context_window`` input
    tokens the model takes (up-front check; ``None`` = not checked);
    ``checkpoint_every`` / ``checkpoint_every_s`` how often ``RESULTS.pkl`` is
    rewritten during a run (results / seconds); ``batch_deadline_s`` seconds
    Batch Mode jobs may stay unfinished before the rest goes live
    (``--batch-deadline``); ``shard`` is only echoed into the summary.
    """

    rpm: float | None = None
    tpm: int | None = None
    concurrency: int = 256
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
    margin: float = DEFAULT_MARGIN
    rpm_max: float = AUTO_MAX_RPM
    rpm_start: float = AUTO_START_RPM
    retry_permanent: bool = False
    context_window: int | None = None
    checkpoint_every: int = 100
    checkpoint_every_s: float = 60.0
    batch_deadline_s: float | None = None
    #: The limits' window in seconds: 60 (per minute). Tests and benchmarks scale time with a shorter one.
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.rpm is not None and self.rpm <= 0:
            raise ConfigError("--rpm must be > 0 or 'auto'", field="rpm")
        if self.tpm is not None and self.tpm <= 0:
            raise ConfigError("--tpm must be > 0", field="tpm")
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be >= 1", field="concurrency")
        if self.max_attempts < 1:
            raise ConfigError("--max-attempts must be >= 1", field="max_attempts")
        if not 0 <= self.margin < 0.5:
            raise ConfigError("the rate margin must be in [0, 0.5)", field="margin")

    @property
    def rpm_mode(self) -> str:
        return "auto" if self.rpm is None else "fixed"


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
        w = options.window_s
        self.auto = AutoRate(start_rpm=options.rpm_start, max_rpm=options.rpm_max, clock=clock, window_s=w) if options.rpm is None else None
        self.limiter = WindowLimiter(self.auto or options.rpm, options.tpm, margin=options.margin, clock=clock, window_s=w)
        self.gate = ConcurrencyGate(options.concurrency, lambda: self.limiter.rpm, window_s=w)
        self.http_429 = 0
        self.on_result: Callable[[], None] | None = None
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

    def _retry_notice(self, exc: TransientProviderError, delay: float, key: str) -> None:
        # not counted here: tenacity computes the wait before its stop check, so this
        # also fires after the last try; retries are counted from ``tries``
        if exc.status == 429 and exc.retry_delay:
            self.limiter.cool_down(delay)  # the shared pause: every worker waits it out
        log.info("id=%s retry in %.2fs after %s", key, delay, exc.reason)

    async def _one(self, key: str, pass_no: int, last: bool, reporter: _Reporter) -> None:
        opts = self.options
        prompt = self.job.prompts[key]
        request = GenerationRequest(prompt=prompt, system=opts.system, model=opts.model, temperature=opts.temperature,
                                    max_output_tokens=opts.max_output_tokens, label=f"batch:{key}")
        estimate = estimate_input_tokens(prompt, opts.system)
        tries = 0
        ticket = None

        async def attempt():
            nonlocal tries, ticket
            async with self.gate:
                if self.auto is not None:
                    self.auto.tick()
                ticket = await self.limiter.acquire(estimate)
                if self.stop.is_set():
                    raise asyncio.CancelledError
                tries += 1
                self.requests += 1
                try:
                    done = await self.provider.generate(request)
                except TransientProviderError as exc:
                    if exc.status == 429:
                        self.http_429 += 1
                        self.limiter.rejected(ticket)
                        if self.auto is not None:
                            self.auto.on_429(self.limiter.accepted_in_window())
                    else:
                        self.limiter.accepted(ticket)
                    raise
                except ProviderError:
                    self.limiter.accepted(ticket)
                    raise
                self.limiter.accepted(ticket)
                self.gate.observe(done.latency_s)
                return done

        def on_retry(exc: TransientProviderError, delay: float) -> None:
            self._retry_notice(exc, delay, key)

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
            if ticket is not None:
                self.limiter.debit(ticket, done.usage.input_tokens + done.usage.output_tokens - estimate)
            if self.on_result:
                self.on_result()
            return
        self.journal.append(record)
        final = not record.transient or last
        log.warning("id=%s failed (pass %d, %d request(s)): %s%s", key, pass_no, tries, record.error,
                    "" if final else " [will retry in a recovery pass]")
        reporter.update(ok=False, final=final)


def attach_log(out_dir: Path, redactor: Redactor | None = None) -> logging.Handler:
    """Append this logger's records to ``DIR/LOG.log`` (legacy format), keys
    redacted (``redactor``, default: the secret environment variables)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out_dir / LOG_NAME, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    handler.addFilter(RedactingFilter(redactor.values if redactor else None))
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
    """Ids to send: those without a success for the same prompt, system
    instruction and model, except ids whose last outcome for that prompt was
    a *permanent* failure (400, blocked prompt, safety stop: re-sending gives
    the same answer) unless ``options.retry_permanent`` (``--retry-permanent``)."""
    out = []
    for key in job.keys:
        digest = prompt_digest(job.prompts[key], options.system, options.model)
        rec = journal.state.best.get(key)
        if rec is not None and rec.status == "ok" and rec.digest and rec.digest != digest:
            log.warning("id=%s: prompt, system or model changed since its result; sending it again", key)
        if journal.state.succeeded(key, digest):
            continue
        if (rec is not None and rec.status == "failed" and not rec.transient and not options.retry_permanent
                and (not rec.digest or rec.digest == digest) and not rec.reason.startswith(("internal:", "quota:", "auth"))):
            continue
        out.append(key)
    return out


def near_limit_keys(job: Job, keys: list[str], options: RunOptions) -> list[str]:
    """Ids whose estimated input tokens reach half the context window or of
    ``--tpm``: the ones worth counting exactly (``countTokens``) up front."""
    limits = [x for x in (options.context_window, options.tpm) if x]
    if not limits:
        return []
    bound = 0.5 * min(limits)
    return [k for k in keys if estimate_input_tokens(job.prompts[k], options.system) >= bound]


def count_tokens_exactly(provider: Provider, job: Job, keys: list[str], options: RunOptions) -> dict[str, int]:
    """Input tokens of ``keys`` by the provider's ``count_tokens`` (Gemini's
    ``countTokens``: free, no generation), four at a time; an id whose count
    fails keeps its estimate. Empty when the provider cannot count."""
    counter = getattr(provider, "count_tokens", None)
    if counter is None or not keys:
        return {}

    async def main() -> dict[str, int]:
        sem = asyncio.Semaphore(4)
        out: dict[str, int] = {}

        async def one(key: str) -> None:
            async with sem:
                try:
                    out[key] = int(await counter(GenerationRequest(prompt=job.prompts[key], system=options.system,
                                                                   model=options.model)))
                except ProviderError as exc:
                    log.info("id=%s: countTokens failed (%s); using the estimate", key, exc.reason)

        await asyncio.gather(*(one(k) for k in keys))
        return out

    return asyncio.run(main())


def check_tokens(job: Job, keys: list[str], options: RunOptions, counted: dict[str, int] | None = None) -> None:
    """Up-front checks before anything is spent (issue 12 item 7): a prompt
    (with the system instruction) over the model's context window
    (``options.context_window``, tokens) can never be answered, and one over
    ``--tpm`` can never fit a minute. ``counted`` holds exact counts
    (:func:`count_tokens_exactly`); other ids use the 4-characters-per-token
    estimate. Raises one :class:`ConfigError` (exit 2) naming every such id."""
    counted = counted or {}
    over_window: list[str] = []
    over_tpm: list[str] = []
    for key in keys:
        tokens = counted.get(key)
        if tokens is None:
            tokens = estimate_input_tokens(job.prompts[key], options.system)
        if options.context_window and tokens + (options.max_output_tokens or 0) > options.context_window:
            over_window.append(f"{job.ids[key]} ({tokens} tokens)")
        if options.tpm and tokens > options.tpm * (1 - options.margin):
            over_tpm.append(f"{job.ids[key]} ({tokens} tokens)")
    problems = []
    if over_window:
        problems.append(f"{len(over_window)} prompt(s) over the model's context window of {options.context_window} "
                        f"input tokens: ids {', '.join(over_window[:20])}{' ...' if len(over_window) > 20 else ''}")
    if over_tpm:
        problems.append(f"{len(over_tpm)} prompt(s) over --tpm {options.tpm} (less the {options.margin:.0%} margin), "
                        f"which no minute can hold: ids {', '.join(over_tpm[:20])}{' ...' if len(over_tpm) > 20 else ''}")
    if problems:
        raise ConfigError("; ".join(problems), source=job.source or None, field=job.prompt_col)


def _build_provider(factory: Callable[[], Provider]) -> Provider:
    try:
        return factory()
    except QuotaExhausted as exc:  # no API key: a configuration problem, before any request
        raise ConfigError(str(exc), field="GEMINI_API_KEY") from exc


class _Checkpointer:
    """Rewrites ``RESULTS.pkl`` (atomically) every ``every`` new results or
    ``every_s`` seconds during a run, as users of the legacy script expect a
    partial file to exist while it runs."""

    def __init__(self, out_dir: Path, job: Job, journal: Journal, every: int, every_s: float, clock: Callable[[], float]):
        self.out_dir, self.job, self.journal = out_dir, job, journal
        self.every, self.every_s, self.clock = max(1, every), every_s, clock
        self.count = 0
        self.last = clock()

    def __call__(self) -> None:
        self.count += 1
        now = self.clock()
        if self.count >= self.every or now - self.last >= self.every_s:
            self.count, self.last = 0, now
            try:
                write_results_pickle(self.out_dir, self.job, self.journal.state)
            except OSError as exc:  # a full disk must not kill the run; the journal has everything
                log.warning("could not write the periodic RESULTS.pkl: %s", exc)


def execute_run(job: Job, out_dir: str | Path, options: RunOptions, provider_factory: Callable[[], Provider], *,
                console: Console | None = None, clock: Callable[[], float] = time.monotonic,
                started: float | None = None, secrets: tuple[str, ...] = (),
                batch_mode_factory: Callable[[], object] | None = None) -> RunResult:
    """Run or resume ``job`` into ``out_dir`` (see the module docstring).

    ``provider_factory`` is called only if something is pending (so a
    complete job needs no API key). ``started`` is the ``clock()`` value at
    process start (so ``duration_s`` covers the whole process, reading the
    input included; default: now). ``secrets`` are values (an API key passed
    as an argument) redacted, with the secret environment variables, from the
    journal, the outputs and ``LOG.log``. Raises :class:`ConfigError` for bad
    options, a locked directory, a prompt over the context window or
    ``--tpm``, or a provider that cannot be built (no key: exit 2).
    KeyboardInterrupt / SIGTERM: outputs are written, then exit code 1.
    """
    out_dir = Path(out_dir)
    console = console or Console(stderr=True)
    started = clock() if started is None else started
    out_dir.mkdir(parents=True, exist_ok=True)
    redactor = Redactor([*secrets_from_env(), *secrets])
    journal = Journal.open(out_dir, redact=redactor)
    handler = attach_log(out_dir, redactor)
    run: _LiveRun | None = None
    interrupted = False
    try:
        removed = clean_stale_temp_files(out_dir)
        if removed:
            log.info("removed %d stale temp file(s) left by a killed run", removed)
        pending = pending_keys(job, journal, options)
        provider: Provider | None = None
        near = near_limit_keys(job, pending, options)
        if near and options.backend == "live":  # count exactly what the estimate puts near a limit
            provider = _build_provider(provider_factory)
            counted = count_tokens_exactly(provider, job, near, options)
        else:
            counted = {}
        check_tokens(job, pending, options, counted)
        log.info("batch run: %d id(s) in job, %d pending, backend %s, rpm %s, tpm %s, concurrency up to %d",
                 len(job), len(pending), options.backend, options.rpm or "auto", options.tpm, options.concurrency)
        counters = RunCounters(rpm_mode=options.rpm_mode)
        live_keys = pending
        if options.backend == "batch-api":
            from designsim.batch.batch_api import run_batch_api

            stopped, live_keys = run_batch_api(job, journal, pending, options, console, clock=clock,
                                               mode_factory=batch_mode_factory)
            if live_keys:
                log.warning("--batch-deadline passed: sending %d id(s) as live calls", len(live_keys))
            counters.stopped = stopped
        else:
            live_keys = pending
        if live_keys:
            provider = provider or _build_provider(provider_factory)
            run = _LiveRun(job, journal, provider, options, console, clock)
            run.on_result = _Checkpointer(out_dir, job, journal, options.checkpoint_every, options.checkpoint_every_s, clock)
            try:
                _run_async(run, live_keys)
            except KeyboardInterrupt:
                interrupted = True
                run.stopped = "interrupted"
                log.warning("interrupted: writing outputs; re-run the same command to resume")
            counters.requests, counters.retries, counters.stopped = run.requests, run.retries, run.stopped or counters.stopped
            counters.http_429 = run.http_429
            settled = run.auto.settled if run.auto is not None and run.auto.settled else run.limiter.rpm
            counters.rpm_settled = round(settled, 1)
            counters.concurrency_peak = run.gate.peak
            counters.latency_s = round(run.gate.latency_s, 4) if run.gate.samples else None
        counters.duration_s = round(clock() - started, 3)
        summary = build_summary(job, journal.state, counters, shard=options.shard, backend=options.backend)
        write_outputs(out_dir, job, journal.state, summary)
        # duration_s covers the whole process, the output writing included (issue 12 item 7)
        counters.duration_s = round(clock() - started, 3)
        summary = build_summary(job, journal.state, counters, shard=options.shard, backend=options.backend)
        write_summary(out_dir, summary)
        journal.append(RunRecord(requests=counters.requests, retries=counters.retries,
                                 duration_s=round(counters.duration_s, 3), stopped=counters.stopped))
        log.info("batch done: %d/%d succeeded, %d HTTP request(s) this run, %d retries, %d answered 429, %.1fs%s%s",
                 summary.succeeded, summary.total, counters.requests, counters.retries, counters.http_429,
                 counters.duration_s, f", rpm settled at {counters.rpm_settled}" if options.rpm is None and run else "",
                 f"; stopped: {counters.stopped}" if counters.stopped else "")
        message = counters.stopped
        if interrupted:
            message = "interrupted; outputs written; re-run the same command to resume"
        return RunResult(summary, 0 if summary.complete else 1, message)
    finally:
        journal.close()
        detach_log(handler)


def run_batch(input_path: str | Path, out_dir: str | Path, *, options: RunOptions | None = None, api_key: str | None = None,
              id_col: str = DEFAULT_ID_COL, prompt_col: str = DEFAULT_PROMPT_COL, shard: str | None = None,
              timeout_s: float = 300.0, trust_pickle: bool = False, console: Console | None = None,
              provider_factory: Callable[[], Provider] | None = None, started: float | None = None) -> RunResult:
    """The public entry point of ``designsim batch run`` (the action calls it too).

    Reads and validates ``input_path`` (every problem at once, exit 2 before
    anything is spent), keeps shard ``"I/N"`` if given, and runs or resumes
    into ``out_dir`` with ``options`` (default :class:`RunOptions`: ``--rpm
    auto``, the catalogue's default model). ``api_key`` is the Gemini key
    passed as an argument (never read back from ``os.environ`` by the caller's
    side; when ``None`` the provider reads ``GEMINI_API_KEY`` /
    ``GOOGLE_API_KEY``); it is redacted, with those variables and
    ``GITHUB_TOKEN``, from everything the run writes. ``timeout_s`` is the
    per-request HTTP timeout (seconds). ``provider_factory`` overrides the
    Gemini provider (tests, other backends). Returns a :class:`RunResult`
    (``exit_code`` 0 complete, 1 incomplete); raises :class:`ConfigError`
    (exit 2) for bad input or a missing key.
    """
    from designsim.batch.tables import load_job, parse_shard

    started = time.monotonic() if started is None else started
    options = options or RunOptions()
    job = load_job(input_path, id_col=id_col, prompt_col=prompt_col, trust_pickle=trust_pickle)
    shard_spec = parse_shard(shard)
    if shard_spec:
        job = job.shard(*shard_spec)
    if provider_factory is None:
        def provider_factory() -> Provider:
            from designsim.providers.gemini import GeminiProvider

            return GeminiProvider(default_model=options.model, timeout_s=timeout_s, api_key=api_key)
    def batch_mode_factory():
        from designsim.providers.batch_mode import GeminiBatchMode
        from designsim.providers.client import settings_from_env

        return GeminiBatchMode(settings_from_env(api_key=api_key, timeout_s=timeout_s), options.policy)

    secrets = (api_key,) if api_key else ()
    return execute_run(job, out_dir, options, provider_factory, console=console, started=started, secrets=secrets,
                       batch_mode_factory=batch_mode_factory)


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
