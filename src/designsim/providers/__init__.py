"""Model providers: one small seam (:class:`Provider`) that both flows talk to.

* :mod:`designsim.providers.gemini` — Google Gemini through google-genai.
* :mod:`designsim.providers.replay` — plays recorded completions from a cassette.
* :class:`designsim.testing.FakeProvider` — scripted, for tests.
* :mod:`designsim.providers.retry` — retry policy keyed on our error classes.
"""

from designsim.providers.base import Completion, GenerationRequest, Provider, Usage

__all__ = ["Completion", "GenerationRequest", "Provider", "Usage", "make_provider"]


def make_provider(name: str, *, model: str | None = None, cassette: str | None = None, **kwargs) -> Provider:
    """Build a provider by CLI name: ``gemini`` or ``replay`` (needs ``cassette``).

    Raises :class:`designsim.errors.ConfigError` for an unknown name or a
    missing cassette, :class:`designsim.errors.QuotaExhausted` when ``gemini``
    has no API key.
    """
    from designsim.errors import ConfigError

    if name == "gemini":
        from designsim.providers.gemini import GeminiProvider
        from designsim.providers.retry import RetryingProvider

        return RetryingProvider(GeminiProvider(default_model=model, **kwargs))
    if name == "replay":
        if not cassette:
            raise ConfigError("--provider replay needs --cassette FILE", field="cassette")
        from designsim.providers.replay import ReplayProvider

        return ReplayProvider.from_file(cassette)
    raise ConfigError(f"unknown provider {name!r}; expected 'gemini' or 'replay'", field="provider")
