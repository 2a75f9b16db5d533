"""A per-window request quota for the fake Gemini server, enforced the way a server counts.

:class:`WindowQuota` wraps a :class:`~designsim.testing.fake_gemini.FakeGeminiServer`
handler: a request that arrives while ``limit`` requests were accepted in the
half-open window ``(now - window_s, now]`` is answered 429 ``RESOURCE_EXHAUSTED``
with a ``RetryInfo.retryDelay`` (seconds until the oldest accepted request
leaves the window), as Gemini answers a per-minute quota; rejected requests are
not counted. It records every arrival so tests and ``bench/batch_throughput.py``
can compute the largest window count and the 429s at the server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from designsim.testing.fake_gemini import FakeReply, FakeRequest, error_reply, text_reply


class WindowQuota:
    """``limit`` requests per ``window_s`` seconds (default 60: requests/min).
    ``inner`` answers the accepted requests (default: an echo). ``arrivals``
    holds ``(monotonic seconds, accepted)`` for every request."""

    def __init__(self, limit: int, inner: Callable[[FakeRequest], FakeReply | str] | None = None, *,
                 window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.inner = inner or (lambda req: text_reply(f"echo: {req.prompt}"))
        self.window_s = window_s
        self.clock = clock
        self.accepted: deque[float] = deque()
        self.arrivals: list[tuple[float, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, req: FakeRequest) -> FakeReply | str:
        with self._lock:
            now = self.clock()
            while self.accepted and self.accepted[0] <= now - self.window_s:
                self.accepted.popleft()
            if len(self.accepted) >= self.limit:
                self.arrivals.append((now, False))
                wait = max(0.0, self.accepted[0] + self.window_s - now)
                return error_reply(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan "
                                   "and billing details.", retry_delay=f"{wait:.3f}s",
                                   quota_id="GenerateRequestsPerMinutePerProjectPerModel")
            self.accepted.append(now)
            self.arrivals.append((now, True))
        return self.inner(req)

    @property
    def rejected(self) -> int:
        """Requests answered 429."""
        return sum(1 for _t, ok in self.arrivals if not ok)


def largest_window(times: list[float], window_s: float = 60.0) -> int:
    """The most of ``times`` (seconds) inside any half-open window ``[t, t + window_s)``."""
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best
