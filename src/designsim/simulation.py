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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from designsim import __version__
from designsim.errors import BudgetExhausted, ConfigError, ProviderError, QuotaExhausted, TruncatedReply, limit_reason
from designsim.matrix import DecisionMatrix, extract_matrices
from designsim.prompts import SYSTEM_INSTRUCTION, PromptLibrary, fence_safe
from designsim.providers.base import GenerationRequest, Provider, Usage
from designsim.rulebook import ComponentRef, Constraint, Rulebook
from designsim.scorecard import CheckResult, Scorecard, default_criteria, judge, locate_sections, run_checks

Outcome = Literal["passed", "failed", "inconclusive", "skipped"]
VerdictName = Literal["pass", "fail", "inconclusive", "neutral"]
EXIT_CODES: dict[str, int] = {"pass": 0, "neutral": 0, "fail": 1, "inconclusive": 3}
TEMPLATES = ["_shared_prefix.md.j2", "_blueprint.md.j2", "simulation.md.j2", "synthesis.md.j2", "judge.md.j2"]
DEFAULT_PERSONA = "senior_systems_architect"


class Attempt(BaseModel):
    """One fresh-session attempt at a stage. Times are seconds since the
    review started; ``error`` is set when the model call failed."""

    model_config = ConfigDict(extra="forbid")
    number: int
    prompt: str
    output: str | None = None
    error: str | None = None
    scorecard: Scorecard | None = None
    usage: Usage = Usage()
    started_s: float = 0.0
    finished_s: float = 0.0


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
    verdict: VerdictName
    exit_code: int
    summary: str
    stages: list[StageResult]
    waves: list[list[str]]
    usage: Usage
    cost: float | None = None
    currency: str | None = None
    #: False when a price used is marked unverified in the model catalogue; ``cost_note`` says why a cost is missing
    cost_verified: bool | None = None
    cost_note: str = ""
    #: requested model -> the ``modelVersion`` values that answered instead (empty when every answer came from it)
    answered_by: dict[str, list[str]] = {}
    #: the limit that stopped model calls, named ("daily quota reached", "spend cap reached", "budget reached"), if any
    stopped: str | None = None
    #: the rulebook's budget and what was spent against it: {max_usd, max_tokens, spent_usd, spent_tokens, refused_calls}
    budget: dict[str, Any] | None = None
    evidence: EvidenceSummary
    inputs_hash: str
    started_at: str
    duration_s: float
    head_sha: str | None = None


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
    #: reasoning effort for this stage (the stage's own, else the rulebook's; None = model default)
    thinking: str | None = None


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

    @property
    def judge_model(self) -> str:
        return self.rulebook.scorecard.judge_model or self.rulebook.model


def _persona_text(spec, library: PromptLibrary, fallback: str) -> str:
    if spec is None:
        return library.component("personas", fallback)
    if isinstance(spec, ComponentRef):
        return library.component("personas", spec.component)
    return spec


