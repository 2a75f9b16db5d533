"""designsim.matrix against the real simulation response of seed 001 Appendix C
(tests/fixtures/appendix_c_response.md, provenance in tests/fixtures/README.md)
plus synthetic tables for the shapes the real text does not show."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from designsim.matrix import DecisionMatrix, extract_matrices, matrices_json, matrix_to_csv, plain_text, strip_symbols

FIXTURES = Path(__file__).parent / "fixtures"
APPENDIX_C = FIXTURES / "appendix_c_response.md"
SEED_001 = FIXTURES / "seeds" / "001_6ccd68e617c81126.txt"  # vendored unchanged (fixtures/SOURCES.md)

PATHWAYS = ["The Post-Mortem Recovery Agent", "The Intelligent Wrapper", "The Manual Assist Toolkit"]


def _seed_model_answer(seed_text: str) -> str:
    """The model's (non-thought) answer inside Appendix C's JSON array."""
    start = seed_text.index("### **Appendix C:**")
    body = seed_text.index("````json", start) + len("````json\n")
    turns = json.loads(seed_text[body: seed_text.index("\n````", body)])
    return [t for t in turns if t.get("role") == "model" and not t.get("isThought")][0]["text"]


def test_fixture_matches_the_seed():
    assert _seed_model_answer(SEED_001.read_text(encoding="utf-8")) == APPENDIX_C.read_text(encoding="utf-8")


def test_appendix_c_matrix():
    text = APPENDIX_C.read_text(encoding="utf-8")
    assert "| Pathway | Pros | Cons |" in text  # the Step 3 table is there and must be skipped
    (m,) = extract_matrices(text)
    assert m.pathways == PATHWAYS
    assert m.raw_header == ["Criteria", *PATHWAYS]
    assert m.criteria == [
        "Respect for Constraint #1 (No Modify)",
        "Respect for Constraint #2 (Backward Comp.)",
        "Respect for Constraint #3 (Reduced Load)",
        "Implementation Complexity",
        "Overall Risk",
    ]
    assert m.verdicts == dict(zip(PATHWAYS, ["Recommended", "Viable", "Rejected"]))
    assert m.recommended == "The Post-Mortem Recovery Agent" and m.recommended_count == 1
    assert m.cells["Respect for Constraint #1 (No Modify)"] == dict.fromkeys(PATHWAYS, "Full Compliance")
    assert m.cells["Respect for Constraint #3 (Reduced Load)"] == dict(
        zip(PATHWAYS, ["High Reduction", "Maximum Reduction", "Moderate Reduction"]))
    assert m.cells["Overall Risk"]["The Intelligent Wrapper"] == "Medium"
    every_cell = [v for row in m.cells.values() for v in row.values()] + list(m.verdicts.values())
    assert not any(mark in v for v in every_cell for mark in ("✅", "⚠", "\ufe0f", "**", "*"))


def test_json_shape_matches_the_cli_contract():
    doc = matrices_json(extract_matrices(APPENDIX_C.read_text(encoding="utf-8")))
    (m,) = doc["matrices"]
    assert {"pathways", "criteria", "cells", "verdicts", "recommended"} <= set(m)
    json.dumps(doc)  # serialisable as is
    assert m["recommended"] == PATHWAYS[0]


def test_csv_export():
    matrices = extract_matrices(APPENDIX_C.read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO(matrix_to_csv(matrices))))
    assert len(rows) == 3 * 5 + 3
    assert rows[0] == {"matrix": "1", "criterion": "Respect for Constraint #1 (No Modify)",
                       "pathway": PATHWAYS[0], "value": "Full Compliance", "recommended": "true"}
    verdicts = [(r["pathway"], r["value"]) for r in rows if r["criterion"] == "Verdict"]
    assert verdicts == list(zip(PATHWAYS, ["Recommended", "Viable", "Rejected"]))
    assert matrix_to_csv([]) == "matrix,criterion,pathway,value,recommended\n"


def test_pros_cons_table_alone_is_not_a_matrix():
    text = APPENDIX_C.read_text(encoding="utf-8")
    step3 = text[text.index("### **Step 3"): text.index("### **Step 4")]
    assert "|" in step3
    assert extract_matrices(step3) == []


def test_transposed_matrix_is_normalised():
    md = """
