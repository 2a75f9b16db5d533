"""Cost before spending: ``designsim review … --estimate``.

Counts each stage's prompt with Gemini's ``countTokens`` (no generation call;
countTokens is free of charge — Gemini API *Understand and count tokens*, read
2026-12-01) and prices the worst case of one attempt at the rulebook's
``pricing`` or the model catalogue's price:

* the stage call: its prompt, plus ``max_output_tokens`` for each earlier output
  it receives (``depends_on``; the synthesis receives every stage's), and up to
  ``max_output_tokens`` of output;
* the judge call (when the judge is on): the judge prompt plus the graded output
  (up to ``max_output_tokens``), and up to :data:`JUDGE_MAX_OUTPUT` of output.

JSON shape (the contract)::

    {"stages": [{"id", "input_tokens", "max_output_tokens", "estimated_usd"}], "total_usd"}

with additive keys: per stage ``attempts`` and ``worst_case_usd`` (every attempt
and every judge re-grade spent), and at the top ``model``, ``judge_model``,
``counted_by`` (``countTokens`` or the local 4-characters-per-token estimate
when the provider cannot count), ``price_verified``, ``total_worst_case_usd``
and ``budget`` (the rulebook's, if any).

:func:`estimate_step_summary` renders the same estimate as Markdown for the
action's step summary (GitHub caps a step summary at 1 MiB).
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

from designsim.evidence import estimate_tokens
from designsim.prompts import SYSTEM_INSTRUCTION
from designsim.providers.base import GenerationRequest, Usage
from designsim.providers.metering import usage_cost

#: The judge asks for at most this many output tokens (``designsim.scorecard.judge``).
JUDGE_MAX_OUTPUT = 4096


async def _count(provider: Any, request: GenerationRequest) -> tuple[int, str]:
    counter = getattr(provider, "count_tokens", None)
    if counter is None:
        return estimate_tokens((request.system or "") + request.prompt), "estimate (4 characters per token)"
    return await counter(request), "countTokens"


def _usd(model: str, input_tokens: int, output_tokens: int, pricing) -> tuple[float | None, bool]:
    cost = usage_cost(model, Usage(input_tokens=input_tokens, output_tokens=output_tokens), pricing)
    return cost.usd, cost.verified


async def estimate_review(plan, provider: Any) -> dict[str, Any]:
    """The estimate for ``plan`` (a :class:`~designsim.simulation.ReviewPlan`), counting
    with ``provider.count_tokens`` when it has one (the Gemini provider does).
    Makes no generation call. Provider errors propagate (a missing key is a
    :class:`~designsim.errors.ConfigError` raised when the provider is built)."""
    from designsim.scorecard import default_criteria
    from designsim.simulation import render_judge_prompt, render_stage_prompt

    rb = plan.rulebook
    max_out = rb.max_output_tokens
    stages: list[dict[str, Any]] = []
    counted_by = "countTokens"
    verified = True
    for stage in plan.stages:
        preds = [types.SimpleNamespace(id=d, title=d, final_output="") for d in stage.depends_on]
        prompt = render_stage_prompt(plan, stage, preds)
        tokens, how = await _count(provider, GenerationRequest(prompt=prompt, system=SYSTEM_INSTRUCTION, model=rb.model,
                                                               label=f"estimate:{stage.id}"))
        counted_by = how if how != "countTokens" else counted_by
        stage_in = tokens + max_out * len(stage.depends_on)
        usd, ok = _usd(rb.model, stage_in, max_out, rb.pricing)
        judge_in = judge_out = 0
        judge_usd: float | None = 0.0
        if rb.scorecard.judge:
            criteria = rb.scorecard.criteria or default_criteria(stage.format)
            judge_prompt = render_judge_prompt(plan, stage, "", criteria)
            jt, _ = await _count(provider, GenerationRequest(prompt=judge_prompt, system=SYSTEM_INSTRUCTION,
                                                             model=plan.judge_model, label=f"estimate:judge:{stage.id}"))
            judge_in, judge_out = jt + max_out, JUDGE_MAX_OUTPUT
            judge_usd, jok = _usd(plan.judge_model, judge_in, judge_out, rb.pricing)
            ok = ok and jok
        verified = verified and ok
        one = None if usd is None or judge_usd is None else round(usd + judge_usd, 6)
        attempts = rb.scorecard.attempts
        worst = None
        if usd is not None and judge_usd is not None:
            worst = round(attempts * (usd + rb.scorecard.grade_attempts * judge_usd), 6)
        stages.append({"id": stage.id, "input_tokens": stage_in + judge_in, "max_output_tokens": max_out + judge_out,
                       "estimated_usd": one, "attempts": attempts, "worst_case_usd": worst})
    known = [s["estimated_usd"] for s in stages]
    total = None if any(v is None for v in known) else round(sum(known), 6)
    worsts = [s["worst_case_usd"] for s in stages]
    out: dict[str, Any] = {
        "stages": stages,
        "total_usd": total,
        "total_worst_case_usd": None if any(v is None for v in worsts) else round(sum(worsts), 6),
        "model": rb.model,
        "judge_model": plan.judge_model,
        "counted_by": counted_by,
        "price_verified": verified if total is not None else None,
        "currency": rb.pricing.currency if rb.pricing else "USD",
    }
    if rb.budget:
        out["budget"] = {"max_usd": rb.budget.max_usd, "max_tokens": rb.budget.max_tokens}
    if total is None:
        missing = sorted({m for m in (rb.model, plan.judge_model) if usage_cost(m, Usage(input_tokens=1), rb.pricing).usd is None})
        out["note"] = "no price known for " + ", ".join(missing) + ": add `pricing:` to the rulebook"
    return out


def estimate_review_sync(plan, provider: Any) -> dict[str, Any]:
    """:func:`estimate_review` for synchronous callers (the CLI, the action)."""
    return asyncio.run(estimate_review(plan, provider))


def estimate_markdown(estimate: dict[str, Any]) -> str:
    """The estimate as a Markdown section (a table per stage, then the total)."""
    cur = estimate.get("currency", "USD")

    def money(v: float | None) -> str:
        return "unknown" if v is None else f"{v:.4f} {cur}"

    lines = [f"## designsim — cost estimate before the review (`{estimate['model']}`, judge `{estimate['judge_model']}`)", "",
             "| Stage | Input tokens | Max output tokens | One attempt | Every attempt |", "| --- | ---: | ---: | ---: | ---: |"]
    for s in estimate["stages"]:
        lines.append(f"| `{s['id']}` | {s['input_tokens']:,} | {s['max_output_tokens']:,} | {money(s['estimated_usd'])} | "
                     f"{money(s.get('worst_case_usd'))} |")
    lines += ["", f"**Total:** {money(estimate['total_usd'])} for one attempt per stage; at most "
              f"{money(estimate.get('total_worst_case_usd'))} if every attempt and re-grade is spent. "
              f"Tokens counted by {estimate['counted_by']}."]
    if estimate.get("price_verified") is False:
        lines.append("Some prices are marked unverified in designsim's model catalogue (`designsim models`).")
    if estimate.get("note"):
        lines.append(estimate["note"])
    if estimate.get("budget"):
        b = estimate["budget"]
        caps = [f"{b['max_usd']:.2f} USD" if b.get("max_usd") else "", f"{b['max_tokens']:,} tokens" if b.get("max_tokens") else ""]
        lines.append("Budget (hard cap): " + " / ".join(c for c in caps if c) + ".")
    return "\n".join(lines) + "\n"


def estimate_step_summary(plan, provider: Any) -> str:
    """Count, price and render: the Markdown the action appends to
    ``$GITHUB_STEP_SUMMARY`` before the review starts (no generation call)."""
    return estimate_markdown(estimate_review_sync(plan, provider))


__all__ = ["JUDGE_MAX_OUTPUT", "estimate_markdown", "estimate_review", "estimate_review_sync", "estimate_step_summary"]
