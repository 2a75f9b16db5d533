"""The bundled demo (`designsim demo`): the white paper's JIT case (seed 002,
§7.4, Appendices F and H) on a real diff, replayed from
examples/jit-generation/cassette.json — through the replay provider, and
through the real google-genai client against the local fake Gemini server."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict, deque

from designsim.cli import main
from designsim.prompts import SYSTEM_INSTRUCTION, PromptLibrary
from designsim.providers.gemini import GeminiProvider
from designsim.report import GITHUB_COMMENT_LIMIT, render_markdown, rulebook_marker
from designsim.resources import examples_dir
from designsim.review import build_plan, review_diff
from designsim.rulebook import load_rulebook
from designsim.simulation import shared_prefix
from designsim.testing import FakeGeminiServer, FakeRequest, text_reply

CASE = examples_dir() / "jit-generation"
RECOMMENDED = "The Name-Is-The-Contract Generator"
PATHWAYS = ["The Transactional Map Update", RECOMMENDED, "The Component Registry Service"]
#: the pull-request title `designsim demo` passes (commands/review.py)
PR_TITLE = "JIT component generation for missing library parts"


def _cassette() -> dict:
    return json.loads((CASE / "cassette.json").read_text(encoding="utf-8"))


def _plan():
    rulebook = load_rulebook(CASE / ".simulation.yml")
    return build_plan(rulebook, (CASE / "change.diff").read_bytes(), pr_title=PR_TITLE,
                      pr_body=(CASE / "pr_body.md").read_text(encoding="utf-8"), library=PromptLibrary(),
                      source=str(CASE / "change.diff"))


def _stages(report: dict) -> dict[str, dict]:
    return {s["id"]: s for s in report["stages"]}


def _assert_demo_story(report: dict) -> None:
    """What the demo must show, whichever provider replayed it."""
    assert report["verdict"] == "pass" and report["exit_code"] == 0
    stages = _stages(report)
    assert list(stages) == ["state", "naming", "idempotency", "synthesis"]
    assert all(s["outcome"] == "passed" for s in stages.values())
    # idempotency shows the re-run: attempt 1 fails a named deterministic check, so no judge is asked
    first, second = stages["idempotency"]["attempts"]
    failed = [c["name"] for c in first["scorecard"]["checks"] if not c["passed"]]
    assert failed == ["revised_algorithm_code"]
    assert first["scorecard"]["judge_skipped"] == "deterministic checks failed"
    assert first["scorecard"]["judge_transcripts"] == []
    assert second["scorecard"]["passed"] and stages["idempotency"]["reason"] == "passed on attempt 2 of 2"
    assert "revised_algorithm_code: Revised Algorithm has no fenced code block" in second["prompt"]  # grading notes
    for sid in ("state", "naming", "synthesis"):
        assert len(stages[sid]["attempts"]) == 1
    # the synthesis recommends the white paper's Appendix H design
    synthesis = stages["synthesis"]
    assert synthesis["recommendation"] == RECOMMENDED
    assert synthesis["matrix"]["pathways"] == PATHWAYS
    assert synthesis["matrix"]["verdicts"] == dict(zip(PATHWAYS, ["Viable", "Recommended", "Rejected"]))
    assert all(re.search(rf"\b{c}\b", " ".join(synthesis["matrix"]["criteria"])) for c in ("C1", "C2", "C3", "C4"))
    # every criterion of every graded attempt passed with a quote found in the output
    for s in stages.values():
        card = s["attempts"][-1]["scorecard"]
        assert card["criteria"] and all(c["verdict"] == "PASS" and c["passed"] for c in card["criteria"])


def test_demo_replays_the_jit_case(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = main(["demo", "--json-out", str(report_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "designsim: PASS — all 4 required stage(s) passed the scorecard" in err
    assert "replaying recorded model responses" in err

    # the PR comment
    assert out.startswith(rulebook_marker("jit-generation") + "\n")
    assert len(out) < GITHUB_COMMENT_LIMIT
    assert "**PASS**" in out and "```mermaid" in out
    assert f"**Recommendation:** {RECOMMENDED}" in out
    assert "| **Verdict** | Viable | **Recommended** | Rejected |" in out
    assert "Attempt 1: revised_algorithm_code: Revised Algorithm has no fenced code block" in out

    report = json.loads(report_path.read_text(encoding="utf-8"))
    _assert_demo_story(report)

    # transcripts: the prompt of every attempt, and of every judge call
    stages = _stages(report)
    titles = {"state": "State management", "naming": "Naming and conceptual consistency",
              "idempotency": "Idempotency", "synthesis": "Final synthesis"}
    judge_calls = 0
    for sid, stage in stages.items():
        for attempt in stage["attempts"]:
            assert f"# Your assignment: {titles[sid]}\n" in attempt["prompt"]
            assert attempt["output"]
            for transcript in attempt["scorecard"]["judge_transcripts"]:
                assert transcript["prompt"].count("<output_under_review>") == 1 and transcript["reply"]
                judge_calls += 1
    # each stage sees its predecessors' final outputs only as fenced evidence
    assert '<earlier_simulation_output stage="state"' in stages["naming"]["attempts"][0]["prompt"]
    assert all(f'<earlier_simulation_output stage="{p}"' in stages["synthesis"]["attempts"][0]["prompt"]
               for p in ("state", "naming", "idempotency"))
    # the cassette holds exactly the calls the review made: nothing missing, nothing left over
    attempts = sum(len(s["attempts"]) for s in stages.values())
    assert attempts + judge_calls == len(_cassette()["interactions"]) == 9


def test_demo_matrix_command_finds_the_recommendation(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["demo", "--out", str(tmp_path / "comment.md"), "--json-out", str(report_path)]) == 0
    synthesis = _stages(json.loads(report_path.read_text(encoding="utf-8")))["synthesis"]["final_output"]
    (tmp_path / "synthesis.md").write_text(synthesis, encoding="utf-8")
    capsys.readouterr()
    assert main(["matrix", "--json", str(tmp_path / "synthesis.md")]) == 0
    (matrix,) = json.loads(capsys.readouterr().out)["matrices"]
    assert matrix["recommended"] == RECOMMENDED and matrix["pathways"] == PATHWAYS
    assert [c for c in matrix["criteria"] if not c.startswith("C")] == ["Implementation Complexity", "Overall Risk"]


def test_demo_diff_is_the_white_papers_proposed_jit_function():
    diff = (CASE / "change.diff").read_text(encoding="utf-8")
    assert diff.startswith("diff --git ")
    # the new module, reassembled from the diff, is valid Python implementing the flawed proposal
    new_file = diff.split("+++ b/jit_generation.py\n", 1)[1].split("\ndiff --git ", 1)[0]
    source = "\n".join(line[1:] for line in new_file.splitlines() if line.startswith("+"))
    compile(source, "jit_generation.py", "exec")
    for needle in ('autogen_filename = f"autogen_{component_type}_for_{goal.lower()}.txt"',
                   "json_map[goal][component_type] = autogen_filename", "def call_llm_api(", "genai.Client()"):
        assert needle in source
    assert '+    "protocol": "root_cause_analysis_drilldown.txt",' in diff  # goal_map.json's DEBUG entry
    assert "+            generated = handle_just_in_time_generation(goal, component_type, filename)" in diff


def test_demo_through_the_real_genai_client(gemini_key):
    """Serve the same cassette from the fake Gemini server, recognising each call
    from its prompt, and run the review with GeminiProvider (google-genai)."""
    plan = _plan()
    ids = {stage.title: stage.id for stage in plan.stages}
    queues: dict[str, deque] = defaultdict(deque)
    for item in _cassette()["interactions"]:
        queues[item["label"]].append(item)
    lock = threading.Lock()

    def handler(req: FakeRequest):
        if req.wants_json:  # the judge asks for JudgeReply JSON
            title = re.search(r"^The output below answered this assignment: \*\*(.+?)\*\*", req.prompt, re.M).group(1)
            label = f"judge:{ids[title]}"
        else:
            label = f"stage:{ids[re.search(r'^# Your assignment: (.+)$', req.prompt, re.M).group(1)]}"
        with lock:
            item = queues[label].popleft()
        usage = item["usage"]
        return text_reply(item["text"], input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"])

    with FakeGeminiServer(handler) as server:
        review = review_diff(plan, GeminiProvider(default_model=plan.rulebook.model))
    report = review.model_dump(mode="json")
    _assert_demo_story(report)
    assert not any(queues.values()), "every recorded reply was served"
    assert review.usage.total_tokens == sum(i["usage"]["input_tokens"] + i["usage"]["output_tokens"]
                                            for i in _cassette()["interactions"])

    requests = server.generate_requests()
    assert len(requests) == 9
    prefix = shared_prefix(plan).encode()
    assert prefix.startswith(b"# Evidence\n") and b"<untrusted_pull_request_data>" in prefix
    for req in requests:
        # a fresh session: one user turn, nothing else
        assert req.user_turns == 1 and len(req.contents) == 1
        assert req.model == "gemini-3.8-flash"
        assert "temperature" not in req.generation_config  # none sent unless the rulebook sets one
        # the same leading bytes in every prompt (implicit prompt caching), evidence first
        assert req.prompt.encode().startswith(prefix)
        assert req.system == SYSTEM_INSTRUCTION  # one system instruction: judge calls share the cached prefix
    assert render_markdown(review, library=plan.library).startswith(rulebook_marker("jit-generation"))
