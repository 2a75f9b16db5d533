"""Gemini Batch Mode as a provider capability, beside the live provider.

Batch Mode (``client.batches``) costs half the live price and targets a 24 h
turnaround. It takes either *inline* requests, up to 20 MB per job, or a JSONL
file uploaded through the File API, up to 2 GB (Gemini Batch Mode docs, read
2026-12-01). Jobs are sized by the *serialised request* (contents, system
instruction and generation config, as JSON), never by prompt bytes alone: a
10 KB system instruction repeated over 3,000 prompts is 30 MB.

:class:`GeminiBatchMode` is the one place that talks to those routes. Its client
comes from :func:`designsim.providers.client.build_client` (key, timeout, base
URL, Vertex AI); every call goes through tenacity with the run's
:class:`~designsim.providers.retry.RetryPolicy` and
:func:`designsim.providers.gemini.map_api_error`, like live calls. Errors:

* :class:`BatchModeUnavailable` (a :class:`ConfigError`, exit 2): the endpoint
  has no Batch Mode routes (``…:batchGenerateContent`` answers 404 or 405) or
  answers something the SDK cannot read, so the user is told to use
  ``--backend live`` instead of seeing a pydantic traceback;
* :class:`JobNotFound`: ``GET batches/…`` answered 404 (the job expired or was
  deleted); the runner records it and submits its ids again;
* the usual provider errors otherwise (a 400 at create is permanent).

REST shapes (google-genai 3.4, ``batches.py`` / ``files.py``): ``POST
/{v}/models/{m}:batchGenerateContent`` with ``{"batch": {"inputConfig":
{"requests": {"requests": [{"request", "metadata"}]}}}}`` or ``{"fileName":
"files/…"}``; ``GET /{v}/batches/{id}`` returns ``{"name", "metadata": {"state",
"output": {"inlinedResponses": …} | {"responsesFile": "files/…"}}}``; a JSONL
input line is ``{"key": …, "request": {…}}`` and an output line ``{"key": …,
"response": {…}}`` or ``{"key": …, "error": {…}}``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from designsim.errors import ConfigError, DesignsimError, TransientProviderError
from designsim.providers.client import ClientSettings, build_client
from designsim.providers.gemini import map_api_error
from designsim.providers.retry import RetryPolicy

log = logging.getLogger("designsim.batch")

#: Gemini's inline Batch Mode limit per job (bytes of request JSON).
INLINE_LIMIT_BYTES = 20_000_000
#: What we put in one inline job: 5 % below the limit for the SDK's framing.
INLINE_BUDGET_BYTES = 19_000_000
#: The File API's limit for a JSONL batch input (2 GB), and our budget below it.
FILE_LIMIT_BYTES = 2_000_000_000
FILE_BUDGET_BYTES = 1_900_000_000

DONE_OK = {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED", "BATCH_STATE_SUCCEEDED"}
DONE_BAD = {"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED", "BATCH_STATE_FAILED",
            "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}


class BatchModeUnavailable(ConfigError):
    """The endpoint offers no Gemini Batch Mode (see the module docstring); exit 2."""


class JobNotFound(DesignsimError):
    """``GET batches/{id}`` answered 404: the job is gone (expired, deleted)."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"Batch Mode job {name} was not found (404)")


@dataclass
class BatchRequest:
    """One prompt for Batch Mode: ``key`` (the id key, echoed back as
    metadata) and ``request``, a REST ``GenerateContentRequest`` (camelCase)."""

    key: str
    request: dict[str, Any]

    def inline_json(self) -> dict[str, Any]:
        return {"request": self.request, "metadata": {"key": self.key}}

    def jsonl_line(self) -> bytes:
        return json.dumps({"key": self.key, "request": self.request}, ensure_ascii=False).encode("utf-8") + b"\n"

    @property
    def size(self) -> int:
        """Bytes of this request as it travels inline (UTF-8 JSON, with its metadata)."""
        return len(json.dumps(self.inline_json(), ensure_ascii=False).encode("utf-8")) + 1


def build_request(prompt: str, *, system: str | None = None, temperature: float | None = None,
                  max_output_tokens: int | None = None) -> dict[str, Any]:
    """The REST body of one generation: one user turn, the system instruction
    and the generation config, each only when set (no temperature is sent
    unless given: Google's Gemini 3 guide recommends the default 1.0)."""
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config: dict[str, Any] = {}
    if temperature is not None:
        config["temperature"] = temperature
    if max_output_tokens:
        config["maxOutputTokens"] = max_output_tokens
    if config:
        body["generationConfig"] = config
    return body


