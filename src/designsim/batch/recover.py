"""Post-mortem recovery and the manual-assist toolkit (missing, merge).

:func:`recover` does for *any* earlier run — ours or the legacy script's —
what the legacy ``recover.py`` set out to do, without its failure modes
(it needed the script in its cwd, parsed stdout to find the results, merged
with ``concat`` so a re-run id could appear twice, and overwrote the only copy):

1. read the prompts and the earlier ``RESULTS.pkl`` (tolerating pickled
   objects whose module is not installed); ids without a success are missing;
2. re-run only those: with our runner (checkpointed in ``recover.work/``
   beside the results, so an interrupted recovery resumes) or with the
   unmodified legacy script (:mod:`designsim.batch.legacy`);
3. merge by id (:func:`designsim.batch.tables.merge_frames`, the earlier
   results first so no earlier success is ever dropped or replaced), back the
   original up and replace it atomically (:func:`designsim.fileio.backup_then_replace`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console

from designsim.batch.tables import (
    DEFAULT_ID_COL,
    DEFAULT_PROMPT_COL,
    RESULT_COL,
    Job,
    MergeReport,
    atomic_write_table,
    load_job,
    merge_frames,
    read_pickle_tolerant,
    read_table,
    succeeded_keys,
    stale_temp_files_of,
    table_kind,
)
from designsim.errors import ConfigError

RECOVER_WORK = "recover.work"
LEGACY_KEEP = "recover.legacy"


def read_results(path: str | Path, *, id_col: str = DEFAULT_ID_COL, trust_pickle: bool = False,
                 notes: list[str] | None = None) -> tuple[pd.DataFrame, set[str], bool]:
    """An earlier run's results: ``(frame, unrestorable class names, existed)``.
    A missing file is an empty result (a legacy run that died before its
    first success never wrote one). A *torn* pickle (the legacy script killed
    while rewriting it) is an empty result too, with a line in ``notes``: the
    ``NN_result.txt`` files beside it (:func:`legacy_text_results`) still hold
    its successes. Raises :class:`ConfigError` when the file exists but has no
    ``id_col`` column."""
    path = Path(path)
    empty = pd.DataFrame({id_col: pd.Series([], dtype=object), RESULT_COL: pd.Series([], dtype=object)})
    if not path.exists():
        return empty, set(), False
    if table_kind(path) == "pickle":
        try:
            frame, missing = read_pickle_tolerant(path, trust_pickle=trust_pickle)
        except ConfigError:
            raise
        except Exception as exc:  # EOFError / UnpicklingError: a torn file
            if notes is None:
                raise ConfigError(f"cannot read results pickle: {type(exc).__name__}: {exc}", source=str(path)) from exc
            notes.append(f"note: {path.name} is torn or unreadable ({type(exc).__name__}: {str(exc)[:120]}); "
                         "rebuilding its successes from the NN_result.txt files beside it")
            return empty, set(), True
    else:
        frame, missing = read_table(path), set()
    if id_col not in frame.columns:
        raise ConfigError(f"results have no {id_col!r} column; columns are {list(map(str, frame.columns))}", source=str(path), field=id_col)
    return frame, missing, True


def legacy_text_results(directory: Path, job: Job) -> tuple[pd.DataFrame, list[str]]:
    """Successes rebuilt from the legacy script's ``{str(id).zfill(2)}_result.txt``
    files in ``directory`` (it writes one per success *before* rewriting
    ``RESULTS.pkl``, so they are the better record after a kill). Returns a
    results frame (id column as in the job, ``RESULT``, the job's other
    columns) and notes: names that match no id of ``job``, or more than one,
    and empty files, are skipped and counted."""
    from designsim.batch.tables import safe_file_stem

    by_stem: dict[str, list[str]] = {}
    for key in job.keys:
        by_stem.setdefault(safe_file_stem(job.ids[key]), []).append(key)
    keys: list[str] = []
    texts: list[str] = []
    unknown = ambiguous = empty = 0
    for path in sorted(directory.glob("*_result.txt")):
        stem = path.name[: -len("_result.txt")]
        match = by_stem.get(stem)
        if not match:
            unknown += 1
            continue
        if len(match) > 1:
            ambiguous += 1
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            empty += 1
            continue
        keys.append(match[0])
        texts.append(text)
    notes = []
    if keys:
        notes.append(f"rebuilt {len(keys)} success(es) from NN_result.txt files in {directory}")
    if unknown or ambiguous or empty:
        notes.append(f"skipped result files: {unknown} matching no input id, {ambiguous} matching several, {empty} empty")
    sub = job.subset(keys).frame.reset_index(drop=True)
    order = {k: i for i, k in enumerate(keys)}
    texts_in_order = [texts[order[k]] for k in job.subset(keys).keys]
    frame = pd.DataFrame({job.id_col: sub[job.id_col], RESULT_COL: texts_in_order})
    for col in sub.columns:
        if col not in frame.columns:
            frame[col] = sub[col]
    return frame, notes


def find_missing(input_path: str | Path, output_path: str | Path, *, id_col: str = DEFAULT_ID_COL,
                 prompt_col: str = DEFAULT_PROMPT_COL) -> tuple[Job, pd.DataFrame, list[str]]:
    """``(job, results, missing keys in input order)`` for an input table and
    an earlier run's results file."""
    job = load_job(input_path, id_col=id_col, prompt_col=prompt_col)
    results, _missing_classes, _existed = read_results(output_path, id_col=id_col)
    done = succeeded_keys(results, id_col)
    return job, results, [k for k in job.keys if k not in done]


