"""Batch outputs, rebuilt from the checkpoint and written atomically.

``DIR/RESULTS.pkl``   legacy layout: one row per *succeeded* id, columns
                      ``PROMPT_ID`` (the id column), ``RESULT``, then every
                      other input column (the legacy script carried ``PROMPT``
                      too); pickle protocol 4 like the legacy script.
``DIR/results.parquet`` every id: ``STATUS`` (ok / failed / pending),
                      ``RESULT``, ``REASON``, ``ERROR``, ``REQUESTS``,
                      ``INPUT_TOKENS``, ``OUTPUT_TOKENS`` + carried columns.
``DIR/{id}_result.txt`` one per success; the prefix is the legacy
                      ``str(id).zfill(2)`` (made path-safe), plus a short
                      hash when two ids would share a name.
``DIR/summary.json``  :class:`Summary`.

All of them are derived from ``journal.jsonl``, so writing them again (at the
end, on interrupt, or after a crash by just re-running) is always safe.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field

from designsim.batch.checkpoint import JournalState
from designsim.batch.tables import RESULT_COL, REASON_COL, STATUS_COL, Job, safe_file_stem
from designsim.fileio import atomic_write, atomic_write_text

RESULTS_PKL = "RESULTS.pkl"
RESULTS_PARQUET = "results.parquet"
SUMMARY_JSON = "summary.json"
LOG_NAME = "LOG.log"


class RunCounters(BaseModel):
    """What this one invocation did: HTTP ``requests`` sent, ``retries`` among
    them, ``http_429`` answered 429, ``duration_s`` wall seconds of the whole
    process (reading the input and writing the outputs included), ``stopped``
    why it ended early; ``rpm_mode`` ``auto``/``fixed``, ``rpm_settled`` the
    requests/min limit in force at the end (with ``--rpm auto``: the rate the
    search settled on), ``concurrency_peak`` most requests in flight,
    ``latency_s`` the mean observed seconds per request (``None`` if none)."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    duration_s: float = 0.0
    stopped: str = ""
    rpm_mode: str = "fixed"
    rpm_settled: float | None = None
    concurrency_peak: int = 0
    latency_s: float | None = None


class Summary(BaseModel):
    """``summary.json`` (keys fixed by DESIGN.md's contract, extras after).

    ``total`` ids in the job (the shard, with ``--shard``); ``succeeded`` ids
    with a result; ``failed`` = ``total - succeeded`` (failed or never tried);
    ``requests`` / ``retries`` HTTP requests over the job's whole journal
    (every run, including killed ones); tokens (tokens) over successes;
    ``duration_s`` seconds of this whole process; ``failures`` count of unfinished
    ids by reason (``"not_attempted"`` for ids never sent).
    """

    total: int
    succeeded: int
    failed: int
    requests: int
    retries: int
    input_tokens: int
    output_tokens: int
    duration_s: float
    failures: dict[str, int] = Field(default_factory=dict)
    complete: bool = False
    shard: str | None = None
    backend: str = "live"
    run: RunCounters = Field(default_factory=RunCounters)
    open_batch_jobs: list[str] = Field(default_factory=list)
    journal_lines_dropped: int = 0


def build_summary(job: Job, state: JournalState, run: RunCounters, *, shard: str | None = None, backend: str = "live") -> Summary:
    """Fold the checkpoint state into a :class:`Summary` for ``job``'s ids."""
    succeeded = requests = retries = tin = tout = 0
    failures: dict[str, int] = {}
    for key in job.keys:
        sent = state.requests.get(key, 0)
        requests += sent
        retries += max(0, sent - state.attempts.get(key, 0))
        rec = state.best.get(key)
        if rec is not None and rec.status == "ok":
            succeeded += 1
            tin += rec.input_tokens
            tout += rec.output_tokens
        else:
            reason = rec.reason if rec is not None else "not_attempted"
            failures[reason] = failures.get(reason, 0) + 1
    total = len(job)
    return Summary(total=total, succeeded=succeeded, failed=total - succeeded, requests=requests, retries=retries,
                   input_tokens=tin, output_tokens=tout, duration_s=round(run.duration_s, 3), failures=failures,
                   complete=succeeded == total, shard=shard, backend=backend, run=run,
                   open_batch_jobs=sorted(state.open_jobs), journal_lines_dropped=state.torn + state.corrupt)


