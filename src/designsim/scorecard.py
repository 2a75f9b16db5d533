"""Grade a simulation output: deterministic checks first, then the LLM judge.

The scorecard is the white paper's (seed 002, Appendix D): Adherence to
Blueprint, Quality of (Flaw) Analysis, Quality of Proposed Solution, Quality
of Revised Algorithm (for ``pathways``: of the Decision Matrix), Persona
Fidelity, and the meta-level "Does this help?" test.

Order of work, per output:

1. :func:`run_checks` — cheap and certain: required sections present and in
   order; for ``pathways`` a decision matrix that parses, a verdict for every
   pathway and exactly one Recommended, every constraint addressed; for
   ``flaw`` a revised algorithm in a code block and an analysis that is more
   than a copy of the evidence; anti-goal patterns absent; length bounds;
   balanced code fences; no text addressed to the grader.
2. :func:`judge` — only if the checks pass: a fresh session, structured JSON
   (response schema from :class:`JudgeReply`), per criterion a verbatim
   quote, the reasoning, then the verdict. Quotes are checked to occur in the
   output. A missing, unparseable or unsupported verdict is ``GRADER_ERROR``,
   which is re-graded and never counts as a pass.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from designsim.errors import ProviderError
from designsim.matrix import extract_matrices
from designsim.providers.base import GenerationRequest, Provider, Usage
from designsim.rulebook import AntiGoal, Constraint, Criterion

Verdict = Literal["PASS", "FAIL", "GRADER_ERROR"]

#: Required sections per format, each with the keywords a heading may use
#: (case-insensitive substring). Seed 001 Appendix C's headings match these.
SECTION_ALIASES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "pathways": [
        ("Situation Analysis", ("situation analysis", "analysis")),
        ("Simulate Pathways", ("pathways", "simulat")),
        ("Evaluate Against Constraints", ("evaluat",)),
        ("Decision Matrix", ("decision matrix", "matrix")),
        ("Recommendation", ("recommendation", "justif")),
    ],
    "flaw": [
        ("Flaw Analysis", ("flaw analysis", "flaw")),
        ("Proposed Solution", ("proposed solution", "solution")),
        ("Revised Algorithm", ("revised algorithm", "algorithm")),
    ],
}

_DEFAULT_CRITERIA = {
    "blueprint": ("Adherence to Blueprint", "the response follows the requested structure exactly, is clean and professional, and directly addresses the assignment"),
    "analysis": ("Quality of Analysis", "the analysis is deep and insightful: it identifies the core issue and explains its downstream, second-order consequences instead of rephrasing the problem"),
    "solution": ("Quality of Proposed Solution", "the solution is elegant, robust and pragmatic, uses a well-known pattern appropriate to the problem, discusses trade-offs, and introduces no new unaddressed problems"),
    "algorithm": ("Quality of Revised Algorithm", "the algorithm is clear, complete and logically sound, accounts for every step, and faithfully implements the proposed solution"),
    "matrix": ("Quality of Decision Matrix", "the matrix judges every pathway against every constraint consistently with the evaluation, and the verdicts follow from it"),
    "persona": ("Persona Fidelity", "the response embodies the assigned expert persona with precise, professional language and correct industry terminology"),
    "helps": ("Does This Help?", "the output provides a clear, actionable and superior path forward that a developer could act on"),
}


def default_criteria(fmt: str) -> list[Criterion]:
    """The white paper's five criteria plus "Does this help?", worded for ``fmt``."""
    ids = ["blueprint", "analysis", "solution", "matrix" if fmt == "pathways" else "algorithm", "persona", "helps"]
    out = []
    for cid in ids:
        name, when = _DEFAULT_CRITERIA[cid]
        if cid == "analysis" and fmt == "flaw":
            name = "Quality of Flaw Analysis"
        if cid == "solution" and fmt == "pathways":
            name, when = "Quality of Pathways and Recommendation", "the pathways are distinct and viable, and the recommendation is pragmatic, well justified and consistent with the constraints"
        out.append(Criterion(id=cid, name=name, pass_when=when))
    return out


# ---------------------------------------------------------------- result models