def _merge_input(path: Path, out_kind: str) -> Path:
    """A shard directory stands for its results file: ``RESULTS.pkl`` when
    merging into a pickle, else ``results.parquet`` (each falling back to
    the other)."""
    if not path.is_dir():
        return path
    order = ["RESULTS.pkl", "results.parquet"] if out_kind == "pickle" else ["results.parquet", "RESULTS.pkl"]
    for name in order:
        if (path / name).is_file():
            return path / name
    raise ConfigError("directory holds neither RESULTS.pkl nor results.parquet", source=str(path))


def merge_files(out: str | Path, inputs: list[Path], *, id_col: str = DEFAULT_ID_COL) -> tuple[MergeReport, Path | None]:
    """``designsim batch merge``: merge ``inputs`` (files or shard directories)
    into ``out`` by id. An existing ``out`` is merged in *first* (its
    successes are never dropped), backed up, then replaced atomically.
    Returns the merge report and the backup path (or ``None``)."""
    out = Path(out)
    kind = table_kind(out)
    paths = [_merge_input(Path(p), kind) for p in inputs]
    for stale in stale_temp_files_of(out):
        stale.unlink(missing_ok=True)
    if out.exists() and all(p.resolve() != out.resolve() for p in paths):
        paths.insert(0, out)
    frames = [read_results(p, id_col=id_col)[0] if p.exists() else _raise_missing(p) for p in paths]
    merged, report = merge_frames(frames, id_col=id_col)
    backup = atomic_write_table(merged, out, backup=True)
    return report, backup


def _raise_missing(path: Path):
    raise ConfigError("file not found", source=str(path))


@dataclass
class RecoverReport:
    """Before/after of one recovery. Counts are ids of the input table."""

    total: int
    before: int
    missing_before: list[str]
    method: str = "runner"
    recovered: int = 0
    after: int = 0
    still_missing: list[str] = field(default_factory=list)
    backup: Path | None = None
    output: Path | None = None
    details: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.still_missing

    def lines(self) -> list[str]:
        """The printed before/after summary."""
        out = [f"before: {self.before}/{self.total} id(s) with a result, {len(self.missing_before)} missing"]
        if self.missing_before:
            out.append(f"re-ran {len(self.missing_before)} missing id(s) with {self.method}: {self.recovered} recovered")
            out.append(f"after:  {self.after}/{self.total} id(s) with a result, {len(self.still_missing)} missing")
            if self.still_missing:
                shown = ", ".join(self.still_missing[:20]) + (" ..." if len(self.still_missing) > 20 else "")
                out.append(f"still missing: {shown}")
        else:
            out.append("nothing to recover: the results are already complete")
        out.extend(self.details)
        if self.backup:
            out.append(f"original backed up to {self.backup}; {self.output} replaced")
        out.append(f"({self.duration_s:.1f}s)")
        return out


