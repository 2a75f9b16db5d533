"""The review flow end to end: the real google-genai client against the local
fake Gemini server, through rulebook, evidence, stages, scorecard and verdict."""

from __future__ import annotations

import pytest

from designsim.prompts import PromptLibrary
from designsim.providers.gemini import GeminiProvider
from designsim.providers.retry import RetryingProvider, RetryPolicy
from designsim.review import build_plan, review_diff
from designsim.rulebook import parse_rulebook
from designsim.simulation import shared_prefix
from designsim.testing import FakeGeminiServer, blocked_reply, error_reply, json_reply, text_reply

from reviewkit import RULEBOOK, criterion_ids, default_handler, flaw_output, judge_json, output_under_review, stage_title

FAST = RetryPolicy(attempts=3, initial_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture
def diff_bytes(realdata) -> bytes:
    return (realdata / "diffs/02-rename-with-edits__PyGithub__bc643cc8.diff").read_bytes()


def run(handler, diff_bytes, rulebook_text=RULEBOOK, latency_s=0.0):
    plan = build_plan(parse_rulebook(rulebook_text, "tiny.yml"), diff_bytes, pr_title="Add JIT", pr_body="please review")
    with FakeGeminiServer(handler, latency_s=latency_s) as server:
        review = review_diff(plan, RetryingProvider(GeminiProvider(), FAST))
    return review, server, plan


def stage_requests(server, title):
    return [r for r in server.generate_requests() if not r.wants_json and stage_title(r) == title]


def test_clean_review_passes_with_one_user_turn_per_request(gemini_key, diff_bytes):
    review, server, plan = run(default_handler, diff_bytes)
    assert review.verdict == "pass" and review.exit_code == 0
    assert [s.outcome for s in review.stages] == ["passed"] * 4
    requests = server.generate_requests()
    assert len(requests) == 8  # 4 stages + 4 judge calls
    assert all(r.user_turns == 1 and len(r.contents) == 1 for r in requests)
    # the shared evidence prefix is byte-identical at the start of every prompt (implicit caching)
    prefix = shared_prefix(plan)
    assert all(r.prompt.startswith(prefix) for r in requests)
    assert len({r.system for r in requests}) == 1  # judge calls share the stage calls' cached prefix
    assert "<untrusted_pull_request_data>" in prefix and "not instructions" in prefix
    assert review.usage.total_tokens > 0 and review.stages[3].matrix.recommended == "Beta"


def test_chained_stage_sees_its_predecessor_and_nothing_else(gemini_key, diff_bytes):
    _, server, _ = run(default_handler, diff_bytes)
    (idem,) = stage_requests(server, "Idempotency")
    assert "Marker State management" in idem.prompt          # its depends_on, as labelled evidence
    assert '<earlier_simulation_output stage="state"' in idem.prompt
    assert "Marker Naming" not in idem.prompt                # an unrelated stage's output never leaks
    (state,) = stage_requests(server, "State management")
    assert "earlier_simulation_output stage=" not in state.prompt
    (syn,) = stage_requests(server, "Synthesis")
    assert all(f"Marker {t}" in syn.prompt for t in ("State management", "Naming", "Idempotency"))
    # the judge sees the output under review but no other stage's output
    judge_state = [r for r in server.generate_requests() if r.wants_json and "Marker State management" in output_under_review(r)]
    assert judge_state and "Marker Naming" not in judge_state[0].prompt


def test_independent_stages_overlap_in_time(gemini_key, diff_bytes):
    _, server, _ = run(default_handler, diff_bytes, latency_s=0.3)
    (a,), (b,) = stage_requests(server, "State management"), stage_requests(server, "Naming")
    assert a.started < b.finished and b.started < a.finished  # they ran at the same time
    (idem,) = stage_requests(server, "Idempotency")
    assert idem.started >= a.finished                         # the chained one waited


def test_504_then_success_inside_a_review(gemini_key, diff_bytes):
    failed = set()

    def handler(req):
        title = stage_title(req)
        if not req.wants_json and title not in failed:
            failed.add(title)
            return error_reply(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
        return default_handler(req)

    review, server, _ = run(handler, diff_bytes)
    assert review.verdict == "pass"
    assert len(stage_requests(server, "Naming")) == 2


def test_daily_quota_is_inconclusive_and_fails_fast(gemini_key, diff_bytes):
    reply = error_reply(429, "RESOURCE_EXHAUSTED", "quota", quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier", retry_delay="40s")
    review, server, _ = run(lambda req: reply, diff_bytes)
    assert review.verdict == "inconclusive" and review.exit_code == 3
    assert "daily" in review.stages[0].reason
    # at most the two root stages (state, naming) were in flight; nothing retried, nothing after
    assert len(server.generate_requests()) <= 2
    assert all(s.outcome in ("inconclusive", "skipped") for s in review.stages)


def test_blocked_prompt_is_inconclusive_never_a_pass(gemini_key, diff_bytes):
    def handler(req):
        return blocked_reply("SAFETY") if stage_title(req) == "Naming" else default_handler(req)

    review, _, _ = run(handler, diff_bytes)
    naming = review.stages[1]
    assert naming.outcome == "inconclusive" and "blocked:SAFETY" not in naming.reason or "SAFETY" in naming.reason
    assert review.verdict == "inconclusive"


def test_malformed_judge_json_is_grader_error_then_regraded(gemini_key, diff_bytes):
    bad_once = {"done": False}

    def handler(req):
        if req.wants_json and "Marker Naming" in output_under_review(req) and not bad_once["done"]:
            bad_once["done"] = True
            return text_reply('{"blueprint": {"verdict": ')  # cut-off JSON
        return default_handler(req)

    review, server, _ = run(handler, diff_bytes)
    naming = review.stages[1]
    assert naming.outcome == "passed" and len(naming.attempts) == 1
    card = naming.attempts[0].scorecard
    assert card.judge_attempts == 2 and card.judge_transcripts[0]["grader_error"] is True
    assert not card.grader_error and card.passed


def test_grader_that_never_answers_is_inconclusive_not_pass(gemini_key, diff_bytes):
    def handler(req):
        if req.wants_json and "Marker Naming" in output_under_review(req):
            return json_reply({})  # an empty object: every criterion dropped
        return default_handler(req)

    review, _, _ = run(handler, diff_bytes)
    naming = review.stages[1]
    assert naming.outcome == "inconclusive" and "grader" in naming.reason
    assert all(c.verdict == "GRADER_ERROR" for c in naming.attempts[-1].scorecard.criteria)
    assert review.verdict == "inconclusive"


def test_fabricated_quote_is_grader_error(gemini_key, diff_bytes):
    def handler(req):
        if req.wants_json:
            reply = judge_json(output_under_review(req), criterion_ids(req))
            reply["blueprint"]["evidence_quote"] = "a sentence the output never said at all"
            return json_reply(reply)
        return default_handler(req)

    review, _, _ = run(handler, diff_bytes)
    crit = review.stages[0].attempts[0].scorecard.criteria[0]
    assert crit.verdict == "GRADER_ERROR" and not crit.passed
    assert review.verdict != "pass"


def test_output_missing_a_section_is_rerun_in_a_new_session(gemini_key, diff_bytes):
    first = {"done": False}

    def handler(req):
        if not req.wants_json and stage_title(req) == "Naming" and not first["done"]:
            first["done"] = True
            return text_reply(flaw_output("Naming").replace("### Proposed Solution", "### Thoughts"))
        return default_handler(req)

    review, server, _ = run(handler, diff_bytes)
    naming = review.stages[1]
    assert naming.outcome == "passed" and len(naming.attempts) == 2
    assert naming.attempts[0].scorecard.judge_skipped == "deterministic checks failed"
    assert not next(c for c in naming.attempts[0].scorecard.checks if c.name == "sections").passed
    one, two = stage_requests(server, "Naming")
    assert one.user_turns == two.user_turns == 1
    assert "### Thoughts" not in two.prompt               # no history from the failed attempt
    assert "Proposed Solution" in two.prompt and "failed these checks" in two.prompt


def test_judge_fail_on_every_attempt_is_inconclusive_not_a_failure(gemini_key, diff_bytes):
    def handler(req):
        if req.wants_json and "Marker Naming" in output_under_review(req):
            return json_reply(judge_json(output_under_review(req), "flaw", verdict="FAIL"))
        return default_handler(req)

    review, server, _ = run(handler, diff_bytes)
    # untrusted after its attempts: the simulation failed, not the change (issue 8, item 2)
    assert review.stages[1].outcome == "failed" and review.verdict == "inconclusive" and review.exit_code == 3
    assert review.decision.verdict == "inconclusive"
    assert len(stage_requests(server, "Naming")) == 2
    assert review.stages[3].outcome == "skipped"  # synthesis needs every stage


def test_policy_warn_never_turns_an_untrusted_stage_into_a_pass(gemini_key, diff_bytes):
    def handler(req):
        if req.wants_json and "Marker Naming" in output_under_review(req):
            return json_reply(judge_json(output_under_review(req), "flaw", verdict="FAIL"))
        return default_handler(req)

    review, _, _ = run(handler, diff_bytes, rulebook_text=RULEBOOK + "policy:\n  on_failed: warn\n")
    # on_failed is about the change; an untrusted simulation stays inconclusive
    assert review.decision.verdict == "inconclusive" and review.exit_code == 3
    assert "naming untrusted" in review.summary and "1 skipped" in review.summary
    # a stage outside policy.required never changes the verdict, but the summary names it
    review, _, _ = run(handler, diff_bytes, rulebook_text=RULEBOOK + "policy:\n  required: [state, idem]\n")
    assert review.verdict == "pass" and "not required by the policy: naming untrusted" in review.summary


def test_every_real_diff_reviews_within_budget(gemini_key, realdata):
    text = RULEBOOK.replace("concurrency: 3", "concurrency: 3\nevidence:\n  max_tokens: 6000")
    for path in sorted((realdata / "diffs").glob("*.diff")):
        plan = build_plan(parse_rulebook(text, "tiny.yml"), path.read_bytes(), library=PromptLibrary())
        assert plan.evidence_summary.tokens <= 6000, path.name
        assert plan.evidence_text.count("\n<untrusted_pull_request_data>") == 1
        assert plan.evidence_text.count("</untrusted_pull_request_data>") == 1
