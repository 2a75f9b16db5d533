"""The designsim error tree.

Every failure the tool reports is one of these classes; lower-level exceptions
(google-genai's ``APIError``, PyGithub's ``GithubException``, YAML and pydantic
errors) are translated once, at one boundary each, with ``raise ... from exc``::

    DesignsimError                      base; carries an exit code for the CLI
    ├── ConfigError                     bad rulebook, flag, input file (exit 2)
    ├── ProviderError                   anything from the model service (exit 3)
    │   ├── TransientProviderError      429/500/503/504, timeouts, resets: retry
    │   ├── PermanentProviderError      400, blocked prompt, safety stop: don't
    │   │   └── TruncatedReply          finishReason MAX_TOKENS
    │   └── QuotaExhausted              daily quota or missing key: stop the run
    └── GitHubError                     GitHub API failure after retries

Retry policy is keyed on these classes only (see ``designsim.providers.retry``),
never on SDK exception types.
"""

from __future__ import annotations


class DesignsimError(Exception):
    """Base class of every error designsim raises on purpose.

    ``exit_code`` is what the CLI exits with when this error reaches it.
    """

    exit_code = 1


class ConfigError(DesignsimError):
    """Bad input or configuration: a rulebook, a flag, an input table.

    ``source`` names where it came from as ``file:line:column`` when known, and
    ``field`` the dotted field path (``stages.1.depends_on``).
    """

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        prefix = f"{source}: " if source else ""
        where = f"{field}: " if field else ""
        super().__init__(f"{prefix}{where}{message}")


class ProviderError(DesignsimError):
    """The model service failed. ``status`` is the HTTP status (0 if none),
    ``reason`` a short machine-readable reason (``"504"``, ``"blocked:SAFETY"``)."""

    exit_code = 3

    def __init__(self, message: str, *, status: int = 0, reason: str = "", retry_delay: float | None = None):
        self.status = status
        self.reason = reason or (str(status) if status else "error")
        #: Seconds the server asked us to wait (google.rpc.RetryInfo.retryDelay), if any.
        self.retry_delay = retry_delay
        super().__init__(message)


class TransientProviderError(ProviderError):
    """May succeed if sent again later: 429 (not daily), 500, 503, 504, timeouts, resets."""


class PermanentProviderError(ProviderError):
    """Will fail the same way if re-sent: 400/401/403/404, a blocked prompt, a safety stop."""


class TruncatedReply(PermanentProviderError):
    """The reply stopped at the output-token limit (``finishReason: MAX_TOKENS``)."""


class QuotaExhausted(ProviderError):
    """A quota that will not refill within this run (a ``PerDay`` quota id), or no
    API key at all. Runs stop cleanly and stay resumable."""


class GitHubError(DesignsimError):
    """A GitHub REST call failed after retries. ``status`` is the HTTP status."""

    exit_code = 3

    def __init__(self, message: str, *, status: int = 0):
        self.status = status
        super().__init__(message)
