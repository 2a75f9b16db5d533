"""The designsim error tree.

Every failure the tool reports is one of these classes; lower-level exceptions
(google-genai's ``APIError``, PyGithub's ``GithubException``, YAML and pydantic
errors) are translated once, at one boundary each, with ``raise ... from exc``::

    DesignsimError                      base; carries an exit code for the CLI
    ├── ConfigError                     bad rulebook, flag, input file, missing key (exit 2)
    │   └── ModelUnavailable            the model id is not found / retired: names the replacement
    ├── ProviderError                   anything from the model service (exit 3)
    │   ├── TransientProviderError      429 per-minute/500/503/504, timeouts, resets: retry
    │   │   └── SpendCapReached         429 from a 10-minute spend cap: wait, or stop (reason spend-cap)
    │   ├── PermanentProviderError      400, 401/403 (reason auth), blocked prompt, safety stop: don't
    │   │   └── TruncatedReply          finishReason MAX_TOKENS
    │   ├── QuotaExhausted              daily quota, spend cap outlasting the run: stop, resumable
    │   └── BudgetExhausted             the rulebook's budget would be crossed: no call made
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


class ModelUnavailable(ConfigError):
    """The model id is not served: a 404 NOT_FOUND for the model, or a model the
    catalogue lists as retired failing twice. A configuration problem (exit 2),
    raised after at most two requests for that model. ``model`` is the id asked
    for, ``replacement`` the catalogue's suggestion."""

    def __init__(self, model: str, replacement: str, *, detail: str = ""):
        self.model = model
        self.replacement = replacement
        self.detail = detail
        tail = f" ({detail})" if detail else ""
        super().__init__(f"model {model!r} is not available (not found or retired); use {replacement!r} instead "
                         f"(set `model:` in the rulebook or pass --model){tail}", field="model")


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


class SpendCapReached(TransientProviderError):
    """A 429 from a spend cap (Gemini's per-10-minute spend limits). Retried after
    the server's hint when the retry policy allows that long a wait; otherwise
    the run stops with reason ``spend-cap`` (see ``designsim.providers.retry``)."""


class PermanentProviderError(ProviderError):
    """Will fail the same way if re-sent: 400, 401/403 (``reason="auth"``: the key or
    the Vertex AI credentials were refused), a blocked prompt, a safety stop."""


class TruncatedReply(PermanentProviderError):
    """The reply stopped at the output-token limit (``finishReason: MAX_TOKENS``)."""


class QuotaExhausted(ProviderError):
    """A quota that will not refill within this run: a ``PerDay`` quota id
    (``reason="quota:daily"``) or a spend cap longer than the run may wait
    (``reason="spend-cap"``). Runs stop cleanly and stay resumable. (A missing
    key is a :class:`ConfigError`, exit 2, in every command.)"""


class BudgetExhausted(ProviderError):
    """The rulebook's ``budget`` (``max_usd`` / ``max_tokens``) would be crossed by
    the next call's worst case (prompt plus its maximum output), so the call was
    not made. ``spent_usd`` / ``spent_tokens`` say what was spent before it."""

    def __init__(self, message: str, *, spent_usd: float = 0.0, spent_tokens: int = 0):
        self.spent_usd = spent_usd
        self.spent_tokens = spent_tokens
        super().__init__(message, reason="budget")


class GitHubError(DesignsimError):
    """A GitHub REST call failed after retries. ``status`` is the HTTP status."""

    exit_code = 3

    def __init__(self, message: str, *, status: int = 0):
        self.status = status
        super().__init__(message)


#: How each limit is named in summaries (one name per limit; issue 10 item 5).
LIMIT_NAMES = {
    "quota:daily": "daily quota reached (resumable: re-run after the quota resets)",
    "spend-cap": "10-minute spend cap reached (resumable: re-run later)",
    "budget": "budget reached",
    "rate:minute": "per-minute rate limit",
}


def limit_reason(exc: ProviderError) -> str:
    """The summary's name for the limit behind ``exc`` (``daily quota reached``,
    ``10-minute spend cap reached``, ``budget reached``…), else ``model quota exhausted (reason)``."""
    return LIMIT_NAMES.get(exc.reason, f"model quota exhausted ({exc.reason})")
