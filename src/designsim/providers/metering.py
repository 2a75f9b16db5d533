"""Metering: what a run spent, which model answered, and a hard budget.

:class:`MeteredProvider` wraps any provider. For every successful call it adds
the usage (tokens) to the requested model's total and remembers the
``modelVersion`` that answered; with a :class:`BudgetLimits` it is also a
**hard cap**: before each call it reserves the call's worst case — the prompt's
tokens (a conservative local count, :func:`worst_case_prompt_tokens`) plus the
call's ``max_output_tokens`` — and raises :class:`~designsim.errors.BudgetExhausted`
instead of calling when spent + reserved + worst case would cross ``max_tokens``
or ``max_usd``. Concurrent calls reserve under a lock, so parallel stages cannot
overshoot together.

Cost is :func:`usage_cost`: the rulebook's ``pricing`` when given, otherwise the
model catalogue's price on the day, with cached input and thinking tokens at
their own rates (:func:`designsim.providers.catalogue.cost_usd`).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from designsim.errors import BudgetExhausted, ConfigError
from designsim.providers.base import Completion, GenerationRequest, Usage
from designsim.providers.catalogue import Cost, cost_usd, lookup, normalise

#: Bytes per token assumed for the worst case. Google's rule of thumb is ~4
#: characters per token for English and code; counting UTF-8 *bytes* / 3 stays
#: above it for ASCII (×1.33) and for dense scripts (a CJK character is 3 bytes,
#: about one token), so the cap is not crossed by an undercount.
WORST_CASE_BYTES_PER_TOKEN = 3
#: Output tokens assumed when a request sets no ``max_output_tokens`` and the
#: model is not catalogued (Gemini 3 Flash's limit, tokens).
DEFAULT_MAX_OUTPUT = 65_536


def worst_case_prompt_tokens(request: GenerationRequest) -> int:
    """A conservative upper estimate of ``request``'s input tokens (prompt + system)."""
    size = len(request.prompt.encode("utf-8")) + len((request.system or "").encode("utf-8"))
    return math.ceil(size / WORST_CASE_BYTES_PER_TOKEN)


def max_output_for(request: GenerationRequest, model: str) -> int:
    """The most output tokens ``request`` can produce: its ``max_output_tokens``,
    else the model's catalogue limit, else :data:`DEFAULT_MAX_OUTPUT`."""
    if request.max_output_tokens:
        return request.max_output_tokens
    info = lookup(model)
    return info.max_output_tokens if info else DEFAULT_MAX_OUTPUT


def usage_cost(model: str, usage: Usage, pricing: Any = None) -> Cost:
    """USD for ``usage`` on ``model``: ``pricing`` (a rulebook
    :class:`~designsim.rulebook.Pricing`: ``input_per_million``,
    ``output_per_million``, optional ``cached_input_per_million``) when given,
    otherwise the catalogue. Output includes thinking tokens (billed as output)."""
    if pricing is not None:
        cached_rate = pricing.cached_input_per_million
        cached = min(usage.cached_tokens, usage.input_tokens) if cached_rate is not None else 0
        usd = ((usage.input_tokens - cached) * pricing.input_per_million + cached * (cached_rate or 0.0)
               + usage.output_tokens * pricing.output_per_million) / 1e6
        return Cost(usd=round(usd, 6), verified=True, source="rulebook pricing")
    return cost_usd(model, usage)


@dataclass(frozen=True)
class BudgetLimits:
    """A hard cap: ``max_usd`` (USD) and/or ``max_tokens`` (input + output tokens over all calls)."""

    max_usd: float | None = None
    max_tokens: int | None = None


@dataclass
class Meter:
    """What was spent, per requested model: usage (tokens) and the ``modelVersion``
    values that answered. ``calls`` counts successful calls; ``refused`` the calls
    the budget stopped."""

    usage: dict[str, Usage] = field(default_factory=dict)
    versions: dict[str, list[str]] = field(default_factory=dict)
    calls: int = 0
    refused: int = 0

    @property
    def total(self) -> Usage:
        out = Usage()
        for u in self.usage.values():
            out = out + u
        return out

    def substitutions(self) -> dict[str, list[str]]:
        """``{requested: [answered, …]}`` for every model whose ``modelVersion``
        differs from what was asked (a dated or numbered version of the same id,
        such as ``gemini-3.8-flash-001``, is not a substitution)."""
        out: dict[str, list[str]] = {}
        for requested, answered in self.versions.items():
            other = [v for v in answered if not same_model(requested, v)]
            if other:
                out[requested] = other
        return out


def same_model(requested: str, answered: str) -> bool:
    """True when ``answered`` (a ``modelVersion``) is ``requested`` or one of its versions."""
    a, b = normalise(requested), normalise(answered)
    return not b or a == b or b.startswith(a + "-") or (lookup(a) is not None and lookup(a) is lookup(b))


