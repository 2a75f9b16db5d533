"""Shared fixtures. Nothing here reaches the network: Gemini is a local fake
server the real google-genai client talks to; GitHub is mocked with
``responses``; real payloads and diffs come from ../shared/realdata."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DESIGNSIM_SHARED", REPO.parent / "shared"))
REALDATA = SHARED / "realdata"


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch):
    """Tests never see a developer's real keys or tokens."""
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GITHUB_TOKEN", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION",
                "GOOGLE_VERTEX_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.fail(f"../shared/realdata not found at {REALDATA}; set DESIGNSIM_SHARED")
    return REALDATA


@pytest.fixture
def gemini_key(monkeypatch) -> str:
    """A dummy key so GeminiProvider can be built; it only ever reaches the fake server."""
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-not-secret")
    return "test-key-not-secret"
