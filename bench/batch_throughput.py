"""Batch benchmark (prints figures; not a test). Long: about 9 minutes in all.

All against the local fake Gemini server through the real google-genai client,
with :class:`designsim.testing.quota.WindowQuota` enforcing a per-minute limit
the way a server counts it (half-open 60 s windows of arrivals; a request over
the limit is answered 429 with ``retryDelay``, and is not counted):

1. ``fixed``: ``--rpm 1200``, 0.2 s latency, 2,400 prompts (two minutes, two full
   windows) against a server enforcing 1,200/min: the largest 60 s window at the
   server, the 429s, and the steady rate as a fraction of 1,200/min (targets:
   <= 1,200, 0, >= 0.95).
2. ``auto``: no ``--rpm`` (auto) against a server enforcing 900/min, 3,600
   prompts (about four minutes): the rate after the first minute as a fraction
   of 900/min and the share of requests answered 429 after the first minute
   (targets >= 0.9, < 1 %), and the rate the summary says it settled on.
3. ``concurrency``: ``--rpm 3000`` and no ``--concurrency``, 0.2 s latency,
   3,000 prompts: the steady rate as a fraction of 3,000/min (target >= 0.95).
4. ``checkpoint``: cost per result (append + fsync of one journal line) with 1k
   vs 100k results already journaled; the prefill is fsync'd and ``os.sync()``ed
   before timing, so its dirty pages do not land in the measurement (target: flat).
5. ``merge``: ``batch merge`` of 1,000,000 rows plus 100,000 re-run rows.

Usage: ``python bench/batch_throughput.py [--part all|fixed|auto|concurrency|checkpoint|merge]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _run(n: int, *, server_limit: int | None, latency_s: float, **options) -> dict:
    from rich.console import Console

    from designsim.batch.runner import RunOptions, execute_run
    from designsim.batch.tables import validate_job
    from designsim.providers.gemini import GeminiProvider
    from designsim.providers.retry import RetryPolicy
    from designsim.testing import FakeGeminiServer, text_reply
    from designsim.testing.quota import WindowQuota, largest_window

    os.environ.setdefault("GEMINI_API_KEY", "bench-key-not-secret")
    frame = pd.DataFrame({"PROMPT_ID": range(n), "PROMPT": [f"benchmark prompt {i}" for i in range(n)]})
    job = validate_job(frame)
    quota = WindowQuota(server_limit or 10**9, lambda r: text_reply("ok " + r.prompt))
    with tempfile.TemporaryDirectory() as tmp, FakeGeminiServer(quota, latency_s=latency_s):
        opts = RunOptions(policy=RetryPolicy(attempts=8, max_server_delay_s=90), progress_every_s=30, **options)
        started = time.monotonic()
        result = execute_run(job, Path(tmp) / "out", opts, lambda: GeminiProvider(probe_models=False),
                             console=Console(stderr=True))
        wall = time.monotonic() - started
    arrivals = quota.arrivals
    times = [t for t, _ok in arrivals]
    accepted = [t for t, ok in arrivals if ok]
    first = times[0]
    after = [(t, ok) for t, ok in arrivals if t >= first + 60]
    acc_after = [t for t, ok in after if ok]
    rate_after = (len(acc_after) - 1) / (acc_after[-1] - acc_after[0]) * 60 if len(acc_after) > 1 else 0.0
    steady = [t for t in accepted if t >= first + 2]  # past the first two seconds' catch-up
    steady_rate = (len(steady) - 1) / (steady[-1] - steady[0]) * 60 if len(steady) > 1 else 0.0
    return {"requests": len(arrivals), "succeeded": result.summary.succeeded, "wall_s": wall,
            "largest_window": largest_window(times), "largest_accepted_window": largest_window(accepted),
            "http_429": quota.rejected, "steady_rpm": steady_rate, "rate_after_first_minute": rate_after,
            "requests_after_first_minute": len(after), "http_429_after_first_minute": sum(1 for _t, ok in after if not ok),
            "rpm_settled": result.summary.run.rpm_settled, "concurrency_peak": result.summary.run.concurrency_peak,
            "span_s": times[-1] - first}


def fixed_rpm() -> None:
    r = _run(2400, server_limit=1200, latency_s=0.2, rpm=1200)
    print(f"fixed: --rpm 1200, 0.2 s latency, {r['requests']} requests over {r['span_s']:.0f} s at a server enforcing "
          f"1200/min: largest 60 s window {r['largest_window']} (target <= 1200), {r['http_429']} answered 429 (target 0), "
          f"steady {r['steady_rpm']:.0f}/min = {r['steady_rpm'] / 1200:.3f} of 1200 (target >= 0.95); "
          f"{r['succeeded']}/2400 ok, {r['wall_s']:.0f} s end to end", flush=True)


def auto_rpm() -> None:
    r = _run(3600, server_limit=900, latency_s=0.2, rpm=None)
    share = r["http_429_after_first_minute"] / max(1, r["requests_after_first_minute"])
    print(f"auto: no --rpm, 0.2 s latency, server enforcing 900/min, {r['requests']} requests over {r['span_s']:.0f} s: "
          f"after the first minute {r['rate_after_first_minute']:.0f}/min = {r['rate_after_first_minute'] / 900:.3f} of 900 "
          f"(target >= 0.9), {r['http_429_after_first_minute']} of {r['requests_after_first_minute']} answered 429 = "
          f"{share:.2%} (target < 1 %); {r['http_429']} 429s in all; largest accepted window {r['largest_accepted_window']}; "
          f"settled at {r['rpm_settled']}/min; {r['succeeded']}/3600 ok", flush=True)


def concurrency_default() -> None:
    r = _run(3000, server_limit=None, latency_s=0.2, rpm=3000)
    print(f"concurrency: --rpm 3000, no --concurrency, 0.2 s latency, {r['requests']} requests: steady "
          f"{r['steady_rpm']:.0f}/min = {r['steady_rpm'] / 3000:.3f} of 3000 (target >= 0.95), "
          f"peak {r['concurrency_peak']} in flight, largest window {r['largest_window']}", flush=True)


def legacy_rate(max_delay_s: float = 30.0, latency_s: float = 0.5) -> float:
    """Requests/min of the legacy loop: each prompt takes max(MAX_DELAY, latency) seconds."""
    return 60.0 / max(max_delay_s, latency_s)


def checkpoint_cost(prefill: int, samples: int = 1000) -> float:
    """Seconds per appended result (write + fsync) with ``prefill`` results already journaled."""
    from designsim.batch.checkpoint import Journal, ResultRecord

    text = "x" * 400
    with tempfile.TemporaryDirectory() as tmp:
        with Journal.open(tmp, fsync=False) as journal:  # bulk prefill, not measured
            for i in range(prefill):
                journal.append(ResultRecord(key=str(i), status="ok", text=text, requests=1))
            os.fsync(journal._fd)  # the prefill's pages reach the disk before timing starts
        os.sync()
        with Journal.open(tmp) as journal:
            timings = []
            for i in range(prefill, prefill + samples):
                rec = ResultRecord(key=str(i), status="ok", text=text, requests=1)
                t0 = time.perf_counter()
                journal.append(rec)
                timings.append(time.perf_counter() - t0)
    return statistics.median(timings)


MERGE_CHILD = textwrap.dedent("""
    import resource, sys, time
    from pathlib import Path
    from designsim.batch.recover import merge_files
    t0 = time.perf_counter()
    report, _ = merge_files(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
    dt = time.perf_counter() - t0
    print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, report.rows_in, report.ids, report.succeeded)
