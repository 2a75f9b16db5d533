"""designsim components: list/show, and just-in-time generation per seed 002 Appendix H."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kit_helpers import cli, GOOD_RULEBOOK  # noqa: F401  (cli is a fixture)

import designsim.fileio
from designsim.errors import ConfigError
from designsim.kit.components import generate_component, list_components
from designsim.kit.lint import lint_text
from designsim.prompts import PromptLibrary
from designsim.testing import FakeGeminiServer, FakeProvider, text_reply

PROTOCOL_TEXT = ("Keep a ledger of hypotheses and test them one at a time, in order:\n"
                 "1. State the hypothesis in one sentence, naming the component you suspect.\n"
                 "2. Name the observation that would refute it, before looking for it.\n"
                 "3. Look for that observation in the evidence and record what you found.\n"
                 "4. Keep, revise or strike the hypothesis, and say why, before the next one.")
NO_NETWORK = ("The solution makes no network calls at run time: every input it needs is read from local files, "
              "and a missing file is reported as an error instead of being fetched.")
GOAL_MAP = "DEBUG:\n  persona: site_reliability_engineer\n  protocol: hypothesis_ledger\n  constraints: [no_core_refactor]\n"


def _no_model():
    raise AssertionError("no model call expected")


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def test_generate_twice_makes_one_model_call_and_one_file(cli, gemini_key, tmp_path):
    """The real google-genai client against the fake server: the second run is a no-op."""
    user = tmp_path / "prompts"
    user.mkdir()
    (user / "goal_map.yml").write_text(GOAL_MAP)
    goal_map_before = (user / "goal_map.yml").read_bytes()
    assert "missing-component" in [e.code for e in lint_text(GOOD_RULEBOOK + "goal: DEBUG\n", "r.yml", library=PromptLibrary(user)).errors]

    with FakeGeminiServer(lambda req: text_reply(PROTOCOL_TEXT)) as server:
        for _ in range(2):
            code, out, err = cli("components", "generate", "protocol", "hypothesis_ledger", "--dir", user,
                                 "--describe", "A ledger of hypotheses, each with the observation that would refute it")
            assert code == 0, err
        requests = server.generate_requests()
    assert len(requests) == 1
    assert requests[0].user_turns == 1 and "hypothesis_ledger" in requests[0].prompt
    assert "A ledger of hypotheses" in requests[0].prompt
    assert "already exists" in err
    assert _files(user) == ["goal_map.yml", "protocols/hypothesis_ledger.md"]
    assert (user / "protocols" / "hypothesis_ledger.md").read_text() == PROTOCOL_TEXT + "\n"
    # the required name now resolves; the goal map was never touched
    assert (user / "goal_map.yml").read_bytes() == goal_map_before
    assert lint_text(GOOD_RULEBOOK + "goal: DEBUG\n", "r.yml", library=PromptLibrary(user)).errors == []


def test_existing_bundled_component_needs_no_key_and_no_call(cli, tmp_path):
    code, out, err = cli("components", "generate", "protocol", "root_cause_analysis_drilldown", "--dir", tmp_path / "p")
    assert code == 0 and "already exists" in err
    assert out.strip().endswith("root_cause_analysis_drilldown.md")
    assert not (tmp_path / "p").exists()


def test_write_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    def crash(src, dst):
        raise OSError("simulated crash between writing and renaming")

    monkeypatch.setattr(designsim.fileio.os, "replace", crash)
    fake = FakeProvider().enqueue(PROTOCOL_TEXT)
    with pytest.raises(OSError, match="simulated crash"):
        generate_component("protocol", "hypothesis_ledger", target_dir=tmp_path, describe="a ledger",
                           provider_factory=lambda: fake, echo=lambda _: None)
    assert len(fake.history) == 1
    assert _files(tmp_path) == []  # no temp file, no target


def test_killed_run_leaves_no_component_and_the_next_run_cleans_up(tmp_path):
    """SIGKILL after the temp file is written but before the rename: the target
    never exists; the next run removes the stale temp file and completes."""
    script = textwrap.dedent(f"""
        import sys, time
        import designsim.fileio
        from designsim.kit.components import generate_component
        from designsim.testing import FakeProvider

        def stall(src, dst):
            print("RENAMING", flush=True)
            time.sleep(60)

        designsim.fileio.os.replace = stall
        generate_component("protocol", "hypothesis_ledger", target_dir={str(tmp_path)!r}, describe="a ledger",
                           provider_factory=lambda: FakeProvider().enqueue({PROTOCOL_TEXT!r}), echo=lambda _: None)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "RENAMING"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    target = tmp_path / "protocols" / "hypothesis_ledger.md"
    assert not target.exists()
    stale = list((tmp_path / "protocols").glob(".hypothesis_ledger.md.*.tmp"))
    assert len(stale) == 1 and stale[0].read_text() == PROTOCOL_TEXT + "\n"  # complete, but never published

    fake = FakeProvider().enqueue(PROTOCOL_TEXT)
    result = generate_component("protocol", "hypothesis_ledger", target_dir=tmp_path, describe="a ledger",
                                provider_factory=lambda: fake, echo=lambda _: None)
    assert result.status == "generated" and result.removed_temp == tuple(stale)
    assert _files(tmp_path) == ["protocols/hypothesis_ledger.md"]


