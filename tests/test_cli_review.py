"""The review CLI contract: commands, flags, exit codes and JSON keys from DESIGN.md."""

from __future__ import annotations

import json
from pathlib import Path

from designsim.cli import main
from designsim.providers.base import Usage
from designsim.providers.replay import Cassette, Interaction

from reviewkit import RULEBOOK, flaw_output, judge_json, pathways_output

FIXTURES = Path(__file__).parent / "fixtures"


def test_matrix_on_white_paper_appendix_c(capsys):
    assert main(["matrix", str(FIXTURES / "appendix_c_response.md"), "--json"]) == 0
    (m,) = json.loads(capsys.readouterr().out)["matrices"]
    assert set(m) == {"pathways", "criteria", "cells", "verdicts", "recommended"}
    assert m["pathways"] == ["The Post-Mortem Recovery Agent", "The Intelligent Wrapper", "The Manual Assist Toolkit"]
    assert m["recommended"] == "The Post-Mortem Recovery Agent"
    assert m["verdicts"] == {"The Post-Mortem Recovery Agent": "Recommended", "The Intelligent Wrapper": "Viable", "The Manual Assist Toolkit": "Rejected"}


def test_matrix_csv_and_none_found(tmp_path, capsys):
    assert main(["matrix", str(FIXTURES / "appendix_c_response.md"), "--csv"]) == 0
    assert "The Post-Mortem Recovery Agent" in capsys.readouterr().out
    empty = tmp_path / "x.md"
    empty.write_text("no tables here")
    assert main(["matrix", str(empty)]) == 1


def test_grade_no_llm_json_shape(capsys, tmp_path):
    assert main(["grade", str(FIXTURES / "appendix_c_response.md"), "--format", "pathways", "--no-llm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"passed", "format", "checks", "criteria"} and out["passed"] and out["criteria"] == []
    bad = tmp_path / "bad.md"
    bad.write_text(flaw_output("x").replace("### Revised Algorithm", "### Afterthoughts"))
    assert main(["grade", str(bad), "--format", "flaw", "--no-llm", "--json"]) == 1


def test_grade_with_a_replayed_judge(tmp_path, capsys):
    out = tmp_path / "out.md"
    out.write_text(flaw_output("x"))
    cassette = tmp_path / "c.json"
    cassette.write_text(Cassette(interactions=[Interaction(label="judge:output", text=json.dumps(judge_json(flaw_output("x"), "flaw")))]).model_dump_json())
    assert main(["grade", str(out), "--format", "flaw", "--provider", "replay", "--cassette", str(cassette), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["criteria"]) == 6


def _cassette(path: Path, *, naming_fails: bool = False) -> None:
    items = []
    for sid, title in (("state", "State management"), ("naming", "Naming"), ("idem", "Idempotency")):
        out = flaw_output(title)
        items.append(Interaction(label=f"stage:{sid}", text=out, usage=Usage(input_tokens=500, output_tokens=80)))
        verdict = "FAIL" if naming_fails and sid == "naming" else "PASS"
        for _ in range(2 if verdict == "FAIL" else 1):
            items.append(Interaction(label=f"judge:{sid}", text=json.dumps(judge_json(out, "flaw", verdict=verdict))))
        if verdict == "FAIL":
            items.append(Interaction(label=f"stage:{sid}", text=out))
    items.append(Interaction(label="stage:synthesis", text=pathways_output()))
    items.append(Interaction(label="judge:synthesis", text=json.dumps(judge_json(pathways_output(), "pathways"))))
    path.write_text(Cassette(model="recorded", interactions=items).model_dump_json(indent=1))


def test_review_exit_codes_with_replay(tmp_path, realdata, capsys):
    rb = tmp_path / ".simulation.yml"
    rb.write_text(RULEBOOK)
    diff = realdata / "diffs/01-small-bugfix__PyGithub__e3321f0a.diff"
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    _cassette(good)
    _cassette(bad, naming_fails=True)
    report = tmp_path / "report.json"
    args = ["review", "--rulebook", str(rb), "--diff", str(diff), "--provider", "replay"]
    assert main(args + ["--cassette", str(good), "--json-out", str(report), "--out", str(tmp_path / "c.md")]) == 0
    data = json.loads(report.read_text())
    assert data["verdict"] == "pass" and all(a["prompt"] for s in data["stages"] for a in s["attempts"])
    assert (tmp_path / "c.md").read_text().startswith("<!-- designsim:rulebook=tiny -->")
    assert main(args + ["--cassette", str(bad)]) == 1
    assert main(["review", "--rulebook", str(rb), "--provider", "replay", "--cassette", str(good)]) == 2  # neither --diff nor --git


def test_bad_rulebook_exits_2_with_location(tmp_path, capsys, realdata):
    rb = tmp_path / "r.yml"
    rb.write_text(RULEBOOK.replace("directive:", "directiv:"))
    code = main(["review", "--rulebook", str(rb), "--diff", str(realdata / "diffs/01-small-bugfix__PyGithub__e3321f0a.diff")])
    err = capsys.readouterr().err
    assert code == 2 and f"{rb}:4:1: directiv: unknown key 'directiv' (did you mean 'directive'?)" in err
    assert "Traceback" not in err


def test_live_review_without_key_is_a_config_error_exit_2(tmp_path, realdata, capsys):
    # one meaning per error (issue 10): a missing key is configuration, exit 2 in every command
    rb = tmp_path / "r.yml"
    rb.write_text(RULEBOOK)
    code = main(["review", "--rulebook", str(rb), "--diff", str(realdata / "diffs/01-small-bugfix__PyGithub__e3321f0a.diff")])
    assert code == 2 and "GEMINI_API_KEY" in capsys.readouterr().err
