"""Shared helpers for the batch tests (imported as ``batch_helpers``): prompt tables, the answer function the fakes
use, fast retry flags, and the legacy script's location (vendored unchanged: tests/fixtures/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
LEGACY_DIR = REPO / "tests" / "fixtures" / "legacy"
LEGACY_SCRIPT = LEGACY_DIR / "BETA_gemini-api-template.py"
STUB_DIR = Path(__file__).resolve().parent / "stub_genai"

#: CLI flags that keep retries and passes in milliseconds.
FAST = ["--rpm", "60000", "--concurrency", "8", "--retry-initial-delay", "0.01", "--retry-max-delay", "0.03",
        "--pass-delay", "0.01", "--progress-every", "3600"]


def answer(prompt: str) -> str:
    """What the fake Gemini answers: a function of the prompt, so a result
    attached to the wrong id is detectable."""
    return f"answer to <{prompt}>"


def prompts_frame(n: int, *, start: int = 1, extra: bool = True) -> pd.DataFrame:
    ids = list(range(start, start + n))
    frame = pd.DataFrame({"PROMPT_ID": ids, "PROMPT": [f"prompt number {i}" for i in ids]})
    if extra:
        frame["CW_THEME"] = [f"theme-{i % 3}" for i in ids]
        frame["CODEBASE"] = [f"repo{i}" for i in ids]
    return frame


@pytest.fixture
def key(monkeypatch) -> str:
    monkeypatch.setenv("GEMINI_API_KEY", "batch-test-key-not-secret")
    return "batch-test-key-not-secret"


@pytest.fixture
def legacy_script() -> Path:
    if not LEGACY_SCRIPT.is_file():
        pytest.fail(f"legacy script not found at {LEGACY_SCRIPT} (see tests/fixtures/SOURCES.md)")
    return LEGACY_SCRIPT
