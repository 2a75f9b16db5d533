"""Run a rulebook's stages as a DAG of isolated simulations, grade and re-run them.

* Stages form a DAG by ``depends_on``; the synthesis stage depends on all of
  them. A stage starts as soon as its predecessors have finished, so
  independent stages overlap in time, bounded by ``rulebook.concurrency``
  concurrent model calls.
* Every attempt is a fresh session: one :class:`GenerationRequest` whose
  contents hold exactly one user turn, with no history from other stages or
  attempts (seed 002 §8.4). A chained stage sees its predecessors' *final*
  outputs only as explicit, labelled evidence in its prompt.
* Each output is graded by :mod:`designsim.scorecard`; a failed grade re-runs
  the stage in a new session, up to ``scorecard.attempts``. Every attempt is
  kept, with its prompt, output, scorecard and judge transcripts.
* The policy turns stage outcomes into the review verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from designsim import __version__
from designsim.errors import ConfigError, ProviderError, QuotaExhausted, TruncatedReply
from designsim.decision import ChangeVerdict, Decision, Finding, apply_overrides, combine_samples, parse_change_verdict
from designsim.decision import decide as decide_gate
from designsim.matrix import DecisionMatrix, extract_matrices
from designsim.prompts import SYSTEM_INSTRUCTION, PromptLibrary, fence_safe
from designsim.providers.base import GenerationRequest, Provider, Usage
from designsim.rulebook import ComponentRef, Constraint, Rulebook
from designsim.untrusted import FENCE_TAGS
from designsim.scorecard import CheckResult, Scorecard, default_criteria, judge, locate_sections, run_checks

Outcome = Literal["passed", "failed", "inconclusive", "skipped"]
VerdictName = Literal["pass", "fail", "inconclusive", "neutral"]
EXIT_CODES: dict[str, int] = {"pass": 0, "neutral": 0, "fail": 1, "inconclusive": 3}
#: The check's status name (``Review.verdict``) for each decision, before ``policy.on_inconclusive``.
_STATUS_OF_DECISION: dict[str, str] = {"pass": "pass", "fail": "fail", "warn": "neutral", "inconclusive": "inconclusive"}
TEMPLATES = ["_shared_prefix.md.j2", "_blueprint.md.j2", "simulation.md.j2", "synthesis.md.j2", "judge.md.j2"]
DEFAULT_PERSONA = "senior_systems_architect"


class Attempt(BaseModel):
    """One fresh-session attempt at a stage. Times are seconds since the
    review started; ``error`` is set when the model call failed."""

    model_config = ConfigDict(extra="forbid")
    number: int
    #: which of the stage's ``samples`` independent sessions this attempt belongs to (1-based)
    sample: int = 1
    prompt: str
    output: str | None = None
    error: str | None = None
    scorecard: Scorecard | None = None
    usage: Usage = Usage()
    started_s: float = 0.0
    finished_s: float = 0.0
    #: the output's parsed "Verdict on this change" (None when absent or unusable)
    change_verdict: ChangeVerdict | None = None


class StageResult(BaseModel):
    """A stage's outcome: ``passed`` (an attempt passed its scorecard),
    ``failed`` (every attempt failed), ``inconclusive`` (the model was
    unavailable or the grader never gave a verdict) or ``skipped`` (a
    predecessor did not pass; ``reason`` says which)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    format: str
    depends_on: list[str] = []
    is_synthesis: bool = False
    outcome: Outcome = "skipped"
    reason: str = ""
    attempts: list[Attempt] = []
    final_output: str | None = None
    matrix: DecisionMatrix | None = None
    recommendation: str | None = None
    usage: Usage = Usage()
    #: for a ``skipped`` stage: the worst outcome among the predecessors that blocked it
    blocked_outcome: Literal["failed", "inconclusive"] | None = None
    #: independent sessions run (``samples``) and the trusted stage's verdict per constraint
    samples: int = 1
    findings: list[Finding] = []

    @property
    def trust(self) -> str:
        """``trusted`` (the scorecard passed), ``untrusted`` (no attempt passed),
        ``inconclusive`` or ``skipped``: the scorecard's word, not the change's."""
        return {"passed": "trusted", "failed": "untrusted"}.get(self.outcome, self.outcome)

    @property
    def effective_outcome(self) -> str:
        """``passed``/``failed``/``inconclusive``, a skipped stage counting as what blocked it."""
        return self.blocked_outcome if self.outcome == "skipped" and self.blocked_outcome else self.outcome

    @property
    def final_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


