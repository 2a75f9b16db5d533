"""Gemini through google-genai (not the deprecated google-generativeai).

This module is the one boundary where SDK exceptions and response shapes are
translated into :mod:`designsim.errors` and :class:`Completion`. It honours
the SDK's own ``GOOGLE_GEMINI_BASE_URL`` (tests point it at
:class:`designsim.testing.FakeGeminiServer`) and ``GOOGLE_GENAI_API_VERSION``.

Facts relied on (google-genai 3.4, Gemini REST docs):

* A 429 carries ``google.rpc.RetryInfo.retryDelay`` (a Duration string such as
  ``"26s"`` or ``"45.8s"``) in ``error.details``; a ``QuotaFailure`` violation
  whose ``quotaId`` contains ``PerDay`` will not clear within a run.
* A blocked prompt is HTTP 200 with no candidates and
  ``promptFeedback.blockReason``; ``response.text`` is ``None``.
* ``finishReason: MAX_TOKENS`` is a truncated reply; ``SAFETY``,
  ``RECITATION``, ``PROHIBITED_CONTENT``… are safety stops.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from designsim.errors import (ConfigError, ModelUnavailable, PermanentProviderError, QuotaExhausted, SpendCapReached,
                              TransientProviderError, TruncatedReply)
from designsim.providers.base import Completion, GenerationRequest, Usage
from designsim.providers.catalogue import DEFAULT_MODEL, lookup, replacement_for, thinking_config
from designsim.providers.client import ClientSettings, api_key_from_env, build_client, settings_from_env

#: HTTP statuses worth another try (Gemini's documented transient errors).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_OK_FINISH = {"STOP", "FINISH_REASON_UNSPECIFIED", ""}


def _mapped_errors() -> tuple[type[BaseException], ...]:
    """SDK and transport exceptions we translate (google-genai 3.4 uses httpx2,
    older releases httpx); anything else is a bug and propagates untouched."""
    from google.genai import errors as genai_errors

    kinds: list[type[BaseException]] = [genai_errors.APIError, TimeoutError, ConnectionError]
    for module in ("httpx2", "httpx"):
        try:
            kinds.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(kinds)


_MAPPED_ERRORS = _mapped_errors()


def parse_duration(value: str | None) -> float | None:
    """Seconds in a protobuf Duration string (``"26s"``, ``"45.837906927s"``)."""
    if not value:
        return None
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)s\s*", str(value))
    return float(match.group(1)) if match else None


def _details(body: Any) -> list[dict]:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("details"), list):
            return [d for d in err["details"] if isinstance(d, dict)]
    return []


def retry_delay_from_error(body: Any) -> float | None:
    """``RetryInfo.retryDelay`` from a Gemini error body, in seconds, if present."""
    for detail in _details(body):
        if detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            return parse_duration(detail.get("retryDelay"))
    return None


def _quota_ids(body: Any) -> list[str]:
    ids: list[str] = []
    for detail in _details(body):
        if detail.get("@type", "").endswith("google.rpc.QuotaFailure"):
            ids += [str(v.get("quotaId", "")) for v in detail.get("violations") or []]
    return ids


def is_daily_quota(body: Any) -> bool:
    """True when a 429's ``QuotaFailure`` names a per-day quota."""
    return any("perday" in q.lower() for q in _quota_ids(body))


def is_spend_cap(body: Any, message: str = "") -> bool:
    """True when a 429 is a spend cap (Gemini's per-10-minute spend limits) rather
    than a request/token rate limit: a ``QuotaFailure`` quota id naming spend or
    cost, or a message saying "spend cap" / "spending limit"."""
    if any(("spend" in q.lower() or "cost" in q.lower()) for q in _quota_ids(body)):
        return True
    return bool(re.search(r"spend(ing)?[ _-]?(cap|limit)", message, re.IGNORECASE))


def _names_model(message: str, model: str | None) -> bool:
    text = message.lower()
    return "model" in text or bool(model and model.lower() in text)


