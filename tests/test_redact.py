"""Secrets never reach what designsim writes: one redactor for logs, comments and files."""

from __future__ import annotations

import logging

from designsim.redact import RedactingFilter, Redactor, secrets_from_env


def test_redactor_replaces_longest_secret_first_and_ignores_tiny_values():
    redact = Redactor(["AIzaSy-secret", "AIzaSy-secret-longer", "ab", ""])
    assert redact("k=AIzaSy-secret-longer and AIzaSy-secret") == "k=*** and ***"
    assert redact("ab stays") == "ab stays"


def test_log_records_are_redacted_including_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-distinctive-key-123")
    assert secrets_from_env() == ["AIzaSy-distinctive-key-123"]
    logger = logging.getLogger("designsim.test.redact")
    handler = logging.FileHandler(tmp_path / "LOG.log", encoding="utf-8")
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("request failed: %s", "https://x/?key=AIzaSy-distinctive-key-123")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (tmp_path / "LOG.log").read_text()
    assert "AIzaSy-distinctive-key-123" not in text and "key=***" in text
