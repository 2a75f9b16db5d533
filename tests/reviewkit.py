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


def verdict_table(rows: dict[str, tuple[str, str]] | None = None, file: str = "github/Membership.py") -> str:
    """A "Verdict on this change" section; ``rows`` maps a constraint id to
    ``(verdict, severity)`` (default: C1 respected)."""
    rows = {"C1": ("respected", "none")} if rows is None else rows
    lines = ["### Verdict on this change", "| Constraint | Verdict | Severity | Evidence |", "| --- | --- | --- | --- |"]
    lines += [f"| {cid} | {v} | {sev} | {file}: the write path as the diff changes it |" for cid, (v, sev) in rows.items()]
    return "\n".join(lines) + "\n"


def flaw_output(tag: str, rows: dict[str, tuple[str, str]] | None = None, *, file: str = "github/Membership.py",
                verdict: bool = True) -> str:
    """A flaw-format output that passes every deterministic check; ``tag``
    makes it identifiable in later prompts; it ends with a verdict table
    (``rows``, citing ``file``) unless ``verdict`` is False."""
    return (
        f"### Flaw Analysis\nMarker {tag}: a crash between saving the file and rewriting the map leaves "
        "goal_map.json pointing at nothing, and the next run fails in a confusing way.\n\n"
        f"### Proposed Solution\nUse write-to-temporary-then-rename for {tag} so each write is atomic.\n\n"
        "### Revised Algorithm\n```pseudocode\nwrite tmp; fsync tmp; os.replace(tmp, final)\n```\n"
    ) + (("\n" + verdict_table(rows, file)) if verdict else "")


def pathways_output(tag: str = "syn", rows: dict[str, tuple[str, str]] | None = None, *, file: str = "github/Membership.py") -> str:
    """A pathways-format output with a valid decision matrix (one Recommended,
    the change as written among the pathways) and a verdict table."""
    return f"""### Step 1: Situation Analysis
Marker {tag}. The change writes two files without atomicity; C1 is at risk.

### Step 2: Simulate Pathways
The change as written keeps two writes, Beta removes the map write, Gamma adds a service.

### Step 3: Evaluate Pathways Against Constraints
The change as written passes C1 with care, Beta passes C1 trivially, Gamma fails C1 under partitions.

### Step 4: Decision Matrix
| Criteria | The change as written | Beta | Gamma |
| :--- | :--- | :--- | :--- |
| C1 | ✅ Pass | ✅ **Pass** | ❌ Fail |
| Overall Risk | Medium | Low | High |
| **Verdict** | Viable | **Recommended** | Rejected |

### Step 5: Recommendation
Beta is recommended because it removes the race entirely.

""" + verdict_table(rows, file)


def criterion_ids(req: FakeRequest) -> list[str]:
    """The criterion ids a judge request pins in its response schema."""
    schema = (req.body.get("generationConfig") or {}).get("responseJsonSchema") or {}
    return list(schema.get("required") or [])


def judge_json(output: str, fmt: str | list[str], *, verdict: str = "PASS", change_verdict: bool = True) -> dict:
    """A judge reply (the pinned schema: criterion ids as keys) quoting the
    first prose line of ``output`` for every criterion; ``fmt`` is a format
    (its default criteria) or the list of criterion ids."""
    line = next(l for l in output.splitlines() if l.strip() and not l.startswith(("#", "|", "`")))
    quote = line[:100]
    ids = fmt if isinstance(fmt, list) else [c.id for c in default_criteria(fmt, change_verdict=change_verdict)]
    return {cid: {"evidence_quote": quote, "reasoning": "Meets the bar.", "verdict": verdict} for cid in ids}


def diff_file(req: FakeRequest) -> str:
    """The first file of the diff shown in a stage prompt's evidence."""
    m = re.search(r"^### (\S+) \((?:added|modified|deleted|renamed|copied)", req.prompt, re.MULTILINE)
    return m.group(1) if m else "github/Membership.py"


def stage_title(req: FakeRequest) -> str:
    m = re.search(r"^# Your assignment: (.+)$", req.prompt, re.MULTILINE)
    return m.group(1).strip() if m else ""


def output_under_review(req: FakeRequest) -> str:
    return req.prompt.split("<output_under_review>\n", 1)[1].rsplit("\n</output_under_review>", 1)[0]


def default_handler(req: FakeRequest):
    """Stage prompts get a passing output for their stage (C1 respected, citing
    a file of the diff); judge prompts a PASS on exactly the criteria asked."""
    if req.wants_json:
        return json_reply(judge_json(output_under_review(req), criterion_ids(req)))
    title = stage_title(req)
    if title == "Synthesis":
        return text_reply(pathways_output(file=diff_file(req)))
    return text_reply(flaw_output(title, file=diff_file(req)), input_tokens=len(req.prompt) // 4)


__all__ = ["RULEBOOK", "criterion_ids", "default_handler", "diff_file", "flaw_output", "judge_json", "json", "output_under_review",
           "pathways_output", "stage_title", "verdict_table"]
