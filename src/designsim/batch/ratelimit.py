"""Rate limits that hold at the server, concurrency sized from them, and ``--rpm auto``.

Why not a leaky bucket alone (aiolimiter): a server such as Gemini counts the
requests that *arrive* in a 60 s window. A bucket admits its burst plus the
window's leak, so a window can see ``limit + 1`` (issue 12: 602 at
``--rpm 600``), and network jitter moves arrivals between windows. So
:class:`WindowLimiter` keeps a log of its own send times and admits a request
only while fewer than ``limit * (1 - margin)`` sends lie in the last 60 s,
counted half-open like a server counts (any window ``[t, t + 60)`` then holds
at most that many), and paces sends evenly at that rate so they do not bunch
at the start of a window. The default margin is 2 % (1.2 s of a 60 s window
for jitter). The same log, weighted by tokens, limits tokens per minute.

:class:`ConcurrencyGate` sizes the requests in flight from the rate and the
observed latency (Little's law: in flight = rate x latency, plus 25 % and 2
for variance), with ``--concurrency`` as the upper bound; 8 fixed workers
reached only 0.63 of ``--rpm 3000`` at 0.2 s latency.

:class:`AutoRate` is ``--rpm auto`` (the default): Gemini no longer publishes
per-model limits (AI Studio shows them, "not guaranteed"; read 2026-12-01), so
the limit is found: start at :data:`AUTO_START_RPM`, grow x1.5 every 5 s until
the first 429 (slow start), then additive increase (1 % every 10 s after 30 s
without a 429) and, on a 429, multiplicative decrease to the smaller of 0.95 x
the rate and the number of requests the server accepted in the last 60 s (the
server's limit, when it counts per minute as Gemini does). A 429's
``retryDelay`` pauses every worker (:meth:`WindowLimiter.cool_down`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Callable

WINDOW_S = 60.0
#: Share of a limit kept free for jitter between our clock and the server's.
DEFAULT_MARGIN = 0.02
#: ``--rpm auto``: where the search starts (requests/min) and its bounds.
AUTO_START_RPM = 60.0
AUTO_MIN_RPM = 2.0
AUTO_MAX_RPM = 100_000.0


class _Entry:
    __slots__ = ("at", "tokens", "accepted", "live")

    def __init__(self, at: float, tokens: int):
        self.at = at
        self.tokens = tokens
        self.accepted = False
        self.live = True


class WindowLimiter:
    """Requests/min and tokens/min that no 60 s window at the server exceeds.

    ``rpm`` requests per minute (a float, or an :class:`AutoRate` whose
    ``rpm`` changes); ``tpm`` tokens per minute or ``None``; ``margin`` the
    share kept free (0.02 = 2 %); ``clock`` monotonic seconds. Shared by every
    worker of a run. :meth:`acquire` returns a ticket for :meth:`rejected`
    (a 429: the server did not count it) and :meth:`debit` (tokens learned
    from the reply).
    """

    def __init__(self, rpm: "float | AutoRate", tpm: int | None = None, *, margin: float = DEFAULT_MARGIN,
                 clock: Callable[[], float] = time.monotonic, window_s: float = WINDOW_S):
        self.rate = rpm if isinstance(rpm, AutoRate) else None
        self.fixed_rpm = None if self.rate else float(rpm)
        self.tpm = tpm
        self.margin = margin
        self.clock = clock
        self.window_s = window_s
        self.log: deque[_Entry] = deque()
        self.window_tokens = 0
        self.next_slot = 0.0
        self.cooldown_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def rpm(self) -> float:
        """The current requests/min limit (before the margin)."""
        return self.rate.rpm if self.rate else self.fixed_rpm  # type: ignore[return-value]

    def allowed_requests(self) -> int:
        """Sends admitted per window: ``floor(rpm * (1 - margin))``, at least 1."""
        return max(1, math.floor(self.rpm * (1 - self.margin)))

    def allowed_tokens(self) -> float:
        return (self.tpm or 0) * (1 - self.margin)

    def _expire(self, now: float) -> None:
        while self.log and self.log[0].at <= now - self.window_s:
            entry = self.log.popleft()
            if entry.live:
                self.window_tokens -= entry.tokens

    def in_window(self) -> int:
        """Live sends in the last 60 s."""
        self._expire(self.clock())
        return sum(1 for e in self.log if e.live)

    def accepted_in_window(self) -> int:
        """Sends in the last 60 s that the server answered without a 429."""
        self._expire(self.clock())
        return sum(1 for e in self.log if e.live and e.accepted)

    def _wait_s(self, tokens: int) -> float:
        now = self.clock()
        self._expire(now)
        waits = [self.cooldown_until - now, self.next_slot - now]
        live = [e for e in self.log if e.live]
        allowed = self.allowed_requests()
        if len(live) >= allowed:  # the oldest sends that must leave the window first
            waits.append(live[len(live) - allowed].at + self.window_s - now)
        if self.tpm and tokens:
            budget = self.allowed_tokens()
            if self.window_tokens + tokens > budget and live:
                excess = self.window_tokens + tokens - budget
                for entry in live:
                    excess -= entry.tokens
                    if excess <= 0:
                        waits.append(entry.at + self.window_s - now)
                        break
                else:
                    waits.append(live[-1].at + self.window_s - now)
        return max(waits)

    async def acquire(self, tokens: int = 0) -> _Entry:
        """Wait until one request of ``tokens`` estimated input tokens fits every
        window, then record it as sent now. Callers check ``tokens <= tpm``
        beforehand (a prompt over ``--tpm`` is refused up front, exit 2)."""
        async with self._lock:  # first come, first served: no starvation of big prompts
            while (delay := self._wait_s(tokens)) > 0:
                await asyncio.sleep(delay)
            now = self.clock()
            entry = _Entry(now, tokens)
            self.log.append(entry)
            self.window_tokens += tokens
            self.next_slot = max(self.next_slot, now - self.window_s / 60.0) + self.window_s / max(self.allowed_requests(), 1)
            return entry

    def accepted(self, entry: _Entry) -> None:
        """The server answered this send (not with a 429)."""
        entry.accepted = True

    def rejected(self, entry: _Entry) -> None:
        """The server answered 429: it did not count this send."""
        if entry.live:
            entry.live = False
            self.window_tokens -= entry.tokens

    def debit(self, entry: _Entry, tokens: int) -> None:
        """Add ``tokens`` (output tokens, estimate error; may be negative) to a send."""
        if self.tpm and entry.live:
            entry.tokens += tokens
            self.window_tokens += tokens

    def cool_down(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a server-requested ``retryDelay``)."""
        self.cooldown_until = max(self.cooldown_until, self.clock() + seconds)