def map_api_error(exc: Exception, *, model: str | None = None) -> Exception:
    """Translate a google-genai ``APIError`` (or an httpx transport error) into
    our error tree. Returns the new exception; the caller raises it ``from exc``.

    One meaning per error: 429 per-minute → ``TransientProviderError`` with the
    server's ``retryDelay``; 429 per-day → ``QuotaExhausted`` (``quota:daily``);
    429 spend cap → :class:`SpendCapReached` (``spend-cap``); 401/403 and a
    refused key → ``PermanentProviderError`` (``auth``); 404 NOT_FOUND naming the
    model → :class:`ModelUnavailable` (a configuration error, exit 2, naming the
    replacement from the catalogue).
    """
    from google.genai import errors as genai_errors

    if isinstance(exc, genai_errors.APIError):
        code = int(exc.code or 0)
        body = exc.details
        text = exc.message or ""
        message = f"Gemini API {code} {exc.status or ''}: {text}".strip()
        if code == 429 and is_daily_quota(body):
            return QuotaExhausted(message + " (daily quota: will not refill within this run; re-run tomorrow to resume)",
                                  status=code, reason="quota:daily")
        if code == 429 and is_spend_cap(body, text):
            return SpendCapReached(message + " (spend cap for the 10-minute window)", status=code, reason="spend-cap",
                                   retry_delay=retry_delay_from_error(body))
        if code == 429:
            return TransientProviderError(message, status=code, reason="rate:minute", retry_delay=retry_delay_from_error(body))
        if code == 404 and _names_model(text, model):
            return ModelUnavailable(model or "(unknown)", replacement_for(model or ""), detail=message)
        if code in TRANSIENT_STATUSES:
            return TransientProviderError(message, status=code, reason=str(code), retry_delay=retry_delay_from_error(body))
        if code in (401, 403) or (code == 400 and "API_KEY" in str(body)):
            return PermanentProviderError(message + " (the credentials were refused: check the API key or the Vertex AI "
                                          "service account's permissions)", status=code, reason="auth")
        return PermanentProviderError(message, status=code, reason=str(code))
    name = type(exc).__name__
    if "Timeout" in name:
        return TransientProviderError(f"request timed out ({name})", reason="timeout")
    return TransientProviderError(f"connection failed: {name}: {exc}", reason="connection")


def usage_from_metadata(usage_meta: Any) -> Usage:
    """``usageMetadata`` → :class:`Usage` (tokens). Output counts candidates plus
    thoughts (Google bills thinking as output); ``thinking_tokens`` and
    ``cached_tokens`` are kept apart so the report can show them."""
    thoughts = int(getattr(usage_meta, "thoughts_token_count", 0) or 0)
    return Usage(
        input_tokens=int(getattr(usage_meta, "prompt_token_count", 0) or 0),
        output_tokens=int(getattr(usage_meta, "candidates_token_count", 0) or 0) + thoughts,
        cached_tokens=int(getattr(usage_meta, "cached_content_token_count", 0) or 0),
        thinking_tokens=thoughts,
    )


def completion_from_response(response: Any, *, model: str, latency_s: float, want_json: bool) -> Completion:
    """Turn a ``GenerateContentResponse`` into a :class:`Completion`, raising
    ``PermanentProviderError`` for a blocked prompt or safety stop and
    :class:`TruncatedReply` for ``MAX_TOKENS``. ``model`` is the id requested;
    the completion's ``model_version`` is the ``modelVersion`` Gemini answered with."""
    usage = usage_from_metadata(getattr(response, "usage_metadata", None))
    feedback = getattr(response, "prompt_feedback", None)
    candidates = getattr(response, "candidates", None) or []
    if not candidates:
        reason = getattr(getattr(feedback, "block_reason", None), "value", None) or "NO_CANDIDATES"
        raise PermanentProviderError(f"prompt blocked by Gemini: {reason}", status=200, reason=f"blocked:{reason}")
    finish = getattr(candidates[0], "finish_reason", None)
    finish_name = str(getattr(finish, "value", finish) or "")
    if finish_name == "MAX_TOKENS":
        raise TruncatedReply("reply truncated at the output-token limit (finishReason MAX_TOKENS)", status=200, reason="truncated")
    if finish_name not in _OK_FINISH:
        raise PermanentProviderError(f"reply stopped by Gemini: finishReason {finish_name}", status=200, reason=f"stopped:{finish_name}")
    text = response.text
    if text is None:
        raise PermanentProviderError("reply had no text", status=200, reason="empty")
    parsed = None
    if want_json:
        value = getattr(response, "parsed", None)
        if value is not None:
            parsed = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
            if not isinstance(parsed, dict):
                parsed = None
    return Completion(text=text, parsed=parsed, usage=usage, latency_s=latency_s, finish_reason=finish_name or "STOP", model=model,
                      model_version=str(getattr(response, "model_version", None) or ""))


def config_kwargs(request: GenerationRequest, model: str | None = None) -> dict[str, Any]:
    """``GenerateContentConfig`` fields for ``request``: system instruction,
    temperature, thinking, output-token limit and JSON response schema, only
    those set (no temperature unless the rulebook set one: Gemini 3 is tuned for
    its default of 1.0). ``thinking`` maps to ``thinking_level`` on Gemini 3+
    and ``thinking_budget`` on 2.5 (see :func:`~designsim.providers.catalogue.thinking_config`).
    Shared by live calls and Batch Mode inline requests."""
    kwargs: dict[str, Any] = {}
    if request.system:
        kwargs["system_instruction"] = request.system
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    thinking = thinking_config(model or request.model or DEFAULT_MODEL, request.thinking)
    if thinking:
        kwargs["thinking_config"] = thinking
    if request.max_output_tokens:
        kwargs["max_output_tokens"] = request.max_output_tokens
    if request.response_schema is not None:
        kwargs["response_mime_type"] = "application/json"
        kwargs["response_schema"] = request.response_schema
    return kwargs


