"""The model catalogue: Gemini model ids, limits, thinking, temperature, prices, lifecycle.

The data lives in ``providers/models.yml`` (shipped in the wheel); this module is
its typed loader and the questions asked of it:

* :func:`default_model` / :data:`DEFAULT_MODEL` — the model every stage, the judge,
  ``init`` and batch use unless told otherwise (the current GA Flash).
* :func:`lookup` — the entry for an id (``models/`` prefix, dated or numbered
  versions such as ``gemini-3.8-flash-001`` count as their base id).
* :func:`thinking_config` — ``thinking: low|medium|high`` as Gemini wants it:
  ``thinking_level`` on Gemini 3 and later, ``thinking_budget`` (tokens) on 2.5.
* :meth:`ModelInfo.price_on` / :func:`cost_usd` — prices per million tokens valid
  on a date, and the USD cost of a :class:`~designsim.providers.base.Usage`.
* :func:`lifecycle_warning` — "deprecated / shut down on DATE, use X" text.

Figures say when they were read and where (``read``, ``source``); a figure not
confirmed on Google's own pages is ``verified: false`` and shown as unverified.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from designsim.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from designsim.providers.base import Usage

#: The default model for stages and the judge (the current GA Flash; catalogue read 2026-12-01).
#: Kept as a literal so importing the rulebook does not read YAML; a test checks it equals
#: ``models.yml``'s ``default``.
DEFAULT_MODEL = "gemini-3.8-flash"
#: The three effort levels a rulebook may name (``thinking:``).
ThinkingName = Literal["low", "medium", "high"]
Status = Literal["ga", "preview", "deprecated", "retired"]
_DATA = "models.yml"
#: Google's Gemini 3 temperature guidance (Gemini 3 developer guide and prompting guide, read 2026-12-01).
GEMINI3_TEMPERATURE_GUIDANCE = (
    "Google's Gemini 3 guide recommends keeping temperature at its default of 1.0: values below 1.0 "
    "may lead to unexpected behaviour, such as looping or degraded performance, especially in complex reasoning tasks"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thinking(_Strict):
    """How a model's reasoning effort is set.

    ``parameter``: ``level`` (Gemini 3+: ``thinkingConfig.thinkingLevel``),
    ``budget`` (Gemini 2.5: ``thinkingConfig.thinkingBudget`` in tokens) or
    ``none``; ``values``: the levels accepted (lower case); ``default``: the
    model's own default level; ``budgets``: tokens per level for ``budget`` models.
    """

    parameter: Literal["level", "budget", "none"]
    values: list[str] = []
    default: str | None = None
    budgets: dict[str, int] = {}


class Temperature(_Strict):
    """Temperature guidance: ``default`` the model's own; ``recommend_default``
    when Google advises against changing it (Gemini 3); ``ignored`` when the
    model ignores custom values (Gemini 3.5 Flash-Lite)."""

    default: float = 1.0
    recommend_default: bool = False
    ignored: bool = False


class Price(_Strict):
    """USD per million tokens, valid ``from`` .. ``until`` (inclusive, either open).

    ``input``/``output`` are the standard (interactive) prices, output including
    thinking tokens; ``cached_input`` for implicit/explicit cache hits;
    ``batch_*`` for Batch Mode. ``read`` is the date the figure was read,
    ``source`` where; ``verified`` is false when it could not be confirmed on
    Google's own page.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    valid_from: dt.date | None = Field(None, alias="from")
    until: dt.date | None = None
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    batch_input: float | None = Field(None, ge=0)
    batch_output: float | None = Field(None, ge=0)
    read: dt.date
    source: str
    verified: bool = False
    note: str = ""

    def covers(self, day: dt.date) -> bool:
        """True when this price applies on ``day``."""
        return (self.valid_from is None or self.valid_from <= day) and (self.until is None or day <= self.until)