class EvidenceSummary(BaseModel):
    """What the model saw of the change (token estimate, what was cut)."""

    model_config = ConfigDict(extra="forbid")
    tokens: int = 0
    omitted: str | None = None
    notes: list[str] = []
    files: int = 0
    additions: int = 0
    deletions: int = 0


class Review(BaseModel):
    """The result of one review: the JSON report's content."""

    model_config = ConfigDict(extra="forbid")
    designsim_version: str = __version__
    rulebook: str
    model: str
    judge_model: str
    #: the check's status name, derived from ``decision`` and ``policy.on_inconclusive``
    #: (``warn`` shows as ``neutral``); kept for the action's status mapping
    verdict: VerdictName
    #: what the gate decided about the change (issue 8): the source of ``verdict`` and ``exit_code``
    decision: Decision
    exit_code: int
    summary: str
    stages: list[StageResult]
    waves: list[list[str]]
    usage: Usage
    cost: float | None = None
    currency: str | None = None
    evidence: EvidenceSummary
    inputs_hash: str
    started_at: str
    duration_s: float
    head_sha: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _decision_from_verdict(cls, data):
        """A Review built without a ``decision`` (an older JSON report, a test
        fixture) gets one derived from its ``verdict`` and ``summary``."""
        if isinstance(data, dict) and "decision" not in data and "verdict" in data:
            legacy = {"pass": "pass", "fail": "fail", "neutral": "warn", "inconclusive": "inconclusive"}
            data = {**data, "decision": {"verdict": legacy.get(data["verdict"], "inconclusive"), "reason": data.get("summary", "")}}
        return data


# ------------------------------------------------------------------ planning


def stage_graph(rulebook: Rulebook) -> dict[str, list[str]]:
    """Stage id -> ids it depends on, synthesis included (it depends on every stage)."""
    graph = {s.id: list(s.depends_on) for s in rulebook.stages}
    if rulebook.synthesis:
        graph[rulebook.synthesis.id] = [s.id for s in rulebook.stages]
    return graph