def test_empty_description_aborts_without_a_model_call(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("\n"))
    code, _, err = cli("components", "generate", "constraint", "no_network", "--dir", tmp_path)
    assert code == 2 and "no description" in err
    assert _files(tmp_path) == []
    with pytest.raises(ConfigError):
        generate_component("constraint", "no_network", target_dir=tmp_path, describe="  ", provider_factory=_no_model)


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", ""])
def test_names_cannot_escape_the_directory(cli, tmp_path, name):
    code, _, err = cli("components", "generate", "persona", name, "--dir", tmp_path, "--describe", "x")
    assert code == 2 and "invalid component name" in err
    assert _files(tmp_path) == []


def test_generate_from_a_replay_cassette(cli, tmp_path):
    cassette = tmp_path / "c.json"
    cassette.write_text(json.dumps({"version": 1, "interactions": [
        {"label": "component:constraint:no_network", "text": "```markdown\n" + NO_NETWORK + "\n```"}]}))
    code, out, _ = cli("components", "generate", "constraint", "no_network", "--dir", tmp_path / "p",
                       "--describe", "offline only", "--provider", "replay", "--cassette", cassette)
    assert code == 0
    assert (tmp_path / "p" / "constraints" / "no_network.md").read_text() == NO_NETWORK + "\n"


def test_model_failure_writes_nothing(cli, gemini_key, tmp_path):
    with FakeGeminiServer(lambda req: text_reply("", finish_reason="SAFETY")):
        code, _, err = cli("components", "generate", "persona", "chaos_monkey", "--dir", tmp_path, "--describe", "x")
    assert code == 3 and "SAFETY" in err
    assert _files(tmp_path) == []


def test_list_marks_overrides_and_show_prints_the_active_text(cli, tmp_path, monkeypatch):
    user = tmp_path / ".designsim" / "prompts"
    (user / "personas").mkdir(parents=True)
    (user / "personas" / "senior_systems_architect.md").write_text("You are our house architect.\n")
    (user / "personas" / ".draft.md").write_text("hidden")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("components", "list", "--json")
    entries = [e for e in json.loads(out) if e["name"] == "senior_systems_architect"]
    assert code == 0 and len(entries) == 2
    assert entries[0]["source"] == "repository" and entries[0]["overrides"] and not entries[0]["overridden"]
    assert entries[1]["source"] == "bundled" and entries[1]["overridden"]
    assert not any(e["name"] == ".draft" for e in json.loads(out))
    kinds = {(e["kind"], e["name"]) for e in json.loads(out)}
    assert {("protocols", "root_cause_analysis_drilldown"), ("constraints", "atomic_writes")} <= kinds
    code, out, _ = cli("components", "show", "persona", "senior_systems_architect")
    assert code == 0 and out == "You are our house architect.\n"
    code, out, _ = cli("components", "list")
    assert code == 0 and "overrides" in out and "overridden" in out
    code, _, err = cli("components", "show", "protocol", "nope")
    assert code == 2 and "not found" in err


def test_every_bundled_component_is_substantial():
    entries = list_components(PromptLibrary())
    assert {e.kind for e in entries} == {"personas", "protocols", "constraints"}
    for e in entries:
        text = e.path.read_text(encoding="utf-8").strip()
        assert len(text) >= 80, e.path
        assert "TODO" not in text


def test_unknown_kind_is_bad_input(cli, tmp_path):
    code, _, err = cli("components", "generate", "widget", "x", "--dir", tmp_path, "--describe", "x")
    assert code == 2 and "unknown component kind" in err


@pytest.mark.parametrize("kind, reply, why", [
    ("persona", "Sure! Here it is: ok.", "expected at least 40"),  # the 22-byte reply that was saved as a persona
    ("persona", "I'm sorry, but I cannot help with creating that persona. " * 8, "refusal"),
    ("persona", "A careful engineer. " * 20, 'starts "You are'),
    ("protocol", "Just be careful and think about the problem from several angles before answering. " * 4, "three numbered steps"),
    ("constraint", "- no network\n- no disk\n- no clocks at all in any part of the solution", "not a list"),
    ("persona", "You are " + "very " * 500, "at most 400"),
])
def test_junk_replies_are_refused_with_exit_3_and_nothing_written(cli, gemini_key, tmp_path, kind, reply, why):
    with FakeGeminiServer(lambda req: text_reply(reply)) as server:
        code, out, err = cli("components", "generate", kind, "chaos_monkey", "--dir", tmp_path, "--describe", "breaks things")
        assert len(server.generate_requests()) == 1
    assert code == 3, (out, err)
    assert why in err and "nothing was written" in err and "SUCCESS" not in out + err
    assert _files(tmp_path) == []


def test_bundled_components_pass_the_shape_check():
    from designsim.kit.components import component_problems

    entries = list_components(PromptLibrary())
    assert len(entries) >= 10
    for entry in entries:
        assert component_problems(entry.kind, entry.path.read_text(encoding="utf-8")) == [], entry.path
