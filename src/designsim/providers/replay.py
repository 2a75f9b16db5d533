"""Replay recorded completions from a cassette file, and record new ones.

A cassette is JSON: ``{"version": 1, "model": str, "interactions": [{"label":
str, "text": str, "usage": {...}, "prompt_sha256": str | null, "model_version": str}]}``
(``model_version``, optional, is the ``modelVersion`` that answered when recorded). Replies
are matched by the request's ``label`` (``stage:state``, ``judge:state:1``,
``synthesis``…) and handed out in recorded order per label, so a replay does
not depend on the exact prompt bytes; ``prompt_sha256`` is kept to tell a
reader which prompt produced the reply.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from designsim.errors import ConfigError, PermanentProviderError
from designsim.providers.base import Completion, GenerationRequest, Usage


class Interaction(BaseModel):
    """One recorded call."""

    model_config = ConfigDict(extra="forbid")
    label: str
    text: str
    usage: Usage = Usage()
    prompt_sha256: str | None = None
    model_version: str = ""


class Cassette(BaseModel):
    """A file of recorded interactions."""

    model_config = ConfigDict(extra="forbid")
    version: int = 1
    model: str = ""
    interactions: list[Interaction] = []


def prompt_digest(request: GenerationRequest) -> str:
    """sha256 of system + prompt, hex."""
    return hashlib.sha256(((request.system or "") + "\0" + request.prompt).encode()).hexdigest()


class ReplayProvider:
    """Plays a :class:`Cassette`. Raises ``PermanentProviderError`` when a label
    has no (more) recorded replies."""

    name = "replay"

    def __init__(self, cassette: Cassette):
        self.cassette = cassette
        self._queues: dict[str, deque[Interaction]] = defaultdict(deque)
        for item in cassette.interactions:
            self._queues[item.label].append(item)

    @classmethod
    def from_file(cls, path: str | Path) -> "ReplayProvider":
        """Load a cassette; ``ConfigError`` names the file when it is unreadable."""
        path = Path(path)
        try:
            return cls(Cassette.model_validate_json(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"cannot read cassette: {exc.strerror}", source=str(path)) from exc
        except ValidationError as exc:
            raise ConfigError(f"not a designsim cassette: {exc.errors()[0]['msg']}", source=str(path)) from exc

    async def generate(self, request: GenerationRequest) -> Completion:
        queue = self._queues.get(request.label)
        if not queue:
            raise PermanentProviderError(f"cassette has no recorded reply for {request.label!r}", reason="cassette-miss")
        item = queue.popleft()
        parsed = None
        if request.response_schema is not None:
            try:
                parsed = request.response_schema.model_validate_json(item.text).model_dump(mode="json")
            except ValidationError:
                parsed = None
        elif request.response_json_schema is not None:
            try:
                value = json.loads(item.text)
            except ValueError:
                value = None
            parsed = value if isinstance(value, dict) else None
        return Completion(text=item.text, parsed=parsed, usage=item.usage, model=self.cassette.model or "replay",
                          model_version=item.model_version)


class RecordingProvider:
    """Wraps a live provider and appends every successful call to a cassette
    written at :meth:`save` (atomically, secrets redacted), so a live run can be
    replayed later."""

    def __init__(self, inner, path: str | Path):
        self.inner = inner
        self.name = getattr(inner, "name", "provider")
        self.path = Path(path)
        self.cassette = Cassette(model=getattr(inner, "default_model", ""))

    async def generate(self, request: GenerationRequest) -> Completion:
        completion = await self.inner.generate(request)
        self.cassette.interactions.append(
            Interaction(label=request.label, text=completion.text, usage=completion.usage, prompt_sha256=prompt_digest(request),
                        model_version=completion.model_version)
        )
        return completion

    def save(self) -> Path:
        from designsim.fileio import atomic_write_text

        from designsim.redact import redact

        data = self.cassette.model_dump(mode="json")
        for item in data["interactions"]:
            if not item.get("model_version"):
                item.pop("model_version", None)  # keep cassettes recorded without it byte-identical
        # a cassette is committed to the repository: no key it might echo goes with it
        atomic_write_text(self.path, redact(json.dumps(data, indent=1, ensure_ascii=False)) + "\n")
        return self.path
