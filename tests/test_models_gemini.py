"""Issue 10 acceptance against the local Gemini stand-in, through the real
google-genai client: no temperature unless set, thinking levels, modelVersion,
404 → exit 2 naming the replacement, --estimate sends only countTokens, the
budget stops before a call, and rate / day / spend limits told apart."""

from __future__ import annotations

import asyncio
import json

import pytest

from designsim.cli import main
from designsim.errors import ModelUnavailable, QuotaExhausted, SpendCapReached, TransientProviderError
from designsim.providers.base import GenerationRequest
from designsim.providers.gemini import GeminiProvider
from designsim.providers.retry import RetryingProvider, RetryPolicy
from designsim.testing import FakeGeminiServer, error_reply, spend_cap_reply, text_reply

from reviewkit import default_handler

FAST = RetryPolicy(attempts=4, initial_delay_s=0.01, max_delay_s=0.05)
CURRENT = {"gemini-3.8-flash", "gemini-3.7-flash", "gemini-3.5-flash-lite", "gemini-3.1-pro-preview"}
DIFF = """\
diff --git a/app/save.py b/app/save.py
index 1111111..2222222 100644
--- a/app/save.py
+++ b/app/save.py
@@ -1,3 +1,4 @@
 def save(path, data):
-    open(path, "w").write(data)
+    with open(path, "w") as fh:
+        fh.write(data)
     return path
"""
RULEBOOK = """\
version: 1
name: tiny
scenario: A script saves a component file and then rewrites goal_map.json; a crash between the two leaves them out of step.
directive: Simulate how the proposed change fails and design the fix.
constraints:
  - id: C1
    text: goal_map.json must never be left half-written.
stages:
  - id: state
    title: State management
    focus: What if the process dies between the two writes?
    format: flaw
  - id: idem
    title: Idempotency
    focus: What happens when it runs twice?
    format: flaw
    depends_on: [state]
scorecard:
  attempts: 1
  grade_attempts: 1
output:
  format: pathways
  min_chars: 100
max_output_tokens: 2048
"""


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def files(tmp_path):
    def write(extra: str = "", *, model: str | None = None):
        text = RULEBOOK + extra + (f"model: {model}\n" if model else "")
        (tmp_path / "r.yml").write_text(text)
        (tmp_path / "c.diff").write_text(DIFF)
        return str(tmp_path / "r.yml"), str(tmp_path / "c.diff")

    return write


def test_no_temperature_sent_unless_the_rulebook_sets_one(gemini_key, files, tmp_path):
    rb, diff = files()
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md")])
    generates = server.generate_requests()
    assert generates, "the review called the model"
    assert all("temperature" not in r.generation_config for r in generates)  # stages and judge alike
    assert all("thinkingConfig" not in r.generation_config for r in generates)
    rb, diff = files("temperature: 1.0\n")
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md")])
    assert all(r.generation_config.get("temperature") == 1.0 for r in server.generate_requests())


def test_thinking_low_sends_thinking_level_and_stage_overrides(gemini_key, files, tmp_path):
    rb, diff = files("thinking: low\n")
    text = open(rb).read().replace("    format: flaw\n    depends_on: [state]", "    format: flaw\n    depends_on: [state]\n    thinking: high")
    open(rb, "w").write(text)
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md")])
    stage_levels = {}
    for r in server.generate_requests():
        if not r.wants_json:
            title = "Idempotency" if "# Your assignment: Idempotency" in r.prompt else "State management"
            stage_levels[title] = r.generation_config["thinkingConfig"]
    assert stage_levels == {"State management": {"thinkingLevel": "LOW"}, "Idempotency": {"thinkingLevel": "HIGH"}}


def test_thinking_on_a_25_model_is_a_budget(gemini_key):
    with FakeGeminiServer(lambda r: text_reply("ok")) as server:
        run(GeminiProvider(probe_models=False).generate(GenerationRequest(prompt="p", model="gemini-2.5-pro", thinking="high")))
    assert server.generate_requests()[0].generation_config["thinkingConfig"] == {"thinkingBudget": 32768}


def test_a_different_model_version_shows_in_the_json_report_and_comment(gemini_key, files, tmp_path):
    rb, diff = files()

    def handler(req):
        reply = default_handler(req)
        reply.body["modelVersion"] = "gemini-3.7-flash"  # rerouted
        return reply

    with FakeGeminiServer(handler, models=CURRENT):
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["answered_by"] == {"gemini-3.8-flash": ["gemini-3.7-flash"]}
    comment = (tmp_path / "c.md").read_text()
    assert "requested `gemini-3.8-flash`, answered by `gemini-3.7-flash`" in comment
    assert " cached)" in comment  # cached tokens are always shown


def test_same_model_version_is_not_a_substitution(gemini_key, files, tmp_path):
    rb, diff = files()

    def handler(req):
        reply = default_handler(req)
        reply.body["modelVersion"] = "gemini-3.8-flash-001"
        return reply

    with FakeGeminiServer(handler, models=CURRENT):
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())["answered_by"] == {}