def result_frames(job: Job, state: JournalState) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(legacy RESULTS.pkl frame, full results.parquet frame)`` for ``job``."""
    carried = [c for c in job.frame.columns if c != job.id_col]
    status, text, reason, error, reqs, tin, tout = [], [], [], [], [], [], []
    for key in job.keys:
        rec = state.best.get(key)
        if rec is None:
            status.append("pending"); text.append(None); reason.append("not_attempted"); error.append(None)
            reqs.append(0); tin.append(0); tout.append(0)
            continue
        status.append(rec.status)
        text.append(rec.text if rec.status == "ok" else None)
        reason.append(rec.reason or None)
        error.append(rec.error or None)
        reqs.append(rec.requests); tin.append(rec.input_tokens); tout.append(rec.output_tokens)
    base = job.frame.reset_index(drop=True)
    full = pd.DataFrame({job.id_col: base[job.id_col], STATUS_COL: status, RESULT_COL: text, REASON_COL: reason,
                         "ERROR": error, "REQUESTS": reqs, "INPUT_TOKENS": tin, "OUTPUT_TOKENS": tout})
    for col in carried:
        if col not in full.columns:
            full[col] = base[col]
    ok = full[STATUS_COL] == "ok"
    legacy = full.loc[ok, [job.id_col, RESULT_COL] + [c for c in carried if c not in (RESULT_COL,)]].reset_index(drop=True)
    return legacy, full


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def result_file_names(ids: list) -> list[str]:
    """``{stem}_result.txt`` for each id (issue 11 item 9a): the legacy
    ``str(id).zfill(2)`` stem (made path-safe) when it is unique, else the
    stem plus ``-`` and 8 hex characters of SHA-256 of ``str(id)``, so ids
    such as ``"a/b"`` and ``"a_b"`` or ``"7"`` and ``"07"`` never share a file."""
    import hashlib

    stems = [safe_file_stem(i) for i in ids]
    counts: dict[str, int] = {}
    for stem in stems:
        folded = stem.lower()  # case-insensitive file systems (macOS, Windows) fold names
        counts[folded] = counts.get(folded, 0) + 1
    names = []
    for raw, stem in zip(ids, stems):
        if counts[stem.lower()] > 1:
            stem = f"{stem[:100]}-{hashlib.sha256(str(raw).encode('utf-8')).hexdigest()[:8]}"
        names.append(f"{stem}_result.txt")
    return names


def write_results_pickle(out_dir: Path, job: Job, state: JournalState) -> None:
    """Only ``RESULTS.pkl``, atomically (the periodic checkpoint during a run)."""
    legacy, _full = result_frames(job, state)
    atomic_write(out_dir / RESULTS_PKL, lambda p: legacy.to_pickle(p, protocol=4))


def write_summary(out_dir: Path, summary: Summary) -> None:
    """``summary.json``, atomically."""
    atomic_write_text(out_dir / SUMMARY_JSON, summary.model_dump_json(indent=2) + "\n")


def clean_stale_temp_files(out_dir: Path) -> int:
    """Remove temp files (``.NAME.*.tmp``) that a killed run's atomic writes
    left in ``out_dir``; the caller holds the journal lock, so no write of
    ours is running. Returns how many were removed."""
    removed = 0
    if not out_dir.is_dir():
        return 0
    for path in out_dir.glob(".*.tmp"):
        if path.is_file():
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def write_outputs(out_dir: Path, job: Job, state: JournalState, summary: Summary) -> None:
    """Write every output file atomically (``designsim.fileio``). A text file
    is rewritten only when its content changed, so a resumed run touches only
    new results."""
    from designsim.batch.tables import parquet_safe

    out_dir.mkdir(parents=True, exist_ok=True)
    legacy, full = result_frames(job, state)
    atomic_write(out_dir / RESULTS_PKL, lambda p: legacy.to_pickle(p, protocol=4))
    atomic_write(out_dir / RESULTS_PARQUET, lambda p: parquet_safe(full).to_parquet(p, index=False))
    ids = legacy[job.id_col].tolist()
    for name, result in zip(result_file_names(ids), legacy[RESULT_COL].tolist()):
        _write_if_changed(out_dir / name, result)
    write_summary(out_dir, summary)
