"""Merge by id across every format (hypothesis): a row is a success when it has a
result and is not marked failed, whatever its source; a success never loses to a
failure; differing successes are reported with their ids."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from designsim.batch.tables import STATUS_COL, atomic_write_table, merge_frames, read_table, succeeded_keys

FORMATS = ["pkl", "parquet", "csv", "jsonl"]

#: one table row: id, whether it is a success, the text, and whether the table has STATUS
row = st.tuples(st.integers(1, 12), st.booleans(), st.sampled_from(["a", "b", "c"]))
table = st.tuples(st.lists(row, max_size=10, unique_by=lambda r: r[0]), st.sampled_from(FORMATS), st.booleans())


def _frame(rows, with_status):
    ids = [r[0] for r in rows]
    if with_status:  # our results.parquet: failed rows carry STATUS failed and no text
        return pd.DataFrame({"PROMPT_ID": ids, STATUS_COL: ["ok" if ok else "failed" for _i, ok, _t in rows],
                             "RESULT": [t if ok else None for _i, ok, t in rows]})
    kept = [r for r in rows if r[1]]  # a legacy RESULTS.pkl holds successes only
    return pd.DataFrame({"PROMPT_ID": [r[0] for r in kept], "RESULT": [r[2] for r in kept]})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables=st.lists(table, min_size=1, max_size=4))
def test_merge_keeps_every_success_whatever_the_formats(tmp_path_factory, tables):
    tmp = tmp_path_factory.mktemp("merge")
    frames = []
    expected_ok: dict[str, str] = {}
    seen: set[str] = set()
    differing: set[str] = set()
    for n, (rows, fmt, with_status) in enumerate(tables):
        frame = _frame(rows, with_status)
        if fmt == "csv" and not len(frame):
            continue  # an empty CSV has no typed columns to read back
        path = tmp / f"t{n}.{fmt}"
        atomic_write_table(frame, path)
        back = read_table(path, id_col="PROMPT_ID")
        frames.append(back)
        for pid, ok, text in rows:
            key = str(pid)
            seen.add(key)
            if ok:
                if key in expected_ok and expected_ok[key] != text:
                    differing.add(key)
                expected_ok.setdefault(key, text)  # the earliest input's success wins
    if not frames:
        return
    merged, report = merge_frames(frames)
    assert succeeded_keys(merged) == set(expected_ok)  # no success lost, none invented
    keys = merged["PROMPT_ID"].astype(str)
    assert keys.is_unique
    by_id = dict(zip(keys, merged["RESULT"]))
    for key, text in expected_ok.items():
        assert by_id[key] == text
    assert set(report.conflict_keys) == differing
    if STATUS_COL in merged.columns:  # a success from a table without STATUS is marked ok, not left empty
        ok_rows = merged[merged["PROMPT_ID"].astype(str).isin(expected_ok)]
        assert (ok_rows[STATUS_COL] == "ok").all()


def test_the_issue_example_parquet_with_status_and_a_legacy_pickle(tmp_path):
    parquet = pd.DataFrame({"PROMPT_ID": [1, 2, 3], STATUS_COL: ["ok", "failed", "ok"], "RESULT": ["r1", None, "r3"]})
    legacy = pd.DataFrame({"PROMPT_ID": [2, 4], "RESULT": ["r2", "r4"]})
    merged, report = merge_frames([parquet, legacy])
    assert report.succeeded == 4 and succeeded_keys(merged) == {"1", "2", "3", "4"}
    assert list(merged["PROMPT_ID"]) == [1, 2, 3, 4]  # first appearance order
    assert dict(zip(merged["PROMPT_ID"], merged[STATUS_COL])) == {1: "ok", 2: "ok", 3: "ok", 4: "ok"}
    # and in the other order the same successes survive
    merged2, _ = merge_frames([legacy, parquet])
    assert succeeded_keys(merged2) == {"1", "2", "3", "4"}


def test_a_thousand_differing_successes_are_all_reported(capsys, tmp_path):
    from designsim.cli import main

    a = pd.DataFrame({"PROMPT_ID": range(1000), "RESULT": ["x"] * 1000})
    b = pd.DataFrame({"PROMPT_ID": range(1000), STATUS_COL: "ok", "RESULT": ["y"] * 1000})
    a.to_pickle(tmp_path / "a.pkl")
    b.to_parquet(tmp_path / "b.parquet")
    assert main(["batch", "merge", str(tmp_path / "all.parquet"), str(tmp_path / "a.pkl"), str(tmp_path / "b.parquet")]) == 0
    err = capsys.readouterr().err
    assert "1000 id(s) have different successful results" in err and "ids 0, 1, 2" in err
