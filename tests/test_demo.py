"""The bundled demo (`designsim demo`): the white paper's JIT case (seed 002,
§7.4, Appendices F and H) on two real diffs — the paper's proposed, flawed
function (`--case jit`: decision fail, C1 and C3 violated) and the synthesised
algorithm of Appendix H (`--case fixed`: decision pass) — replayed from each
example's cassette.json through the replay provider, and through the real
google-genai client against the local fake Gemini server."""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections import defaultdict, deque

import pytest
from unidiff import PatchSet

from designsim.cli import main
from designsim.demo import CASES, build_cassette, cassette_text, demo_plan, load_replies
from designsim.prompts import SYSTEM_INSTRUCTION
from designsim.providers.gemini import GeminiProvider
from designsim.report import GITHUB_COMMENT_LIMIT, render_markdown, rulebook_marker
from designsim.review import review_diff
from designsim.simulation import shared_prefix
from designsim.testing import FakeGeminiServer, FakeRequest, text_reply

JIT, FIXED = CASES["jit"], CASES["fixed"]
RECOMMENDED = "The Name-Is-The-Contract Generator"
AS_WRITTEN = "The Change as Written"
JIT_PATHWAYS = [AS_WRITTEN, "The Transactional Map Update", RECOMMENDED, "The Component Registry Service"]
FIXED_PATHWAYS = [AS_WRITTEN, "The Transactional Map Update", "The Component Registry Service"]
MODEL = "gemini-3.8-flash"
#: calls each cassette holds: stage attempts + judge calls
CALLS = {"jit": 9, "fixed": 6}


def _cassette(case) -> dict:
    return json.loads((case.path / "cassette.json").read_text(encoding="utf-8"))


def _stages(report: dict) -> dict[str, dict]:
    return {s["id"]: s for s in report["stages"]}


def _findings(report: dict, stage: str) -> dict[str, dict]:
    return {f["constraint"]: f for f in report["decision"]["findings"] if f["stage"] == stage}


def _assert_every_graded_attempt_trusted(report: dict) -> None:
    for s in report["stages"]:
        assert s["outcome"] == "passed", s["id"]
        card = s["attempts"][-1]["scorecard"]
        assert all(c["passed"] for c in card["checks"]), s["id"]
        assert card["criteria"] and all(c["verdict"] == "PASS" and c["passed"] for c in card["criteria"]), s["id"]
        assert "verdict" in {c["id"] for c in card["criteria"]}  # the judge ruled that the verdict follows


def _assert_jit_story(report: dict) -> None:
    """What `designsim demo` must show, whichever provider replayed it."""
    decision = report["decision"]
    assert decision["verdict"] == "fail" and report["exit_code"] == 1
    assert decision["reason"].startswith("C1 violated (blocker)")
    stages = _stages(report)
    assert list(stages) == ["state", "naming", "idempotency", "synthesis"]
    _assert_every_graded_attempt_trusted(report)  # trusted simulations, failing change
    # every stage finds the paper's flaws; the synthesis has the final word
    for sid in stages:
        rows = _findings(report, sid)
        assert set(rows) == {"C1", "C2", "C3", "C4"}, sid
        assert (rows["C1"]["verdict"], rows["C1"]["severity"]) == ("violated", "blocker"), sid
        assert rows["C3"]["verdict"] == "violated" and rows["C2"]["verdict"] == "violated", sid
        assert (rows["C4"]["verdict"], rows["C4"]["severity"]) == ("respected", "none"), sid
        assert all("jit_generation.py" in r["evidence"] for r in rows.values()), sid
    assert "goal_map.json" in _findings(report, "synthesis")["C1"]["evidence"]
    # idempotency shows the re-run: attempt 1 fails a named deterministic check, so no judge is asked
    first, second = stages["idempotency"]["attempts"]
    assert [c["name"] for c in first["scorecard"]["checks"] if not c["passed"]] == ["revised_algorithm_code"]
    assert first["scorecard"]["judge_skipped"] == "deterministic checks failed"
    assert first["scorecard"]["judge_transcripts"] == []
    assert second["scorecard"]["passed"] and stages["idempotency"]["reason"].endswith("on attempt 2 of 2")
    assert "revised_algorithm_code: Revised Algorithm has no fenced code block" in second["prompt"]  # grading notes
    for sid in ("state", "naming", "synthesis"):
        assert len(stages[sid]["attempts"]) == 1
    # the synthesis compares the change as written with the alternatives and recommends Appendix H's design
    synthesis = stages["synthesis"]
    assert synthesis["recommendation"] == RECOMMENDED
    assert synthesis["matrix"]["pathways"] == JIT_PATHWAYS
    assert synthesis["matrix"]["verdicts"] == dict(zip(JIT_PATHWAYS, ["Rejected", "Viable", "Recommended", "Rejected"]))
    assert all(re.search(rf"\b{c}\b", " ".join(synthesis["matrix"]["criteria"])) for c in ("C1", "C2", "C3", "C4"))


