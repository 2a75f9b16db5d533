"""Benchmark: review orchestration overhead and stage concurrency.

Runs a three-stage review (flaw format, judge on: each stage is one simulation
call plus one judge call) against the local fake Gemini server with a fixed
latency per request, through the real google-genai client, twice:

* independent — the three stages have no dependencies (run concurrently);
* chained     — state -> naming -> idempotency.

Prints wall time, the ratio independent / one stage (target <= 1.3), and the
orchestration overhead per stage: wall time minus the model latency on the
critical path (server-side request time), divided by the number of stages
(target < 50 ms). Also measures the pure in-process overhead with the scripted
FakeProvider (no HTTP). Usage: ``python bench/review_overhead.py [--latency 0.5] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from reviewkit import default_handler  # noqa: E402

from designsim.providers.gemini import GeminiProvider  # noqa: E402
from designsim.review import build_plan, review_diff  # noqa: E402
from designsim.rulebook import parse_rulebook  # noqa: E402
from designsim.testing import FakeGeminiServer, FakeProvider  # noqa: E402

STAGES = """\
name: bench
scenario: A script saves a component file and then rewrites goal_map.json.
directive: Simulate how the proposed change fails and design the fix.
constraints: [{{id: C1, text: never half-written}}]
output: {{format: flaw, min_chars: 100}}
concurrency: 3
stages:
  - {{id: state, title: State management, focus: atomicity}}
  - {{id: naming, title: Naming, focus: names{naming_dep}}}
  - {{id: idem, title: Idempotency, focus: reruns{idem_dep}}}
"""
DIFF = b"""diff --git a/orchestrator.py b/orchestrator.py
--- a/orchestrator.py
+++ b/orchestrator.py
@@ -1,2 +1,3 @@
 import json
+save_file(path, snippet); write_json_file("goal_map.json", json_map)
 print("done")
"""


def rulebook(chained: bool):
    text = STAGES.format(naming_dep=", depends_on: [state]" if chained else "", idem_dep=", depends_on: [naming]" if chained else "")
    return parse_rulebook(text, "bench.yml")


def one_run(chained: bool, latency: float) -> tuple[float, float]:
    plan = build_plan(rulebook(chained), DIFF)
    with FakeGeminiServer(default_handler, latency_s=latency) as server:
        provider = GeminiProvider(default_model="gemini-2.5-flash")
        t0 = time.perf_counter()
        review = review_diff(plan, provider)
        wall = time.perf_counter() - t0
    assert review.verdict == "pass", review.summary
    per_stage: dict[str, float] = {}
    for req in server.generate_requests():
        title = [l for l in req.prompt.splitlines() if l.startswith("# Your assignment")]
        key = "judge" if req.wants_json else title[0]
        per_stage.setdefault(key, 0.0)
        per_stage[key] += req.finished - req.started
    model_time = sum(r.finished - r.started for r in server.generate_requests())
    critical = model_time if chained else model_time / 3  # chained: everything in series; independent: one stage's share
    return wall, (wall - critical) / 3


def pure_overhead(chained: bool, runs: int) -> float:
    plan = build_plan(rulebook(chained), DIFF)
    provider = FakeProvider(lambda req: default_handler(_AsFake(req)).body["candidates"][0]["content"]["parts"][0]["text"])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        review_diff(plan, provider)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / 3


class _AsFake:
    """Adapts a GenerationRequest to the FakeRequest fields default_handler reads."""

    def __init__(self, req):
        self.prompt = req.prompt
        self.wants_json = req.response_schema is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per fake model request")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("GEMINI_API_KEY", "bench-key-not-secret")
    single_plan = parse_rulebook(STAGES.format(naming_dep="", idem_dep="").split("  - {id: naming")[0], "one.yml")
    with FakeGeminiServer(default_handler, latency_s=args.latency):
        one = []
        for _ in range(args.runs):
            plan = build_plan(single_plan, DIFF)
            t0 = time.perf_counter()
            review_diff(plan, GeminiProvider())
            one.append(time.perf_counter() - t0)
    one_stage = statistics.median(one)
    ind = [one_run(False, args.latency) for _ in range(args.runs)]
    chn = [one_run(True, args.latency) for _ in range(args.runs)]
    ind_wall, chn_wall = statistics.median(w for w, _ in ind), statistics.median(w for w, _ in chn)
    print(f"fake model latency per request      {args.latency * 1000:8.0f} ms  (each stage = simulation + judge call)")
    print(f"one stage, wall                     {one_stage * 1000:8.0f} ms")
    print(f"3 independent stages, wall          {ind_wall * 1000:8.0f} ms  = {ind_wall / one_stage:4.2f} x one stage (target <= 1.3)")
    print(f"3 chained stages, wall              {chn_wall * 1000:8.0f} ms  = {chn_wall / one_stage:4.2f} x one stage")
    print(f"overhead per stage, independent     {statistics.median(o for _, o in ind) * 1000:8.1f} ms  (wall - model latency on the critical path; target < 50)")
    print(f"overhead per stage, chained         {statistics.median(o for _, o in chn) * 1000:8.1f} ms")
    print(f"in-process overhead per stage       {pure_overhead(True, args.runs) * 1000:8.1f} ms  (FakeProvider, no HTTP: templates, checks, matrix parsing)")


if __name__ == "__main__":
    main()
