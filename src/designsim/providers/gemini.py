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

import os
import re
import time
from typing import Any

from designsim.errors import PermanentProviderError, QuotaExhausted, TransientProviderError, TruncatedReply
from designsim.providers.base import Completion, GenerationRequest, Usage

DEFAULT_MODEL = "gemini-2.5-flash"
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


def api_key_from_env(env: os._Environ | dict | None = None) -> str | None:
    """The Gemini API key from ``GEMINI_API_KEY`` or else ``GOOGLE_API_KEY``."""
    env = os.environ if env is None else env
    return env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or None


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


def is_daily_quota(body: Any) -> bool:
    """True when a 429's ``QuotaFailure`` names a per-day quota."""
    for detail in _details(body):
        if detail.get("@type", "").endswith("google.rpc.QuotaFailure"):
            for violation in detail.get("violations") or []:
                if "perday" in str(violation.get("quotaId", "")).lower():
                    return True
    return False


def map_api_error(exc: Exception) -> Exception:
    """Translate a google-genai ``APIError`` (or an httpx transport error) into
    our error tree. Returns the new exception; the caller raises it ``from exc``."""
    from google.genai import errors as genai_errors

    if isinstance(exc, genai_errors.APIError):
        code = int(exc.code or 0)
        body = exc.details
        message = f"Gemini API {code} {exc.status or ''}: {exc.message or ''}".strip()
        if code == 429 and is_daily_quota(body):
            return QuotaExhausted(message + " (daily quota: will not refill within this run)", status=code, reason="quota:daily")
        if code in TRANSIENT_STATUSES:
            return TransientProviderError(message, status=code, reason=str(code), retry_delay=retry_delay_from_error(body))
        if code in (401, 403) or (code == 400 and "API_KEY" in str(body)):
            return QuotaExhausted(message + " (the API key was refused)", status=code, reason="auth")
        return PermanentProviderError(message, status=code, reason=str(code))
    name = type(exc).__name__
    if "Timeout" in name:
        return TransientProviderError(f"request timed out ({name})", reason="timeout")
    return TransientProviderError(f"connection failed: {name}: {exc}", reason="connection")


def completion_from_response(response: Any, *, model: str, latency_s: float, want_json: bool) -> Completion:
    """Turn a ``GenerateContentResponse`` into a :class:`Completion`, raising
    ``PermanentProviderError`` for a blocked prompt or safety stop and
    :class:`TruncatedReply` for ``MAX_TOKENS``."""
    usage_meta = getattr(response, "usage_metadata", None)
    usage = Usage(
        input_tokens=int(getattr(usage_meta, "prompt_token_count", 0) or 0),
        output_tokens=int(getattr(usage_meta, "candidates_token_count", 0) or 0)
        + int(getattr(usage_meta, "thoughts_token_count", 0) or 0),
        cached_tokens=int(getattr(usage_meta, "cached_content_token_count", 0) or 0),
    )
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
    return Completion(text=text, parsed=parsed, usage=usage, latency_s=latency_s, finish_reason=finish_name or "STOP", model=model)


def config_kwargs(request: GenerationRequest) -> dict[str, Any]:
    """``GenerateContentConfig`` fields for ``request``: system instruction,
    temperature, output-token limit and JSON response schema, only those set.
    Shared by live calls and Batch Mode inline requests."""
    kwargs: dict[str, Any] = {}
    if request.system:
        kwargs["system_instruction"] = request.system
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.max_output_tokens:
        kwargs["max_output_tokens"] = request.max_output_tokens
    if request.response_schema is not None:
        kwargs["response_mime_type"] = "application/json"
        kwargs["response_schema"] = request.response_schema
    elif request.response_json_schema is not None:
        # a plain JSON Schema (google-genai >= 1.x: GenerateContentConfig.response_json_schema;
        # checked in google-genai 3.6.1, 2026-12-01): property names fixed at run time
        kwargs["response_mime_type"] = "application/json"
        kwargs["response_json_schema"] = request.response_json_schema
    return kwargs


class GeminiProvider:
    """Calls ``client.aio.models.generate_content`` once per request.

    ``api_key`` defaults to ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``; ``timeout_s``
    is the per-request HTTP timeout (seconds). Retries are *not* done here:
    wrap it in :class:`designsim.providers.retry.RetryingProvider`.

    Raises :class:`QuotaExhausted` at construction when no key is set.
    """

    name = "gemini"

    def __init__(self, *, api_key: str | None = None, default_model: str | None = None, timeout_s: float = 300.0):
        from google import genai
        from google.genai import types

        key = api_key or api_key_from_env()
        if not key:
            raise QuotaExhausted("no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)", reason="no-key")
        self.default_model = default_model or DEFAULT_MODEL
        self._types = types
        self._client = genai.Client(api_key=key, http_options=types.HttpOptions(timeout=int(timeout_s * 1000)))

    def config_for(self, request: GenerationRequest):
        """The ``GenerateContentConfig`` for a request (no tools, no history)."""
        return self._types.GenerateContentConfig(**config_kwargs(request))

    async def generate(self, request: GenerationRequest) -> Completion:
        types = self._types
        model = request.model or self.default_model
        contents = [types.Content(role="user", parts=[types.Part(text=request.prompt)])]
        started = time.perf_counter()
        try:
            response = await self._client.aio.models.generate_content(
                model=model, contents=contents, config=self.config_for(request)
            )
        except _MAPPED_ERRORS as exc:  # translated once, here
            raise map_api_error(exc) from exc
        return completion_from_response(
            response, model=model, latency_s=time.perf_counter() - started, want_json=request.response_schema is not None or request.response_json_schema is not None
        )