class GeminiProvider:
    """Calls ``client.aio.models.generate_content`` once per request.

    The client comes from :func:`designsim.providers.client.build_client`:
    ``settings`` (a :class:`ClientSettings`) or, when not given, the environment
    plus ``api_key`` / ``timeout_s`` (seconds, per HTTP request) /
    ``vertex_project`` / ``vertex_location``. Retries are *not* done here: wrap it
    in :class:`designsim.providers.retry.RetryingProvider`.

    Raises :class:`ConfigError` at construction when nothing authenticates (no
    key and no Vertex AI project), and :class:`ModelUnavailable` (exit 2) when the
    model is not found, or a model the catalogue lists as retired fails twice.

    ``probe_models``: before the first generation for a model, one ``countTokens``
    request (free, fast) checks that the model exists, so concurrent stages do
    not each spend a request on a 404: a model that is not found costs one
    request, never more than two.
    """

    name = "gemini"
    #: requests that may fail for a retired model before it is called a configuration error
    RETIRED_FAILURES_ALLOWED = 2

    def __init__(self, *, api_key: str | None = None, default_model: str | None = None, timeout_s: float = 300.0,
                 settings: ClientSettings | None = None, vertex_project: str | None = None,
                 vertex_location: str | None = None, probe_models: bool = True):
        from google.genai import types

        self.settings = settings or settings_from_env(api_key=api_key, timeout_s=timeout_s, vertex_project=vertex_project,
                                                      vertex_location=vertex_location)
        self.default_model = default_model or DEFAULT_MODEL
        self._types = types
        self._client = build_client(self.settings)
        self._retired_failures: dict[str, int] = {}
        self.probe_models = probe_models
        self._confirmed: set[str] = set()
        self._unavailable: dict[str, ModelUnavailable] = {}
        self._probe_locks: dict[tuple[int, str], asyncio.Lock] = {}

    async def _ensure_model(self, model: str) -> None:
        """Probe ``model`` once with ``countTokens`` (see the class docstring)."""
        if model in self._unavailable:
            raise self._unavailable[model]
        if not self.probe_models or model in self._confirmed:
            return
        lock = self._probe_locks.setdefault((id(asyncio.get_running_loop()), model), asyncio.Lock())
        async with lock:
            if model in self._unavailable:
                raise self._unavailable[model]
            if model in self._confirmed:
                return
            try:
                await self._client.aio.models.count_tokens(model=model, contents="ping")
            except _MAPPED_ERRORS as exc:
                mapped = map_api_error(exc, model=model)
                if isinstance(mapped, ModelUnavailable):
                    self._unavailable[model] = mapped
                    raise mapped from exc
                # anything else (a 503, a refused key): not a missing model; the generation
                # request meets it and maps it, and the probe is not repeated
            self._confirmed.add(model)

    def config_for(self, request: GenerationRequest, model: str | None = None):
        """The ``GenerateContentConfig`` for a request (no tools, no history)."""
        return self._types.GenerateContentConfig(**config_kwargs(request, model or request.model or self.default_model))

    def _check_retired(self, model: str, error: Exception) -> Exception:
        info = lookup(model)
        if info is None or info.usable or not isinstance(error, TransientProviderError) or error.status not in (500, 503, 504):
            return error
        self._retired_failures[model] = self._retired_failures.get(model, 0) + 1
        if self._retired_failures[model] >= self.RETIRED_FAILURES_ALLOWED:
            return ModelUnavailable(model, replacement_for(model), detail=f"{error} (the catalogue lists {model} as retired)")
        return error

    async def count_tokens(self, request: GenerationRequest) -> int:
        """Input tokens of ``request`` by Gemini's ``countTokens`` (no generation).
        Errors are mapped like :meth:`generate`."""
        types = self._types
        model = request.model or self.default_model
        contents = [types.Content(role="user", parts=[types.Part(text=request.prompt)])]
        config = None
        if request.system and not self.settings.vertex:
            # the Gemini API's countTokens takes no system instruction: count it as text
            contents = [types.Content(role="user", parts=[types.Part(text=request.system)])] + contents
        elif request.system:
            config = types.CountTokensConfig(system_instruction=request.system)
        try:
            result = await self._client.aio.models.count_tokens(model=model, contents=contents, config=config)
        except _MAPPED_ERRORS as exc:
            raise map_api_error(exc, model=model) from exc
        return int(result.total_tokens or 0)

    async def generate(self, request: GenerationRequest) -> Completion:
        types = self._types
        model = request.model or self.default_model
        contents = [types.Content(role="user", parts=[types.Part(text=request.prompt)])]
        config = self.config_for(request, model)
        await self._ensure_model(model)
        started = time.perf_counter()
        try:
            response = await self._client.aio.models.generate_content(model=model, contents=contents, config=config)
        except _MAPPED_ERRORS as exc:  # translated once, here
            mapped = self._check_retired(model, map_api_error(exc, model=model))
            if isinstance(mapped, ModelUnavailable):
                self._unavailable[model] = mapped
            raise mapped from exc
        self._retired_failures.pop(model, None)
        self._confirmed.add(model)
        return completion_from_response(
            response, model=model, latency_s=time.perf_counter() - started, want_json=request.response_schema is not None
        )
