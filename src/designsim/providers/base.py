"""The provider seam: requests in, completions out.

A *fresh session* is one :class:`GenerationRequest`: its prompt becomes a
``contents`` list holding exactly one user turn. No chat object is ever reused
across stages or attempts (white paper §8.4, "Clean Slate Session Management").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class GenerationRequest:
    """One model call, one user turn.

    ``prompt`` is the whole user turn (text); ``system`` the optional system
    instruction; ``temperature`` in [0, 2]; ``max_output_tokens`` in tokens;
    ``response_schema`` a pydantic model class asking for JSON output (the
    completion's ``parsed`` is then a dict validated against it, or ``None``).
    ``label`` names the call in logs and transcripts (stage id, prompt id).
    ``thinking`` is ``low``/``medium``/``high`` or ``None`` for the model's
    default; the Gemini provider maps it per model (level on Gemini 3+, budget
    on 2.5). ``temperature`` ``None`` means none is sent.
    """

    prompt: str
    system: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    response_schema: type[BaseModel] | None = None
    label: str = ""
    thinking: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


class Usage(BaseModel):
    """Token counts of one call (tokens). ``cached_tokens`` is the part of the
    input served from Gemini's implicit prompt cache (``cachedContentTokenCount``);
    ``thinking_tokens`` the part of the output spent thinking (``thoughtsTokenCount``,
    billed as output)."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    thinking_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            thinking_tokens=self.thinking_tokens + other.thinking_tokens,
        )


class Completion(BaseModel):
    """A successful reply.

    ``text`` is the model's text; ``parsed`` the JSON object when the request
    had a ``response_schema`` and the reply validated (``None`` otherwise: a
    caller must treat that as a failure, never a pass); ``latency_s`` wall
    seconds for the successful HTTP exchange; ``attempts`` how many HTTP
    requests it took (1 = no retry); ``finish_reason`` as Gemini says it
    (``STOP``). ``model`` is the id requested, ``model_version`` the
    ``modelVersion`` the service says answered (empty when it did not say).
    """

    model_config = ConfigDict(extra="forbid")

    text: str
    parsed: dict[str, Any] | None = None
    usage: Usage = Usage()
    latency_s: float = 0.0
    finish_reason: str = "STOP"
    model: str = ""
    model_version: str = ""
    attempts: int = 1


@runtime_checkable
class Provider(Protocol):
    """Anything that turns a :class:`GenerationRequest` into a :class:`Completion`.

    Implementations raise only :mod:`designsim.errors` provider errors:
    ``TransientProviderError`` (retry may help), ``PermanentProviderError``
    (it will not), ``QuotaExhausted`` (stop the run).
    """

    name: str

    async def generate(self, request: GenerationRequest) -> Completion:  # pragma: no cover - protocol
        ...
