"""The suite is self-contained: every vendored real file has its provenance in
tests/fixtures/SOURCES.md, and no test refers to the workspace's shared folder."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
REALDATA = FIXTURES / "realdata"  # what the ``realdata`` fixture in tests/conftest.py returns

VENDORED = ("realdata", "legacy", "seeds")


def _vendored_files() -> list[Path]:
    return sorted(p for top in VENDORED for p in (FIXTURES / top).rglob("*") if p.is_file())


def test_every_vendored_file_has_its_provenance():
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    files = _vendored_files()
    assert len(files) >= 30 and REALDATA.is_dir()
    missing = [str(p.relative_to(FIXTURES)) for p in files if p.name not in sources]
    assert not missing, f"add these to tests/fixtures/SOURCES.md: {missing}"


def test_no_test_reads_the_shared_folder():
    needles = ("../" + "shared", "DESIGNSIM_" + "SHARED", "parents[3] / " + '"shared"')
    offenders = [
        f"{p.relative_to(REPO)}: {n}"
        for p in sorted((REPO / "tests").rglob("*.py")) + sorted((REPO / "src" / "designsim" / "testing").rglob("*.py"))
        for n in needles
        if n in p.read_text(encoding="utf-8")
    ]
    assert not offenders, offenders