def recover(input_path: str | Path, output_path: str | Path, *, id_col: str = DEFAULT_ID_COL,
            prompt_col: str = DEFAULT_PROMPT_COL, legacy_script: str | Path | None = None,
            legacy_timeout_s: float | None = None, options=None, provider_factory=None,
            console: Console | None = None, trust_pickle: bool = False) -> RecoverReport:
    """Recover an earlier run (see the module docstring).

    ``output_path`` is the earlier run's results file (``RESULTS.pkl``,
    ``results.parquet``, ...). When its directory holds designsim's
    ``journal.jsonl``, the run is resumed there from the journal (only ids
    without a success are sent). Otherwise it is a legacy directory: its
    ``RESULTS.pkl`` (torn or not) and its ``NN_result.txt`` files give the
    successes. ``options`` (:class:`~designsim.batch.runner.RunOptions`) and
    ``provider_factory`` are used when re-running with our runner;
    ``legacy_script`` selects the legacy script instead (``legacy_timeout_s``
    bounds it, seconds). Raises :class:`ConfigError` for bad input.
    """
    from designsim.batch.checkpoint import JOURNAL_NAME

    started = time.perf_counter()
    output_path = Path(output_path)
    job = load_job(input_path, id_col=id_col, prompt_col=prompt_col, trust_pickle=trust_pickle)
    if (output_path.parent / JOURNAL_NAME).is_file() and legacy_script is None:
        return _recover_from_journal(job, output_path, options, provider_factory, console, started)
    notes: list[str] = []
    results, unrestorable, existed = read_results(output_path, id_col=id_col, trust_pickle=trust_pickle, notes=notes)
    added = 0
    from_text, text_notes = legacy_text_results(output_path.parent, job) if output_path.parent.is_dir() else (None, [])
    if from_text is not None and len(from_text):
        before_text = succeeded_keys(results, id_col)
        results, _ = merge_frames([results, from_text], id_col=id_col)
        added = len(succeeded_keys(results, id_col) - before_text)
        notes.extend(text_notes[:1] and [f"{text_notes[0]} ({added} not in {output_path.name})"] + text_notes[1:])
    else:
        notes.extend(text_notes)
    done = succeeded_keys(results, id_col)
    missing = [k for k in job.keys if k not in done]
    report = RecoverReport(total=len(job), before=len(job) - len(missing), missing_before=[str(job.ids[k]) for k in missing],
                           output=output_path)
    report.details.extend(notes)
    if not existed:
        report.details.append(f"note: {output_path} did not exist; treating every id without a result file as missing")
    if unrestorable:
        report.details.append("note: pickled objects of " + ", ".join(sorted(unrestorable)) +
                              " are not loaded (not pandas/numpy/pyarrow data, or not installed); those cells are "
                              "kept as None (the original file is backed up unchanged)")
    if not missing:
        report.after = report.before
        if added:
            report.backup = atomic_write_table(results, output_path, backup=existed)
        report.duration_s = time.perf_counter() - started
        return report
    retry_job = job.subset(missing)
    if legacy_script is not None:
        from designsim.batch.legacy import run_legacy_script

        report.method = f"the legacy script {Path(legacy_script).name}"
        run = run_legacy_script(legacy_script, retry_job.frame, keep_under=output_path.parent / LEGACY_KEEP,
                                id_col=id_col, prompt_col=prompt_col, timeout_s=legacy_timeout_s)
        new = run.results
        if run.returncode != 0:
            report.details.append(f"the legacy script exited with {run.returncode}: {run.stderr_tail[-800:]}")
        if run.results_dir:
            report.details.append(f"legacy results directory kept at {run.results_dir}")
    else:
        from designsim.batch.runner import RunOptions, execute_run

        if provider_factory is None:
            raise ConfigError("recover without --legacy-script needs a provider", field="provider")
        work = output_path.parent / RECOVER_WORK
        report.method = "designsim's runner"
        result = execute_run(retry_job, work, options or RunOptions(), provider_factory, console=console)
        report.details.append(f"runner checkpoint and outputs in {work} ({result.summary.run.requests} request(s))")
        if result.message:
            report.details.append(f"runner stopped: {result.message}")
        new = read_pickle_tolerant(work / "RESULTS.pkl")[0]
    new_ok = succeeded_keys(new, id_col) if id_col in new.columns else set()
    report.recovered = len(new_ok & set(missing))
    if report.recovered or added:
        merged, merge_report = merge_frames([results, new], id_col=id_col) if report.recovered else (results, None)
        if merge_report is not None and merge_report.conflicts:
            ids = ", ".join(merge_report.conflict_keys[:20]) + (" ..." if len(merge_report.conflict_keys) > 20 else "")
            report.details.append(f"warning: {merge_report.conflicts} id(s) had two different results; kept the earlier run's (ids {ids})")
        report.backup = atomic_write_table(merged, output_path, backup=existed)
        final = succeeded_keys(merged, id_col)
    else:
        final = done
    report.still_missing = [str(job.ids[k]) for k in job.keys if k not in final]
    report.after = len(job) - len(report.still_missing)
    report.duration_s = time.perf_counter() - started
    return report