def test_model_not_found_exits_2_after_at_most_two_requests_and_names_the_replacement(gemini_key, files, tmp_path, capsys):
    rb, diff = files(model="gemini-2.5-flash")
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        code = main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md")])
    err = capsys.readouterr().err
    assert code == 2
    assert "gemini-2.5-flash" in err and "use 'gemini-3.8-flash'" in err
    for_model = [r for r in server.requests if r.model == "gemini-2.5-flash"]
    assert 1 <= len(for_model) <= 2
    assert server.generate_requests() == []  # the countTokens probe found it missing: nothing generated


def test_retired_model_answering_503_is_a_config_error_after_two_requests(gemini_key):
    with FakeGeminiServer(lambda r: error_reply(503, "UNAVAILABLE", "The model is overloaded.")) as server:
        provider = RetryingProvider(GeminiProvider(probe_models=False), FAST)
        with pytest.raises(ModelUnavailable) as info:
            run(provider.generate(GenerationRequest(prompt="p", model="gemini-2.5-flash")))
    assert info.value.replacement == "gemini-3.8-flash" and info.value.exit_code == 2
    assert len(server.generate_requests()) == 2


def test_estimate_sends_only_count_tokens(gemini_key, files, capsys):
    rb, diff = files()
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        code = main(["review", "--rulebook", rb, "--diff", diff, "--estimate"])
    assert code == 0
    assert server.generate_requests() == [] and len(server.count_requests()) == 4  # 2 stages + 2 judge prompts
    data = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in data["stages"]] == ["state", "idem"]
    for s in data["stages"]:
        assert set(s) >= {"id", "input_tokens", "max_output_tokens", "estimated_usd"}
        assert s["max_output_tokens"] == 2048 + 4096 and s["estimated_usd"] > 0
    state, idem = data["stages"]
    assert idem["input_tokens"] > state["input_tokens"] + 2048 - 100  # idem receives state's output
    assert data["total_usd"] == pytest.approx(state["estimated_usd"] + idem["estimated_usd"])
    assert data["counted_by"] == "countTokens" and data["model"] == "gemini-3.8-flash"


def test_estimate_without_a_key_is_exit_2(files, capsys):
    rb, diff = files()
    assert main(["review", "--rulebook", rb, "--diff", diff, "--estimate"]) == 2
    assert "GEMINI_API_KEY" in capsys.readouterr().err


def test_estimate_markdown_for_the_step_summary(gemini_key, files):
    from designsim.estimate import estimate_step_summary
    from designsim.prompts import PromptLibrary
    from designsim.review import build_plan
    from designsim.rulebook import load_rulebook

    rb, diff = files("budget:\n  max_usd: 2.00\n")
    plan = build_plan(load_rulebook(rb), DIFF.encode(), library=PromptLibrary())
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        text = estimate_step_summary(plan, GeminiProvider())
    assert server.generate_requests() == []
    assert "| `state` |" in text and "**Total:**" in text and "Budget (hard cap): 2.00 USD" in text


def test_budget_max_tokens_smaller_than_one_stage_stops_before_that_call(gemini_key, files, tmp_path):
    rb, diff = files("budget:\n  max_tokens: 1000\n")
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        code = main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    assert code == 3  # inconclusive
    assert server.generate_requests() == []
    report = json.loads((tmp_path / "r.json").read_text())
    state = report["stages"][0]
    assert state["outcome"] == "inconclusive" and state["reason"].startswith("budget reached")
    assert report["stopped"] == "budget reached" and report["budget"]["spent_tokens"] == 0
    assert "stopped: budget reached" in report["summary"]
    assert "Stopped: budget reached. Spent 0 tokens" in (tmp_path / "c.md").read_text()


def test_budget_max_usd_lets_the_first_stage_run_and_stops_the_next(gemini_key, files, tmp_path):
    # one stage call's worst case at gemini-3.8-flash: ~2k prompt tokens + 2,048 out ≈ $0.01;
    # with the judge off, a cap of $0.012 admits the first call but not the second
    rb, diff = files("budget:\n  max_usd: 0.012\nscorecard:\n  judge: false\n  attempts: 1\n".replace("scorecard:\n  judge", "scorecard:\n  judge"))
    text = open(rb).read().replace("scorecard:\n  attempts: 1\n  grade_attempts: 1\n", "", 1)
    open(rb, "w").write(text)

    def handler(req):
        return text_reply("### Flaw Analysis\n" + "x " * 300, input_tokens=2000, output_tokens=2000)

    with FakeGeminiServer(handler, models=CURRENT) as server:
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(server.generate_requests()) == 1
    assert report["budget"]["spent_usd"] <= 0.012 and report["cost"] == pytest.approx(report["budget"]["spent_usd"])


def test_budget_in_usd_needs_a_price(gemini_key, files, capsys):
    rb, diff = files("budget:\n  max_usd: 1.0\n", model="gemini-3.5-flash-lite")
    with FakeGeminiServer(default_handler, models=CURRENT) as server:
        assert main(["review", "--rulebook", rb, "--diff", diff]) == 2
    assert "pricing" in capsys.readouterr().err and server.requests == []