| Pathway | Cost | Risk | **Verdict** |
|---|---|---|---|
| *Alpha* | Low | ❌ High | Rejected |
| **Beta** | Medium | ✅ Low | **Recommended** |
"""
    (m,) = extract_matrices(md)
    assert m.pathways == ["Alpha", "Beta"]
    assert m.criteria == ["Cost", "Risk"]
    assert m.cells == {"Cost": {"Alpha": "Low", "Beta": "Medium"}, "Risk": {"Alpha": "High", "Beta": "Low"}}
    assert m.verdicts == {"Alpha": "Rejected", "Beta": "Recommended"}
    assert m.recommended == "Beta" and m.raw_header == ["Pathway", "Cost", "Risk", "Verdict"]


@pytest.mark.parametrize(
    ("verdicts", "recommended", "count"),
    [
        (["Recommended", "Not Recommended", "Viable"], "A", 1),
        (["Not recommended", "Rejected", "Viable"], None, 0),
        (["Recommended", "Recommended (with caveats)", "Rejected"], None, 2),
        (["Viable", "**Highly Recommended** ✅", "Not-recommended"], "B", 1),
    ],
)
def test_recommended_needs_exactly_one(verdicts, recommended, count):
    md = "| Criteria | A | B | C |\n|---|---|---|---|\n| Cost | 1 | 2 | 3 |\n| Verdict | " + " | ".join(verdicts) + " |\n"
    (m,) = extract_matrices(md)
    assert (m.recommended, m.recommended_count) == (recommended, count)


def test_cell_markup_br_links_code_and_escaped_pipes():
    md = (
        "| Criteria: | [Option A](https://example.com) | `opt_b` |\n|:--|:-:|--:|\n"
        "| **Notes** | first<br>second<br/>third | a \\| b |\n"
        "| Verdict: | Viable ⚠️ | Recommended 👍🏽 |\n"
    )
    (m,) = extract_matrices(md)
    assert m.pathways == ["Option A", "opt_b"]
    assert m.criteria == ["Notes"]
    assert m.cells["Notes"] == {"Option A": "first\nsecond\nthird", "opt_b": "a | b"}
    assert m.verdicts == {"Option A": "Viable", "opt_b": "Recommended"}


def test_short_rows_duplicates_and_blank_names():
    md = "| Criteria | A | A | |\n|---|---|---|---|\n| Cost | 1 |\n| Cost | 2 | 3 | 4 |\n| VERDICT | Recommended |\n"
    (m,) = extract_matrices(md)
    assert m.pathways == ["A", "A (2)", "(column 3)"]
    assert m.criteria == ["Cost", "Cost (2)"]
    assert m.cells["Cost"] == {"A": "1", "A (2)": "", "(column 3)": ""}
    assert m.verdicts == {"A": "Recommended", "A (2)": "", "(column 3)": ""}


def test_tables_inside_markdown_fences_and_lists_are_found():
    table = "| Criteria | X | Y |\n|---|---|---|\n| Risk | Low | High |\n| Verdict | Recommended | Rejected |\n"
    wrapped = f"Here you go:\n\n```markdown\n{table}```\n\n- item\n\n  {table.replace(chr(10), chr(10) + '  ')}"
    matrices = extract_matrices(wrapped)
    assert len(matrices) == 2 and all(m.recommended == "X" for m in matrices)
    assert extract_matrices(f"```python\n{table}```\n") == []  # code is not prose


def test_several_matrices_in_document_order():
    one = "| Criteria | A | B |\n|---|---|---|\n| c | 1 | 2 |\n| Verdict | Recommended | Viable |\n"
    two = "| Criteria | C | D |\n|---|---|---|\n| c | 1 | 2 |\n| Verdict | Rejected | Recommended |\n"
    got = extract_matrices(f"# One\n\n{one}\n# Two\n\n{two}")
    assert [m.recommended for m in got] == ["A", "D"]
    assert [r["matrix"] for r in csv.DictReader(io.StringIO(matrix_to_csv(got)))].count("2") == 4  # 1 criterion + verdict, x 2 pathways


def test_not_matrices():
    assert extract_matrices("") == []
    assert extract_matrices("no tables | here | at all") == []
    assert extract_matrices("| Verdict |\n|---|\n| Recommended |\n") == []  # no pathway column
    assert extract_matrices("| a | b |\n|---|---|\n") == []


def test_plain_text_and_symbol_stripping():
    assert plain_text("✅ **High** *Reduction* `x^2`") == "High Reduction x^2"
    assert plain_text("[text](http://x) ![alt](y.png) &amp;") == "text alt &"
    assert strip_symbols("👨‍👩‍👧 family 1️⃣ ok ❌ → é") == " family 1 ok  → é"


def test_model_is_a_pydantic_model():
    m = DecisionMatrix(pathways=["A"], criteria=[], cells={}, verdicts={"A": "Viable"})
    assert m.recommended is None and m.recommended_count == 0 and m.raw_header == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(list("|-:*_`\\<>br \n#ab✅️[]()!~") + ["Verdict", "<br>", "---", "```md\n"]),
             max_size=120).map("".join),
))
def test_never_crashes_on_arbitrary_markdown(text):
    for m in extract_matrices(text):
        assert set(m.verdicts) == set(m.pathways)
        assert all(set(row) == set(m.pathways) for row in m.cells.values())
        assert len(set(m.criteria)) == len(m.criteria) and len(set(m.pathways)) == len(m.pathways)


_NAME = st.from_regex(r"[A-Z][a-z]{1,8}( [A-Za-z0-9]{1,6}){0,2}", fullmatch=True).filter(
    lambda s: s.lower() not in ("verdict", "verdicts"))


@settings(max_examples=100, deadline=None)
@given(
    pathways=st.lists(_NAME, min_size=2, max_size=5, unique=True),
    criteria=st.lists(_NAME, min_size=1, max_size=6, unique=True),
    data=st.data(),
)
def test_generated_matrices_round_trip(pathways, criteria, data):
    verdicts = data.draw(st.lists(st.sampled_from(["Recommended", "Viable", "Rejected"]),
                                  min_size=len(pathways), max_size=len(pathways)))
    cells = {c: {p: data.draw(_NAME) for p in pathways} for c in criteria}
    lines = ["| Criteria | " + " | ".join(f"**{p}**" for p in pathways) + " |",
             "|" + "---|" * (len(pathways) + 1)]
    lines += [f"| **{c}** | " + " | ".join(f"✅ {cells[c][p]}" for p in pathways) + " |" for c in criteria]
    lines.append("| **Verdict** | " + " | ".join(f"**{v}**" for v in verdicts) + " |")
    (m,) = extract_matrices("Intro.\n\n" + "\n".join(lines) + "\n\nOutro.")
    assert m.pathways == pathways and m.criteria == criteria and m.cells == cells
    assert m.verdicts == dict(zip(pathways, verdicts))
    assert m.recommended_count == verdicts.count("Recommended")
    assert m.recommended == (pathways[verdicts.index("Recommended")] if verdicts.count("Recommended") == 1 else None)
