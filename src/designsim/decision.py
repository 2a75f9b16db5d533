"""What the required check decides: the verdict on the change, and the gate policy.

The white paper keeps two questions apart (seed 002, Appendix D): the
*scorecard* says whether a simulation can be **trusted** ("if the output
scores poorly … the simulation has failed … run it again in a clean
session"); the simulation's own evaluation against the constraints says
whether **the change** is acceptable. This module is the second half:

* :func:`parse_change_verdict` reads the "Verdict on this change" section every
  blueprint ends with (see ``prompts/_blueprint.md.j2``)::

      ### Verdict on this change
      | Constraint | Verdict | Severity | Evidence |
      | --- | --- | --- | --- |
      | C1 | violated | blocker | jit_generation.py: `write_json_file` truncates goal_map.json |
      | C2 | respected | none | jit_generation.py keeps the name the goal map asks for |

  into a :class:`ChangeVerdict` (one row per rulebook constraint id, each
  exactly once), with markdown-it, tolerating emphasis, case, ``**C1**`` and
  spacing; a missing, unknown or repeated id is a problem, so is ``none`` with
  ``violated`` and evidence that names no file of the diff.
* :func:`combine_samples` takes the per-constraint majority of ``samples: N``
  independent sessions and says how many agreed (``"2/3"``).
* :func:`decide` is the gate policy: from the *trusted* verdicts of the
  required stages only, a :class:`Decision` of ``pass`` / ``fail`` /
  ``inconclusive`` / ``warn``. An untrusted stage is inconclusive, never a
  failure of the change.
* :func:`apply_overrides` records a maintainer's ``/simulate accept C1 <reason>``.

JSON shape of a decision (the JSON report's ``"decision"``, issue 8)::

    {"verdict": "pass|fail|inconclusive|warn", "reason": str,
     "findings": [{"stage": str, "constraint": str,
                   "verdict": "respected|violated|not applicable",
                   "severity": "blocker|major|minor|none", "evidence": str, "agreement": "k/n"}],
     "overrides": [{"login": str, "constraints": [str], "reason": str}]}
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Literal, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, ConfigDict, Field

from designsim.rulebook import SEVERITY_RANK, Rulebook

if TYPE_CHECKING:  # pragma: no cover
    from designsim.simulation import StageResult

ConstraintVerdictName = Literal["respected", "violated", "not applicable"]
SeverityName = Literal["blocker", "major", "minor", "none"]
DecisionVerdict = Literal["pass", "fail", "inconclusive", "warn"]

#: The heading of the section every blueprint ends with (matched case- and emphasis-insensitively).
VERDICT_HEADING = "Verdict on this change"
VERDICT_COLUMNS = ("Constraint", "Verdict", "Severity", "Evidence")
_VERDICT_WORDS: dict[str, str] = {
    "respected": "respected", "violated": "violated", "not applicable": "not applicable",
    "n/a": "not applicable", "na": "not applicable", "not-applicable": "not applicable",
}
_SEVERITY_WORDS = {"blocker", "major", "minor", "none"}

__all__ = [
    "ChangeVerdict", "ConstraintVerdict", "Decision", "Finding", "Override", "VerdictParse",
    "apply_overrides", "combine_samples", "decide", "failing_findings", "parse_change_verdict",
    "verdict_section_present",
]


class ConstraintVerdict(BaseModel):
    """One row of a stage's "Verdict on this change": the change against one constraint."""

    model_config = ConfigDict(extra="forbid")
    constraint: str
    verdict: ConstraintVerdictName
    severity: SeverityName
    evidence: str = ""


class ChangeVerdict(BaseModel):
    """A stage's verdict on the change: one row per rulebook constraint, in rulebook order."""

    model_config = ConfigDict(extra="forbid")
    rows: list[ConstraintVerdict] = []

    def get(self, constraint_id: str) -> ConstraintVerdict | None:
        """The row for ``constraint_id``, or ``None``."""
        return next((r for r in self.rows if r.constraint == constraint_id), None)


