"""Public test helpers: run designsim offline, with no API key and no network.

* :class:`FakeProvider` — a scripted :class:`~designsim.providers.Provider`
  (``enqueue()`` replies, or give a function); ``history`` keeps every request.
* :class:`FakeGeminiServer` — a local HTTP fake of Gemini's REST API that the
  real google-genai client talks to via ``GOOGLE_GEMINI_BASE_URL``.
* reply builders: :func:`text_reply`, :func:`json_reply`, :func:`error_reply`,
  :func:`blocked_reply`.

Example (a rulebook author's own test)::

    from designsim.testing import FakeProvider
    fake = FakeProvider(lambda req: GOOD_OUTPUT if req.label.startswith("stage:") else JUDGE_PASS)
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any, Callable

from designsim.providers.base import Completion, GenerationRequest, Usage
from designsim.testing.fake_gemini import (
    FakeGeminiServer,
    FakeReply,
    FakeRequest,
    blocked_reply,
    error_reply,
    json_reply,
    not_found_reply,
    spend_cap_reply,
    text_reply,
)

__all__ = [
    "FakeProvider", "FakeGeminiServer", "FakeReply", "FakeRequest",
    "blocked_reply", "error_reply", "json_reply", "not_found_reply", "spend_cap_reply", "text_reply",
]

Reply = "str | dict | Completion | BaseException"


class FakeProvider:
    """A provider that answers from a script.

    Replies come from ``enqueue(...)`` (first in, first out) or, when the
    queue is empty, from ``responder(request)``. A reply may be a ``str``
    (text), a ``dict`` (JSON text, also set as ``parsed``), a
    :class:`Completion`, or an exception instance to raise. ``latency_s``
    seconds of ``asyncio.sleep`` are added per call. Every request is appended
    to :attr:`history`.
    """

    name = "fake"

    def __init__(self, responder: Callable[[GenerationRequest], Any] | None = None, *, latency_s: float = 0.0):
        self.responder = responder
        self.latency_s = latency_s
        self.history: list[GenerationRequest] = []
        self._queue: deque[Any] = deque()

    def enqueue(self, *replies: Any) -> "FakeProvider":
        self._queue.extend(replies)
        return self

    async def generate(self, request: GenerationRequest) -> Completion:
        self.history.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self._queue:
            reply = self._queue.popleft()
        elif self.responder is not None:
            reply = self.responder(request)
        else:
            raise AssertionError(f"FakeProvider has no reply for {request.label!r}")
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Completion):
            return reply
        if isinstance(reply, dict):
            return Completion(text=json.dumps(reply), parsed=reply, usage=Usage(input_tokens=len(request.prompt) // 4, output_tokens=20))
        text = str(reply)
        return Completion(text=text, usage=Usage(input_tokens=len(request.prompt) // 4, output_tokens=max(1, len(text) // 4)))

from designsim.testing.github import GitHubRecorder  # noqa: E402  (recorder of what the action would post)

__all__ += ["GitHubRecorder"]
