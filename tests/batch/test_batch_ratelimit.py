"""The rate limit as the *server* counts it (half-open windows, 2 % margin), the
concurrency gate, ``--rpm auto`` and the shared 429 pause.

Time is scaled: the limiter, the AIMD search and the fake server's quota all take
a window of a few seconds instead of 60 s (``RunOptions.window_s``), so the same
code paths run in seconds. ``bench/batch_throughput.py`` measures real 60 s windows.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from batch_helpers import answer, prompts_frame

from designsim.batch.ratelimit import AutoRate, ConcurrencyGate, WindowLimiter
from designsim.batch.runner import RunOptions, run_batch
from designsim.providers.retry import RetryPolicy
from designsim.testing import FakeGeminiServer, text_reply
from designsim.testing.quota import WindowQuota, largest_window

FAST_POLICY = RetryPolicy(attempts=4, initial_delay_s=0.01, max_delay_s=0.05, max_server_delay_s=5.0)


def _admissions(limiter: WindowLimiter, total_s: float, tokens: int = 0) -> list[float]:
    async def go():
        start, times = time.monotonic(), []
        while time.monotonic() - start < total_s:
            await limiter.acquire(tokens)
            times.append(time.monotonic())
        return times

    return asyncio.run(go())


def test_no_half_open_window_exceeds_the_limit_less_the_margin():
    # 50 per 1 s window, 2 % margin: 49 admitted per window at most, at an even pace
    limiter = WindowLimiter(50, window_s=1.0)
    times = _admissions(limiter, 2.6)
    assert largest_window(times, 1.0) <= 49
    steady = [t for t in times if times[0] + 1.0 <= t < times[0] + 2.0]
    assert len(steady) >= 0.95 * 49 * 0.97  # the pace keeps the rate, not a burst then a stall
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 0.25  # spread over the window


def test_tokens_per_window_are_limited_too():
    limiter = WindowLimiter(10_000, tpm=1000, window_s=0.5)  # 980 tokens per 0.5 s after the margin
    times = _admissions(limiter, 1.3, tokens=300)
    assert largest_window(times, 0.5) <= 3
    assert len(times) >= 6


def test_a_429_is_not_counted_and_a_debit_is():
    limiter = WindowLimiter(10, tpm=100, window_s=60)

    async def go():
        a = await limiter.acquire(10)
        b = await limiter.acquire(10)
        limiter.rejected(a)
        limiter.accepted(b)
        limiter.debit(b, 30)
        return limiter.in_window(), limiter.accepted_in_window(), limiter.window_tokens

    assert asyncio.run(go()) == (1, 1, 40)


def test_concurrency_is_sized_from_rate_and_latency():
    gate = ConcurrencyGate(256, lambda: 3000.0)
    gate.observe(0.2)
    assert gate.target() == 15  # 50/s x 0.2 s x 1.25 + 2
    assert ConcurrencyGate(8, lambda: 3000.0, first_latency_s=0.2).target() == 8  # the upper bound holds


def test_auto_rate_slow_start_then_decrease_to_what_the_server_accepted():
    now = [0.0]
    auto = AutoRate(start_rpm=60, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 5.0
        auto.tick()
    assert auto.rpm == pytest.approx(60 * 1.5 ** 4)
    auto.on_429(accepted_in_window=250)
    assert auto.rpm == 250 and not auto.slow_start
    auto.on_429(accepted_in_window=10)  # the same burst of replies: one decrease
    assert auto.rpm == 250
    now[0] += 40.0
    auto.tick()
    assert auto.rpm == pytest.approx(252.5)  # additive increase after 30 s without a 429
    now[0] += 2.0
    auto.on_429(accepted_in_window=400)
    assert auto.rpm == pytest.approx(252.5 * 0.95)  # multiplicative when the count says more


def _run(tmp_path, n, quota, **options):
    prompts_frame(n, extra=False).to_pickle(tmp_path / "in.pkl")
    opts = RunOptions(policy=FAST_POLICY, pass_delay_s=0.01, progress_every_s=3600, **options)
    with FakeGeminiServer(quota, latency_s=0.02):
        result = run_batch(tmp_path / "in.pkl", tmp_path / "out", options=opts)
    return result


def test_fixed_rpm_holds_at_the_server_with_zero_429s(tmp_path, key):
    # "--rpm 60 per 2 s window" against a server enforcing exactly that
    # the margin is a share of the window's time too: 2 % of 60 s is 1.2 s of jitter, of a 2 s window only
    # 40 ms, less than a loaded test machine's scheduling delay; 5 % (100 ms) keeps the scaled test honest
    quota = WindowQuota(60, lambda r: text_reply(answer(r.prompt)), window_s=2.0)
    result = _run(tmp_path, 150, quota, rpm=60, window_s=2.0, margin=0.05)
    assert result.exit_code == 0 and quota.rejected == 0
    accepted = [t for t, ok in quota.arrivals if ok]
    assert largest_window(accepted, 2.0) <= 60
    assert len(accepted) == 150
    span = accepted[-1] - accepted[0]
    assert 150 / span >= 0.9 * 30 * 0.95  # requests per second in steady state, near 57 per 2 s


def test_rpm_auto_finds_an_unknown_limit_with_few_429s(tmp_path, key):
    quota = WindowQuota(60, lambda r: text_reply(answer(r.prompt)), window_s=2.0)
    result = _run(tmp_path, 330, quota, rpm=None, rpm_start=4, window_s=2.0, margin=0.05)
    assert result.exit_code == 0
    first = quota.arrivals[0][0]
    later = [(t, ok) for t, ok in quota.arrivals if t >= first + 2.0]
    accepted_later = [t for t, ok in later if ok]
    rejected_later = sum(1 for _t, ok in later if not ok)
    rate = len(accepted_later) / (accepted_later[-1] - accepted_later[0])
    assert rate >= 0.85 * 30  # of the server's 30/s after the first "minute"
    # scaled to a 2 s window, a 0.1 s scheduling hiccup is 3 s of a real minute, so the scaled share is looser
    # (observed 0-4 %); the acceptance figure (< 1 %; 0.15 % measured) comes from the bench's real 60 s windows
    assert rejected_later <= 0.08 * len(later)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run"]["rpm_mode"] == "auto" and 40 <= summary["run"]["rpm_settled"] <= 64
    assert summary["run"]["http_429"] == quota.rejected


def test_a_429_pauses_every_worker(tmp_path, key):
    """One 429 with retryDelay 0.5 s: no request of any worker arrives in the pause."""
    state = {"sent_429": None}

    def handler(req):
        from designsim.testing import error_reply

        if state["sent_429"] is None and "number 5" in req.prompt:
            state["sent_429"] = time.monotonic()
            return error_reply(429, "RESOURCE_EXHAUSTED", "slow down", retry_delay="0.5s")
        return text_reply(answer(req.prompt))

    prompts_frame(40, extra=False).to_pickle(tmp_path / "in.pkl")
    opts = RunOptions(rpm=60_000, concurrency=8, policy=FAST_POLICY, pass_delay_s=0.01, progress_every_s=3600)
    with FakeGeminiServer(handler, latency_s=0.02) as server:
        assert run_batch(tmp_path / "in.pkl", tmp_path / "out", options=opts).exit_code == 0
        at = state["sent_429"]
        arrivals = sorted(r.started - at for r in server.generate_requests())
    # workers that passed the limiter before the client had read the 429 (0.02 s latency plus the SDK's
    # parsing on a loaded machine) may still arrive just after it; then nobody until the 0.5 s are over
    assert at is not None
    assert [t for t in arrivals if 0.25 < t < 0.5] == []
    assert any(0.5 <= t < 1.0 for t in arrivals)
