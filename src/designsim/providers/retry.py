"""Retries with exponential backoff and full jitter, honouring the server's hint.

The google-genai SDK sends each request once unless given ``retry_options``,
does not retry a 504 by default, and ignores ``google.rpc.RetryInfo.retryDelay``
(python-genai issue #1875). So we retry here, on our own error classes only:
:class:`~designsim.errors.TransientProviderError` is retried; everything else
propagates at once. Built on tenacity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from designsim.errors import QuotaExhausted, SpendCapReached, TransientProviderError
from designsim.providers.base import Completion, GenerationRequest


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one request.

    ``attempts`` total HTTP tries (1 = no retry); ``initial_delay_s`` the first
    backoff (seconds), doubled each time up to ``max_delay_s``; a server
    ``retryDelay`` is honoured up to ``max_server_delay_s`` (longer hints fail
    the request so a batch can move on and come back in a recovery pass).
    Defaults follow Gemini's own gRPC service config (1 s → 10 s, 5 attempts),
    stretched to 90 s for 429 hints. A spend cap (:class:`SpendCapReached`,
    Gemini's per-10-minute spend limits) is waited out only when its hint is at
    most ``max_spend_cap_wait_s`` (default 0: a review does not sit out a
    10-minute window; a batch may allow 600 s); otherwise it becomes
    :class:`QuotaExhausted` with ``reason="spend-cap"`` and the run stops, resumable.
    """

    attempts: int = 5
    initial_delay_s: float = 1.0
    max_delay_s: float = 10.0
    max_server_delay_s: float = 90.0
    max_spend_cap_wait_s: float = 0.0

    def wait_seconds(self, retry_number: int, server_hint: float | None) -> float:
        """Delay before retry ``retry_number`` (1-based), in seconds."""
        if server_hint is not None:
            return min(server_hint, self.max_server_delay_s) + random.uniform(0, 0.1 * self.initial_delay_s)
        cap = min(self.max_delay_s, self.initial_delay_s * (2 ** (retry_number - 1)))
        return random.uniform(cap / 2, cap)  # "equal jitter": never zero, never above the cap


async def call_with_retries(
    call: Callable[[], Awaitable[Completion]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[TransientProviderError, float], None] | None = None,
) -> Completion:
    """Run ``call`` until it succeeds, raises a non-transient error, or the
    policy's attempts are spent (then the last ``TransientProviderError`` is
    raised with ``attempts`` set on it). The completion's ``attempts`` field is
    set to the number of tries it took."""

    def before_sleep(state: RetryCallState) -> None:
        # tenacity computes the wait before deciding to stop, so count retries here,
        # where a sleep (and so another try) is certain
        exc = state.outcome.exception() if state.outcome else None
        if on_retry and isinstance(exc, TransientProviderError):
            on_retry(exc, state.next_action.sleep if state.next_action else 0.0)

    def wait(state: RetryCallState) -> float:  # spend caps wait for their own hint
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, SpendCapReached):
            return min(exc.retry_delay or policy.max_spend_cap_wait_s, policy.max_spend_cap_wait_s)
        return policy.wait_seconds(state.attempt_number, getattr(exc, "retry_delay", None))

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, SpendCapReached):
            return policy.max_spend_cap_wait_s > 0 and (exc.retry_delay or 0) <= policy.max_spend_cap_wait_s
        return isinstance(exc, TransientProviderError)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    tries = 0
    try:
        async for attempt in retrying:
            with attempt:
                tries += 1
                completion = await call()
                return completion.model_copy(update={"attempts": tries})
    except SpendCapReached as exc:
        wait = f"; it asked for {exc.retry_delay:g} s" if exc.retry_delay else ""
        stop = QuotaExhausted(f"{exc} — stopped: the spend cap outlasts what this run waits "
                              f"({policy.max_spend_cap_wait_s:g} s){wait}; re-run later to resume", status=exc.status, reason="spend-cap",
                              retry_delay=exc.retry_delay)
        stop.attempts = tries  # type: ignore[attr-defined]
        raise stop from exc
    except TransientProviderError as exc:
        exc.attempts = tries  # type: ignore[attr-defined]
        raise
    raise AssertionError("unreachable")  # pragma: no cover


class RetryingProvider:
    """Wraps any provider with :func:`call_with_retries`.

    ``retries`` counts retried requests across the provider's life (for
    ``summary.json``); ``sleep`` is tenacity's, so tests run in real time but
    policies with small delays keep them fast.
    """

    def __init__(self, inner, policy: RetryPolicy | None = None):
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.name = getattr(inner, "name", "provider")
        self.retries = 0

    async def generate(self, request: GenerationRequest) -> Completion:
        def count(_exc, _delay):
            self.retries += 1

        return await call_with_retries(lambda: self.inner.generate(request), self.policy, on_retry=count)

    def __getattr__(self, item):
        return getattr(self.inner, item)
