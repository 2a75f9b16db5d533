"""Lint's model advice (issue 10 item 2): a retired or deprecated id names its date
and replacement; a temperature below 1.0 on Gemini 3 quotes Google's guidance; a
thinking level the model does not take is flagged."""

from __future__ import annotations

from kit_helpers import GOOD_RULEBOOK

from designsim.kit.lint import lint_text


def _advice(text: str, code: str):
    report = lint_text(text, "r.yml")
    assert report.exit_code == 0, [str(e) for e in report.errors]
    return [a for a in report.advice if a.code == code]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


def test_retired_model_names_the_shutdown_date_and_replacement():
    text = GOOD_RULEBOOK + "model: gemini-2.5-flash\n"
    (finding,) = _advice(text, "model-lifecycle")
    assert "shut down on 2026-10-16" in finding.message and "use gemini-3.8-flash" in finding.message
    assert (finding.field, finding.line) == ("model", _line_of(text, "model:"))


def test_deprecated_judge_model_is_flagged_too():
    text = GOOD_RULEBOOK + "scorecard:\n  judge_model: gemini-2.5-flash-lite\n"
    (finding,) = _advice(text, "model-lifecycle")
    assert finding.field == "scorecard.judge_model" and "deprecated" in finding.message and "gemini-3.5-flash-lite" in finding.message


def test_low_temperature_on_gemini_3_quotes_googles_guidance():
    text = GOOD_RULEBOOK + "temperature: 0.4\n"
    (finding,) = _advice(text, "low-temperature")
    assert "default of 1.0" in finding.message and "looping" in finding.message and "Google" in finding.message
    assert finding.line == _line_of(text, "temperature:")
    assert _advice(GOOD_RULEBOOK + "temperature: 1.0\n", "low-temperature") == []
    # Gemini 2.5 had no such guidance
    assert _advice(GOOD_RULEBOOK + "temperature: 0.4\nmodel: gemini-2.5-pro\n", "low-temperature") == []


def test_a_current_model_and_no_temperature_give_no_model_advice():
    report = lint_text(GOOD_RULEBOOK, "r.yml")
    assert not {"model-lifecycle", "low-temperature", "thinking", "unknown-model"} & {a.code for a in report.advice}


def test_thinking_level_the_model_does_not_take():
    text = GOOD_RULEBOOK + "model: gemini-2.0-flash\nthinking: low\n"
    assert any("does not accept thinking" in f.message for f in _advice(text, "thinking"))
    assert _advice(GOOD_RULEBOOK + "thinking: high\n", "thinking") == []
