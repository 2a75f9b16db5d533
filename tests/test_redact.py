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


def test_url_encoded_secret_is_redacted_too():
    redact = Redactor(["key/with+chars="])
    assert redact("?key=key%2Fwith%2Bchars%3D and key/with+chars=") == "?key=*** and ***"


def test_redacting_streams_wrap_stdout_and_stderr_only_while_active(capsys):
    import sys

    from designsim.redact import redacting_streams

    with redacting_streams(["AIzaSy-stream-secret"]) as redactor:
        print("out AIzaSy-stream-secret")
        print("err AIzaSy-stream-secret", file=sys.stderr)
        assert redactor("AIzaSy-stream-secret") == "***"
    print("after")
    captured = capsys.readouterr()
    assert captured.out == "out ***\nafter\n" and captured.err == "err ***\n"


def test_no_secret_means_no_wrapping():
    import sys

    from designsim.redact import redacting_streams

    before = sys.stdout
    with redacting_streams([]):
        assert sys.stdout is before