def test_cost_uses_the_catalogue_and_counts_cached_and_thinking(gemini_key, files, tmp_path):
    rb, diff = files("scorecard:\n  judge: false\n")
    text = open(rb).read().replace("scorecard:\n  attempts: 1\n  grade_attempts: 1\n", "", 1)
    open(rb, "w").write(text)

    def handler(req):
        return text_reply("short", input_tokens=1_000_000, output_tokens=100_000, cached_tokens=500_000, thinking_tokens=100_000)

    with FakeGeminiServer(handler, models=CURRENT):
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    usage = report["usage"]
    calls = usage["input_tokens"] // 1_000_000
    assert usage["cached_tokens"] == 500_000 * calls and usage["thinking_tokens"] == 100_000 * calls
    # per call: 500k fresh at 0.75 + 500k cached at 0.075 + 200k output (thinking included) at 3.75
    assert report["cost"] == pytest.approx(calls * (0.375 + 0.0375 + 0.75)) and report["currency"] == "USD"
    assert f"({500_000 * calls:,} cached)" in (tmp_path / "c.md").read_text()


def test_per_minute_429_waits_for_the_hint_day_stops_spend_cap_named(gemini_key):
    minute = error_reply(429, "RESOURCE_EXHAUSTED", "quota", retry_delay="0.3s", quota_id="GenerateRequestsPerMinutePerProjectPerModel")
    replies = [minute, text_reply("ok")]
    with FakeGeminiServer(lambda r: replies.pop(0)) as server:
        done = run(RetryingProvider(GeminiProvider(probe_models=False), FAST).generate(GenerationRequest(prompt="p")))
    first, second = server.generate_requests()
    assert done.text == "ok" and second.started - first.finished >= 0.25

    with FakeGeminiServer(lambda r: spend_cap_reply("600s")) as server:
        with pytest.raises(QuotaExhausted) as info:
            run(RetryingProvider(GeminiProvider(probe_models=False), FAST).generate(GenerationRequest(prompt="p")))
    assert info.value.reason == "spend-cap" and "spend cap" in str(info.value)
    assert len(server.generate_requests()) == 1  # a review does not sit out a 10-minute window

    replies = [spend_cap_reply("0.2s"), text_reply("ok")]
    patient = RetryPolicy(attempts=3, initial_delay_s=0.01, max_delay_s=0.05, max_spend_cap_wait_s=1.0)
    with FakeGeminiServer(lambda r: replies.pop(0)) as server:
        assert run(RetryingProvider(GeminiProvider(probe_models=False), patient).generate(GenerationRequest(prompt="p"))).text == "ok"
    first, second = server.generate_requests()
    assert second.started - first.finished >= 0.15


def test_spend_cap_is_its_own_error_class(gemini_key):
    with FakeGeminiServer(lambda r: spend_cap_reply("30s")):
        with pytest.raises(SpendCapReached) as info:
            run(GeminiProvider(probe_models=False).generate(GenerationRequest(prompt="p")))
    assert isinstance(info.value, TransientProviderError) and info.value.retry_delay == 30.0


def test_daily_quota_in_a_review_is_named_in_the_summary(gemini_key, files, tmp_path):
    rb, diff = files()
    day = error_reply(429, "RESOURCE_EXHAUSTED", "quota", quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    with FakeGeminiServer(lambda r: day, models=CURRENT):
        code = main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 3 and report["stopped"].startswith("daily quota reached")
    assert "stopped: daily quota reached" in report["summary"]


def test_spend_cap_in_a_review_stops_it_with_that_reason(gemini_key, files, tmp_path):
    rb, diff = files()
    with FakeGeminiServer(lambda r: spend_cap_reply("600s"), models=CURRENT) as server:
        code = main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 3 and report["stopped"].startswith("10-minute spend cap reached")
    assert len(server.generate_requests()) == 1  # stopped, not retried and not sent again by the next stage
    assert "Stopped: 10-minute spend cap reached" in (tmp_path / "c.md").read_text()


def test_recorded_model_version_replays(gemini_key, files, tmp_path):
    rb, diff = files()

    def handler(req):
        reply = default_handler(req)
        reply.body["modelVersion"] = "gemini-3.7-flash"
        return reply

    cassette = tmp_path / "run.json"
    with FakeGeminiServer(handler, models=CURRENT):
        main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c.md"), "--record", str(cassette)])
    assert {i["model_version"] for i in json.loads(cassette.read_text())["interactions"]} == {"gemini-3.7-flash"}
    main(["review", "--rulebook", rb, "--diff", diff, "--out", str(tmp_path / "c2.md"), "--json-out", str(tmp_path / "r.json"),
          "--provider", "replay", "--cassette", str(cassette)])
    assert json.loads((tmp_path / "r.json").read_text())["answered_by"] == {"gemini-3.8-flash": ["gemini-3.7-flash"]}
