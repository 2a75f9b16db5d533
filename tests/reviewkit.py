"""Building blocks for review tests: small rulebooks and outputs that pass or
fail the scorecard, and a fake-Gemini handler that answers by stage."""

from __future__ import annotations

import json
import re

from designsim.scorecard import default_criteria
from designsim.testing import FakeRequest, json_reply, text_reply

RULEBOOK = """\
version: 1
name: tiny
scenario: A script saves a component file and then rewrites goal_map.json.
directive: Simulate how the proposed change fails and design the fix.
constraints:
  - id: C1
    text: goal_map.json must never be left half-written.
stages:
  - id: state
    title: State management
    focus: What if the process dies between the two writes?
    format: flaw
  - id: naming
    title: Naming
    focus: Are the generated names a problem?
    format: flaw
  - id: idem
    title: Idempotency
    focus: What happens when it runs twice?
    format: flaw
    depends_on: [state]
synthesis:
  focus: Integrate the three simulations.
scorecard:
  attempts: 2
  grade_attempts: 2
output:
  format: pathways
  min_chars: 100
concurrency: 3
"""


def flaw_output(tag: str) -> str:
    """A flaw-format output that passes every deterministic check; ``tag``
    makes it identifiable in later prompts."""
    return (
        f"### Flaw Analysis\nMarker {tag}: a crash between saving the file and rewriting the map leaves "
        "goal_map.json pointing at nothing, and the next run fails in a confusing way.\n\n"
        f"### Proposed Solution\nUse write-to-temporary-then-rename for {tag} so each write is atomic.\n\n"
        "### Revised Algorithm\n```pseudocode\nwrite tmp; fsync tmp; os.replace(tmp, final)\n```\n"
    )


def pathways_output(tag: str = "syn") -> str:
    """A pathways-format output with a valid decision matrix (one Recommended)."""
    return f"""### Step 1: Situation Analysis
Marker {tag}. The change writes two files without atomicity; C1 is at risk.

### Step 2: Simulate Pathways
Alpha keeps the map, Beta removes the map write, Gamma adds a service.

### Step 3: Evaluate Pathways Against Constraints
Alpha passes C1 with care, Beta passes C1 trivially, Gamma fails C1 under partitions.

### Step 4: Decision Matrix
| Criteria | Alpha | Beta | Gamma |
| :--- | :--- | :--- | :--- |
| C1 | ✅ Pass | ✅ **Pass** | ❌ Fail |
| Overall Risk | Medium | Low | High |
| **Verdict** | Viable | **Recommended** | Rejected |

### Step 5: Recommendation
Beta is recommended because it removes the race entirely.
"""


def judge_json(output: str, fmt: str, *, verdict: str = "PASS") -> dict:
    """A judge reply quoting the first line of ``output`` for every criterion."""
    quote = next(l for l in output.splitlines() if l and not l.startswith("#")).split(".")[0]
    return {"criteria": [{"id": c.id, "evidence_quote": quote, "reasoning": "Meets the bar.", "verdict": verdict}
                         for c in default_criteria(fmt)], "summary": "fine"}


def stage_title(req: FakeRequest) -> str:
    m = re.search(r"^# Your assignment: (.+)$", req.prompt, re.MULTILINE)
    return m.group(1).strip() if m else ""


def output_under_review(req: FakeRequest) -> str:
    return req.prompt.split("<output_under_review>\n", 1)[1].rsplit("\n</output_under_review>", 1)[0]


def default_handler(req: FakeRequest):
    """Stage prompts get a passing output for their stage; judge prompts a PASS."""
    if req.wants_json:
        out = output_under_review(req)
        return json_reply(judge_json(out, "pathways" if "Decision Matrix" in out else "flaw"))
    title = stage_title(req)
    if title == "Synthesis":
        return text_reply(pathways_output())
    return text_reply(flaw_output(title), input_tokens=len(req.prompt) // 4)


__all__ = ["RULEBOOK", "default_handler", "flaw_output", "judge_json", "json", "output_under_review", "pathways_output", "stage_title"]
