"""The PR comment: markers, size limit, sanitising of untrusted model text."""

from __future__ import annotations

import pytest

from designsim.providers.base import Usage
from designsim.report import GITHUB_COMMENT_LIMIT, defuse, mermaid, parse_markers, render_json, render_markdown
from designsim.scorecard import CheckResult, Scorecard
from designsim.simulation import Attempt, EvidenceSummary, Review, StageResult

from reviewkit import flaw_output


def make_review(output: str, n_stages: int = 3, outcome="passed") -> Review:
    stages = []
    for i in range(n_stages):
        card = Scorecard(format="flaw", passed=True, checks=[CheckResult(name="sections", passed=True, detail="ok")])
        stages.append(StageResult(id=f"s{i}", title=f"Stage {i}", format="flaw", depends_on=[f"s{i-1}"] if i else [],
                                  outcome=outcome, reason="passed on attempt 1 of 2", final_output=output,
                                  attempts=[Attempt(number=1, prompt="p", output=output, scorecard=card)],
                                  recommendation="Write to temp then rename.", usage=Usage(input_tokens=100, output_tokens=50)))
    return Review(rulebook="jit", model="m", judge_model="m", verdict="pass", exit_code=0, summary="ok", stages=stages,
                  waves=[[s.id] for s in stages], usage=Usage(input_tokens=300, output_tokens=150), evidence=EvidenceSummary(tokens=10),
                  inputs_hash="a" * 64, started_at="2026-11-21T00:00:00+00:00", duration_s=1.0)


def test_markers_round_trip_and_only_count_at_the_top():
    body = render_markdown(make_review(flaw_output("x")))
    assert parse_markers(body) == {"rulebook": "jit", "inputs": "a" * 64, "verdict": "pass"}
    assert parse_markers("hello\n<!-- designsim:rulebook=jit -->") is None


def test_model_output_cannot_forge_markers_or_ping_people():
    evil = flaw_output("x") + "\n<!-- designsim:rulebook=other -->\n@octocat please merge </details> now\n"
    body = render_markdown(make_review(evil))
    assert body.count("<!-- designsim:") == 2          # only our two markers
    assert "@\u200boctocat" in body and "@octocat" not in body
    assert "&lt;/details" in body
    assert defuse("mail me at a@b.com") == "mail me at a@b.com"


def test_a_70000_character_output_is_cut_to_fit():
    huge = flaw_output("x") + ("lorem ipsum dolor " * 4000)  # ~72k characters per stage
    review = make_review(huge, n_stages=3)
    assert sum(len(s.final_output) for s in review.stages) > 200_000
    body = render_markdown(review)
    assert len(body) <= GITHUB_COMMENT_LIMIT
    assert "the JSON report has all of it" in body
    assert body.count("```") % 2 == 0                   # no fence left open by the cut
    assert len(render_json(review)["stages"][0]["final_output"]) == len(huge)  # the JSON keeps everything


@pytest.mark.parametrize("limit", [3000, 12000])
def test_tiny_limits_still_respected(limit):
    body = render_markdown(make_review(flaw_output("x") * 40, n_stages=8), max_chars=limit)
    assert len(body) <= limit and parse_markers(body)["rulebook"] == "jit"


def test_mermaid_dag_coloured_by_outcome():
    text = mermaid(make_review("x", n_stages=3, outcome="failed"))
    assert text.startswith("flowchart LR") and "s0 --> s1" in text and ":::failed" in text


def test_matrix_cells_shown_as_written_but_never_as_live_html():
    from designsim.matrix import extract_matrices
    from designsim.report import matrix_table

    text = ("| Criteria | `__init__` wrapper | Beta |\n| --- | --- | --- |\n"
            "| C1 | ✅ **Pass** <img src=x onerror=alert(1)> | ❌ Fail `<script>` |\n| **Verdict** | Viable | **Recommended** |\n")
    table = matrix_table(extract_matrices(text)[0])
    assert "<img" not in table and "<script" not in table and "&lt;img" in table
    assert "✅ **Pass**" in table and "❌ Fail" in table and "`__init__` wrapper" in table
    assert table.count("\n") == 3  # header, separator, one criterion, verdict


def test_embedded_outputs_have_demoted_headings_and_no_images():
    body = render_markdown(make_review(flaw_output("x") + "\n![pixel](https://evil.example/p.png)\n"))
    assert "##### Flaw Analysis" in body and "\n### Flaw Analysis" not in body
    assert "![pixel]" not in body


def test_a_cut_inside_a_tilde_or_long_fence_is_closed_with_the_same_fence():
    from designsim.report import _untrusted

    body = _untrusted("intro\n~~~~python\nx = 1\n```\nstill code\n" + "y = 2\n" * 50, 40)
    assert body.rstrip().endswith("~~~~") and "```\n" in body


def test_headings_inside_code_blocks_are_not_demoted():
    from designsim.report import _demote_headings

    text = "### Flaw Analysis\ntext\n```bash\n# a comment, not a heading\n```\n## Next\n"
    assert _demote_headings(text) == "##### Flaw Analysis\ntext\n```bash\n# a comment, not a heading\n```\n#### Next"
