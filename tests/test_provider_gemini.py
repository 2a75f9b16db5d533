"""The Gemini provider, driven through the real google-genai client against
the local fake server (no SDK patching)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from designsim.errors import ConfigError, PermanentProviderError, QuotaExhausted, TransientProviderError, TruncatedReply
from designsim.providers.base import GenerationRequest
from designsim.providers.gemini import GeminiProvider, parse_duration
from designsim.providers.retry import RetryingProvider, RetryPolicy
from designsim.testing import FakeGeminiServer, blocked_reply, error_reply, text_reply

FAST = RetryPolicy(attempts=4, initial_delay_s=0.01, max_delay_s=0.05)


def run(coro):
    return asyncio.run(coro)


def test_one_user_turn_system_instruction_and_usage(gemini_key):
    with FakeGeminiServer(lambda r: text_reply("hello", input_tokens=12, output_tokens=3)) as server:
        provider = GeminiProvider(default_model="gemini-3.8-flash")
        done = run(provider.generate(GenerationRequest(prompt="hi there", system="be brief", temperature=0.2)))
    assert done.text == "hello"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (12, 3)
    (req,) = server.generate_requests()
    assert req.user_turns == 1 and len(req.contents) == 1
    assert req.prompt == "hi there" and req.system == "be brief"
    assert req.model == "gemini-3.8-flash"
    assert done.model_version == "gemini-3.8-flash"
    assert req.headers.get("x-goog-api-key") == gemini_key


def test_504_then_success_is_retried(gemini_key):
    replies = [error_reply(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), text_reply("ok")]
    with FakeGeminiServer(lambda r: replies.pop(0)) as server:
        provider = RetryingProvider(GeminiProvider(), FAST)
        done = run(provider.generate(GenerationRequest(prompt="p")))
    assert done.text == "ok" and done.attempts == 2 and provider.retries == 1
    assert len(server.generate_requests()) == 2


def test_429_retry_delay_is_honoured(gemini_key):
    replies = [error_reply(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", retry_delay="0.6s",
                           quota_id="GenerateContentInputTokensPerModelPerMinute-FreeTier"), text_reply("ok")]
    with FakeGeminiServer(lambda r: replies.pop(0)) as server:
        provider = RetryingProvider(GeminiProvider(), FAST)
        run(provider.generate(GenerationRequest(prompt="p")))
    first, second = server.generate_requests()
    # the fixed backoff would be <= 0.05 s; the server asked for 0.6 s
    assert second.started - first.finished >= 0.55


def test_daily_quota_fails_fast(gemini_key):
    reply = error_reply(429, "RESOURCE_EXHAUSTED", "quota", retry_delay="30s", quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    with FakeGeminiServer(lambda r: reply) as server:
        provider = RetryingProvider(GeminiProvider(), FAST)
        with pytest.raises(QuotaExhausted, match="daily"):
            run(provider.generate(GenerationRequest(prompt="p")))
    assert len(server.generate_requests()) == 1


def test_blocked_prompt_is_permanent_failure(gemini_key):
    with FakeGeminiServer(lambda r: blocked_reply("SAFETY")) as server:
        provider = RetryingProvider(GeminiProvider(), FAST)
        with pytest.raises(PermanentProviderError) as info:
            run(provider.generate(GenerationRequest(prompt="p")))
    assert info.value.reason == "blocked:SAFETY"
    assert len(server.generate_requests()) == 1


def test_truncated_reply_is_a_failure(gemini_key):
    with FakeGeminiServer(lambda r: text_reply("half an ans", finish_reason="MAX_TOKENS")):
        with pytest.raises(TruncatedReply):
            run(GeminiProvider().generate(GenerationRequest(prompt="p")))


def test_transient_errors_exhaust_attempts(gemini_key):
    with FakeGeminiServer(lambda r: error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")) as server:
        provider = RetryingProvider(GeminiProvider(), FAST)
        with pytest.raises(TransientProviderError) as info:
            run(provider.generate(GenerationRequest(prompt="p")))
    assert info.value.status == 503 and info.value.attempts == 4
    assert provider.retries == 3  # 4 tries = 3 retries (not 4: no retry after the last try)
    assert len(server.generate_requests()) == 4


def test_timeout_is_transient(gemini_key):
    from designsim.testing import FakeReply

    with FakeGeminiServer(lambda r: FakeReply(delay_s=1.0, body=text_reply("late").body)):
        provider = GeminiProvider(timeout_s=0.3)
        with pytest.raises(TransientProviderError) as info:
            run(provider.generate(GenerationRequest(prompt="p")))
    assert info.value.reason in {"timeout", "connection", "500"}


def test_bad_api_key_is_not_retried(gemini_key, realdata):
    import json

    body = json.loads((realdata / "gemini/firebase-vertexai-sdk-test-data/googleai/unary-failure-api-key.json").read_text())
    from designsim.testing import FakeReply

    with FakeGeminiServer(lambda r: FakeReply(400, body)) as server:
        with pytest.raises(PermanentProviderError, match="refused") as info:
            run(RetryingProvider(GeminiProvider(), FAST).generate(GenerationRequest(prompt="p")))
    assert info.value.reason == "auth" and not isinstance(info.value, QuotaExhausted)
    assert len(server.generate_requests()) == 1


@pytest.mark.parametrize("code,status", [(401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED")])
def test_401_403_are_permanent_not_quota(gemini_key, code, status):
    with FakeGeminiServer(lambda r: error_reply(code, status, "Method doesn't allow unregistered callers.")) as server:
        with pytest.raises(PermanentProviderError) as info:
            run(RetryingProvider(GeminiProvider(), FAST).generate(GenerationRequest(prompt="p")))
    assert info.value.reason == "auth" and info.value.status == code
    assert not isinstance(info.value, QuotaExhausted)
    assert len(server.generate_requests()) == 1


def test_json_response_schema_parsed(gemini_key):
    class Verdict(BaseModel):
        passed: bool
        reason: str

    with FakeGeminiServer(lambda r: {"passed": True, "reason": "fine"}) as server:
        done = run(GeminiProvider().generate(GenerationRequest(prompt="grade", response_schema=Verdict)))
    assert done.parsed == {"passed": True, "reason": "fine"}
    assert server.generate_requests()[0].wants_json


def test_missing_key_is_a_config_error(monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="GEMINI_API_KEY") as info:
        GeminiProvider()
    assert info.value.exit_code == 2


def test_parse_duration():
    assert parse_duration("26s") == 26.0
    assert parse_duration("45.837906927s") == pytest.approx(45.837906927)
    assert parse_duration("soon") is None
