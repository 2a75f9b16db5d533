"""Issue 13 item 7: `designsim schema`, the committed schema/simulation.schema.json,
and both bundled examples validating against it with check-jsonschema."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from designsim.cli import main
from designsim.schema import SCHEMA_PATH, render_schema, undocumented_fields

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / SCHEMA_PATH
EXAMPLES = sorted(REPO.glob("examples/*/.simulation.yml"))


def _checker() -> str:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert exe, "check-jsonschema (a test dependency) is not installed"
    return exe


def test_committed_schema_is_current():
    assert COMMITTED.read_text(encoding="utf-8") == render_schema(), (
        "schema/simulation.schema.json is stale: run `designsim schema > schema/simulation.schema.json`")


def test_schema_command_prints_it(capsys):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == render_schema()
    data = json.loads(out)
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["additionalProperties"] is False and "stages" in data["required"]


def test_schema_out_writes_a_file(tmp_path):
    target = tmp_path / "s.json"
    assert main(["schema", "--out", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_schema()


def test_every_rulebook_field_has_a_description_and_the_schema_carries_examples():
    assert undocumented_fields() == [], "add these to designsim.schema.FIELD_DOCS (or a Field description)"
    data = json.loads(render_schema())
    props = data["properties"]
    assert all("description" in p for p in props.values())
    assert props["model"]["examples"] and props["stages"]["examples"]
    stage = data["$defs"]["Stage"]["properties"]
    assert "baseline" in stage["depends_on"]["description"]


def test_the_examples_validate_with_check_jsonschema():
    assert len(EXAMPLES) >= 2, EXAMPLES  # batch-recovery and jit-generation (and the fixed JIT case)
    done = subprocess.run([_checker(), "--schemafile", str(COMMITTED), *map(str, EXAMPLES)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("text, needle", [
    ("scenario: s\ndirective: d\nstages: [{id: a, title: A, focus: f}]\nstagse: []\n", "stagse"),
    ("scenario: s\ndirective: d\nstages: [{id: a, title: A, focus: f}]\nconcurrency: many\n", "many"),
    ("scenario: s\ndirective: d\nstages: []\n", "stages"),
])
def test_the_schema_rejects_what_the_loader_rejects(tmp_path, text, needle):
    from designsim.rulebook import RulebookError, parse_rulebook

    with pytest.raises(RulebookError):
        parse_rulebook(text)
    bad = tmp_path / ".simulation.yml"
    bad.write_text(text)
    done = subprocess.run([_checker(), "--schemafile", str(COMMITTED), str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and needle in done.stdout, done.stdout


def test_output_shorthand_is_accepted(tmp_path):
    ok = tmp_path / ".simulation.yml"
    ok.write_text("scenario: s\ndirective: d\nstages: [{id: a, title: A, focus: f}]\noutput: flaw\n")
    done = subprocess.run([_checker(), "--schemafile", str(COMMITTED), str(ok)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
