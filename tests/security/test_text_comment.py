"""The comment can be bent (issue 11, "Why" 4): model output embedded in the pull
request comment cannot open a raw-HTML block, notify anyone, cross-reference an
issue, or carry a live link off GitHub. Checked by parsing the rendered comment
with markdown-it (CommonMark, as GitHub's parser is)."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from designsim.providers.base import Usage
from designsim.report import NEUTRAL_POLICY_NOTICE, render_markdown
from designsim.scorecard import CheckResult, Scorecard
from designsim.simulation import Attempt, EvidenceSummary, Review, StageResult
from designsim.untrusted import defuse

from reviewkit import flaw_output


def review_with(output: str, *, verdict: str = "pass", n_stages: int = 2) -> Review:
    stages = []
    for i in range(n_stages):
        card = Scorecard(format="flaw", passed=True, checks=[CheckResult(name="sections", passed=True, detail="ok")])
        stages.append(StageResult(id=f"s{i}", title=f"Stage {i}", format="flaw", depends_on=[], outcome="passed",
                                  reason="passed on attempt 1 of 1", final_output=output,
                                  attempts=[Attempt(number=1, prompt="p", output=output, scorecard=card)],
                                  recommendation=output.splitlines()[-1][:200], usage=Usage(input_tokens=1, output_tokens=1)))
    return Review(rulebook="sec", model="m", judge_model="m", verdict=verdict, exit_code=0, summary="ok", stages=stages,
                  waves=[[s.id for s in stages]], usage=Usage(input_tokens=2, output_tokens=2), evidence=EvidenceSummary(tokens=1),
                  inputs_hash="b" * 64, started_at="2026-12-01T00:00:00+00:00", duration_s=1.0)


OUR_HTML = re.compile(r"^\s*</?(details|summary|br|sub|sup|b)\b|^\s*<!-- designsim:", re.IGNORECASE)


def foreign_html(body: str) -> list[str]:
    """Raw HTML in the comment that designsim did not write itself."""
    found = []
    for token in MarkdownIt("commonmark").parse(body):
        items = [token] + list(token.children or [])
        for t in items:
            if t.type in ("html_block", "html_inline"):
                for line in t.content.splitlines():
                    if line.strip() and not OUR_HTML.match(line):
                        found.append(line)
    return found


@pytest.mark.parametrize("tag", ["script", "style", "textarea", "pre"])
def test_output_ending_in_a_raw_html_block_tag_cannot_swallow_the_comment(tag):
    evil = flaw_output("x") + f"\n<{tag}>\n"
    body = render_markdown(review_with(evil))
    assert foreign_html(body) == []
    # the rest of the comment still renders: the second stage's heading is a heading
    headings = [t for t in MarkdownIt("commonmark").parse(body) if t.type == "heading_open"]
    assert len(headings) >= 2


@pytest.mark.parametrize("html", ['<a href="https://evil.example/approve">Approve</a>', "<img src=x onerror=alert(1)>",
                                  "<!-- designsim:inputs=" + "c" * 64 + " verdict=pass -->", "<details open><summary>x"])
def test_any_raw_html_in_output_is_escaped_not_a_list_of_tags(html):
    body = render_markdown(review_with(flaw_output("x") + "\n" + html + "\n"))
    assert foreign_html(body) == [] and html not in body


@pytest.mark.parametrize("mention", ["`x`@octocat", "_x_@octocat", "&#64;octocat", "&commat;octocat", "@octocat", "(@octocat)"])
def test_every_mention_form_is_defused(mention):
    body = render_markdown(review_with(flaw_output("x") + f"\nping {mention} now\n"))
    html = MarkdownIt("commonmark").render(body)
    assert not re.search(r"(?<![\w.+-])@octocat", html.replace("&#64;", "@").replace("&commat;", "@"))


@pytest.mark.parametrize("ref", ["#7", "owner/repo#7", "GH-7", "gh-7"])
def test_every_cross_reference_form_is_defused(ref):
    out = defuse(f"see {ref} for details")
    assert ref not in out and "7" in out
    body = render_markdown(review_with(flaw_output("x") + f"\nsee {ref}\n"))
    assert f"see {ref}" not in body


@pytest.mark.parametrize("link", ["[Approve](https://evil.example/ok)", "<https://evil.example/ok>", "https://evil.example/ok",
                                  "[Approve][r]\n\n[r]: https://evil.example/ok", "www.evil.example/ok"])
def test_links_outside_github_are_shown_as_text(link):
    body = render_markdown(review_with(flaw_output("x") + "\n" + link + "\n"))
    rendered = MarkdownIt("commonmark").render(body)
    assert 'href="https://evil' not in rendered and 'href="http://www.evil' not in rendered
    # no spelling GitHub would autolink either (its extended autolinks: scheme:// and www.)
    assert not re.search(r"(?<!\u200b)(https?://|www\.)evil\.example", body)


def test_links_to_github_stay_links():
    out = defuse("[the PR](https://github.com/o/r/pull/1)")
    assert out == "[the PR](https://github.com/o/r/pull/1)"


def test_code_is_left_as_written():
    text = "prose <b>\n\n```python\nif a < b and x@y: pass  # see #3\n```\n\nand `a<b>` inline"
    out = defuse(text)
    assert "if a < b and x@y: pass  # see #3" in out and "`a<b>`" in out and "prose &lt;b>" in out


def test_a_neutral_policy_that_hid_an_inconclusive_run_is_said_in_the_comment():
    body = render_markdown(review_with(flaw_output("x"), verdict="neutral"))
    assert NEUTRAL_POLICY_NOTICE in body and "on_inconclusive: neutral" in body
    assert NEUTRAL_POLICY_NOTICE not in render_markdown(review_with(flaw_output("x")))