class ModelInfo(_Strict):
    """One model of the catalogue. Token limits are tokens; dates ISO dates."""

    id: str
    family: str
    generation: str
    status: Status
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    thinking: Thinking
    temperature: Temperature = Temperature()
    prices: list[Price] = []
    released: dt.date | None = None
    deprecated: dt.date | None = None
    shutdown: dt.date | None = None
    replacement: str | None = None
    note: str = ""

    @property
    def major(self) -> int:
        """The generation's major number (3 for ``3.8``)."""
        return int(self.generation.split(".")[0])

    @property
    def usable(self) -> bool:
        """False for a retired (shut-down) model."""
        return self.status != "retired"

    def price_on(self, day: dt.date | None = None) -> Price | None:
        """The price valid on ``day`` (default: today, UTC), or ``None`` when none is known."""
        day = day or dt.datetime.now(dt.timezone.utc).date()
        for price in self.prices:
            if price.covers(day):
                return price
        return None


class Catalogue(_Strict):
    """The whole data file: ``read`` date, the ``default`` model id, the models."""

    read: dt.date
    default: str
    models: list[ModelInfo]

    @model_validator(mode="after")
    def _consistent(self) -> "Catalogue":
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate model id in the catalogue")
        for m in self.models:
            if m.replacement and m.replacement not in ids:
                raise ValueError(f"{m.id}: replacement {m.replacement!r} is not in the catalogue")
        if self.default not in ids:
            raise ValueError(f"default {self.default!r} is not in the catalogue")
        return self

    def get(self, model_id: str) -> ModelInfo | None:
        """:func:`lookup` against this catalogue."""
        name = normalise(model_id)
        by_id = {m.id: m for m in self.models}
        if name in by_id:
            return by_id[name]
        for known in sorted(by_id, key=len, reverse=True):  # dated/numbered versions: gemini-3.8-flash-001
            if name.startswith(known + "-") and re.fullmatch(r"-(?:\d{3}|preview(?:-[\w-]+)?|\d{2}-\d{4}|latest)", name[len(known):]):
                return by_id[known]
        return None


def normalise(model_id: str) -> str:
    """``models/gemini-3.8-flash`` / ``publishers/google/models/…`` → ``gemini-3.8-flash`` (lower case)."""
    return str(model_id).strip().lower().rsplit("/", 1)[-1]


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """Read and validate the bundled ``models.yml``. A broken file is a bug of the
    package, raised as :class:`ConfigError` naming the file and field."""
    text = resources.files("designsim.providers").joinpath(_DATA).read_text(encoding="utf-8")
    try:
        return Catalogue.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(err["msg"], source=f"designsim/providers/{_DATA}", field=".".join(str(p) for p in err["loc"])) from exc


def default_model() -> str:
    """The default model id (``gemini-3.8-flash`` as of 2026-12-01)."""
    return load_catalogue().default


def lookup(model_id: str) -> ModelInfo | None:
    """The catalogue entry for ``model_id`` or ``None`` for an id it does not know."""
    return load_catalogue().get(model_id)


def context_window(model_id: str, fallback: int = 1_048_576) -> tuple[int, bool]:
    """``(input tokens, known)`` for ``model_id``; unknown ids get ``fallback``."""
    info = lookup(model_id)
    return (info.context_window, True) if info else (fallback, False)


def is_gemini3_or_later(model_id: str) -> bool:
    """True for Gemini 3+ ids (catalogue generation, or the ``gemini-N`` prefix for unknown ids)."""
    info = lookup(model_id)
    if info:
        return info.major >= 3
    match = re.match(r"gemini-(\d+)", normalise(model_id))
    return bool(match and int(match.group(1)) >= 3)


