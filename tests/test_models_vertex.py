"""Vertex AI, keyless (issue 10 item 6): the same provider through google-genai's
Vertex AI mode, against the local fake (GOOGLE_VERTEX_BASE_URL redirects it), with
credentials built offline — explicit ones, and Application Default Credentials
from a GOOGLE_APPLICATION_CREDENTIALS file whose token endpoint is the fake."""

from __future__ import annotations

import asyncio
import pytest
from google.oauth2.credentials import Credentials

from designsim.errors import ConfigError
from designsim.providers.base import GenerationRequest
from designsim.providers.client import ClientSettings, build_client, require_auth, settings_from_env
from designsim.providers.gemini import GeminiProvider
from designsim.testing import FakeGeminiServer, offline_adc_file, text_reply
from designsim.testing.fake_gemini import FAKE_ACCESS_TOKEN


def run(coro):
    return asyncio.run(coro)


def test_settings_layering_and_secret_free_repr(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "k-env")
    s = settings_from_env()
    assert s.api_key.get_secret_value() == "k-env" and not s.vertex and "k-env" not in repr(s)
    assert settings_from_env(api_key="k-flag").api_key.get_secret_value() == "k-flag"
    # a Vertex project selects Vertex AI (the key is then not used)
    v = settings_from_env(vertex_project="proj")
    assert v.vertex and v.api_key is None and v.vertex_location == "global"
    assert v.describe() == "Vertex AI proj/global"
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    e = settings_from_env()
    assert (e.vertex_project, e.vertex_location) == ("env-proj", "europe-west4")


def test_nothing_to_authenticate_with_is_exit_2():
    with pytest.raises(ConfigError) as info:
        require_auth(ClientSettings())
    assert info.value.exit_code == 2 and "vertex-project" in str(info.value)
    with pytest.raises(ConfigError):
        build_client(ClientSettings())


def test_vertex_mode_with_explicit_credentials_through_the_real_sdk():
    with FakeGeminiServer(lambda r: text_reply("from vertex", model_version="gemini-3.8-flash")) as server:
        settings = settings_from_env(vertex_project="my-proj", vertex_location="us-central1",
                                     credentials=Credentials(token="offline-token"))
        provider = GeminiProvider(settings=settings)
        done = run(provider.generate(GenerationRequest(prompt="hi", system="sys", thinking="low")))
        tokens = run(provider.count_tokens(GenerationRequest(prompt="count me", system="sys")))
    assert done.text == "from vertex" and done.model_version == "gemini-3.8-flash" and tokens > 0
    (gen,) = server.generate_requests()
    assert gen.vertex and (gen.project, gen.location, gen.model) == ("my-proj", "us-central1", "gemini-3.8-flash")
    assert gen.path.startswith("/v1beta1/projects/my-proj/locations/us-central1/publishers/google/models/")
    assert gen.headers.get("Authorization") == "Bearer offline-token"
    assert "x-goog-api-key" not in {k.lower() for k in gen.headers}
    assert gen.generation_config["thinkingConfig"] == {"thinkingLevel": "LOW"}
    assert all(r.vertex for r in server.requests)


def test_vertex_mode_with_application_default_credentials_offline(tmp_path, monkeypatch):
    """ADC as google-github-actions/auth leaves it: a credentials file named by
    GOOGLE_APPLICATION_CREDENTIALS. Here a service-account file (a key generated
    now) whose token_uri is the fake, so google-auth's own token exchange happens
    offline. (An authorized-user file would not do: google-auth always sends
    those to oauth2.googleapis.com.)"""
    with FakeGeminiServer(lambda r: text_reply("adc ok")) as server:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", offline_adc_file(tmp_path / "adc.json", server))
        provider = GeminiProvider(vertex_project="wif-proj", vertex_location="global")
        done = run(provider.generate(GenerationRequest(prompt="hi")))
    assert done.text == "adc ok"
    (token,) = [r for r in server.requests if r.path == "/token"]
    assert "grant_type=urn" in token.body["_raw"] and "assertion=" in token.body["_raw"]
    gen = server.generate_requests()[0]
    assert gen.project == "wif-proj" and gen.location == "global"
    assert gen.headers.get("Authorization") == f"Bearer {FAKE_ACCESS_TOKEN}"