class CheckResult(BaseModel):
    """One deterministic check: ``name``, ``passed``, and a human ``detail``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    passed: bool
    detail: str = ""


class CriterionResult(BaseModel):
    """The judge's ruling on one criterion. ``passed`` is true only for a
    ``PASS`` whose quote was found in the output."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    passed: bool
    verdict: Verdict
    reason: str = ""
    quote: str = ""


class Scorecard(BaseModel):
    """The grade of one output. ``passed`` is true only when every check and
    every criterion passed; ``grader_error`` when the judge never produced a
    usable verdict (the output is then neither passed nor failed on quality)."""

    model_config = ConfigDict(extra="forbid")
    format: str
    passed: bool
    checks: list[CheckResult]
    criteria: list[CriterionResult] = []
    grader_error: bool = False
    judge_skipped: str | None = None
    judge_attempts: int = 0
    judge_usage: Usage = Usage()
    judge_transcripts: list[dict] = []

    def failed_notes(self) -> list[str]:
        """One line per failed check or criterion, for the next attempt's prompt."""
        notes = [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]
        notes += [f"{c.name}: {c.reason}" for c in self.criteria if c.verdict == "FAIL"]
        return notes

    def as_contract(self) -> dict:
        """The ``designsim grade --json`` shape from DESIGN.md."""
        return {
            "passed": self.passed,
            "format": self.format,
            "checks": [c.model_dump() for c in self.checks],
            "criteria": [{"name": c.name, "passed": c.passed, "reason": c.reason} for c in self.criteria],
        }


# ---------------------------------------------------------------- Markdown structure


@dataclass(frozen=True)
class Heading:
    """A heading (or a paragraph that is only bold text, which models often
    use as a heading): its plain ``text`` and 0-based ``line`` in the source."""

    text: str
    line: int
    level: int


_MD = MarkdownIt("commonmark").enable("table")