def plan_waves(rulebook: Rulebook) -> list[list[str]]:
    """Stages grouped by depth: wave N holds stages whose predecessors are all in
    earlier waves (for display; execution starts each stage as soon as it can)."""
    graph = stage_graph(rulebook)
    depth: dict[str, int] = {}

    def d(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((d(p) for p in graph[node]), default=-1)
        return depth[node]

    waves: dict[int, list[str]] = {}
    for node in graph:
        waves.setdefault(d(node), []).append(node)
    return [waves[i] for i in sorted(waves)]


@dataclass
class ResolvedStage:
    """A stage with its persona text and blueprint settled."""

    id: str
    title: str
    focus: str
    format: str
    sections: list[str]
    depends_on: list[str]
    persona: str
    is_synthesis: bool = False


@dataclass
class ReviewPlan:
    """Everything needed to run a review, resolved and validated up front so a
    missing component fails before any model call."""

    rulebook: Rulebook
    evidence_text: str
    stages: list[ResolvedStage]
    constraints: list[Constraint]
    protocol: str | None
    library: PromptLibrary
    evidence_summary: EvidenceSummary = field(default_factory=EvidenceSummary)
    #: True when the plan reviews a change (built from a diff): every stage then
    #: ends with a "Verdict on this change" the scorecard requires
    review_change: bool = False
    #: paths of every file in the diff (the verdict's evidence must name one)
    diff_files: list[str] = field(default_factory=list)

    @property
    def judge_model(self) -> str:
        return self.rulebook.scorecard.judge_model or self.rulebook.model

    @property
    def requires_verdict(self) -> bool:
        """Whether outputs must carry a "Verdict on this change" (a change is
        reviewed and the rulebook has constraints to judge it against)."""
        return self.review_change and bool(self.constraints)

    def criteria(self, stage: "ResolvedStage"):
        """The judge's criteria for ``stage``: the rulebook's, else the white
        paper's defaults (plus "the verdict follows from the analysis" when a
        verdict is required)."""
        custom = self.rulebook.scorecard.criteria
        if not custom:
            return default_criteria(stage.format, change_verdict=self.requires_verdict)
        if self.requires_verdict and not any(c.id == "verdict" for c in custom):
            return list(custom) + [c for c in default_criteria(stage.format, change_verdict=True) if c.id == "verdict"]
        return list(custom)


def _persona_text(spec, library: PromptLibrary, fallback: str) -> str:
    if spec is None:
        return library.component("personas", fallback)
    if isinstance(spec, ComponentRef):
        return library.component("personas", spec.component)
    return spec


def resolve_plan(rulebook: Rulebook, evidence_text: str, library: PromptLibrary | None = None,
                 evidence_summary: EvidenceSummary | None = None, *, review_change: bool = False,
                 diff_files: list[str] | None = None) -> ReviewPlan:
    """Resolve personas, goal-map parts and blueprints for every stage.

    ``review_change`` (set by :func:`designsim.review.build_plan`) asks every
    stage for a "Verdict on this change" whose evidence names one of
    ``diff_files``. Raises :class:`ConfigError` for a missing component or template.
    """
    library = library or PromptLibrary()
    constraints = list(rulebook.constraints)
    protocol = None
    default_persona_name = DEFAULT_PERSONA
    if rulebook.goal:
        parts = library.goal_parts(rulebook.goal)
        default_persona_name = parts["persona"] or DEFAULT_PERSONA
        if parts["protocol"]:
            protocol = library.component("protocols", parts["protocol"])
        known = {c.id for c in constraints}
        for name in parts["constraints"]:
            if name not in known:
                constraints.append(Constraint(id=name, text=library.component("constraints", name)))
    base_persona = _persona_text(rulebook.persona, library, default_persona_name)
    stages: list[ResolvedStage] = []
    for stage in rulebook.stages:
        fmt = stage.format or rulebook.output.format
        sections = stage.sections or (rulebook.output.sections if fmt == "custom" else [])
        if fmt == "custom" and not sections:
            raise ConfigError(f"stage {stage.id!r} uses format 'custom' but no sections are given", field=f"stages.{stage.id}.sections")
        persona = _persona_text(stage.persona, library, default_persona_name) if stage.persona else base_persona
        stages.append(ResolvedStage(stage.id, stage.title, stage.focus, fmt, list(sections), list(stage.depends_on), persona))
    if rulebook.synthesis:
        syn = rulebook.synthesis
        persona = _persona_text(syn.persona, library, default_persona_name) if syn.persona else base_persona
        stages.append(ResolvedStage(syn.id, syn.title, syn.focus, syn.format, list(syn.sections or []),
                                    [s.id for s in rulebook.stages], persona, is_synthesis=True))
    effective = rulebook.model_copy(update={"constraints": constraints})
    return ReviewPlan(effective, evidence_text, stages, constraints, protocol, library, evidence_summary or EvidenceSummary(),
                      review_change=review_change, diff_files=list(diff_files or []))


# ------------------------------------------------------------------ prompts


def _context(plan: ReviewPlan, stage: ResolvedStage, *, predecessors=(), grading_notes=()) -> dict[str, Any]:
    rb = plan.rulebook
    persona = stage.persona + (f"\n\n## Protocol\n{plan.protocol}" if plan.protocol else "")
    return {
        "evidence": plan.evidence_text,
        "rulebook": rb,
        "stage": stage,
        "persona": persona,
        "format": stage.format,
        "sections": stage.sections,
        "min_pathways": rb.output.min_pathways,
        "constraints": plan.constraints,
        "review_change": plan.requires_verdict,
        "predecessors": [
            {"id": p.id, "title": p.title, "output": fence_safe(p.final_output or "", "earlier_simulation_output")}
            for p in predecessors
        ],
        "grading_notes": [fence_safe(n, FENCE_TAGS) for n in grading_notes],  # quotes the judge and the output: data
    }


def render_stage_prompt(plan: ReviewPlan, stage: ResolvedStage, predecessors=(), grading_notes=()) -> str:
    """The whole user turn for one attempt at ``stage``."""
    template = "synthesis.md.j2" if stage.is_synthesis else "simulation.md.j2"
    return plan.library.render(template, **_context(plan, stage, predecessors=predecessors, grading_notes=grading_notes))


def render_judge_prompt(plan: ReviewPlan, stage: ResolvedStage, output: str, criteria) -> str:
    """The judge's user turn: the shared prefix, the criteria, then the fenced output."""
    ctx = _context(plan, stage)
    ctx.update(criteria=criteria, output=fence_safe(output, "output_under_review"))
    return plan.library.render("judge.md.j2", **ctx)


def shared_prefix(plan: ReviewPlan) -> str:
    """The byte-identical prefix every prompt of this review starts with."""
    return plan.library.render("_shared_prefix.md.j2", evidence=plan.evidence_text, rulebook=plan.rulebook)


# ------------------------------------------------------------------ grading


async def grade_output(plan: ReviewPlan, stage: ResolvedStage, output: str, provider: Provider | None,
                       *, label: str, call_slot: asyncio.Semaphore | None = None) -> Scorecard:
    """Deterministic checks, then (if they pass and the judge is on) the LLM judge.

    ``provider`` may be ``None`` for checks only. Provider errors from the
    judge propagate.
    """
    rb = plan.rulebook
    checks: list[CheckResult] = run_checks(
        output, stage.format, sections=stage.sections, constraints=plan.constraints, anti_goals=rb.anti_goals,
        min_pathways=rb.output.min_pathways, min_chars=rb.output.min_chars, max_chars=rb.output.max_chars,
        evidence=plan.evidence_text, require_verdict=plan.requires_verdict, diff_files=plan.diff_files,
    )
    verdict = None
    if plan.requires_verdict:
        parsed = parse_change_verdict(output, [c.id for c in plan.constraints], plan.diff_files)
        verdict = parsed.verdict if parsed.ok else None
    if not all(c.passed for c in checks):
        return Scorecard(format=stage.format, passed=False, checks=checks, judge_skipped="deterministic checks failed",
                         change_verdict=verdict)
    if not rb.scorecard.judge or provider is None:
        return Scorecard(format=stage.format, passed=True, checks=checks, change_verdict=verdict,
                         judge_skipped="judge disabled in the rulebook" if not rb.scorecard.judge else "no model available")
    criteria = plan.criteria(stage)
    prompt = render_judge_prompt(plan, stage, output, criteria)
    slot = call_slot or asyncio.Semaphore(1)
    async with slot:
        results, error, used, usage, transcripts = await judge(
            provider, prompt, system=SYSTEM_INSTRUCTION, criteria=criteria, output=output, label=label,
            model=plan.judge_model, attempts=rb.scorecard.grade_attempts,
        )
    return Scorecard(format=stage.format, passed=not error and all(r.passed for r in results), checks=checks,
                     criteria=results, grader_error=error, judge_attempts=used, judge_usage=usage,
                     judge_transcripts=transcripts, change_verdict=verdict)


def _recommendation(stage: ResolvedStage, output: str, matrix: DecisionMatrix | None) -> str | None:
    if matrix is not None and matrix.recommended:
        return matrix.recommended
    if stage.format == "flaw":
        found, _ = locate_sections(output, "flaw")
        body = found.get("Proposed Solution", "").strip()
        if body:
            first = body.split("\n\n")[0].strip()
            return first[:400] + ("…" if len(first) > 400 else "")
    return None


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a running review, for a live display (:mod:`designsim.terminal`).

    ``kind``: ``attempt`` (a model call for ``attempt`` of ``attempts`` is starting),
    ``graded`` (its reply arrived and was graded; ``passed`` says how it went) or
    ``stage`` (the stage finished with ``outcome``). ``tokens`` is the stage's
    total so far (input + output, judge included); ``elapsed_s`` seconds since
    the review started (monotonic clock).
    """

    kind: Literal["attempt", "graded", "stage"]
    stage: str
    attempt: int = 0
    attempts: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    outcome: str | None = None
    passed: bool | None = None


#: A callback that receives :class:`ProgressEvent` s; it must not raise.
ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class _Run:
    """Shared state of one review run."""

    provider: Provider
    results: dict[str, StageResult]
    done: dict[str, asyncio.Event]
    slot: asyncio.Semaphore
    t0: float
    #: set when a quota will not refill within the run: no further model calls
    halted: str | None = None
    on_progress: ProgressCallback | None = None

    def tell(self, kind: str, result: StageResult, **kw: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(kind, result.id, tokens=result.usage.total_tokens,  # type: ignore[arg-type]
                                           elapsed_s=time.monotonic() - self.t0, **kw))


@dataclass
class _Sample:
    """How one of a stage's independent sessions ended: ``status`` is
    ``trusted`` (an attempt passed its scorecard; ``attempt`` is it),
    ``untrusted`` (no attempt passed), ``grader_error`` (the judge never gave a
    usable verdict) or ``unavailable`` (the model or grader failed; ``reason``)."""

    status: Literal["trusted", "untrusted", "grader_error", "unavailable"]
    attempt: Attempt | None = None
    reason: str = ""


async def _run_sample(plan: ReviewPlan, stage: ResolvedStage, run: _Run, result: StageResult,
                      predecessors: list[StageResult], sample: int) -> _Sample:
    """One independent session of ``stage``: up to ``scorecard.attempts``
    fresh single-turn attempts until one is trusted."""
    provider, slot, t0 = run.provider, run.slot, run.t0
    attempts = plan.rulebook.scorecard.attempts
    notes: list[str] = []
    last: Attempt | None = None
    for number in range(1, attempts + 1):
        if run.halted:
            return _Sample("unavailable", last, f"not run: {run.halted}")
        prompt = render_stage_prompt(plan, stage, predecessors, notes)
        attempt = Attempt(number=number, sample=sample, prompt=prompt, started_s=time.monotonic() - t0)
        result.attempts.append(attempt)
        last = attempt
        run.tell("attempt", result, attempt=number, attempts=attempts)
        request = GenerationRequest(
            prompt=prompt, system=SYSTEM_INSTRUCTION, model=plan.rulebook.model,
            temperature=plan.rulebook.temperature, max_output_tokens=plan.rulebook.max_output_tokens,
            label=f"stage:{stage.id}", metadata={"attempt": number, "sample": sample},
        )
        try:
            async with slot:
                completion = await provider.generate(request)
        except TruncatedReply as exc:
            attempt.error = str(exc)
            attempt.finished_s = time.monotonic() - t0
            notes = ["the previous reply was cut off at the output-token limit: be more concise"]
            continue
        except ProviderError as exc:  # unavailable, quota, blocked prompt: no point re-asking
            if isinstance(exc, QuotaExhausted):
                run.halted = f"model quota exhausted ({exc.reason})"
            attempt.error = str(exc)
            attempt.finished_s = time.monotonic() - t0
            return _Sample("unavailable", attempt, f"model unavailable: {exc}")
        attempt.output = completion.text
        attempt.usage = completion.usage
        result.usage = result.usage + completion.usage
        try:
            card = await grade_output(plan, stage, completion.text, provider, label=f"judge:{stage.id}", call_slot=slot)
        except ProviderError as exc:
            if isinstance(exc, QuotaExhausted):
                run.halted = f"model quota exhausted ({exc.reason})"
            attempt.finished_s = time.monotonic() - t0
            return _Sample("unavailable", attempt, f"grader unavailable: {exc}")
        attempt.scorecard = card
        attempt.change_verdict = card.change_verdict
        attempt.finished_s = time.monotonic() - t0
        result.usage = result.usage + card.judge_usage
        run.tell("graded", result, attempt=number, attempts=attempts, passed=card.passed)
        if card.passed:
            return _Sample("trusted", attempt, f"passed on attempt {number} of {attempts}")
        notes = card.failed_notes()
    if last is not None and last.scorecard is not None and last.scorecard.grader_error:
        return _Sample("grader_error", last, f"the grader never gave a usable verdict in {attempts} attempt(s)")
    return _Sample("untrusted", last, f"no attempt passed the scorecard ({attempts} attempt(s))")


def _show(result: StageResult, stage: ResolvedStage, attempt: Attempt | None) -> None:
    """Make ``attempt``'s output the stage's final output (matrix, recommendation)."""
    if attempt is None or attempt.output is None:
        return
    result.final_output = attempt.output
    matrices = extract_matrices(attempt.output)
    result.matrix = matrices[-1] if matrices else None  # the last matrix is the one graded and reported
    result.recommendation = _recommendation(stage, attempt.output, result.matrix)


async def _run_stage(plan: ReviewPlan, stage: ResolvedStage, run: _Run) -> None:
    results, done = run.results, run.done
    result = results[stage.id]
    try:
        for dep in stage.depends_on:
            await done[dep].wait()
        blocked = [d for d in stage.depends_on if results[d].outcome != "passed"]
        if blocked:
            # never run on empty input: a stage behind an untrusted or inconclusive predecessor is inconclusive too
            worst = "inconclusive" if any(results[d].effective_outcome == "inconclusive" for d in blocked) else "failed"
            result.outcome, result.blocked_outcome = "skipped", worst
            result.reason = f"not run: {', '.join(f'{d} {results[d].trust}' for d in blocked)}"
            return
        predecessors = [results[d] for d in stage.depends_on]
        n = plan.rulebook.stage_samples(stage.id) if stage.id in plan.rulebook.stage_ids() else plan.rulebook.samples
        result.samples = n
        samples = list(await asyncio.gather(*(_run_sample(plan, stage, run, result, predecessors, k) for k in range(1, n + 1))))
        result.attempts.sort(key=lambda a: (a.sample, a.number))
        trusted = [x for x in samples if x.status == "trusted"]
        unavailable = [x for x in samples if x.status == "unavailable"]
        label = "" if n == 1 else f" ({len(trusted)}/{n} samples trusted)"
        if not trusted:
            _show(result, stage, next((x.attempt for x in reversed(samples) if x.attempt and x.attempt.output), None))
            if unavailable:
                result.outcome, result.reason = "inconclusive", unavailable[0].reason
            elif all(x.status == "grader_error" for x in samples):
                result.outcome, result.reason = "inconclusive", samples[0].reason
            else:
                result.outcome = "failed"
                result.reason = next(x.reason for x in samples if x.status == "untrusted") + label
            return
        if not plan.requires_verdict:
            _show(result, stage, trusted[0].attempt)
            if len(trusted) * 2 <= n and n > 1:
                result.outcome, result.reason = "inconclusive", f"only {len(trusted)}/{n} samples trusted"
            else:
                result.outcome, result.reason = "passed", (trusted[0].reason if n == 1 else f"{len(trusted)}/{n} samples trusted")
            return
        ids = [c.id for c in plan.constraints]
        verdicts = [x.attempt.change_verdict if x.status == "trusted" and x.attempt else None for x in samples]
        rows, disagreements = combine_samples(verdicts, ids, min_agreement=plan.rulebook.gate.min_agreement)
        representative = next((x.attempt for x in trusted if x.attempt and x.attempt.change_verdict
                               and all(x.attempt.change_verdict.get(r.constraint).verdict == r.verdict for r, _ in rows)), trusted[0].attempt)
        _show(result, stage, representative)
        result.findings = [Finding(stage=stage.id, constraint=r.constraint, verdict=r.verdict, severity=r.severity,
                                   evidence=r.evidence, agreement=f"{k}/{n}") for r, k in rows]
        if disagreements:
            need = plan.rulebook.gate.min_agreement
            rule = f"min_agreement {need:g}" if need is not None else "a strict majority"
            result.outcome = "inconclusive"
            result.reason = f"samples disagree (need {rule}): " + "; ".join(disagreements)
            return
        result.outcome = "passed"
        result.reason = trusted[0].reason if n == 1 else f"{len(trusted)}/{n} samples trusted; verdicts agree"
    finally:
        done[stage.id].set()
        run.tell("stage", result, attempt=len(result.attempts), attempts=plan.rulebook.scorecard.attempts,
                 outcome=result.outcome)


def status_of(rulebook: Rulebook, decision: Decision) -> VerdictName:
    """The check's status name for ``decision``: ``warn`` shows as ``neutral``;
    an inconclusive decision follows ``policy.on_inconclusive`` (``error`` keeps
    ``inconclusive``, exit 3)."""
    if decision.verdict == "inconclusive":
        return {"error": "inconclusive", "fail": "fail", "neutral": "neutral"}[rulebook.policy.on_inconclusive]  # type: ignore[return-value]
    return _STATUS_OF_DECISION[decision.verdict]  # type: ignore[return-value]


def stage_counts(stages: list[StageResult]) -> str:
    """``"3 trusted, 1 untrusted, 1 skipped"``: each stage counted once by its own outcome."""
    order = [("passed", "trusted"), ("failed", "untrusted"), ("inconclusive", "inconclusive"), ("skipped", "skipped")]
    parts = [f"{n} {label}" for key, label in order if (n := sum(1 for s in stages if s.outcome == key))]
    return ", ".join(parts)


def decide(rulebook: Rulebook, stages: list[StageResult], overrides=()) -> tuple[Decision, VerdictName, str]:
    """The gate policy (:func:`designsim.decision.decide`) plus overrides:
    ``(decision, status name, summary line)``. The summary leads with the
    decision's reason and counts the stages (skipped ones as skipped)."""
    decision = apply_overrides(decide_gate(rulebook, stages), list(overrides), rulebook)
    summary = f"{decision.reason} · stages: {stage_counts(stages)}"
    return decision, status_of(rulebook, decision), summary


def inputs_hash(plan: ReviewPlan, *, head_sha: str | None = None) -> str:
    """sha256 of everything that determines a review's result: the change
    (head SHA, or the evidence text when there is none), the rulebook, the
    templates and resolved personas, and the models. Equal hashes mean a
    re-run would spend tokens to reproduce the same question."""
    h = hashlib.sha256()
    payload = {
        "change": head_sha or hashlib.sha256(plan.evidence_text.encode()).hexdigest(),
        "rulebook": plan.rulebook.model_dump(mode="json"),
        "templates": plan.library.digest(TEMPLATES),
        "personas": [s.persona for s in plan.stages],
        "protocol": plan.protocol,
        "model": plan.rulebook.model,
        "judge_model": plan.judge_model,
    }
    h.update(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


async def run_review(plan: ReviewPlan, provider: Provider, *, head_sha: str | None = None, overrides=(),
                     on_progress: ProgressCallback | None = None) -> Review:
    """Run every stage of ``plan`` against ``provider`` and decide (``overrides``:
    :class:`~designsim.decision.Override` acceptances to apply to the decision)."""
    t0 = time.monotonic()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = {s.id: StageResult(id=s.id, title=s.title, format=s.format, depends_on=s.depends_on, is_synthesis=s.is_synthesis)
               for s in plan.stages}
    run = _Run(provider, results, {s.id: asyncio.Event() for s in plan.stages}, asyncio.Semaphore(plan.rulebook.concurrency), t0,
               on_progress=on_progress)
    await asyncio.gather(*(_run_stage(plan, s, run) for s in plan.stages))
    stages = [results[s.id] for s in plan.stages]
    decision, verdict, summary = decide(plan.rulebook, stages, overrides)
    usage = Usage()
    for s in stages:
        usage = usage + s.usage
    cost = currency = None
    if plan.rulebook.pricing:
        p = plan.rulebook.pricing
        cost = round(usage.input_tokens / 1e6 * p.input_per_million + usage.output_tokens / 1e6 * p.output_per_million, 6)
        currency = p.currency
    return Review(
        rulebook=plan.rulebook.name, model=plan.rulebook.model, judge_model=plan.judge_model, verdict=verdict,
        decision=decision, exit_code=EXIT_CODES[verdict], summary=summary, stages=stages, waves=plan_waves(plan.rulebook), usage=usage,
        cost=cost, currency=currency, evidence=plan.evidence_summary, inputs_hash=inputs_hash(plan, head_sha=head_sha),
        started_at=started, duration_s=round(time.monotonic() - t0, 3), head_sha=head_sha,
    )


def run_review_sync(plan: ReviewPlan, provider: Provider, *, head_sha: str | None = None, overrides=(),
                    on_progress: ProgressCallback | None = None) -> Review:
    """:func:`run_review` for synchronous callers (the CLI, the action)."""
    return asyncio.run(run_review(plan, provider, head_sha=head_sha, overrides=overrides, on_progress=on_progress))