def thinking_config(model_id: str, level: str | None) -> dict[str, object] | None:
    """``GenerateContentConfig.thinking_config`` fields for ``level`` on ``model_id``.

    ``None`` when ``level`` is ``None`` (the model's default applies). Gemini 3+
    (and unknown ``gemini-3…`` ids): ``{"thinking_level": "LOW"}``; 2.5 models:
    ``{"thinking_budget": tokens}`` from the catalogue. Raises :class:`ConfigError`
    when the model takes no thinking setting or not that level.
    """
    if level is None:
        return None
    level = level.lower()
    info = lookup(model_id)
    if info is None:
        if is_gemini3_or_later(model_id):
            return {"thinking_level": level.upper()}
        raise ConfigError(f"model {model_id!r} is not in designsim's catalogue, so `thinking: {level}` cannot be mapped; "
                          "remove `thinking` or use a catalogued model (see `designsim models`)", field="thinking")
    if info.thinking.parameter == "none" or (info.thinking.values and level not in info.thinking.values):
        allowed = ", ".join(info.thinking.values) or "none"
        raise ConfigError(f"model {info.id} does not accept thinking level {level!r} (allowed: {allowed})", field="thinking")
    if info.thinking.parameter == "budget":
        return {"thinking_budget": info.thinking.budgets[level]}
    return {"thinking_level": level.upper()}


def lifecycle_warning(model_id: str, today: dt.date | None = None) -> str | None:
    """A sentence when ``model_id`` is deprecated or shut down (with the date and
    the replacement), else ``None``."""
    info = lookup(model_id)
    if info is None:
        return None
    today = today or dt.datetime.now(dt.timezone.utc).date()
    use = f"; use {info.replacement}" if info.replacement else ""
    if info.status == "retired" or (info.shutdown and info.shutdown <= today):
        when = f" on {info.shutdown.isoformat()}" if info.shutdown else ""
        return f"{info.id} was shut down{when}: requests fail (404) or are answered by another model{use}"
    if info.status == "deprecated" or info.deprecated or info.shutdown:
        when = f" (shutdown {info.shutdown.isoformat()})" if info.shutdown else ""
        return f"{info.id} is deprecated{when}{use}"
    return None


def replacement_for(model_id: str) -> str:
    """The catalogue's replacement for ``model_id``, else the default model."""
    info = lookup(model_id)
    return (info.replacement if info and info.replacement else None) or default_model()


class Cost(BaseModel):
    """The USD cost of some usage, and how sure we are of it.

    ``usd`` is ``None`` when no price is known for the model on that date;
    ``verified`` false when the price used is marked unverified in the catalogue;
    ``source`` where the price came from (``rulebook pricing`` or a URL).
    """

    model_config = ConfigDict(extra="forbid")
    usd: float | None = None
    verified: bool = False
    source: str = ""
    note: str = ""


def cost_usd(model_id: str, usage: "Usage", *, batch: bool = False, day: dt.date | None = None) -> Cost:
    """The cost of ``usage`` on ``model_id`` at the catalogue's price for ``day``.

    Input tokens not served from the cache are billed at ``input``; cached tokens
    (``usage.cached_tokens``, part of the input) at ``cached_input`` (``input`` when
    no cache price is known); output tokens, which include thinking tokens
    (``thoughts_token_count``), at ``output``. ``batch`` uses the Batch Mode prices.
    """
    info = lookup(model_id)
    price = info.price_on(day) if info else None
    if price is None:
        why = "not in the catalogue" if info is None else "no price known for that date"
        return Cost(usd=None, note=f"{model_id}: {why}")
    inp = price.batch_input if batch and price.batch_input is not None else price.input
    out = price.batch_output if batch and price.batch_output is not None else price.output
    cached_rate = price.cached_input if price.cached_input is not None else inp
    cached = min(usage.cached_tokens, usage.input_tokens)
    usd = ((usage.input_tokens - cached) * inp + cached * cached_rate + usage.output_tokens * out) / 1e6
    return Cost(usd=round(usd, 6), verified=price.verified, source=price.source, note=price.note)


__all__ = [
    "DEFAULT_MODEL", "GEMINI3_TEMPERATURE_GUIDANCE", "Catalogue", "Cost", "ModelInfo", "Price", "Temperature", "Thinking",
    "context_window", "cost_usd", "default_model", "is_gemini3_or_later", "lifecycle_warning", "load_catalogue", "lookup",
    "normalise", "replacement_for", "thinking_config",
]
