"""Keeping secrets out of everything designsim writes.

The runner masks values announced with ``::add-mask::`` in the job log only;
comments, summaries, reports, ``LOG.log`` and outputs files are not masked by
anyone else, and a proxy or an error body can echo a key back into an error
message. :class:`Redactor` is the one place that replaces secret values in
text before it is written; :class:`RedactingFilter` applies it to log records,
:class:`RedactingStream` to stdout/stderr (installed around every CLI command by
:func:`redacting_streams`), and :func:`redact` is the writers' one-call form.

Output paths and where they are redacted: CLI stdout/stderr (every command,
``designsim.cli.main``); ``review`` comment and JSON report
(``designsim.commands.review``); cassettes (``RecordingProvider.save``);
generated components (``designsim.kit.components``); the action's comment,
outputs, summary and report (``designsim.action.run``); batch log and files
(``designsim.batch``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

#: Environment variables whose values are always treated as secrets.
SECRET_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GITHUB_TOKEN")


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of :data:`SECRET_ENV_VARS` that are set."""
    env = os.environ if env is None else env
    return [v for k in SECRET_ENV_VARS if (v := env.get(k, ""))]


class Redactor:
    """Replaces every secret value with ``***``, longest first (so a secret that
    contains another is replaced whole), as written and URL-encoded (a key in a
    query string). Values shorter than 4 characters are ignored: replacing them
    would mangle ordinary text."""

    def __init__(self, values: Iterable[str]):
        base = {v for v in values if v and len(v) >= 4}
        self.values = sorted(base | {quote(v, safe="") for v in base}, key=len, reverse=True)

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


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with the values of :data:`SECRET_ENV_VARS` (from ``env``,
    default the process environment, read now) replaced by ``***``."""
    return Redactor(secrets_from_env(env))(text)


class RedactingStream:
    """A text stream that redacts each ``write`` before passing it on; every
    other attribute is the wrapped stream's. A secret split across two writes is
    not caught, so writers should write whole messages (``click.echo`` does)."""

    def __init__(self, inner: Any, redactor: Redactor):
        self._inner, self._redact = inner, redactor

    def write(self, text: str) -> int:
        self._inner.write(self._redact(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def redacting_streams(values: Iterable[str] | None = None) -> Iterator[Redactor]:
    """Redact ``sys.stdout`` and ``sys.stderr`` (secrets default: from the
    environment) while the block runs; yields the :class:`Redactor`. Nothing is
    wrapped when there is no secret to hide."""
    redactor = Redactor(secrets_from_env() if values is None else values)
    if not redactor.values:
        yield redactor
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(saved[0], redactor), RedactingStream(saved[1], redactor)
    try:
        yield redactor
    finally:
        sys.stdout, sys.stderr = saved
