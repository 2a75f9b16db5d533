"""``--backend batch-api``: the same job through Gemini Batch Mode.

The Batch Mode calls themselves live in :mod:`designsim.providers.batch_mode`
(the one client factory, the same retry policy and error mapping as live
calls, jobs sized by serialised request, the File API for work over 20 MB).
This module keeps the journal in step with them. One invocation (re-run it to
make progress; it resumes across workflow runs because the job names live in
the checkpoint):

1. poll every open job recorded in the journal; a finished job's responses
   become result records exactly like live ones, matched by the ``key``
   metadata (blocked prompts and safety stops are permanent failures: recorded
   once, never resubmitted unless ``--retry-permanent``); a job that failed,
   was cancelled, expired or 404s is closed and its ids become pending again;
   a job older than ``--batch-deadline`` is cancelled and its ids go to live
   calls in this run (jobs stuck in PENDING: python-genai #2974);
2. submit the pending ids that are in no running job; a job that fails at
   create is recorded and replaced: its ids are submitted again in two halves,
   down to single requests, which then fail permanently alone.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from rich.console import Console

from designsim.batch.checkpoint import BatchJobRecord, Journal, ResultRecord, prompt_digest
from designsim.batch.tables import Job
from designsim.errors import PermanentProviderError, QuotaExhausted, TransientProviderError
from designsim.providers.batch_mode import (
    BatchRequest,
    GeminiBatchMode,
    JobNotFound,
    JobStatus,
    build_request,
    plan_jobs,
)

log = logging.getLogger("designsim.batch")


def collect(status: JobStatus, submitted: BatchJobRecord, job: Job, journal: Journal) -> tuple[int, int]:
    """Turn a finished job's responses into result records. Returns
    ``(succeeded, failed)``; ids absent from the responses stay pending."""
    from designsim.providers.gemini import TRANSIENT_STATUSES, completion_from_response

    ok = bad = 0
    wanted = set(submitted.keys)
    for item in status.results:
        key = item.key
        if key is None or key not in wanted or key not in job.prompts or journal.state.succeeded(key):
            continue
        base = dict(key=key, digest=submitted.digests.get(key, ""), backend="batch-api", requests=1)
        if item.response is None:
            journal.append(ResultRecord(status="failed", reason=f"batch:{item.error_code}", error=item.error_message,
                                        transient=item.error_code in TRANSIENT_STATUSES, **base))
            bad += 1
            continue
        try:
            done = completion_from_response(item.response, model=submitted.model, latency_s=0.0, want_json=False)
        except PermanentProviderError as exc:
            journal.append(ResultRecord(status="failed", reason=exc.reason, error=str(exc), **base))
            bad += 1
            continue
        journal.append(ResultRecord(status="ok", text=done.text, input_tokens=done.usage.input_tokens,
                                    output_tokens=done.usage.output_tokens, **base))
        ok += 1
    return ok, bad


def _requests(job: Job, keys: list[str], options) -> list[BatchRequest]:
    return [BatchRequest(k, build_request(job.prompts[k], system=options.system, temperature=options.temperature,
                                          max_output_tokens=options.max_output_tokens)) for k in keys]


def _submit(mode: GeminiBatchMode, job: Job, journal: Journal, group: list[BatchRequest], via: str, options,
            model: str) -> list[str]:
    """Create one job for ``group``; on a permanent create failure record it and
    replace it by two halves (a lone request fails permanently). Returns the
    names of the jobs created."""
    digests = {r.key: prompt_digest(job.prompts[r.key], options.system, options.model) for r in group}
    try:
        created = mode.create(model, group, via, f"designsim-{len(group)}-prompts")
    except PermanentProviderError as exc:
        journal.append(BatchJobRecord(event="create_failed", name=f"create:{group[0].key}+{len(group) - 1}",
                                      model=model, keys=[r.key for r in group], via=via, error=str(exc)[:500]))
        if len(group) == 1:
            journal.append(ResultRecord(status="failed", key=group[0].key, reason=f"batch:create:{exc.reason}",
                                        error=str(exc), digest=digests[group[0].key], backend="batch-api", requests=1))
            return []
        log.warning("Batch Mode create failed for %d prompt(s) (%s); submitting them again in two halves", len(group), exc)
        half = len(group) // 2
        return (_submit(mode, job, journal, group[:half], via, options, model)
                + _submit(mode, job, journal, group[half:], via, options, model))
    journal.append(BatchJobRecord(event="submitted", name=created.name, model=model, keys=[r.key for r in group],
                                  digests=digests, state=created.state, via=via))
    log.info("submitted Batch Mode job %s with %d prompt(s) (%s)", created.name, len(group), via)
    return [created.name]


def run_batch_api(job: Job, journal: Journal, pending: list[str], options, console: Console, *,
                  clock: Callable[[], float] = time.monotonic,
                  mode_factory: Callable[[], GeminiBatchMode] | None = None,
                  wall: Callable[[], float] = time.time) -> tuple[str, list[str]]:
    """Poll open jobs, collect finished ones, submit what is left (see the
    module docstring). Returns ``(stopped message, keys to send live now)``:
    the message is "" when nothing is outstanding; the keys are those whose
    job passed ``options.batch_deadline_s``. Raises
    :class:`~designsim.providers.batch_mode.BatchModeUnavailable` (exit 2) for
    an endpoint without Batch Mode and :class:`ConfigError` without a key."""
    from designsim.batch.runner import pending_keys
    from designsim.providers.catalogue import default_model

    if not pending and not journal.state.open_jobs:
        return "", []
    if mode_factory is None:
        from designsim.providers.client import settings_from_env

        def mode_factory() -> GeminiBatchMode:
            return GeminiBatchMode(settings_from_env(), options.policy)

    mode = mode_factory()
    model = options.model or default_model()
    running: list[str] = []
    live: list[str] = []
    try:
        for name, submitted in list(journal.state.open_jobs.items()):
            try:
                status = mode.get(name)
            except JobNotFound:
                journal.append(BatchJobRecord(event="done", name=name, state="NOT_FOUND", model=submitted.model))
                log.warning("Batch Mode job %s was not found (404); its ids will be submitted again", name)
                continue
            if status.succeeded:
                ok, bad = collect(status, submitted, job, journal)
                journal.append(BatchJobRecord(event="done", name=name, state=status.state, model=submitted.model))
                log.info("Batch Mode job %s %s: %d ok, %d failed", name, status.state, ok, bad)
            elif status.failed:
                journal.append(BatchJobRecord(event="done", name=name, state=status.state, model=submitted.model))
                log.warning("Batch Mode job %s ended %s; its ids will be submitted again", name, status.state)
            elif options.batch_deadline_s is not None and wall() - submitted.at > options.batch_deadline_s:
                mode.cancel(name)
                journal.append(BatchJobRecord(event="done", name=name, state="DEADLINE", model=submitted.model))
                live.extend(k for k in submitted.keys if not journal.state.succeeded(k))
                log.warning("Batch Mode job %s still %s after --batch-deadline (%.0f s); cancelled, its %d id(s) go live",
                            name, status.state or "unknown", options.batch_deadline_s, len(submitted.keys))
            else:
                running.append(name)
                log.info("Batch Mode job %s is %s", name, status.state or "unknown")
        in_flight = {k for rec in journal.state.open_jobs.values() for k in rec.keys}
        live_set = set(live)
        todo = [k for k in pending_keys(job, journal, options) if k not in in_flight and k not in live_set]
        if todo:
            plan = plan_jobs(_requests(job, todo, options))
            for group in plan.groups:
                running.extend(_submit(mode, job, journal, group, plan.via, options, model))
    except QuotaExhausted as exc:
        return f"quota exhausted: {exc}", live
    except (TransientProviderError, PermanentProviderError) as exc:
        return f"Batch Mode call failed: {exc}", live
    if running:
        waiting = sum(len(journal.state.open_jobs[n].keys) for n in running if n in journal.state.open_jobs)
        return f"{waiting} id(s) waiting in Batch Mode job(s) {', '.join(running)}; re-run later to collect", live
    return "", live