class VerdictParse(BaseModel):
    """What :func:`parse_change_verdict` found: ``verdict`` (``None`` when no
    usable section was found) and ``problems`` (one human sentence each; any
    problem makes the output untrusted)."""

    model_config = ConfigDict(extra="forbid")
    found: bool = False
    verdict: ChangeVerdict | None = None
    problems: list[str] = []

    @property
    def ok(self) -> bool:
        return self.found and self.verdict is not None and not self.problems


class Finding(BaseModel):
    """One constraint's verdict from one stage, as the decision reports it.
    ``agreement`` is ``"k/n"``: k of the stage's n samples gave this verdict."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    constraint: str
    verdict: ConstraintVerdictName
    severity: SeverityName
    evidence: str = ""
    agreement: str = "1/1"


class Override(BaseModel):
    """A maintainer's audited acceptance (``/simulate accept C1 <reason>``):
    ``constraints`` lists ids, or ``["all"]``."""

    model_config = ConfigDict(extra="forbid")
    login: str
    constraints: list[str] = Field(min_length=1)
    reason: str = ""


class Decision(BaseModel):
    """What the required check says about the pull request.

    ``verdict``: ``pass`` (every required stage trusted, no violated blocking
    constraint at or above ``gate.fail_on``), ``fail`` (a trusted required
    stage reports one), ``inconclusive`` (otherwise: a stage untrusted after
    its attempts, the model unavailable, samples that disagree), ``warn`` (a
    fail under ``policy.on_failed: warn``: shown as a warning, never as a pass).
    ``reason`` is the one-line headline; ``findings`` every trusted stage's
    rows (the deciding ones first); ``overrides`` the acceptances applied.
    """

    model_config = ConfigDict(extra="forbid")
    verdict: DecisionVerdict
    reason: str
    findings: list[Finding] = []
    overrides: list[Override] = []


# ------------------------------------------------------------------ parsing

_MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _plain(inline: Token | None) -> str:
    """An inline token's text without emphasis or code markup."""
    if inline is None:
        return ""
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline" and re.match(r"<br\s*/?>", child.content, re.IGNORECASE):
            parts.append(" ")
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not (ord(ch) > 127 and unicodedata.category(ch) in ("So", "Sk")) and ch != "\ufe0f")
    return re.sub(r"\s+", " ", re.sub(r"[*_`~]", "", text)).strip().lower()


