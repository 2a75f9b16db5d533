"""``designsim lint`` scaling benchmark (prints figures; not a test).

Lints generated rulebooks of growing size in three shapes (many chained stages
whose focus names other stages, many constraints, one huge scenario) and prints
seconds and microseconds per input character at each size. Linear means the
per-character figure stays flat as the size doubles (target: the ratio of the
largest to the smallest size's per-character time <= 2).

Before the fix, 2,000 chained stages (200 kB) took 267 s: every stage's focus
was searched with a regex compiled per other stage (n x n compiles; Python's
regex cache holds 512). A rulebook over ``designsim.rulebook.YAML_MAX_CHARS``
(8 MiB), such as the 50 MB one of issue 11, is refused before it is parsed.

Usage: ``python bench/lint_scaling.py [--max-stages 8000]``
"""

from __future__ import annotations

import argparse
import time

from designsim.kit.lint import lint_text
from designsim.rulebook import YAML_MAX_CHARS


def many_stages(n: int) -> str:
    return "version: 1\nname: b\nscenario: s\ndirective: Simulate the change.\nstages:\n" + "".join(
        f"  - id: s{i}\n    title: Stage {i}\n    focus: builds on the baseline of s{max(0, i - 1)} and Stage {i // 2}?\n"
        + (f"    depends_on: [s{i - 1}]\n" if i else "") for i in range(n))


def many_constraints(n: int) -> str:
    return ("version: 1\nname: b\nscenario: s\ndirective: Simulate the change.\nconstraints:\n"
            + "".join(f"  - id: C{i}\n    text: constraint number {i}\n" for i in range(n))
            + "stages:\n  - id: a\n    title: A\n    focus: f\n")


def big_scenario(n: int) -> str:
    return ("version: 1\nname: b\nscenario: |\n" + "".join(f"  line {i} of the scenario; just fix it?\n" for i in range(n * 10))
            + "directive: Simulate the change.\nstages:\n  - id: a\n    title: A\n    focus: f\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-stages", type=int, default=8000)
    args = parser.parse_args()
    for shape in (many_stages, many_constraints, big_scenario):
        rates = []
        n = max(500, args.max_stages // 8)
        while n <= args.max_stages:
            text = shape(n)
            start = time.perf_counter()
            lint_text(text, "bench.yml")
            seconds = time.perf_counter() - start
            rates.append(seconds / len(text) * 1e6)
            print(f"{shape.__name__:17} n={n:>6} {len(text):>10,} chars {seconds:7.2f} s {rates[-1]:6.2f} µs/char", flush=True)
            n *= 2
        print(f"{shape.__name__:17} per-character time, largest/smallest: {rates[-1] / rates[0]:.2f} (target <= 2)")
    huge = "scenario: |\n" + "  x\n" * (50 * 1024 * 1024 // 4)
    start = time.perf_counter()
    report = lint_text(huge, "huge.yml")
    print(f"50 MB rulebook: {time.perf_counter() - start:.2f} s, {report.errors[0].message[:90]} (limit {YAML_MAX_CHARS:,} chars)")


if __name__ == "__main__":
    main()
