"""Reads outside the repository (issue 11, "Why" 7, CLI): evidence paths stay in
the repository, symbolic links out of it are refused, before any model call."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from designsim.cli import main
from designsim.evidence import read_extra_files
from designsim.paths import UnsafePath, is_inside, normalise_repo_path, resolve_inside
from designsim.testing import FakeGeminiServer, text_reply

DIFF = Path(__file__).resolve().parent.parent / "fixtures" / "security" / "small.diff"
SECRET = "AIzaSy-environ-secret-0123456789"


def rulebook(files: list[str]) -> str:
    listed = "".join(f"    - {json.dumps(f)}\n" for f in files)
    return ("version: 1\nname: paths\nscenario: s\ndirective: Simulate the change.\nevidence:\n  files:\n" + listed +
            "stages:\n  - id: a\n    title: A\n    focus: f\n    format: flaw\n")


def review(repo: Path, capsys) -> tuple[int, str, FakeGeminiServer]:
    with FakeGeminiServer(lambda req: text_reply("x")) as server:
        code = main(["review", "--rulebook", str(repo / ".simulation.yml"), "--diff", str(DIFF), "--repo", str(repo),
                     "--out", str(repo / "comment.md")])
    return code, capsys.readouterr().err, server


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
def test_symlink_to_proc_self_environ_never_reaches_the_prompt(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "design.md").write_text("the design")
    os.symlink("/proc/self/environ", tmp_path / "docs" / "env.md")
    (tmp_path / ".simulation.yml").write_text(rulebook(["docs/*.md"]))
    code, err, server = review(tmp_path, capsys)
    assert code == 2 and server.generate_requests() == []
    assert "docs/env.md" in err and "outside the repository" in err and SECRET not in err


def test_symlink_to_a_sibling_directory_is_refused(tmp_path):
    repo, outside = tmp_path / "repo", tmp_path / "other"
    repo.mkdir(), outside.mkdir()
    (outside / "secret.md").write_text("other repository's secret")
    os.symlink(outside / "secret.md", repo / "notes.md")
    with pytest.raises(UnsafePath, match="outside the repository"):
        read_extra_files(["*.md"], repo)


def test_symlink_inside_the_repository_is_read(tmp_path):
    (tmp_path / "real.md").write_text("real text")
    os.symlink("real.md", tmp_path / "alias.md")
    assert read_extra_files(["*.md"], tmp_path) == {"alias.md": "real text", "real.md": "real text"}


@pytest.mark.parametrize("pattern, why", [("/etc/passwd", "absolute"), ("../../etc/passwd", "climbs out"),
                                          ("docs/../../x", "climbs out"), ("C:/Windows/win.ini", "absolute"),
                                          ("docs\\..\\..\\x", "backslash"), ("a\x00b", "control")])
def test_absolute_or_escaping_evidence_path_is_exit_2_with_file_and_line(tmp_path, capsys, pattern, why, gemini_key):
    (tmp_path / ".simulation.yml").write_text(rulebook(["docs/*.md", pattern]))
    code, err, server = review(tmp_path, capsys)
    assert code == 2 and server.generate_requests() == []
    assert f"{tmp_path / '.simulation.yml'}:8:" in err and "evidence.files.1" in err and why in err


def test_normalisation_folds_harmless_segments():
    assert normalise_repo_path("./docs//a/../b.md") == "docs/b.md"
    assert normalise_repo_path("docs/") == "docs/"
    assert normalise_repo_path("**/*.md") == "**/*.md"
    with pytest.raises(UnsafePath):
        normalise_repo_path(".")


def test_is_inside_resolves_links(tmp_path):
    os.symlink("/", tmp_path / "root")
    assert is_inside(tmp_path, tmp_path / "a" / "b") and not is_inside(tmp_path, tmp_path / "root" / "etc")
    with pytest.raises(UnsafePath):
        resolve_inside(tmp_path, "root/etc/hostname")