def _tables_after_heading(tokens: list[Token]) -> list[tuple[int, list[list[str]]]]:
    """For every "Verdict on this change" heading (or bold-only paragraph used as
    one), the first table after it before the next heading: ``(line, rows)``."""
    found: list[tuple[int, list[list[str]]]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        is_heading = tok.type == "heading_open"
        is_bold_para = (tok.type == "paragraph_open" and tok.level == 0 and i + 1 < len(tokens)
                        and (tokens[i + 1].content.strip().startswith(("**", "__"))))
        if (is_heading or is_bold_para) and i + 1 < len(tokens) and _norm(tokens[i + 1].content).strip(" :") == VERDICT_HEADING.lower():
            line = tok.map[0] if tok.map else 0
            j = i + 2
            rows: list[list[str]] | None = None
            while j < len(tokens):
                t = tokens[j]
                if t.type == "heading_open":
                    break
                if t.type == "table_open":
                    rows, j = _read_table(tokens, j)
                    break
                j += 1
            found.append((line, rows or []))
            i = j
            continue
        i += 1
    return found


def _read_table(tokens: list[Token], start: int) -> tuple[list[list[str]], int]:
    rows: list[list[str]] = []
    row: list[str] | None = None
    j = start
    while j < len(tokens) and tokens[j].type != "table_close":
        t = tokens[j]
        if t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open") and row is not None:
            row.append(_plain(tokens[j + 1] if j + 1 < len(tokens) and tokens[j + 1].type == "inline" else None))
        elif t.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
        j += 1
    return rows, j


def verdict_section_present(markdown: str) -> bool:
    """True when ``markdown`` has a "Verdict on this change" heading."""
    return bool(_tables_after_heading(_MD.parse(markdown or "")))


def _cites_diff_file(evidence: str, diff_files: Sequence[str]) -> bool:
    low = evidence.lower()
    for path in diff_files:
        p = path.lower()
        base = p.rsplit("/", 1)[-1]
        if p in low or (base and re.search(rf"(?<![\w.-]){re.escape(base)}(?![\w-])", low)):
            return True
    return False


def parse_change_verdict(markdown: str, constraint_ids: Sequence[str], diff_files: Sequence[str] | None = None) -> VerdictParse:
    """Read the *last* "Verdict on this change" section of ``markdown``.

    ``constraint_ids``: the rulebook's ids, each needed exactly once (matched
    case-insensitively, emphasis and spacing ignored, so ``**c1**`` is ``C1``);
    ``diff_files``: paths in the diff; when given, the evidence of every
    ``respected`` or ``violated`` row must name one of them (its path or file
    name). Never raises on any text; problems are returned, not raised.
    """
    sections = _tables_after_heading(_MD.parse(markdown or ""))
    if not sections:
        return VerdictParse(found=False, problems=[f'no "### {VERDICT_HEADING}" section'])
    _, rows = sections[-1]
    if not rows:
        return VerdictParse(found=True, problems=[f'the "{VERDICT_HEADING}" section has no table'])
    header = [_norm(c) for c in rows[0]]
    try:
        cols = [header.index(name.lower()) for name in VERDICT_COLUMNS]
    except ValueError:
        return VerdictParse(found=True, problems=[f"the verdict table's columns must be {' | '.join(VERDICT_COLUMNS)}; got {' | '.join(rows[0])}"])
    by_norm = {_norm(cid): cid for cid in constraint_ids}
    problems: list[str] = []
    parsed: dict[str, ConstraintVerdict] = {}
    for number, row in enumerate(rows[1:], 1):
        cells = row + [""] * (len(VERDICT_COLUMNS) - len(row))
        raw_id, raw_verdict, raw_severity, evidence = (cells[c] if c < len(cells) else "" for c in cols)
        key = _norm(raw_id)
        cid = by_norm.get(key)
        if cid is None:
            problems.append(f"row {number}: unknown constraint id {raw_id!r} (the rulebook has {', '.join(constraint_ids) or 'none'})")
            continue
        if cid in parsed:
            problems.append(f"row {number}: constraint {cid} appears more than once")
            continue
        verdict = _VERDICT_WORDS.get(_norm(raw_verdict))
        severity = _norm(raw_severity)
        if verdict is None:
            problems.append(f"{cid}: verdict {raw_verdict!r} is not respected, violated or not applicable")
            continue
        if severity not in _SEVERITY_WORDS:
            problems.append(f"{cid}: severity {raw_severity!r} is not blocker, major, minor or none")
            continue
        if verdict == "violated" and severity == "none":
            problems.append(f"{cid}: a violation needs a severity (blocker, major or minor), not none")
        if verdict != "violated" and severity != "none":
            problems.append(f"{cid}: severity must be none when the verdict is {verdict}")
        if not evidence.strip():
            problems.append(f"{cid}: no evidence")
        elif diff_files and verdict != "not applicable" and not _cites_diff_file(evidence, diff_files):
            problems.append(f"{cid}: the evidence names no file of the diff ({evidence[:80]!r})")
        parsed[cid] = ConstraintVerdict(constraint=cid, verdict=verdict, severity=severity, evidence=evidence)  # type: ignore[arg-type]
    missing = [cid for cid in constraint_ids if cid not in parsed]
    if missing:
        problems.append("no row for " + ", ".join(missing))
    verdict = ChangeVerdict(rows=[parsed[c] for c in constraint_ids if c in parsed])
    return VerdictParse(found=True, verdict=verdict, problems=problems)


# ------------------------------------------------------------------ samples


def agreement_needed(n: int, min_agreement: float | None) -> int:
    """How many of ``n`` samples must agree: ``ceil(min_agreement * n)``, or a
    strict majority (``n // 2 + 1``) when ``min_agreement`` is unset."""
    if min_agreement is None:
        return n // 2 + 1
    import math

    return max(1, math.ceil(min_agreement * n - 1e-9))


def combine_samples(verdicts: Sequence[ChangeVerdict | None], constraint_ids: Sequence[str], *,
                    min_agreement: float | None = None) -> tuple[list[tuple[ConstraintVerdict, int]], list[str]]:
    """The per-constraint majority over ``verdicts`` (one per sample; ``None``
    for a sample that was never trusted, which counts towards ``n`` but agrees
    with nothing).

    Returns ``(rows, disagreements)``: ``rows`` holds ``(row, k)`` for every
    constraint whose most common verdict is given by ``k`` samples with
    ``k >= agreement_needed(n, min_agreement)`` and no tie; its severity is the
    most common among those ``k`` (ties to the more severe) and its evidence the
    first such sample's. ``disagreements`` names each constraint short of that
    (e.g. ``"C1: 1/3 violated, 1/3 respected"``).
    """
    n = len(verdicts)
    need = agreement_needed(n, min_agreement)
    rows: list[tuple[ConstraintVerdict, int]] = []
    disagreements: list[str] = []
    for cid in constraint_ids:
        given = [v.get(cid) for v in verdicts if v is not None]
        given = [g for g in given if g is not None]
        counts = Counter(g.verdict for g in given)
        ranked = counts.most_common()
        if not ranked:
            disagreements.append(f"{cid}: no trusted sample")
            continue
        top, k = ranked[0]
        tie = len(ranked) > 1 and ranked[1][1] == k
        if tie or k < need:
            disagreements.append(f"{cid}: " + ", ".join(f"{c}/{n} {v}" for v, c in ranked))
            continue
        agreeing = [g for g in given if g.verdict == top]
        sev_counts = Counter(g.severity for g in agreeing)
        severity = max(sev_counts, key=lambda s: (sev_counts[s], SEVERITY_RANK[s]))
        first = next(g for g in agreeing if g.severity == severity)
        rows.append((first, k))
    return rows, disagreements


# ------------------------------------------------------------------ the gate policy


def _counts(finding: Finding, rulebook: Rulebook) -> bool:
    """A violated, blocking constraint at or above ``gate.fail_on``."""
    blocking = {c.id: c.blocking for c in rulebook.constraints}
    return (finding.verdict == "violated" and blocking.get(finding.constraint, True)
            and SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[rulebook.gate.fail_on])


def failing_findings(decision: Decision, rulebook: Rulebook) -> list[Finding]:
    """The findings that make ``decision`` a fail: violated blocking
    constraints at or above ``rulebook.gate.fail_on``, from deciding stages."""
    return [f for f in decision.findings if _counts(f, rulebook)]


def _headline(f: Finding, titles: dict[str, str]) -> str:
    evidence = re.sub(r"\s+", " ", f.evidence).strip()
    evidence = evidence if len(evidence) <= 140 else evidence[:139].rstrip() + "…"
    return f"{f.constraint} {f.verdict} ({f.severity}) — {titles.get(f.stage, f.stage)}: {evidence}"


def decide(rulebook: Rulebook, stages: Sequence["StageResult"]) -> Decision:
    """The gate policy (issue 8, item 3) over the stages' results.

    A stage counts when it is in ``policy.required`` (default: all). A stage is
    *trusted* when its outcome is ``passed`` (its scorecard passed, and with
    samples its verdicts agreed); its ``findings`` then hold its rows. A trusted
    synthesis gives the final word over its chain: the findings of the stages
    it integrates are reported but do not decide.

    * ``fail`` when a trusted deciding stage reports a violated blocking
      constraint at or above ``gate.fail_on`` (``warn`` instead under
      ``policy.on_failed: warn``);
    * ``pass`` when every required stage is trusted and none reports one;
    * ``inconclusive`` otherwise (untrusted, unavailable, skipped behind an
      inconclusive predecessor, or samples that disagree).
    """
    required = set(rulebook.policy.required or [s.id for s in stages])
    titles = {s.id: s.title for s in stages}
    counted = [s for s in stages if s.id in required]
    synthesis = next((s for s in stages if s.is_synthesis and s.outcome == "passed" and s.id in required), None)
    superseded = set(synthesis.depends_on) if synthesis else set()
    deciding = [s for s in counted if s.outcome == "passed" and s.id not in superseded]
    reported = deciding + [s for s in stages if s.outcome == "passed" and s not in deciding]
    findings = [f for s in reported for f in s.findings]
    decisive = [f for s in deciding for f in s.findings if _counts(f, rulebook)]
    decisive.sort(key=lambda f: -SEVERITY_RANK[f.severity])
    untrusted = [s for s in counted if s.outcome != "passed"]
    ignored = [f"{s.id} {s.trust}" for s in stages if s.id not in required and s.outcome != "passed"]
    tail = f" (not required by the policy: {', '.join(ignored)})" if ignored else ""
    if decisive:
        more = f" (+{len(decisive) - 1} more)" if len(decisive) > 1 else ""
        reason = _headline(decisive[0], titles) + more
        verdict: DecisionVerdict = "warn" if rulebook.policy.on_failed == "warn" else "fail"
        if verdict == "warn":
            reason += " [policy on_failed: warn]"
        if untrusted:
            reason += f"; also inconclusive: {', '.join(s.id for s in untrusted)}"
        return Decision(verdict=verdict, reason=reason + tail, findings=findings)
    if untrusted:
        parts = [f"{s.id} {s.trust}" + (f" ({s.reason})" if s.reason else "") for s in untrusted]
        return Decision(verdict="inconclusive", reason="inconclusive: " + "; ".join(parts) + tail, findings=findings)
    advisory = [f for f in findings if f.verdict == "violated"]
    if not rulebook.constraints:
        reason = f"no constraints to check; every required stage trusted ({len(counted)} stage{'s' if len(counted) != 1 else ''})"
    elif advisory:
        reason = (f"no blocking violation at or above {rulebook.gate.fail_on} ({len(counted)} stage{'s' if len(counted) != 1 else ''}); "
                  f"reported: " + ", ".join(sorted({f"{f.constraint} {f.severity}" for f in advisory})))
    else:
        reason = f"every constraint respected ({len(counted)} stage{'s' if len(counted) != 1 else ''})"
    return Decision(verdict="pass", reason=reason + tail, findings=findings)


def apply_overrides(decision: Decision, overrides: Iterable[Override], rulebook: Rulebook) -> Decision:
    """Apply maintainers' acceptances to a decision.

    A ``fail`` (or ``warn``) becomes ``pass`` when every finding that makes it
    fail (violated, blocking, at or above ``gate.fail_on``) is accepted by an
    override naming its constraint id or ``all``; the reason names who accepted
    what. Otherwise the verdict stands and the reason says what is still open.
    An ``inconclusive`` or ``pass`` decision is not changed (there is nothing
    trusted to accept; re-run the review). The overrides are always recorded.
    """
    overrides = list(overrides)
    if not overrides:
        return decision
    recorded = decision.overrides + overrides
    if decision.verdict not in ("fail", "warn"):
        return decision.model_copy(update={"overrides": recorded})
    accepted: set[str] = set()
    everything = False
    for o in overrides:
        if any(c.lower() == "all" for c in o.constraints):
            everything = True
        accepted.update(o.constraints)
    failing = failing_findings(decision, rulebook)
    open_ = sorted({f.constraint for f in failing if not everything and f.constraint not in accepted})
    who = ", ".join(dict.fromkeys(f"@{o.login}" for o in overrides))
    what = "; ".join(f"{' '.join(o.constraints)} by @{o.login}" + (f": {o.reason}" if o.reason else "") for o in overrides)
    if open_:
        return decision.model_copy(update={"overrides": recorded,
                                           "reason": decision.reason + f" (accepted {what}; still open: {', '.join(open_)})"})
    return decision.model_copy(update={"verdict": "pass", "overrides": recorded,
                                       "reason": f"accepted by {who}: {what} (was: {decision.reason})"})