class MeteredProvider:
    """Wraps ``inner``; meters every call and enforces ``limits`` (if any).

    ``default_model`` names the model of requests that name none. ``pricing`` is
    the rulebook's (``None``: the catalogue). Raises :class:`ConfigError` at
    construction when ``limits.max_usd`` is set but a price is unknown for
    ``models`` (the model ids the run will use): a USD cap needs a price.
    """

    def __init__(self, inner, *, default_model: str, limits: BudgetLimits | None = None, pricing: Any = None,
                 models: list[str] | None = None):
        self.inner = inner
        self.name = getattr(inner, "name", "provider")
        self.default_model = default_model
        self.limits = limits
        self.pricing = pricing
        self.meter = Meter()
        self._reserved_tokens = 0
        self._reserved_usd = 0.0
        self._lock = asyncio.Lock()
        if limits and limits.max_usd is not None and pricing is None:
            for model in models or [default_model]:
                if usage_cost(model, Usage(input_tokens=1)).usd is None:
                    raise ConfigError(f"budget.max_usd needs a price for {model!r}, and the model catalogue has none: add "
                                      "`pricing:` (input_per_million, output_per_million) to the rulebook", field="budget.max_usd")

    # -- what was spent
    def spent_usd(self) -> float:
        """USD spent so far (unknown prices count as 0; :meth:`cost` says so)."""
        return sum((usage_cost(m, u, self.pricing).usd or 0.0) for m, u in self.meter.usage.items())

    def cost(self) -> Cost:
        """The cost of everything spent, with how sure it is: ``usd`` ``None`` when any
        model used has no known price; ``verified`` only when every price is."""
        total, verified, sources, unknown = 0.0, True, [], []
        for model, usage in self.meter.usage.items():
            c = usage_cost(model, usage, self.pricing)
            if c.usd is None:
                unknown.append(model)
                continue
            total += c.usd
            verified = verified and c.verified
            if c.source and c.source not in sources:
                sources.append(c.source)
        if unknown:
            return Cost(usd=None, note="no price known for " + ", ".join(unknown))
        return Cost(usd=round(total, 6), verified=verified, source="; ".join(sources))

    def _worst(self, request: GenerationRequest, model: str) -> tuple[int, float]:
        worst = Usage(input_tokens=worst_case_prompt_tokens(request), output_tokens=max_output_for(request, model))
        return worst.total_tokens, usage_cost(model, worst, self.pricing).usd or 0.0

    def _refuse(self, what: str, worst_tokens: int, worst_usd: float) -> BudgetExhausted:
        spent_tokens, spent_usd = self.meter.total.total_tokens, self.spent_usd()
        self.meter.refused += 1
        return BudgetExhausted(
            f"budget reached: {what}; spent so far {spent_tokens:,} tokens, ${spent_usd:.4f}; the next call could need up to "
            f"{worst_tokens:,} tokens (${worst_usd:.4f}), so it was not made",
            spent_usd=spent_usd, spent_tokens=spent_tokens)

    async def generate(self, request: GenerationRequest) -> Completion:
        model = request.model or self.default_model
        worst_tokens = worst_usd = 0
        if self.limits:
            worst_tokens, worst_usd = self._worst(request, model)
            async with self._lock:
                tokens_after = self.meter.total.total_tokens + self._reserved_tokens + worst_tokens
                usd_after = self.spent_usd() + self._reserved_usd + worst_usd
                if self.limits.max_tokens is not None and tokens_after > self.limits.max_tokens:
                    raise self._refuse(f"max_tokens {self.limits.max_tokens:,}", worst_tokens, worst_usd)
                if self.limits.max_usd is not None and usd_after > self.limits.max_usd:
                    raise self._refuse(f"max_usd ${self.limits.max_usd:.2f}", worst_tokens, worst_usd)
                self._reserved_tokens += worst_tokens
                self._reserved_usd += worst_usd
        try:
            completion = await self.inner.generate(request)
        finally:
            if self.limits:
                async with self._lock:
                    self._reserved_tokens -= worst_tokens
                    self._reserved_usd -= worst_usd
        self.meter.calls += 1
        self.meter.usage[model] = self.meter.usage.get(model, Usage()) + completion.usage
        if completion.model_version:
            seen = self.meter.versions.setdefault(model, [])
            if completion.model_version not in seen:
                seen.append(completion.model_version)
        return completion

    def __getattr__(self, item):
        return getattr(self.inner, item)


__all__ = ["BudgetLimits", "Meter", "MeteredProvider", "max_output_for", "same_model", "usage_cost", "worst_case_prompt_tokens"]
