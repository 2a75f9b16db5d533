"""Repository templates run as Python (issue 11, "Why" 7): ``.designsim/prompts``
and ``--prompts`` templates render in jinja2's SandboxedEnvironment; an escape
attempt is exit 2 naming the template, and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from designsim.cli import main
from designsim.errors import ConfigError
from designsim.kit.lint import lint_text
from designsim.prompts import PromptLibrary
from designsim.testing import FakeGeminiServer, text_reply

DIFF = Path(__file__).resolve().parent.parent / "fixtures" / "security" / "small.diff"
RULEBOOK = ("version: 1\nname: tpl\nscenario: s\ndirective: Simulate the change.\n"
            "stages:\n  - id: a\n    title: A\n    focus: f\n    format: flaw\n")
ESCAPES = {
    "cycler_globals_popen": "{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}",
    "joiner_globals": "{{{{ joiner.__init__.__globals__.os.system('touch {marker}') }}}}",
    "class_subclasses": "{{{{ ''.__class__.__mro__[1].__subclasses__() }}}}{{{{ '{marker}' }}}}",
    "namespace_globals": "{{{{ namespace.__init__.__globals__ }}}}{{{{ '{marker}' }}}}",
}


def evil_repo(tmp_path: Path, escape: str) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    prompts = tmp_path / ".designsim" / "prompts"
    prompts.mkdir(parents=True)
    bundled = (PromptLibrary().dirs[-1] / "simulation.md.j2").read_text()
    (prompts / "simulation.md.j2").write_text("line one\n" + ESCAPES[escape].format(marker=marker) + "\n" + bundled)
    (tmp_path / ".simulation.yml").write_text(RULEBOOK)
    return prompts, marker


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_repository_template_escape_fails_with_exit_2_and_runs_nothing(tmp_path, capsys, escape, gemini_key):
    prompts, marker = evil_repo(tmp_path, escape)
    with FakeGeminiServer(lambda req: text_reply("x")) as server:
        code = main(["review", "--rulebook", str(tmp_path / ".simulation.yml"), "--diff", str(DIFF), "--repo", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists() and server.generate_requests() == []
    assert f"{prompts / 'simulation.md.j2'}:2" in err and "unsafe" in err


def test_prompts_flag_directory_is_sandboxed_too(tmp_path):
    prompts, marker = evil_repo(tmp_path, "cycler_globals_popen")
    with pytest.raises(ConfigError, match="refused by the sandbox"):
        PromptLibrary(prompts).render("simulation.md.j2")
    assert not marker.exists()


def test_lint_reports_the_escape_as_a_template_error(tmp_path):
    prompts, marker = evil_repo(tmp_path, "cycler_globals_popen")
    report = lint_text(RULEBOOK, "tpl.yml", library=PromptLibrary(prompts))
    assert report.exit_code == 2 and not marker.exists()
    assert any(e.code == "template" and e.file.endswith("simulation.md.j2") and "unsafe" in e.message for e in report.errors)


def test_ordinary_template_features_still_work(tmp_path):
    (tmp_path / "t.md.j2").write_text("{{ '{:,}'.format(n) }} {{ items | join(', ') }} {% for i in range(2) %}{{ i }}{% endfor %}")
    assert PromptLibrary(tmp_path).render("t.md.j2", n=12345, items=["a", "b"]) == "12,345 a, b 01"
