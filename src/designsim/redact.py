"""Keeping secrets out of everything designsim writes.

The runner masks values announced with ``::add-mask::`` in the job log only;
comments, summaries, reports, ``LOG.log`` and outputs files are not masked by
anyone else. :class:`Redactor` is the one place that replaces secret values in
text before it is written; :class:`RedactingFilter` applies it to log records.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Mapping

#: Environment variables whose values are always treated as secrets.
SECRET_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GITHUB_TOKEN")


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of :data:`SECRET_ENV_VARS` that are set."""
    env = os.environ if env is None else env
    return [v for k in SECRET_ENV_VARS if (v := env.get(k, ""))]


class Redactor:
    """Replaces every secret value with ``***``, longest first (so a secret that
    contains another is replaced whole). Values shorter than 4 characters are
    ignored: replacing them would mangle ordinary text."""

    def __init__(self, values: Iterable[str]):
        self.values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for v in self.values:
            text = text.replace(v, "***")
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets (default: from the environment)
    in each record's formatted message."""

    def __init__(self, values: Iterable[str] | None = None) -> None:
        super().__init__()
        self.redact = Redactor(secrets_from_env() if values is None else values)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redact.values:
            record.msg, record.args = self.redact(record.getMessage()), None
        return True
