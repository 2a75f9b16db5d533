"""Shared fixtures. Nothing here reaches the network: Gemini is a local fake
server the real google-genai client talks to; GitHub is mocked with
``responses``; real payloads and diffs come from tests/fixtures/realdata
(vendored with their provenance: tests/fixtures/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
#: Real payloads, diffs and API descriptions, vendored from the workspace's shared/realdata.
REALDATA = FIXTURES / "realdata"


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch):
    """Tests never see a developer's real keys or tokens."""
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GITHUB_TOKEN", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.fail(f"vendored real data not found at {REALDATA} (see tests/fixtures/SOURCES.md)")
    return REALDATA


@pytest.fixture
def gemini_key(monkeypatch) -> str:
    """A dummy key so GeminiProvider can be built; it only ever reaches the fake server."""
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-not-secret")
    return "test-key-not-secret"
