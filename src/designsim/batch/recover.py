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
    table_kind,
)
from designsim.errors import ConfigError

RECOVER_WORK = "recover.work"
LEGACY_KEEP = "recover.legacy"


def read_results(path: str | Path, *, id_col: str = DEFAULT_ID_COL) -> tuple[pd.DataFrame, set[str], bool]:
    """An earlier run's results: ``(frame, unrestorable class names, existed)``.
    A missing file is an empty result (a legacy run that died before its
    first success never wrote one). Raises :class:`ConfigError` when the file
    exists but has no ``id_col`` column."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({id_col: pd.Series([], dtype=object), RESULT_COL: pd.Series([], dtype=object)}), set(), False
    if table_kind(path) == "pickle":
        try:
            frame, missing = read_pickle_tolerant(path)
        except Exception as exc:
            raise ConfigError(f"cannot read results pickle: {type(exc).__name__}: {exc}", source=str(path)) from exc
    else:
        frame, missing = read_table(path), set()
    if id_col not in frame.columns:
        raise ConfigError(f"results have no {id_col!r} column; columns are {list(map(str, frame.columns))}", source=str(path), field=id_col)
    return frame, missing, True


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
            console: Console | None = None) -> RecoverReport:
    """Recover an earlier run (see the module docstring).

    ``options`` (:class:`~designsim.batch.runner.RunOptions`) and
    ``provider_factory`` are used when re-running with our runner;
    ``legacy_script`` selects the legacy script instead (``legacy_timeout_s``
    bounds it, seconds). Raises :class:`ConfigError` for bad input.
    """
    started = time.perf_counter()
    output_path = Path(output_path)
    job = load_job(input_path, id_col=id_col, prompt_col=prompt_col)
    results, unrestorable, existed = read_results(output_path, id_col=id_col)
    done = succeeded_keys(results, id_col)
    missing = [k for k in job.keys if k not in done]
    report = RecoverReport(total=len(job), before=len(job) - len(missing), missing_before=[str(job.ids[k]) for k in missing],
                           output=output_path)
    if not existed:
        report.details.append(f"note: {output_path} did not exist; treating every id as missing")
    if unrestorable:
        report.details.append("note: pickled objects of " + ", ".join(sorted(unrestorable)) +
                              " cannot be restored here (module not installed); those cells are kept as None "
                              "(the original file is backed up unchanged)")
    if not missing:
        report.after = report.before
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
    if report.recovered:
        merged, merge_report = merge_frames([results, new], id_col=id_col)
        if merge_report.conflicts:
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
