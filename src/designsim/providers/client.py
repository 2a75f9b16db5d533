"""The one factory for google-genai clients: every Gemini caller builds its client here.

Two ways to authenticate, both through google-genai (never google-generativeai):

* **Gemini API key** (AI Studio): ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY``,
  or the ``gemini-api-key`` action input.
* **Vertex AI, keyless**: a Google Cloud project and location with
  Application Default Credentials (ADC), e.g. from ``google-github-actions/auth``
  with Workload Identity Federation, so no long-lived key sits in the repository.
  Chosen when a Vertex project is given (flag, action input ``vertex-project``,
  or ``GOOGLE_CLOUD_PROJECT`` with ``GOOGLE_GENAI_USE_VERTEXAI=true``, the SDK's
  own variables).

The settings are layered in one place, :func:`settings_from_env`:
explicit arguments (CLI flags, action inputs) > environment > defaults.

Redirection for tests and proxies: ``GOOGLE_GEMINI_BASE_URL`` (API-key mode) and
``GOOGLE_VERTEX_BASE_URL`` (Vertex mode) are the SDK's own variables; an explicit
``base_url`` wins over both. Behaviour checked against google-genai 3.6
(``_api_client.BaseApiClient.__init__``, read 2026-12-01): with a custom base URL
the Vertex client still prefixes ``projects/{p}/locations/{l}/`` and sends
``Authorization: Bearer <token>`` from the credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from designsim.errors import ConfigError

#: Vertex AI location used when a project is given without one. ``global`` serves
#: every Gemini 3 model (Vertex AI "Deployments and endpoints" page, read 2026-12-01).
DEFAULT_VERTEX_LOCATION = "global"
#: Per-request HTTP timeout when nothing else is said, in seconds.
DEFAULT_TIMEOUT_S = 300.0

_TRUE = {"1", "true", "yes", "on"}


class ClientSettings(BaseModel):
    """How to reach Gemini.

    ``api_key``: the Gemini API key (a :class:`SecretStr`, never printed);
    ``base_url``: an endpoint override (a test server or a proxy), ``None`` for
    Google's; ``timeout_s``: per-request HTTP timeout in seconds;
    ``vertex_project`` / ``vertex_location``: use Vertex AI with ADC instead of
    a key; ``credentials``: explicit ``google.auth`` credentials for Vertex AI
    (tests build one with a fixed access token; ``None`` means ADC).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    vertex_project: str | None = None
    vertex_location: str | None = None
    credentials: Any = Field(None, exclude=True, repr=False)

    @property
    def vertex(self) -> bool:
        """True when this talks to Vertex AI (a project is set)."""
        return bool(self.vertex_project)

    def describe(self) -> str:
        """A one-line, secret-free description: ``Gemini API (key)`` or ``Vertex AI project/location``."""
        if self.vertex:
            return f"Vertex AI {self.vertex_project}/{self.vertex_location or DEFAULT_VERTEX_LOCATION}"
        return "Gemini API (API key)" if self.api_key else "Gemini API (no key)"


def api_key_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The Gemini API key from ``GEMINI_API_KEY`` or else ``GOOGLE_API_KEY``."""
    env = os.environ if env is None else env
    return env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or None


def settings_from_env(
    env: Mapping[str, str] | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout_s: float | None = None,
    vertex_project: str | None = None,
    vertex_location: str | None = None,
    credentials: Any = None,
) -> ClientSettings:
    """Settings from explicit values (flags, action inputs) first, then ``env``.

    Environment read: ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``;
    ``GOOGLE_GENAI_USE_VERTEXAI`` with ``GOOGLE_CLOUD_PROJECT`` and
    ``GOOGLE_CLOUD_LOCATION`` (the SDK's names); ``GOOGLE_VERTEX_BASE_URL`` or
    ``GOOGLE_GEMINI_BASE_URL`` for the endpoint. An explicit Vertex project
    selects Vertex AI even when a key is also set (the key is then unused).
    Does not raise; :func:`build_client` checks that something authenticates.
    """
    env = os.environ if env is None else env
    project = vertex_project
    if not project and str(env.get("GOOGLE_GENAI_USE_VERTEXAI", "")).strip().lower() in _TRUE:
        project = env.get("GOOGLE_CLOUD_PROJECT") or None
    location = vertex_location or (env.get("GOOGLE_CLOUD_LOCATION") if project else None) or None
    if project:
        url = base_url or env.get("GOOGLE_VERTEX_BASE_URL") or None
        key = None
    else:
        url = base_url or env.get("GOOGLE_GEMINI_BASE_URL") or None
        key = api_key or api_key_from_env(env)
    return ClientSettings(
        api_key=SecretStr(key) if key else None,
        base_url=url,
        timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
        vertex_project=project,
        vertex_location=(location or DEFAULT_VERTEX_LOCATION) if project else None,
        credentials=credentials,
    )


def require_auth(settings: ClientSettings) -> None:
    """Raise :class:`ConfigError` (exit 2) when ``settings`` can authenticate neither way.

    The same error, naming the same remedies, in every command (review, grade,
    batch, action): a missing key is a configuration problem, not a quota.
    """
    if settings.vertex or settings.api_key:
        return
    raise ConfigError(
        "no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or use Vertex AI with a project "
        "(vertex-project input / GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT) and Application Default Credentials",
        field="GEMINI_API_KEY",
    )


def build_client(settings: ClientSettings):
    """A ``google.genai.Client`` for ``settings``.

    API-key mode: ``Client(api_key=…)``. Vertex AI mode: ``Client(vertexai=True,
    project=…, location=…, credentials=…)``; with ``credentials=None`` the SDK
    uses Application Default Credentials when the first request is made. The
    SDK's own retries stay off (one HTTP request per call): designsim retries
    itself, honouring the server's ``RetryInfo`` (python-genai #1875).

    Raises :class:`ConfigError` when nothing authenticates (see :func:`require_auth`).
    """
    from google import genai
    from google.genai import types

    require_auth(settings)
    http: dict[str, Any] = {"timeout": int(settings.timeout_s * 1000)}
    if settings.base_url:
        http["base_url"] = settings.base_url
    options = types.HttpOptions(**http)
    if settings.vertex:
        return genai.Client(
            vertexai=True,
            project=settings.vertex_project,
            location=settings.vertex_location or DEFAULT_VERTEX_LOCATION,
            credentials=settings.credentials,
            http_options=options,
        )
    assert settings.api_key is not None
    return genai.Client(api_key=settings.api_key.get_secret_value(), http_options=options)