def _recover_from_journal(job: Job, output_path: Path, options, provider_factory, console, started: float) -> RecoverReport:
    """``recover`` of a designsim run directory: resume it from its journal,
    so only ids without a success are sent (plus, after a kill, at most the
    requests that were in flight, whose outcome never reached the journal)."""
    from designsim.batch.checkpoint import Journal
    from designsim.batch.outputs import RESULTS_PARQUET, RESULTS_PKL
    from designsim.batch.runner import RunOptions, execute_run

    out_dir = output_path.parent
    state = Journal.read_state(out_dir)
    done = {k for k in job.keys if state.succeeded(k)}
    missing = [k for k in job.keys if k not in done]
    report = RecoverReport(total=len(job), before=len(done), missing_before=[str(job.ids[k]) for k in missing],
                           output=output_path, method="designsim's runner, resuming from its journal")
    report.details.append(f"note: {out_dir} is a designsim run: its journal.jsonl says which ids succeeded")
    if missing:
        if provider_factory is None:
            raise ConfigError("recover without --legacy-script needs a provider", field="provider")
        result = execute_run(job, out_dir, options or RunOptions(), provider_factory, console=console)
        report.details.append(f"{result.summary.run.requests} request(s) sent")
        if result.message:
            report.details.append(f"runner stopped: {result.message}")
    else:  # rewrite the outputs from the journal anyway (a kill may have left them behind it)
        from designsim.batch.outputs import RunCounters, build_summary, write_outputs

        with Journal.open(out_dir) as journal:
            write_outputs(out_dir, job, journal.state, build_summary(job, journal.state, RunCounters()))
    state = Journal.read_state(out_dir)
    final = {k for k in job.keys if state.succeeded(k)}
    report.recovered = len(final - done)
    report.still_missing = [str(job.ids[k]) for k in job.keys if k not in final]
    report.after = len(final)
    if output_path.name not in (RESULTS_PKL, RESULTS_PARQUET):
        from designsim.batch.outputs import result_frames

        legacy, full = result_frames(job, state)
        frame = full if table_kind(output_path) != "pickle" else legacy
        report.backup = atomic_write_table(frame, output_path, backup=output_path.exists())
    report.duration_s = time.perf_counter() - started
    return report
