"""Issue 13 items 1, 2 and 5: bad input is refused before any model call (exit 2,
one line saying what was given and what is expected, zero requests to Gemini).

The provider is the real google-genai client pointed at the local fake Gemini
server, so "zero requests" is counted where a live run would spend money."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from designsim.cli import main
from designsim.testing import FakeGeminiServer, text_reply

from reviewkit import RULEBOOK

SMALL_DIFF = ("diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n"
              " import os\n-x = 1\n+x = 2\n")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository with two commits and the test rulebook at its root."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / ".simulation.yml").write_text(RULEBOOK)
    (root / "app.py").write_text("import os\nx = 1\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "one")
    (root / "app.py").write_text("import os\nx = 2\n")
    _git(root, "commit", "-q", "-am", "two")
    return root


@pytest.fixture
def fake(gemini_key):
    with FakeGeminiServer(lambda req: text_reply("should never be asked")) as server:
        yield server


def _review(repo: Path, *args: str) -> int:
    return main(["review", "--rulebook", str(repo / ".simulation.yml"), "--repo", str(repo), "--provider", "gemini", *args])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("content, expect", [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"# A readme\n\nSome text, no diff.\n", "is not a unified diff"),
    (bytes(range(256)) * 4, "binary file"),
])
def test_a_file_that_is_not_a_diff_costs_nothing(repo, fake, capsys, tmp_path, content, expect):
    bad = tmp_path / "input.txt"
    bad.write_bytes(content)
    assert _review(repo, "--diff", str(bad)) == 2
    err = _one_line(capsys)
    assert expect in err and str(bad) in err and "expected a unified diff" in err
    assert fake.generate_requests() == []


def test_bin_ls_and_readme_are_refused(repo, fake, capsys):
    ls = shutil.which("ls")
    assert ls
    assert _review(repo, "--diff", ls) == 2
    assert "binary file, not a unified diff" in _one_line(capsys)
    assert _review(repo, "--diff", str(Path(__file__).resolve().parents[1] / "README.md")) == 2
    assert "not a unified diff" in _one_line(capsys)
    assert fake.generate_requests() == []


@pytest.mark.parametrize("spec, expect", [
    ("HEAD", "not a revision range: 'HEAD' (expected A..B"),
    ("HEAD..HEAD", "git diff HEAD..HEAD is empty: no file changes"),
    ("HEAD..HEAD~1", "inverted range 'HEAD..HEAD~1': HEAD~1 is an ancestor of HEAD"),
    ("nosuch..HEAD", "unknown revision 'nosuch'"),
    ("--output=/tmp/x", "not a revision range"),
])
def test_bad_git_ranges_cost_nothing(repo, fake, capsys, spec, expect):
    assert _review(repo, "--git", spec) == 2
    err = _one_line(capsys)
    assert expect in err, err
    assert fake.generate_requests() == []


def test_git_outside_a_repository_is_one_line(tmp_path, fake, capsys):
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / ".simulation.yml").write_text(RULEBOOK)
    env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)  # tmp_path might sit inside some checkout
    try:
        assert _review(outside, "--git", "main..HEAD") == 2
    finally:
        if env_ceiling is None:
            os.environ.pop("GIT_CEILING_DIRECTORIES")
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling
    err = _one_line(capsys)
    assert "is not inside a git repository" in err and "--repo" in err
    assert fake.generate_requests() == []


def test_a_good_range_passes_the_checks(repo):
    from designsim.evidence import check_diff, git_diff

    raw = git_diff("HEAD~1..HEAD", repo)
    check_diff(raw, "git diff HEAD~1..HEAD")  # does not raise
    assert b"+x = 2" in raw
    assert git_diff("HEAD~1...HEAD", repo) == raw


def test_evidence_files_that_match_nothing_refuse_the_review(repo, fake, capsys, tmp_path):
    text = RULEBOOK.replace("concurrency: 3\n", "concurrency: 3\nevidence:\n  files:\n    - app.py\n    - docs/DESING.md\n")
    (repo / ".simulation.yml").write_text(text)
    diff = tmp_path / "change.diff"
    diff.write_text(SMALL_DIFF)
    assert _review(repo, "--diff", str(diff)) == 2
    err = _one_line(capsys)
    line = text.splitlines().index("    - docs/DESING.md") + 1
    assert f".simulation.yml:{line}:7: evidence.files.1: 'docs/DESING.md' matches no file" in err, err
    assert fake.generate_requests() == []

    from designsim.kit.lint import lint_file

    report = lint_file(repo / ".simulation.yml")
    (finding,) = [e for e in report.errors if e.code == "evidence-files"]
    assert (finding.line, finding.field) == (line, "evidence.files.1") and report.exit_code == 2
    assert main(["lint", str(repo / ".simulation.yml")]) == 2
    assert "docs/DESING.md" in capsys.readouterr().out
