"""Batch benchmark (prints figures; not a test).

1. Throughput: ``designsim batch run``'s runner with the real google-genai
   client against the local fake Gemini server answering after 0.5 s, under a
   600 requests/min limit: achieved requests/min as a fraction of the limit
   (target >= 0.9), over ``--requests`` requests (300 = ~30 s).
2. The legacy script's rate on the same server, *computed* from its code: it
   sends one prompt at a time and sleeps ``MAX_DELAY - elapsed`` (30 s) after
   each, so it can never exceed 60/30 = 2 requests/min whatever the latency
   (measuring it would take 30 s per request; its SDK cannot reach the fake).
3. Checkpoint cost per result (append + fsync of one journal line) when the
   journal already holds 1k vs 100k results (target: flat, ratio <= 1.5).
4. ``batch merge`` of 1,000,000 result rows (plus 100,000 re-run rows) into one
   table: wall time and the merging process's peak RSS (targets < 10 s, < 1.5 GB).

Usage: ``python bench/batch_throughput.py [--requests 300] [--skip-throughput]``
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


def throughput(n: int, rpm: float = 600.0, latency_s: float = 0.5, concurrency: int = 16) -> dict:
    from rich.console import Console

    from designsim.batch.runner import RunOptions, execute_run
    from designsim.batch.tables import validate_job
    from designsim.providers.gemini import GeminiProvider
    from designsim.providers.retry import RetryPolicy
    from designsim.testing import FakeGeminiServer, text_reply

    os.environ.setdefault("GEMINI_API_KEY", "bench-key-not-secret")
    frame = pd.DataFrame({"PROMPT_ID": range(n), "PROMPT": [f"benchmark prompt {i}" for i in range(n)]})
    job = validate_job(frame)
    with tempfile.TemporaryDirectory() as tmp, FakeGeminiServer(lambda r: text_reply("ok " + r.prompt), latency_s=latency_s) as server:
        options = RunOptions(rpm=rpm, concurrency=concurrency, policy=RetryPolicy(attempts=3), progress_every_s=10)
        started = time.monotonic()
        result = execute_run(job, Path(tmp) / "out", options, lambda: GeminiProvider(), console=Console(stderr=True))
        wall = time.monotonic() - started
        starts = sorted(r.started for r in server.generate_requests())
    span = starts[-1] - starts[0]
    # requests after the first, over the time between first and last send: the sustained rate
    achieved = (len(starts) - 1) / span * 60 if span > 0 else float("inf")
    burst = max(1, int(rpm // 60))  # the limiter's bucket: admitted at once at the start
    steady = (len(starts) - burst) / (starts[-1] - starts[burst - 1]) * 60
    return {"steady_rpm": steady, "steady_fraction": steady / rpm, "requests": len(starts), "succeeded": result.summary.succeeded, "wall_s": wall,
            "achieved_rpm": achieved, "fraction": achieved / rpm, "end_to_end_rpm": len(starts) / wall * 60}


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
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()

    if not args.skip_throughput:
        t = throughput(args.requests)
        print(f"throughput: {t['requests']} requests, 0.5 s latency, limit 600/min -> sustained {t['achieved_rpm']:.1f}/min "
              f"= {t['fraction']:.3f} of the limit (target >= 0.9); steady state after the initial bucket of "
              f"{int(600 // 60)}: {t['steady_rpm']:.1f}/min = {t['steady_fraction']:.3f}; end to end {t['end_to_end_rpm']:.1f}/min "
              f"over {t['wall_s']:.1f} s incl. the last replies and output writing")
    legacy = legacy_rate()
    print(f"legacy script: <= {legacy:.1f} requests/min (computed from MAX_DELAY=30 s between prompts) "
          f"= {legacy / 600:.4f} of the limit")
    small, large = checkpoint_cost(1_000), checkpoint_cost(100_000)
    print(f"checkpoint: {small * 1e6:.0f} us/result at 1k results, {large * 1e6:.0f} us/result at 100k "
          f"(ratio {large / small:.2f}, target <= 1.5; append + fsync, median of 1000)")
    m = merge_bench()
    print(f"merge: {m['rows_in']:,} rows -> {m['ids']:,} ids ({m['succeeded']:,} ok) in {m['seconds']:.2f} s, "
          f"peak RSS {m['peak_rss_gb']:.2f} GB (targets < 10 s, < 1.5 GB)")


if __name__ == "__main__":
    main()