def headings(markdown: str) -> list[Heading]:
    """Headings in document order, found by markdown-it (code blocks ignored)."""
    tokens = _MD.parse(markdown)
    found: list[Heading] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            found.append(Heading(tokens[i + 1].content.strip(), tok.map[0], int(tok.tag[1])))
        elif tok.type == "paragraph_open" and tok.map and i + 1 < len(tokens) and tok.level == 0:
            inline = tokens[i + 1]
            kids = [k for k in (inline.children or []) if not (k.type == "text" and not k.content.strip())]
            if len(kids) >= 3 and kids[0].type == "strong_open" and kids[-1].type == "strong_close" and "\n" not in inline.content:
                found.append(Heading(inline.content.strip("* _"), tok.map[0], 7))
    return found


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[*_`~]", "", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def locate_sections(markdown: str, fmt: str, custom: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Find the blueprint's sections in order.

    Returns ``(found, missing)``: ``found`` maps each section name to its body
    text (up to the next heading of the same or a higher level); ``missing``
    lists sections not found after the previous one (so out-of-order counts
    as missing).
    """
    spec = SECTION_ALIASES.get(fmt) or [(s, (s.lower(),)) for s in (custom or [])]
    heads = headings(markdown)
    lines = markdown.splitlines()
    found: dict[str, str] = {}
    missing: list[str] = []
    cursor = 0
    for name, keys in spec:
        match = next((j for j in range(cursor, len(heads)) if any(k in _norm(heads[j].text) for k in keys)), None)
        if match is None:
            missing.append(name)
            continue
        head = heads[match]
        end = next((h.line for h in heads[match + 1:] if h.level <= head.level), len(lines))
        found[name] = "\n".join(lines[head.line + 1:end])
        cursor = match + 1
    return found, missing


# ---------------------------------------------------------------- deterministic checks

_GRADER_DIRECTIVES = re.compile(
    r"""("verdict"\s*:\s*"(pass|fail)")|(ignore (all |any )?(previous|prior|above) instructions)|(grader[s]?\s*(must|should)\s*(pass|approve))|(as the grader)""",
    re.IGNORECASE,
)


def open_fence(markdown: str) -> str | None:
    """The code fence (e.g. ``"```"`` or ``"~~~~"``) left unclosed at the end of
    ``markdown``, or ``None`` when every fence is closed. Follows CommonMark: a
    fence closes only with the same character, at least as long, and nothing
    after it on the line."""
    opened: str | None = None
    for line in markdown.splitlines():
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if not m:
            continue
        fence = m.group(1)
        if opened is None:
            opened = fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not line.strip()[len(fence):].strip():
            opened = None
    return opened


def _copied_fraction(section: str, evidence: str) -> float:
    """Fraction of the section's substantial lines that appear verbatim in the evidence."""
    ev = _norm(evidence)
    lines = [_norm(l.lstrip("-+*> ")) for l in section.splitlines()]
    lines = [l for l in lines if len(l) >= 25]
    if not lines:
        return 0.0
    return sum(1 for l in lines if l in ev) / len(lines)


def run_checks(
    output: str,
    fmt: str,
    *,
    sections: list[str] | None = None,
    constraints: list[Constraint] = (),
    anti_goals: list[AntiGoal] = (),
    min_pathways: int = 3,
    min_chars: int = 1,
    max_chars: int = 60_000,
    evidence: str | None = None,
) -> list[CheckResult]:
    """All deterministic checks for ``output`` in format ``fmt``.

    ``sections`` is required for ``custom``; ``constraints`` are checked to be
    addressed by id (``pathways``); ``anti_goals`` with a ``pattern`` must not
    match; ``evidence`` enables the "analysis is not a copy" check (``flaw``).
    Lengths are in characters. Never raises on any text.
    """
    checks: list[CheckResult] = []
    text = output or ""
    size = len(text.strip())
    checks.append(CheckResult(name="length", passed=min_chars <= size <= max_chars,
                              detail=f"{size} characters (allowed {min_chars}–{max_chars})"))
    found, missing = locate_sections(text, fmt, sections)
    expected = [n for n, _ in SECTION_ALIASES.get(fmt, [])] or list(sections or [])
    checks.append(CheckResult(
        name="sections", passed=not missing,
        detail=("all present in order: " + " → ".join(expected)) if not missing else "missing or out of order: " + ", ".join(missing),
    ))
    unclosed = open_fence(text)
    checks.append(CheckResult(name="code_fences_closed", passed=unclosed is None,
                              detail="every code fence is closed" if unclosed is None else f"an unclosed {unclosed} code fence (output truncated?)"))
    if fmt == "pathways":
        matrices = extract_matrices(text)
        if not matrices:
            checks.append(CheckResult(name="decision_matrix", passed=False, detail="no Markdown table with a Verdict row"))
        else:
            m = matrices[-1]
            no_verdict = [p for p in m.pathways if not m.verdicts.get(p, "").strip()]
            ok = len(m.pathways) >= min_pathways and not no_verdict and m.recommended_count == 1
            parts = [f"{len(m.pathways)} pathways (need ≥ {min_pathways})"]
            if no_verdict:
                parts.append("no verdict for " + ", ".join(no_verdict))
            parts.append(f"{m.recommended_count} Recommended (need exactly 1)")
            if m.recommended:
                parts.append(f"recommends {m.recommended!r}")
            checks.append(CheckResult(name="decision_matrix", passed=ok, detail="; ".join(parts)))
        if constraints:
            absent = [c.id for c in constraints if not re.search(rf"(?<![\w-]){re.escape(c.id)}(?![\w-])", text)]
            checks.append(CheckResult(name="constraints_addressed", passed=not absent,
                                      detail="every constraint is referred to by id" if not absent else "never mentions " + ", ".join(absent)))
    if fmt == "flaw":
        body = found.get("Revised Algorithm", "")
        has_code = bool(re.search(r"^\s{0,3}(`{3,}|~{3,})", body, re.MULTILINE))
        checks.append(CheckResult(name="revised_algorithm_code", passed=has_code,
                                  detail="revised algorithm is in a code block" if has_code else "Revised Algorithm has no fenced code block"))
        if evidence is not None and "Flaw Analysis" in found:
            frac = _copied_fraction(found["Flaw Analysis"], evidence)
            checks.append(CheckResult(name="analysis_not_restated", passed=frac < 0.5,
                                      detail=f"{frac:.0%} of the flaw analysis lines are copied from the evidence (limit 50%)"))
    for goal in anti_goals:
        if goal.pattern:
            hit = re.search(goal.pattern, text, re.IGNORECASE)
            checks.append(CheckResult(name=f"anti_goal: {goal.text[:60]}", passed=hit is None,
                                      detail="absent" if hit is None else f"found {hit.group(0)[:80]!r}"))
    directive = _GRADER_DIRECTIVES.search(text)
    checks.append(CheckResult(name="no_grader_directives", passed=directive is None,
                              detail="no text addressed to the grader" if directive is None else f"output addresses the grader: {directive.group(0)!r}"))
    return checks


# ---------------------------------------------------------------- the LLM judge


class JudgeCriterion(BaseModel):
    """One criterion's ruling, evidence first (quote → reasoning → verdict)."""

    id: str
    evidence_quote: str
    reasoning: str
    verdict: Literal["PASS", "FAIL"]


class JudgeReply(BaseModel):
    """The judge's structured output (sent to Gemini as the response schema)."""

    criteria: list[JudgeCriterion] = Field(default_factory=list)
    summary: str = ""


def quote_occurs(quote: str, output: str) -> bool:
    """True when ``quote`` (whitespace, case and Markdown emphasis normalised,
    surrounding quotes/ellipses trimmed) occurs in ``output``."""
    q = _norm(quote).strip(" \"'“”‘’.…")
    return len(q) >= 3 and q in _norm(output)


def interpret_judge(reply_text: str, parsed: dict | None, criteria: list[Criterion], output: str) -> tuple[list[CriterionResult], bool]:
    """Turn a judge reply into per-criterion results.

    Returns ``(results, grader_error)``. A reply that is not valid JSON for
    :class:`JudgeReply`, lacks a criterion, or quotes text the output does not
    contain gives ``GRADER_ERROR`` for that criterion — never a pass.
    """
    data = parsed
    if data is None:
        try:
            data = JudgeReply.model_validate_json(reply_text).model_dump()
        except (ValidationError, ValueError):
            data = None
    if data is not None:
        try:
            reply = JudgeReply.model_validate(data)
        except ValidationError:
            reply = None
    else:
        reply = None
    results: list[CriterionResult] = []
    error = False
    by_id = {c.id: c for c in reply.criteria} if reply else {}
    for crit in criteria:
        ruling = by_id.get(crit.id)
        if ruling is None:
            results.append(CriterionResult(id=crit.id, name=crit.name, passed=False, verdict="GRADER_ERROR",
                                           reason="the judge's reply was not valid JSON" if reply is None else "the judge gave no verdict for this criterion"))
            error = True
        elif not quote_occurs(ruling.evidence_quote, output):
            results.append(CriterionResult(id=crit.id, name=crit.name, passed=False, verdict="GRADER_ERROR",
                                           reason=f"the judge's quote does not occur in the output: {ruling.evidence_quote[:120]!r}", quote=ruling.evidence_quote))
            error = True
        else:
            results.append(CriterionResult(id=crit.id, name=crit.name, passed=ruling.verdict == "PASS", verdict=ruling.verdict,
                                           reason=ruling.reasoning, quote=ruling.evidence_quote))
    return results, error


async def judge(
    provider: Provider,
    prompt: str,
    *,
    system: str,
    criteria: list[Criterion],
    output: str,
    label: str,
    model: str | None = None,
    attempts: int = 2,
    temperature: float | None = None,
) -> tuple[list[CriterionResult], bool, int, Usage, list[dict]]:
    """Ask the judge, each time in a fresh session, until it gives a usable
    verdict or ``attempts`` are spent.

    Returns ``(results, grader_error, attempts_used, usage, transcripts)``.
    Provider errors propagate (the caller decides: the stage is inconclusive).
    """
    usage = Usage()
    transcripts: list[dict] = []
    results: list[CriterionResult] = []
    error = True
    used = 0
    for used in range(1, attempts + 1):
        # no temperature unless the rulebook sets one: stability comes from pinned answers and samples
        request = GenerationRequest(prompt=prompt, system=system, model=model, temperature=temperature,
                                    response_schema=JudgeReply, label=label, max_output_tokens=4096)
        completion = await provider.generate(request)
        usage = usage + completion.usage
        results, error = interpret_judge(completion.text, completion.parsed, criteria, output)
        transcripts.append({"label": label, "attempt": used, "prompt": prompt, "reply": completion.text, "grader_error": error})
        if not error:
            break
    return results, error, used, usage, transcripts


__all__ = [
    "CheckResult", "CriterionResult", "JudgeReply", "Scorecard", "default_criteria", "headings",
    "interpret_judge", "judge", "locate_sections", "quote_occurs", "run_checks", "ProviderError",
]