class AutoRate:
    """``--rpm auto``: AIMD search for an unknown requests/min limit (see the
    module docstring). ``rpm`` is the current limit; :meth:`tick` applies the
    increases (call it before each send); :meth:`on_429` the decrease.
    ``start_rpm`` the first rate, ``max_rpm`` an upper bound (``--rpm-max``);
    ``window_s`` the server's window (60 s; tests scale time with a shorter
    one, and every period above scales with it)."""

    def __init__(self, *, start_rpm: float = AUTO_START_RPM, max_rpm: float = AUTO_MAX_RPM,
                 clock: Callable[[], float] = time.monotonic, window_s: float = WINDOW_S):
        self.scale = window_s / WINDOW_S
        self.rpm = float(start_rpm)
        self.max_rpm = float(max_rpm)
        self.clock = clock
        self.slow_start = True
        self.last_change = clock()
        self.last_429 = -math.inf
        self.decreases = 0
        self.peak = self.rpm
        #: the rate the search settled on: set at each decrease (the server's limit as last measured)
        self.settled: float | None = None

    def tick(self) -> None:
        now = self.clock()
        if self.slow_start:
            if now - self.last_change >= 5.0 * self.scale:
                self.rpm = min(self.max_rpm, self.rpm * 1.5)
                self.last_change = now
        elif now - self.last_429 >= 30.0 * self.scale and now - self.last_change >= 10.0 * self.scale:
            self.rpm = min(self.max_rpm, self.rpm + max(1.0, 0.01 * self.rpm))
            self.last_change = now
        self.peak = max(self.peak, self.rpm)

    def on_429(self, accepted_in_window: int) -> None:
        """A 429: drop to ``min(0.95 x rpm, accepted in the last 60 s)``, at
        most once per second (the replies of requests already in flight are
        one event)."""
        now = self.clock()
        if now - self.last_429 < 1.0 * self.scale:
            return
        self.last_429 = now
        self.last_change = now
        self.slow_start = False
        self.decreases += 1
        target = self.rpm * 0.95
        if accepted_in_window >= AUTO_MIN_RPM:
            target = min(target, float(accepted_in_window))
        self.rpm = max(AUTO_MIN_RPM, target)
        self.settled = self.rpm


class ConcurrencyGate:
    """Requests in flight, sized as ``ceil(rate/s x latency x 1.25) + 2``
    (clamped to ``[1, upper]``), where latency is an exponentially weighted
    mean of observed seconds (first guess 1 s). ``upper`` is ``--concurrency``.
    ``rpm`` is a function returning the current requests/min."""

    def __init__(self, upper: int, rpm: Callable[[], float], *, first_latency_s: float = 1.0, window_s: float = WINDOW_S):
        self.window_s = window_s
        self.upper = upper
        self.rpm = rpm
        self.latency_s = first_latency_s
        self.samples = 0
        self.in_flight = 0
        self.peak = 0
        self._cond = asyncio.Condition()

    def target(self) -> int:
        need = math.ceil(self.rpm() / self.window_s * self.latency_s * 1.25) + 2
        return max(1, min(self.upper, need))

    def observe(self, latency_s: float) -> None:
        """Fold one successful exchange's seconds into the latency estimate."""
        self.samples += 1
        alpha = 0.2 if self.samples > 5 else 1.0 / self.samples
        self.latency_s += alpha * (latency_s - self.latency_s)

    async def __aenter__(self) -> "ConcurrencyGate":
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.target())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return self

    async def __aexit__(self, *exc) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()