@dataclass
class Plan:
    """Groups of requests, each one job: ``via`` ``inline`` or ``file``."""

    groups: list[list[BatchRequest]] = field(default_factory=list)
    via: str = "inline"


def plan_jobs(requests: list[BatchRequest], *, inline_budget: int | None = None,
              file_budget: int | None = None) -> Plan:
    """Size jobs by serialised request: everything inline when it fits one
    job under ``inline_budget`` bytes (default :data:`INLINE_BUDGET_BYTES`),
    else JSONL files of at most ``file_budget`` bytes each (default
    :data:`FILE_BUDGET_BYTES`; larger work goes through the File API)."""
    inline_budget = INLINE_BUDGET_BYTES if inline_budget is None else inline_budget
    file_budget = FILE_BUDGET_BYTES if file_budget is None else file_budget
    total = sum(r.size for r in requests)
    if total <= inline_budget:
        return Plan([requests] if requests else [], "inline")
    groups: list[list[BatchRequest]] = []
    current: list[BatchRequest] = []
    size = 0
    for req in requests:
        cost = len(req.jsonl_line())
        if current and size + cost > file_budget:
            groups.append(current)
            current, size = [], 0
        current.append(req)
        size += cost
    if current:
        groups.append(current)
    return Plan(groups, "file")


@dataclass
class BatchResult:
    """One answer of a finished job: ``key`` and either ``response`` (an SDK
    ``GenerateContentResponse``) or ``error_code`` / ``error_message``."""

    key: str | None
    response: Any = None
    error_code: int = 0
    error_message: str = ""


@dataclass
class JobStatus:
    """A polled job: ``state`` as Gemini names it, and its results once done."""

    name: str
    state: str
    results: list[BatchResult] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state in DONE_OK

    @property
    def failed(self) -> bool:
        return self.state in DONE_BAD


def _is_sdk_error(exc: BaseException) -> bool:
    from google.genai import errors as genai_errors

    if isinstance(exc, (genai_errors.APIError, TimeoutError, ConnectionError)):
        return True
    return type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore"}


