"""Issue 11 item 5, batch part: no key reaches journal.jsonl, results.parquet,
summary.json, RESULTS.pkl, LOG.log or stderr, even when an error body echoes
it; for GEMINI_API_KEY, GOOGLE_API_KEY and GITHUB_TOKEN from the environment,
and for a key passed to the Python entry point as an argument."""

from __future__ import annotations

import pandas as pd
import pytest

from designsim.batch.runner import RunOptions, run_batch
from designsim.cli import main
from designsim.providers.retry import RetryPolicy
from designsim.testing import FakeGeminiServer, error_reply, text_reply

SECRETS = {
    "GEMINI_API_KEY": "AIzaSy-batch-gemini-secret-0123456789",
    "GOOGLE_API_KEY": "AIzaSy-batch-google-secret-9876543210",
    "GITHUB_TOKEN": "ghs_batch-github-token-secret-abcdef",
}
ARGUMENT_KEY = "AIzaSy-passed-as-an-argument-424242"


def _echo(req):
    """A leaky upstream: every secret in the error body, permanent for odd ids, transient for even."""
    every = " ".join([*SECRETS.values(), ARGUMENT_KEY])
    n = int(req.prompt.rsplit(" ", 1)[1])
    if n % 3 == 0:
        return text_reply(f"answer {n}")
    if n % 2:
        return error_reply(400, "INVALID_ARGUMENT", f"API key not valid: {every} url=https://x/?key={every}")
    return error_reply(503, "UNAVAILABLE", f"overloaded for key {every}")


def _files(out):
    texts = {}
    for name in ("journal.jsonl", "summary.json", "LOG.log"):
        texts[name] = (out / name).read_text()
    texts["results.parquet"] = pd.read_parquet(out / "results.parquet").to_json()
    texts["RESULTS.pkl"] = (out / "RESULTS.pkl").read_bytes().decode("latin-1")
    return texts


def _assert_clean(texts: dict[str, str], values):
    for where, text in texts.items():
        for value in values:
            assert value not in text, f"a secret reached {where}"


@pytest.fixture
def table(tmp_path):
    pd.DataFrame({"PROMPT_ID": range(1, 9), "PROMPT": [f"prompt number {i}" for i in range(1, 9)]}).to_pickle(tmp_path / "in.pkl")
    return tmp_path / "in.pkl"


def test_no_environment_secret_reaches_any_batch_output(tmp_path, table, monkeypatch, capsys):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with FakeGeminiServer(_echo):
        rc = main(["batch", "run", "--input", str(table), "--out", str(tmp_path / "out"), "--rpm", "60000",
                   "--request-attempts", "2", "--retry-initial-delay", "0.01", "--retry-max-delay", "0.02",
                   "--pass-delay", "0.01", "--progress-every", "3600"])
    assert rc == 1
    captured = capsys.readouterr()
    texts = _files(tmp_path / "out")
    assert "overloaded for key" in texts["journal.jsonl"] and "***" in texts["journal.jsonl"]  # the error is kept, redacted
    _assert_clean({**texts, "stdout": captured.out, "stderr": captured.err}, SECRETS.values())


def test_a_key_passed_as_an_argument_is_redacted_too(tmp_path, table, monkeypatch, capsys):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    options = RunOptions(rpm=60_000, policy=RetryPolicy(attempts=2, initial_delay_s=0.01, max_delay_s=0.02),
                         pass_delay_s=0.01, progress_every_s=3600)
    with FakeGeminiServer(_echo) as server:
        result = run_batch(table, tmp_path / "out", options=options, api_key=ARGUMENT_KEY)
        assert server.generate_requests()[0].headers.get("x-goog-api-key") == ARGUMENT_KEY  # it was used
    assert result.exit_code == 1
    captured = capsys.readouterr()
    _assert_clean({**_files(tmp_path / "out"), "stderr": captured.err, "stdout": captured.out}, [ARGUMENT_KEY])