def _assert_fixed_story(report: dict) -> None:
    decision = report["decision"]
    assert decision["verdict"] == "pass" and report["exit_code"] == 0
    assert decision["reason"].startswith("every constraint respected")
    stages = _stages(report)
    assert list(stages) == ["state", "idempotency", "synthesis"]
    _assert_every_graded_attempt_trusted(report)
    assert all(len(s["attempts"]) == 1 for s in stages.values())
    assert {(f["stage"], f["constraint"]) for f in decision["findings"]} == {
        (s, c) for s in stages for c in ("C1", "C2", "C3", "C4")}
    assert all((f["verdict"], f["severity"]) == ("respected", "none") for f in decision["findings"])
    synthesis = stages["synthesis"]
    assert synthesis["recommendation"] == AS_WRITTEN
    assert synthesis["matrix"]["pathways"] == FIXED_PATHWAYS
    assert synthesis["matrix"]["verdicts"] == dict(zip(FIXED_PATHWAYS, ["Recommended", "Viable", "Rejected"]))


STORY = {"jit": _assert_jit_story, "fixed": _assert_fixed_story}


def test_demo_replays_the_jit_case_and_fails_the_change(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = main(["demo", "--json-out", str(report_path)])
    out, err = capsys.readouterr()
    assert code == 0  # the demo ran as recorded; the decision on the change is fail
    assert "replaying recorded model responses from examples/jit-generation/cassette.json" in err
    assert "designsim demo: decision FAIL — C1 violated (blocker)" in err
    assert "a review would exit 1" in err

    # the PR comment leads with the decision, then shows the matrix with the change as written
    assert out.startswith(rulebook_marker("jit-generation") + "\n")
    assert len(out) < GITHUB_COMMENT_LIMIT
    assert "C1 violated (blocker)" in out and "✅ PASS" not in out
    assert f"**Recommendation:** {RECOMMENDED}" in out
    assert "| **Verdict** | Rejected | Viable | **Recommended** | Rejected |" in out
    assert "Attempt 1: revised_algorithm_code: Revised Algorithm has no fenced code block" in out

    report = json.loads(report_path.read_text(encoding="utf-8"))
    _assert_jit_story(report)

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
    assert attempts + judge_calls == len(_cassette(JIT)["interactions"]) == CALLS["jit"]


def test_demo_fixed_case_passes_the_change(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = main(["demo", "--case", "fixed", "--out", str(tmp_path / "comment.md"), "--json-out", str(report_path)])
    _, err = capsys.readouterr()
    assert code == 0
    assert "examples/jit-generation-fixed/cassette.json" in err
    assert "designsim demo: decision PASS — every constraint respected" in err and "a review would exit 0" in err
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(rulebook_marker("jit-generation-fixed") + "\n")
    assert "every constraint respected" in comment and f"**Recommendation:** {AS_WRITTEN}" in comment
    report = json.loads(report_path.read_text(encoding="utf-8"))
    _assert_fixed_story(report)
    assert sum(len(s["attempts"]) + sum(len(a["scorecard"]["judge_transcripts"]) for a in s["attempts"])
               for s in report["stages"]) == len(_cassette(FIXED)["interactions"]) == CALLS["fixed"]


def test_demo_exits_3_when_the_replay_misses_its_recorded_decision(tmp_path, capsys, monkeypatch):
    """A cassette that no longer fits (here: a stage reply without its verdict
    section) makes the stage untrusted; the demo says so instead of exiting 0."""
    cassette = _cassette(FIXED)
    for item in cassette["interactions"]:
        if item["label"] == "stage:state":
            item["text"] = item["text"].split("### Verdict on this change")[0]
    case_dir = tmp_path / "examples" / FIXED.folder
    case_dir.mkdir(parents=True)
    for name in (".simulation.yml", "change.diff", "pr_body.md"):
        (case_dir / name).write_bytes((FIXED.path / name).read_bytes())
    (case_dir / "cassette.json").write_text(json.dumps(cassette), encoding="utf-8")
    monkeypatch.setattr("designsim.demo.examples_dir", lambda: tmp_path / "examples")
    code = main(["demo", "--case", "fixed", "--out", str(tmp_path / "comment.md")])
    err = capsys.readouterr().err
    assert code == 3 and "expected decision pass for --case fixed" in err
    assert "decision INCONCLUSIVE" in err


@pytest.mark.parametrize("name", ["jit", "fixed"])
def test_cassettes_are_built_from_their_replies(name):
    """cassette.json is `python -m designsim.demo`'s output for replies/: the
    hand-written sources and the replayed file cannot drift apart, and every
    prompt digest is the one the current templates render."""
    case = CASES[name]
    built = build_cassette(case)
    assert cassette_text(built) == (case.path / "cassette.json").read_text(encoding="utf-8"), \
        "stale cassette: run `python -m designsim.demo`"
    assert built["model"] == MODEL
    assert [(i["label"], i["text"]) for i in built["interactions"]] == load_replies(case.path / "replies")


def test_demo_matrix_command_finds_the_recommendation(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["demo", "--out", str(tmp_path / "comment.md"), "--json-out", str(report_path)]) == 0
    synthesis = _stages(json.loads(report_path.read_text(encoding="utf-8")))["synthesis"]["final_output"]
    (tmp_path / "synthesis.md").write_text(synthesis, encoding="utf-8")
    capsys.readouterr()
    assert main(["matrix", "--json", str(tmp_path / "synthesis.md")]) == 0
    (matrix,) = json.loads(capsys.readouterr().out)["matrices"]  # the verdict table is not a decision matrix
    assert matrix["recommended"] == RECOMMENDED and matrix["pathways"] == JIT_PATHWAYS
    assert [c for c in matrix["criteria"] if not c.startswith("C")] == ["Implementation Complexity", "Overall Risk"]


def _new_file(diff: str, path: str) -> str:
    (patched,) = [f for f in PatchSet(diff) if f.path == path]
    assert patched.is_added_file
    return "".join(line.value for hunk in patched for line in hunk if line.is_added)


def test_demo_diff_is_the_white_papers_proposed_jit_function():
    diff = (JIT.path / "change.diff").read_text(encoding="utf-8")
    assert diff.startswith("diff --git ")
    # the new module, reassembled from the diff, is valid Python implementing the flawed proposal
    source = _new_file(diff, "jit_generation.py")
    compile(source, "jit_generation.py", "exec")
    for needle in ('autogen_filename = f"autogen_{component_type}_for_{goal.lower()}.txt"',
                   "json_map[goal][component_type] = autogen_filename", "def call_llm_api(", "genai.Client()"):
        assert needle in source
    assert '+    "protocol": "root_cause_analysis_drilldown.txt",' in diff  # goal_map.json's DEBUG entry
    assert "+            generated = handle_just_in_time_generation(goal, component_type, filename)" in diff


def test_fixed_diff_implements_appendix_h_in_the_same_repository():
    """Same repository and call site as the JIT diff; jit_generation.py follows
    Appendix H: the conceptual name, an idempotent existence check, an atomic
    create of the component, and no write of goal_map.json."""
    jit, fixed = (PatchSet((c.path / "change.diff").read_text(encoding="utf-8")) for c in (JIT, FIXED))
    assert [f.path for f in fixed] == ["goal_map.json", "jit_generation.py", "orchestrator.py"]
    by_path = {f.path: str(f) for f in jit}
    for f in fixed:
        if f.path != "jit_generation.py":
            assert str(f) == by_path[f.path], f"{f.path}: the same change as in the JIT diff"
    source = _new_file((FIXED.path / "change.diff").read_text(encoding="utf-8"), "jit_generation.py")
    compile(source, "jit_generation.py", "exec")
    assert 'component_path = os.path.join(COMPONENTS_DIR, f"{component_type}s", required_filename)' in source
    assert "os.link(tmp_path, path)" in source and "os.fsync(f.fileno())" in source
    for gone in ("autogen", "GOAL_MAP_PATH", "write_json_file", "read_json_file"):
        assert gone not in source


def test_fixed_jit_function_runs_as_appendix_h_says(tmp_path):
    """Execute the fixed module from the diff (its LLM call and prompt replaced by
    stubs): the first run generates under the required name, the second asks
    nothing and calls nothing, no temp file is left, a path-like name is refused."""
    module_path = tmp_path / "jit_generation.py"
    module_path.write_text(_new_file((FIXED.path / "change.diff").read_text(encoding="utf-8"), "jit_generation.py"))
    spec = importlib.util.spec_from_file_location("fixed_jit_generation", module_path)
    jit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jit)
    calls: list[tuple] = []
    jit.ask_user = lambda question: "Drill down from a symptom to its root cause."
    jit.call_llm_api = lambda *args: calls.append(args) or "You trace each symptom to its cause."
    assert jit.COMPONENTS_DIR == str(tmp_path / "components")

    first = jit.handle_just_in_time_generation("DEBUG", "protocol", "root_cause_analysis_drilldown.txt")
    assert first == str(tmp_path / "components" / "protocols" / "root_cause_analysis_drilldown.txt")
    assert (tmp_path / "components" / "protocols" / "root_cause_analysis_drilldown.txt").read_text() == \
        "You trace each symptom to its cause.\n"
    assert sorted(p.name for p in (tmp_path / "components" / "protocols").iterdir()) == ["root_cause_analysis_drilldown.txt"]
    jit.ask_user = lambda question: pytest.fail("a second run must not ask")
    assert jit.handle_just_in_time_generation("DEBUG", "protocol", "root_cause_analysis_drilldown.txt") == first
    assert len(calls) == 1
    assert jit.handle_just_in_time_generation("DEBUG", "protocol", "../escape.txt") is None
    assert not (tmp_path / "components" / "escape.txt").exists()


@pytest.mark.parametrize("name", ["jit", "fixed"])
def test_demo_through_the_real_genai_client(gemini_key, name):
    """Serve the case's cassette from the fake Gemini server, recognising each call
    from its prompt, and run the review with GeminiProvider (google-genai)."""
    case = CASES[name]
    plan = demo_plan(case)
    ids = {stage.title: stage.id for stage in plan.stages}
    queues: dict[str, deque] = defaultdict(deque)
    for item in _cassette(case)["interactions"]:
        queues[item["label"]].append(item)
    lock = threading.Lock()

    def handler(req: FakeRequest):
        if req.wants_json:  # the judge asks for its pinned JSON reply
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
    STORY[name](report)
    assert not any(queues.values()), "every recorded reply was served"
    assert review.usage.total_tokens == sum(i["usage"]["input_tokens"] + i["usage"]["output_tokens"]
                                            for i in _cassette(case)["interactions"])

    requests = server.generate_requests()
    assert len(requests) == CALLS[name]
    prefix = shared_prefix(plan).encode()
    assert prefix.startswith(b"# Evidence\n") and b"<untrusted_pull_request_data>" in prefix
    for req in requests:
        # a fresh session: one user turn, nothing else
        assert req.user_turns == 1 and len(req.contents) == 1
        assert req.model == MODEL
        # the same leading bytes in every prompt (implicit prompt caching), evidence first
        assert req.prompt.encode().startswith(prefix)
        assert req.system == SYSTEM_INSTRUCTION  # one system instruction: judge calls share the cached prefix
    assert render_markdown(review, library=plan.library).startswith(rulebook_marker(case.folder))


def test_cassette_builder_refuses_replies_it_cannot_place(tmp_path):
    import shutil

    from designsim.demo import DemoCase, main as build_main
    from designsim.errors import ConfigError

    shutil.copytree(FIXED.path, tmp_path / "mine")
    case = DemoCase("mine", "mine", FIXED.pr_title, "pass", "a copy of the fixed case", root=tmp_path)
    replies = tmp_path / "mine" / "replies"
    (replies / "07-stage-synthesis.md").write_text("a reply no call asks for\n")
    with pytest.raises(ConfigError, match="never asked for"):
        build_cassette(case)
    (replies / "07-stage-synthesis.md").unlink()
    judge = (replies / "06-judge-synthesis.json").read_text()
    (replies / "06-judge-synthesis.json").unlink()
    with pytest.raises(ConfigError, match="no reply for the call"):
        build_cassette(case)
    (replies / "06-judge-synthesis.json").write_text(judge)
    (replies / "notes.txt").write_text("not a reply\n")
    with pytest.raises(ConfigError, match="NN-stage-<id>.md"):
        load_replies(replies)
    (replies / "notes.txt").unlink()
    (replies / "02-judge-state.json").write_text("{not json")
    with pytest.raises(ConfigError, match="02-judge-state.json:1: judge reply is not JSON"):
        load_replies(replies)
    assert build_main(["--check"]) == 0  # the bundled cassettes are up to date