class GeminiBatchMode:
    """Gemini Batch Mode through google-genai (see the module docstring).

    ``settings`` a :class:`ClientSettings` (the one client factory);
    ``policy`` the retry policy of live calls; ``sleep`` seconds -> None (tests
    pass a fast one). Raises :class:`ConfigError` at construction when nothing
    authenticates.
    """

    def __init__(self, settings: ClientSettings, policy: RetryPolicy | None = None, *,
                 sleep: Callable[[float], None] | None = None):
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self.client = build_client(settings)
        self.calls = 0

    # ------------------------------------------------------------------ calls

    def _call(self, what: str, fn: Callable[[], Any], *, model: str | None = None) -> Any:
        """``fn()`` mapped (:func:`map_api_error`) and retried on transient
        errors with the run's policy, honouring ``retryDelay``."""
        from pydantic import ValidationError

        policy = self.policy

        def once():
            self.calls += 1
            try:
                return fn()
            except DesignsimError:
                raise
            except ValidationError as exc:
                raise BatchModeUnavailable(f"{what}: the server's answer is not a Gemini Batch Mode response "
                                           f"({exc.error_count()} validation error(s)); use --backend live",
                                           field="backend") from exc
            except Exception as exc:
                if not _is_sdk_error(exc):
                    raise
                raise map_api_error(exc, model=model) from exc

        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        retrying = Retrying(stop=stop_after_attempt(policy.attempts), reraise=True,
                            retry=retry_if_exception_type(TransientProviderError),
                            wait=lambda state: policy.wait_seconds(
                                state.attempt_number, getattr(state.outcome.exception(), "retry_delay", None)),
                            before_sleep=lambda state: log.info("Batch Mode %s failed (%s); retrying", what,
                                                                getattr(state.outcome.exception(), "reason", "?")),
                            **kwargs)
        return retrying(once)

    def create(self, model: str, group: list[BatchRequest], via: str, display_name: str) -> JobStatus:
        """Submit one job (inline requests or an uploaded JSONL file).
        Raises :class:`BatchModeUnavailable` when the route is missing."""
        from google.genai import errors as genai_errors

        if via == "inline":
            src: Any = [self._sdk_inline(r) for r in group]
        else:
            src = self._upload_jsonl(group, display_name)
        try:
            job = self._call("create", lambda: self.client.batches.create(model=model, src=src,
                                                                           config={"display_name": display_name}),
                             model=model)
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, genai_errors.APIError) and cause.code in (404, 405, 501):
                raise BatchModeUnavailable(
                    f"this endpoint offers no Gemini Batch Mode: POST models/{model}:batchGenerateContent answered "
                    f"{cause.code} {cause.status or ''}; use --backend live (or check the model supports Batch Mode)",
                    field="backend") from exc
            raise
        if not getattr(job, "name", None):
            raise BatchModeUnavailable("create: the server's answer has no job name; use --backend live", field="backend")
        return JobStatus(job.name, _state(job))

    def get(self, name: str) -> JobStatus:
        """Poll a job; a finished one comes with its results (inline or from
        its responses file). Raises :class:`JobNotFound` on 404."""
        from google.genai import errors as genai_errors

        try:
            job = self._call("get", lambda: self.client.batches.get(name=name))
        except Exception as exc:
            if isinstance(exc.__cause__, genai_errors.APIError) and exc.__cause__.code == 404:
                raise JobNotFound(name) from exc
            raise
        status = JobStatus(name, _state(job))
        if status.succeeded:
            status.results = self._results(job)
        return status

    def cancel(self, name: str) -> None:
        """Ask Gemini to cancel a job (best effort: errors are logged, not raised)."""
        try:
            self._call("cancel", lambda: self.client.batches.cancel(name=name))
        except DesignsimError as exc:
            log.warning("could not cancel Batch Mode job %s: %s", name, exc)

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _sdk_inline(req: BatchRequest) -> dict[str, Any]:
        body = req.request
        item: dict[str, Any] = {"contents": body["contents"], "metadata": {"key": req.key}}
        config: dict[str, Any] = {}
        if "systemInstruction" in body:
            config["system_instruction"] = body["systemInstruction"]["parts"][0]["text"]
        gen = body.get("generationConfig") or {}
        if "temperature" in gen:
            config["temperature"] = gen["temperature"]
        if "maxOutputTokens" in gen:
            config["max_output_tokens"] = gen["maxOutputTokens"]
        if config:
            item["config"] = config
        return item

    def _upload_jsonl(self, group: list[BatchRequest], display_name: str) -> str:
        fd, path = tempfile.mkstemp(prefix="designsim-batch-", suffix=".jsonl")
        try:
            with os.fdopen(fd, "wb") as fh:
                for req in group:
                    fh.write(req.jsonl_line())
            uploaded = self._call("upload", lambda: self.client.files.upload(
                file=path, config={"mime_type": "jsonl", "display_name": display_name}))
        finally:
            os.unlink(path)
        return uploaded.name

    def _results(self, job: Any) -> list[BatchResult]:
        dest = getattr(job, "dest", None)
        out: list[BatchResult] = []
        for item in getattr(dest, "inlined_responses", None) or []:
            key = (getattr(item, "metadata", None) or {}).get("key")
            err = getattr(item, "error", None)
            if err is not None:
                out.append(BatchResult(key, error_code=int(getattr(err, "code", 0) or 0),
                                       error_message=str(getattr(err, "message", "") or "")))
            else:
                out.append(BatchResult(key, response=item.response))
        file_name = getattr(dest, "file_name", None)
        if file_name:
            from google.genai import types

            data = self._call("download", lambda: self.client.files.download(file=file_name))
            for lineno, raw in enumerate(bytes(data).splitlines(), 1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                    key = line.get("key")
                    if "error" in line:
                        err = line["error"] or {}
                        out.append(BatchResult(key, error_code=int(err.get("code", 0) or 0),
                                               error_message=str(err.get("message", ""))))
                    else:
                        out.append(BatchResult(key, response=types.GenerateContentResponse.model_validate(line["response"])))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    log.warning("Batch Mode responses file %s line %d unreadable (%s); that id stays pending",
                                file_name, lineno, type(exc).__name__)
        return out


def _state(job: Any) -> str:
    state = getattr(job, "state", None)
    return str(getattr(state, "value", state) or "")
