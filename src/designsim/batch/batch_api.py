"""``--backend batch-api``: the same job through Gemini Batch Mode.

Batch Mode (``client.batches``) costs half the live price and targets a 24 h
turnaround; it takes *inline* requests up to 20 MB per job (Gemini Batch Mode
docs), so pending prompts are split into jobs of at most
:data:`INLINE_LIMIT_BYTES`. Each request carries ``metadata.key`` = the id key
so results are matched by id, not by position.

One invocation (re-run it to make progress; it resumes across workflow runs
because the job names live in the checkpoint):

1. poll every open job recorded in the journal (``client.batches.get``); a
   finished job's inline responses become result records exactly like live
   ones (blocked prompts and safety stops are permanent failures); a job that
   failed, was cancelled or expired is closed and its ids become pending again;
2. submit the ids that are neither done nor inside a running job
   (``client.batches.create`` with inline requests) and record the job names.

REST shapes (google-genai 3.4, ``batches.py``): ``POST
/{version}/models/{model}:batchGenerateContent`` with
``{"batch": {"inputConfig": {"requests": {"requests": [{"request": {...},
"metadata": {...}}]}}}}``; ``GET /{version}/batches/{id}`` returns
``{"name", "metadata": {"state": "BATCH_STATE_…", "output":
{"inlinedResponses": {"inlinedResponses": [{"response"|"error", "metadata"}]}}}}``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from rich.console import Console

from designsim.batch.checkpoint import BatchJobRecord, Journal, ResultRecord, prompt_digest
from designsim.batch.tables import Job
from designsim.errors import ConfigError, PermanentProviderError, QuotaExhausted, TransientProviderError
from designsim.providers.base import GenerationRequest
from designsim.providers.gemini import config_kwargs

log = logging.getLogger("designsim.batch")

#: Gemini's inline Batch Mode limit is 20 MB per job; keep headroom for JSON framing.
INLINE_LIMIT_BYTES = 18_000_000
DONE_OK = {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
DONE_BAD = {"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def _client():
    from google import genai

    from designsim.providers.gemini import api_key_from_env

    key = api_key_from_env()
    if not key:
        raise ConfigError("no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)", field="GEMINI_API_KEY")
    return genai.Client(api_key=key)


def _call(fn: Callable[[], Any], options) -> Any:
    """``fn()`` with our error mapping and the run's retry policy (sync)."""
    from designsim.providers.gemini import _MAPPED_ERRORS, map_api_error

    policy = options.policy
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except _MAPPED_ERRORS as exc:
            mapped = map_api_error(exc)
            if not isinstance(mapped, TransientProviderError) or attempt == policy.attempts:
                raise mapped from exc
            delay = policy.wait_seconds(attempt, mapped.retry_delay)
            log.info("Batch Mode call failed (%s); retrying in %.2fs", mapped.reason, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _state(batch_job: Any) -> str:
    state = getattr(batch_job, "state", None)
    return str(getattr(state, "value", state) or "")


def collect(batch_job: Any, submitted: BatchJobRecord, job: Job, journal: Journal) -> tuple[int, int]:
    """Turn a finished job's inline responses into result records.
    Returns ``(succeeded, failed)`` counts; ids absent from the responses stay pending."""
    from designsim.providers.gemini import TRANSIENT_STATUSES, completion_from_response

    responses = list(getattr(getattr(batch_job, "dest", None), "inlined_responses", None) or [])
    ok = bad = 0
    for position, item in enumerate(responses):
        key = (item.metadata or {}).get("key") if getattr(item, "metadata", None) else None
        if key is None and position < len(submitted.keys):
            key = submitted.keys[position]
        if key is None or key not in job.prompts or journal.state.succeeded(key):
            continue
        base = dict(key=key, digest=submitted.digests.get(key, ""), backend="batch-api", requests=1)
        if getattr(item, "error", None) is not None:
            code = int(item.error.code or 0)
            journal.append(ResultRecord(status="failed", reason=f"batch:{code}", error=str(item.error.message or ""),
                                        transient=code in TRANSIENT_STATUSES, **base))
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


def _inline_request(prompt: str, key: str, options) -> dict:
    config = config_kwargs(GenerationRequest(prompt=prompt, system=options.system, temperature=options.temperature,
                                             max_output_tokens=options.max_output_tokens))
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "metadata": {"key": key}}
    if config:
        request["config"] = config
    return request


def chunks(keys: list[str], job: Job, limit_bytes: int = INLINE_LIMIT_BYTES) -> list[list[str]]:
    """Split ``keys`` into groups whose prompts fit one inline job (bytes of UTF-8 JSON)."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for key in keys:
        cost = len(json.dumps(job.prompts[key]).encode("utf-8")) + len(key) + 200
        if current and size + cost > limit_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(key)
        size += cost
    if current:
        groups.append(current)
    return groups


def run_batch_api(job: Job, journal: Journal, pending: list[str], options, console: Console, clock=time.monotonic) -> tuple[str, list[str]]:
    """Poll open jobs, collect finished ones, submit what is left.
    Returns a "stopped" message ("" when nothing is outstanding)."""
    from designsim.providers.gemini import DEFAULT_MODEL

    stopped = _run_batch_api(job, journal, pending, options, console)
    return stopped, []


def _run_batch_api(job: Job, journal: Journal, pending: list[str], options, console: Console) -> str:
    from designsim.providers.gemini import DEFAULT_MODEL

    if not pending and not journal.state.open_jobs:
        return ""
    client = _client()
    model = options.model or DEFAULT_MODEL
    running: list[str] = []
    try:
        for name, submitted in list(journal.state.open_jobs.items()):
            batch_job = _call(lambda: client.batches.get(name=name), options)
            state = _state(batch_job)
            if state in DONE_OK:
                ok, bad = collect(batch_job, submitted, job, journal)
                journal.append(BatchJobRecord(event="done", name=name, state=state, model=submitted.model))
                log.info("Batch Mode job %s %s: %d ok, %d failed", name, state, ok, bad)
            elif state in DONE_BAD:
                journal.append(BatchJobRecord(event="done", name=name, state=state, model=submitted.model))
                log.warning("Batch Mode job %s ended %s; its ids will be submitted again", name, state)
            else:
                running.append(name)
                log.info("Batch Mode job %s is %s", name, state or "unknown")
        in_flight = {k for rec in journal.state.open_jobs.values() for k in rec.keys}
        todo = [k for k in job.keys if k not in in_flight and not journal.state.succeeded(
            k, prompt_digest(job.prompts[k], options.system, options.model))]
        for group in chunks(todo, job):
            requests = [_inline_request(job.prompts[k], k, options) for k in group]
            created = _call(lambda: client.batches.create(model=model, src=requests,
                                                          config={"display_name": f"designsim-{len(group)}-prompts"}), options)
            digests = {k: prompt_digest(job.prompts[k], options.system, options.model) for k in group}
            journal.append(BatchJobRecord(event="submitted", name=created.name, model=model, keys=group, digests=digests,
                                          state=_state(created)))
            running.append(created.name)
            log.info("submitted Batch Mode job %s with %d prompt(s)", created.name, len(group))
    except QuotaExhausted as exc:
        return f"quota exhausted: {exc}"
    except (TransientProviderError, PermanentProviderError) as exc:
        return f"Batch Mode call failed: {exc}"
    if running:
        waiting = sum(len(journal.state.open_jobs[n].keys) for n in running if n in journal.state.open_jobs)
        return f"{waiting} id(s) waiting in Batch Mode job(s) {', '.join(running)}; re-run later to collect"
    return ""