""")


def merge_bench(rows: int = 1_000_000, rerun: int = 100_000) -> dict:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ids = np.arange(rows)
        failed = rng.choice(rows, size=rerun, replace=False)
        status = np.full(rows, "ok", dtype=object)
        status[failed] = "failed"
        result = pd.Series([f"result text for prompt {i} " + "lorem ipsum " * 6 for i in ids], dtype="str")
        result[failed] = None
        pd.DataFrame({"PROMPT_ID": ids, "STATUS": status, "RESULT": result,
                      "PROMPT": [f"prompt {i}" for i in ids]}).to_parquet(tmp / "a.parquet")
        pd.DataFrame({"PROMPT_ID": failed, "STATUS": "ok", "RESULT": [f"recovered {i}" for i in failed],
                      "PROMPT": [f"prompt {i}" for i in failed]}).to_parquet(tmp / "b.parquet")
        proc = subprocess.run([sys.executable, "-c", MERGE_CHILD, str(tmp / "merged.parquet"), str(tmp / "a.parquet"),
                               str(tmp / "b.parquet")], capture_output=True, text=True, check=True)
        seconds, maxrss_kb, rows_in, ids_out, ok = proc.stdout.split()
    return {"seconds": float(seconds), "peak_rss_gb": int(maxrss_kb) / 1024 / 1024, "rows_in": int(rows_in),
            "ids": int(ids_out), "succeeded": int(ok)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "fixed", "auto", "concurrency", "checkpoint", "merge"], default="all")
    args = parser.parse_args()
    part = args.part
    if part in ("all", "fixed"):
        fixed_rpm()
    if part in ("all", "auto"):
        auto_rpm()
    if part in ("all", "concurrency"):
        concurrency_default()
    if part in ("all", "checkpoint"):
        legacy = legacy_rate()
        print(f"legacy script: <= {legacy:.1f} requests/min (computed from MAX_DELAY=30 s between prompts)")
        small, large = checkpoint_cost(1_000), checkpoint_cost(100_000)
        print(f"checkpoint: {small * 1e6:.0f} us/result at 1k results, {large * 1e6:.0f} us/result at 100k "
              f"(ratio {large / small:.2f}, target flat; append + fsync, median of 1000, synced prefill)", flush=True)
    if part in ("all", "merge"):
        m = merge_bench()
        print(f"merge: {m['rows_in']:,} rows -> {m['ids']:,} ids ({m['succeeded']:,} ok) in {m['seconds']:.2f} s, "
              f"peak RSS {m['peak_rss_gb']:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
