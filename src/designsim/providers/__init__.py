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

    Raises :class:`designsim.errors.ConfigError` (exit 2) for an unknown name,
    a missing cassette, or ``gemini`` with neither an API key nor a Vertex AI
    project. ``kwargs`` go to :class:`~designsim.providers.gemini.GeminiProvider`
    (``api_key``, ``timeout_s``, ``settings``, ``vertex_project``, ``vertex_location``).
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
