"""The token estimate shared by both flows (review evidence, batch rate limiting, lint).

Kept apart from :mod:`designsim.evidence` so that the batch runner and the linter
can budget tokens without importing diff parsing (``unidiff``).
"""

from __future__ import annotations

import math

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens"]

#: Characters per token for the budget heuristic. Google's Gemini documentation
#: ("Understand and count tokens"): "For Gemini models, a token is equivalent to
#: about 4 characters. 100 tokens is equal to about 60-80 English words."
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text``: ``ceil(len(text) / 4)`` characters.

    The 4-characters-per-token rule is Google's ("a token is equivalent to about 4
    characters", Gemini API docs, *Understand and count tokens*). It is close for
    English and code; dense non-Latin text runs more tokens per character. Use
    the provider's ``count_tokens`` when an exact number matters.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)