def resolve_plan(rulebook: Rulebook, evidence_text: str, library: PromptLibrary | None = None,
                 evidence_summary: EvidenceSummary | None = None) -> ReviewPlan:
    """Resolve personas, goal-map parts and blueprints for every stage.

    Raises :class:`ConfigError` for a missing component or template.
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
        stages.append(ResolvedStage(stage.id, stage.title, stage.focus, fmt, list(sections), list(stage.depends_on), persona,
                                    thinking=stage.thinking or rulebook.thinking))
    if rulebook.synthesis:
        syn = rulebook.synthesis
        persona = _persona_text(syn.persona, library, default_persona_name) if syn.persona else base_persona
        stages.append(ResolvedStage(syn.id, syn.title, syn.focus, syn.format, list(syn.sections or []),
                                    [s.id for s in rulebook.stages], persona, is_synthesis=True, thinking=rulebook.thinking))
    effective = rulebook.model_copy(update={"constraints": constraints})
    return ReviewPlan(effective, evidence_text, stages, constraints, protocol, library, evidence_summary or EvidenceSummary())


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
        "predecessors": [
            {"id": p.id, "title": p.title, "output": fence_safe(p.final_output or "", "earlier_simulation_output")}
            for p in predecessors
        ],
        "grading_notes": list(grading_notes),
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
        evidence=plan.evidence_text,
    )
    if not all(c.passed for c in checks):
        return Scorecard(format=stage.format, passed=False, checks=checks, judge_skipped="deterministic checks failed")
    if not rb.scorecard.judge or provider is None:
        return Scorecard(format=stage.format, passed=True, checks=checks,
                         judge_skipped="judge disabled in the rulebook" if not rb.scorecard.judge else "no model available")
    criteria = rb.scorecard.criteria or default_criteria(stage.format)
    prompt = render_judge_prompt(plan, stage, output, criteria)
    slot = call_slot or asyncio.Semaphore(1)
    async with slot:
        results, error, used, usage, transcripts = await judge(
            provider, prompt, system=SYSTEM_INSTRUCTION, criteria=criteria, output=output, label=label,
            model=plan.judge_model, attempts=rb.scorecard.grade_attempts, temperature=rb.temperature,
        )
    return Scorecard(format=stage.format, passed=not error and all(r.passed for r in results), checks=checks,
                     criteria=results, grader_error=error, judge_attempts=used, judge_usage=usage,
                     judge_transcripts=transcripts)


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
    #: every limit that stopped a call (named, for the summary)
    limits: set[str] = field(default_factory=set)


async def _run_stage(plan: ReviewPlan, stage: ResolvedStage, run: _Run) -> None:
    provider, results, done, slot, t0 = run.provider, run.results, run.done, run.slot, run.t0
    result = results[stage.id]
    try:
        for dep in stage.depends_on:
            await done[dep].wait()
        blocked = [d for d in stage.depends_on if results[d].outcome != "passed"]
        if blocked:
            worst = "inconclusive" if any(results[d].effective_outcome == "inconclusive" for d in blocked) else "failed"
            result.outcome, result.blocked_outcome = "skipped", worst
            result.reason = f"not run: {', '.join(blocked)} did not pass"
            return
        predecessors = [results[d] for d in stage.depends_on]
        attempts = plan.rulebook.scorecard.attempts
        notes: list[str] = []
        for number in range(1, attempts + 1):
            if run.halted:
                result.outcome, result.reason = "inconclusive", f"not run: {run.halted}"
                return
            prompt = render_stage_prompt(plan, stage, predecessors, notes)
            attempt = Attempt(number=number, prompt=prompt, started_s=time.monotonic() - t0)
            result.attempts.append(attempt)
            request = GenerationRequest(
                prompt=prompt, system=SYSTEM_INSTRUCTION, model=plan.rulebook.model,
                temperature=plan.rulebook.temperature, max_output_tokens=plan.rulebook.max_output_tokens,
                label=f"stage:{stage.id}", metadata={"attempt": number}, thinking=stage.thinking,
            )
            try:
                async with slot:
                    completion = await provider.generate(request)
            except TruncatedReply as exc:
                attempt.error = str(exc)
                attempt.finished_s = time.monotonic() - t0
                notes = ["the previous reply was cut off at the output-token limit: be more concise"]
                continue
            except BudgetExhausted as exc:  # the hard cap: no call was made
                attempt.error = str(exc)
                attempt.finished_s = time.monotonic() - t0
                result.outcome, result.reason = "inconclusive", str(exc)
                run.limits.add(limit_reason(exc))
                return
            except ProviderError as exc:  # unavailable, quota, blocked prompt: no point re-asking
                if isinstance(exc, QuotaExhausted):
                    run.halted = limit_reason(exc)
                    run.limits.add(run.halted)
                attempt.error = str(exc)
                attempt.finished_s = time.monotonic() - t0
                result.outcome, result.reason = "inconclusive", f"model unavailable: {exc}"
                return
            attempt.output = completion.text
            attempt.usage = completion.usage
            result.usage = result.usage + completion.usage
            try:
                card = await grade_output(plan, stage, completion.text, provider, label=f"judge:{stage.id}", call_slot=slot)
            except ProviderError as exc:
                if isinstance(exc, QuotaExhausted):
                    run.halted = limit_reason(exc)
                    run.limits.add(run.halted)
                elif isinstance(exc, BudgetExhausted):
                    run.limits.add(limit_reason(exc))
                attempt.finished_s = time.monotonic() - t0
                result.outcome, result.reason = "inconclusive", f"grader unavailable: {exc}"
                result.final_output = completion.text
                return
            attempt.scorecard = card
            attempt.finished_s = time.monotonic() - t0
            result.usage = result.usage + card.judge_usage
            result.final_output = completion.text
            matrices = extract_matrices(completion.text)
            result.matrix = matrices[-1] if matrices else None
            result.recommendation = _recommendation(stage, completion.text, result.matrix)
            if card.passed:
                result.outcome = "passed"
                result.reason = f"passed on attempt {number} of {attempts}"
                return
            notes = card.failed_notes()
        last = result.final_attempt
        if last is not None and last.scorecard is not None and last.scorecard.grader_error:
            result.outcome, result.reason = "inconclusive", f"the grader never gave a usable verdict in {attempts} attempt(s)"
        else:
            result.outcome, result.reason = "failed", f"no attempt passed the scorecard ({attempts} attempt(s))"
    finally:
        done[stage.id].set()


def decide(rulebook: Rulebook, stages: list[StageResult]) -> tuple[VerdictName, str]:
    """Apply the rulebook's policy to stage outcomes: ``(verdict, summary)``.

    Stages outside ``policy.required`` never change the verdict but are named
    in the summary when they did not pass.
    """
    required = set(rulebook.policy.required or [s.id for s in stages])
    counted = [s for s in stages if s.id in required]
    failed = [s.id for s in counted if s.effective_outcome == "failed"]
    unsure = [s.id for s in counted if s.effective_outcome == "inconclusive"]
    ignored = [f"{s.id} {s.effective_outcome}" for s in stages if s.id not in required and s.effective_outcome != "passed"]
    tail = f"; not required by the policy: {', '.join(ignored)}" if ignored else ""
    verdict: VerdictName
    if failed and rulebook.policy.on_failed == "fail":
        verdict, summary = "fail", f"{len(failed)} stage(s) failed the scorecard: {', '.join(failed)}"
    elif unsure:
        verdict = {"error": "inconclusive", "fail": "fail", "neutral": "neutral"}[rulebook.policy.on_inconclusive]  # type: ignore[assignment]
        summary = f"{len(unsure)} stage(s) inconclusive: {', '.join(unsure)}"
    elif failed:
        verdict, summary = "pass", f"passed with warnings: {', '.join(failed)} failed the scorecard (policy: warn)"
    else:
        verdict, summary = "pass", f"all {len(counted)} required stage(s) passed the scorecard"
    return verdict, summary + tail


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


async def run_review(plan: ReviewPlan, provider: Provider, *, head_sha: str | None = None) -> Review:
    """Run every stage of ``plan`` against ``provider`` and decide the verdict."""
    from designsim.providers.metering import BudgetLimits, MeteredProvider

    t0 = time.monotonic()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rb = plan.rulebook
    limits = BudgetLimits(rb.budget.max_usd, rb.budget.max_tokens) if rb.budget else None
    provider = MeteredProvider(provider, default_model=rb.model, limits=limits, pricing=rb.pricing,
                               models=list(dict.fromkeys([rb.model, plan.judge_model])))
    results = {s.id: StageResult(id=s.id, title=s.title, format=s.format, depends_on=s.depends_on, is_synthesis=s.is_synthesis)
               for s in plan.stages}
    run = _Run(provider, results, {s.id: asyncio.Event() for s in plan.stages}, asyncio.Semaphore(rb.concurrency), t0)
    await asyncio.gather(*(_run_stage(plan, s, run) for s in plan.stages))
    stages = [results[s.id] for s in plan.stages]
    verdict, summary = decide(plan.rulebook, stages)
    usage = Usage()
    for s in stages:
        usage = usage + s.usage
    # cost: the rulebook's pricing, else the model catalogue (cached input and thinking at their rates)
    spent = provider.cost()
    currency = (rb.pricing.currency if rb.pricing else "USD") if spent.usd is not None else None
    stopped = "; ".join(sorted(run.limits)) or None
    if stopped:
        summary = f"{summary} — stopped: {stopped}"
    budget = None
    if rb.budget:
        budget = {"max_usd": rb.budget.max_usd, "max_tokens": rb.budget.max_tokens, "spent_usd": round(provider.spent_usd(), 6),
                  "spent_tokens": provider.meter.total.total_tokens, "refused_calls": provider.meter.refused}
    return Review(
        rulebook=plan.rulebook.name, model=plan.rulebook.model, judge_model=plan.judge_model, verdict=verdict,
        exit_code=EXIT_CODES[verdict], summary=summary, stages=stages, waves=plan_waves(plan.rulebook), usage=usage,
        cost=spent.usd, currency=currency, cost_verified=spent.verified if spent.usd is not None else None,
        cost_note=spent.note if spent.usd is None else ("" if spent.verified else "price unverified: " + spent.source),
        answered_by=provider.meter.substitutions(), stopped=stopped, budget=budget,
        evidence=plan.evidence_summary, inputs_hash=inputs_hash(plan, head_sha=head_sha),
        started_at=started, duration_s=round(time.monotonic() - t0, 3), head_sha=head_sha,
    )


def run_review_sync(plan: ReviewPlan, provider: Provider, *, head_sha: str | None = None) -> Review:
    """:func:`run_review` for synchronous callers (the CLI, the action)."""
    return asyncio.run(run_review(plan, provider, head_sha=head_sha))
