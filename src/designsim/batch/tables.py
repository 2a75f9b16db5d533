"""Batch tables: reading jobs and results, id keys, shards, and merging by id.

Input formats (chosen by file extension): ``.pkl``/``.pickle`` (pandas pickle,
the legacy script's format), ``.csv``, ``.jsonl``/``.ndjson`` (one JSON object
per line) and ``.parquet``. A :class:`Job` is validated *before* any request is
sent: the id and prompt columns must exist, every id must be present and
unique, every prompt a non-empty string. Errors are
:class:`~designsim.errors.ConfigError` naming the file, the column and the
positions as the file counts them (1-based lines, header counted, for CSV and
JSONL; 1-based rows otherwise), every problem at once.

Pickles are read with :class:`RestrictedUnpickler` (pandas, numpy, pyarrow
and plain builtins only) unless the caller trusts them (``--trust-pickle``).

Ids are compared by a canonical string *key* (:func:`id_key`): ``7``,
``np.int64(7)``, ``7.0`` and ``"7"`` are one id, so a CSV-read shard merges
with a pickle-read one. Results keep the input's own id values.

Merging (:func:`merge_frames`) is vectorised (one concat, one lexsort, one
hash-based ``drop_duplicates``): one row per id; a success always beats a
failure or absence; among conflicting successes the earliest input's wins and
the conflict is reported. That is what keeps "no earlier success ever dropped"
true when a recovery run's results are merged after the original's.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from designsim.errors import ConfigError

#: Legacy column names (``BETA_gemini-api-template.py``: ``PROMPT_INDEX_COLUMN``, ``PROMPT_COLUMN``).
DEFAULT_ID_COL = "PROMPT_ID"
DEFAULT_PROMPT_COL = "PROMPT"
RESULT_COL = "RESULT"
#: Extra columns in ``results.parquet`` (not in the legacy ``RESULTS.pkl``).
STATUS_COL = "STATUS"
REASON_COL = "REASON"

READERS = {".pkl": "pickle", ".pickle": "pickle", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


# --------------------------------------------------------------------------- ids


def id_key(value: Any) -> str:
    """The canonical string key of one id: integers (Python, numpy, or an
    integral float such as ``7.0``) become ``"7"``; everything else ``str()``."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def id_keys(series: pd.Series) -> pd.Series:
    """:func:`id_key` over a column, vectorised for integer and string dtypes."""
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("int64").astype(str).astype(object)
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return series.astype(object)
    return series.map(id_key).astype(object)


def is_missing_id(value: Any) -> bool:
    """True for ``None``, NaN/NA and blank strings."""
    if value is None:
        return True
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):  # arrays and other non-scalars are "present"
        return False
    return isinstance(value, str) and not value.strip()


def shard_of(key: str, count: int) -> int:
    """The 1-based shard (of ``count``) that id ``key`` belongs to: a stable
    hash (first 8 bytes of SHA-256 of the UTF-8 key), never Python's salted
    ``hash()``, so every matrix job computes the same split."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``: shard 2 of 4, 1-based (GitHub matrices count
    from 1 in their names). Raises :class:`ConfigError` on anything else."""
    if not text:
        return None
    try:
        index_s, count_s = str(text).split("/")
        index, count = int(index_s), int(count_s)
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 2/4), got {text!r}", field="shard") from None
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(f"--shard {text}: need 1 <= I <= N", field="shard")
    return index, count


def safe_file_stem(value: Any) -> str:
    """The legacy text-file prefix ``str(id).zfill(2)``, with path separators
    and other unsafe characters replaced by ``_`` so an id can never write
    outside the output directory."""
    text = str(value).zfill(2)
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.=+@" else "_" for ch in text)
    if cleaned in {".", ".."} or not cleaned:
        cleaned = "_" + cleaned
    return cleaned[:120]


# ------------------------------------------------------------------------ reading


class _Placeholder:
    """An inert stand-in for a pickled object whose class is not allowed (or
    not importable) here, such as the legacy ``RESPONSE`` column's
    ``google.generativeai`` response objects. Calling it, or restoring state
    into it, runs nothing; re-pickled it becomes ``None``."""

    _qualname = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __reduce__(self):  # re-pickled as None, never as a broken reference
        return (type(None), ())

    def __repr__(self) -> str:
        return f"<unrestorable {self._qualname}>"


#: Names a pandas/numpy/pyarrow pickle needs besides classes (issue 11 item 1):
#: reconstructors of numpy arrays and scalars, pandas blocks and indexes, and
#: pyarrow arrays (pandas 3 pickles string columns as pyarrow arrays). Read from
#: pickles written by pandas 1.5-3.1, numpy 1.26-2.4 and pyarrow 26 (2026-12-01).
_SAFE_FUNCTIONS = {
    "numpy": {"_reconstruct", "scalar", "_frombuffer", "dtype", "ndarray"},
    "pandas": {"_unpickle_block", "__pyx_unpickle_NDArrayBacked", "_new_Index", "new_block", "_new_PeriodIndex",
               "_new_DatetimeIndex", "_new_IntervalIndex", "_unpickle_timestamp", "_timedelta_unpickle",
               "_unpickle_series_compat", "_unpickle_frame_compat", "__pyx_unpickle_Enum", "_make_block"},
    "pyarrow": {"_restore_array", "py_buffer", "type_for_alias", "_reconstruct_table", "_reconstruct_record_batch",
                "chunked_array", "schema", "field", "table", "array", "struct", "list_", "large_list", "timestamp",
                "dictionary", "decimal128", "decimal256", "date32", "date64", "duration", "map_", "string", "large_string",
                "binary", "large_binary", "float64", "int64", "bool_", "null", "time32", "time64"},
}
#: Builtins and standard-library types plain data is made of (nothing that can call or import).
_SAFE_STDLIB = {
    "builtins": {"set", "frozenset", "bytearray", "slice", "complex", "list", "dict", "tuple", "bytes", "str", "int",
                 "float", "bool", "range", "object"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "collections": {"OrderedDict"},
    "copyreg": {"_reconstructor"},
    "zoneinfo": {"ZoneInfo"},
    "_codecs": {"encode"},
}


def _allowed_class(module: str, name: str, obj: Any) -> bool:
    """Whether a pickle may use ``module.name`` (already imported as ``obj``)."""
    if name in _SAFE_STDLIB.get(module, ()):
        return True
    root = module.split(".")[0]
    if root not in _SAFE_FUNCTIONS or module.startswith(("pandas.io", "pandas.plotting", "pandas.tests", "pyarrow.fs",
                                                         "pyarrow.parquet", "pyarrow.dataset", "numpy.lib.npyio")):
        return False
    if name in _SAFE_FUNCTIONS[root]:
        return True
    if not isinstance(obj, type):  # pd.NA / pd.NaT singletons are instances of allowed types
        return type(obj).__module__.split(".")[0] == "pandas" and type(obj).__name__ in {"NAType", "NaTType"}
    if root == "numpy":
        return issubclass(obj, (np.generic, np.dtype, np.ndarray))
    if root == "pandas":
        from pandas.api.extensions import ExtensionArray, ExtensionDtype
        from pandas.tseries.offsets import BaseOffset

        allowed: tuple[type, ...] = (pd.Index, pd.DataFrame, pd.Series, ExtensionArray, ExtensionDtype, pd.Timestamp,
                                     pd.Timedelta, pd.Period, pd.Interval, BaseOffset)
        internals = module.startswith(("pandas.core.internals", "pandas._libs.internals"))
        return issubclass(obj, allowed) or internals
    import pyarrow as pa

    return issubclass(obj, (pa.DataType, pa.Array, pa.ChunkedArray, pa.Scalar, pa.Field, pa.Schema, pa.Table,
                            pa.RecordBatch, pa.Buffer))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles pandas tables without running code from the pickle.

    A pickle can call any importable function; this unpickler lets it use only
    classes of pandas, numpy and pyarrow data, their reconstructors, and plain
    builtins (:func:`_allowed_class`). Any other reference (``os.system``, a
    legacy ``google.generativeai`` response class, a class that is not
    installed) becomes an inert :class:`_Placeholder`; their dotted names are
    collected in :attr:`refused`. Issue 11 item 1: no pickle from anywhere
    untrusted is loaded with plain :mod:`pickle` unless ``--trust-pickle``.
    """

    def __init__(self, file):
        super().__init__(file)
        self.refused: set[str] = set()

    def find_class(self, module: str, name: str):
        try:
            obj = super().find_class(module, name)
        except (ImportError, AttributeError):
            obj = None
        if obj is not None and _allowed_class(module, name, obj):
            return obj
        self.refused.add(f"{module}.{name}")
        return type(name, (_Placeholder,), {"_qualname": f"{module}.{name}"})


def read_pickle_restricted(path: Path) -> tuple[pd.DataFrame, set[str]]:
    """Read a pandas pickle with :class:`RestrictedUnpickler`. Returns the
    frame and the dotted names replaced by ``None`` (empty for a plain table).
    Raises :class:`ConfigError` when the pickle does not hold a DataFrame."""
    path = Path(path)
    with open(path, "rb") as fh:
        unpickler = RestrictedUnpickler(fh)
        frame = unpickler.load()
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"the pickle does not hold a pandas DataFrame (found {type(frame).__name__})", source=str(path))
    for col in frame.columns:
        if frame[col].dtype == object:
            mask = frame[col].map(lambda v: isinstance(v, _Placeholder))
            if mask.any():
                frame[col] = frame[col].where(~mask, None)
    return frame, unpickler.refused


def read_pickle_tolerant(path: Path, *, trust_pickle: bool = False) -> tuple[pd.DataFrame, set[str]]:
    """A results or input pickle: restricted (:func:`read_pickle_restricted`)
    unless ``trust_pickle`` (``--trust-pickle``: plain ``pd.read_pickle``, which
    runs whatever code the file names; only for files you made yourself).
    Returns the frame and the set of names that were replaced by ``None``."""
    if trust_pickle:
        try:
            return pd.read_pickle(path), set()
        except (ImportError, AttributeError):
            pass
    return read_pickle_restricted(path)


def _csv_record_lines(path: Path) -> list[int]:
    """The 1-based file line on which each CSV data record starts (the header
    is line 1; a quoted prompt may span lines, so this reads the file with the
    :mod:`csv` module rather than counting rows)."""
    import csv

    starts: list[int] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        previous_end = 0
        for index, row in enumerate(reader):
            if index and row:  # pandas skips blank lines too
                starts.append(previous_end + 1)
            previous_end = reader.line_num
    return starts


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """One JSON object per line; returns the frame and each row's 1-based line.
    Raises :class:`ConfigError` listing *every* bad line by number."""
    records: list[dict] = []
    lines: list[int] = []
    problems: list[str] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                problems.append(f"line {lineno}: not valid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"line {lineno}: expected a JSON object, found {type(obj).__name__}")
                continue
            records.append(obj)
            lines.append(lineno)
    if problems:
        raise ConfigError(_problem_list(problems), source=str(path))
    return pd.DataFrame.from_records(records), lines


def _problem_list(problems: list[str], limit: int = 50) -> str:
    shown = problems[:limit]
    more = [f"... and {len(problems) - limit} more problem(s)"] if len(problems) > limit else []
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n  " + "\n  ".join(shown + more)


def read_table(path: str | Path, *, tolerant: bool = True, id_col: str | None = None, trust_pickle: bool = False,
               with_lines: bool = False):
    """Read a table by extension (see :data:`READERS`).

    Pickles go through :func:`read_pickle_tolerant` (restricted unless
    ``trust_pickle``). A CSV reads ``id_col`` as text, so ``"007"`` stays
    ``"007"``. With ``with_lines`` returns ``(frame, labels)`` where
    ``labels[i]`` says where row ``i`` is in the file: ``"line N"`` (1-based,
    header counted) for CSV and JSONL, ``"row N"`` (1-based) otherwise.
    Raises :class:`ConfigError` for a missing file, an unknown extension, or
    content that does not parse (the message keeps the parser's reason; JSONL
    names every bad line).
    """
    del tolerant  # every pickle read is restricted-and-tolerant now; kept for callers
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"unknown table format {path.suffix!r}; expected one of {sorted(READERS)}", source=str(path))
    if not path.is_file():
        raise ConfigError("file not found", source=str(path))
    lines: list[int] | None = None
    try:
        if kind == "pickle":
            frame = read_pickle_tolerant(path, trust_pickle=trust_pickle)[0]
        elif kind == "csv":
            frame = pd.read_csv(path, dtype={id_col: str} if id_col else None)
            lines = _csv_record_lines(path)
        elif kind == "jsonl":
            frame, lines = _read_jsonl(path)
        else:
            frame = pd.read_parquet(path)
    except ConfigError:
        raise
    except Exception as exc:  # the parsers raise a zoo of types; keep their reason
        raise ConfigError(f"cannot read {kind} table: {type(exc).__name__}: {exc}", source=str(path)) from exc
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame, found {type(frame).__name__}", source=str(path))
    if not with_lines:
        return frame
    if lines is not None and len(lines) == len(frame):
        labels = [f"line {n}" for n in lines]
    else:
        labels = [f"row {i + 1}" for i in range(len(frame))]
    return frame, labels


def write_table(frame: pd.DataFrame, path: Path, kind: str | None = None) -> None:
    """Write ``frame`` to ``path`` as ``kind`` (default: by ``path``'s
    extension); pickles use protocol 4 like the legacy script. Not atomic by
    itself: use :func:`atomic_write_table`."""
    kind = kind or table_kind(path)
    if kind == "pickle":
        frame.to_pickle(path, protocol=4)
    elif kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        parquet_safe(frame).to_parquet(path, index=False)


def atomic_write_table(frame: pd.DataFrame, target: str | Path, *, backup: bool = False) -> Path | None:
    """Write ``frame`` to ``target`` atomically (format by ``target``'s
    extension). With ``backup`` an existing file is first kept as the one
    rolling backup ``NAME.bak`` (replacing the previous one, so repeated
    merges of a 140 MB table do not pile up ``.bak.N`` copies), whose path is
    returned. The backup is a hard link where the file system allows (no
    copy), made under a temp name and renamed, so it is never half-written."""
    import os
    import shutil

    from designsim.fileio import atomic_write

    target = Path(target)
    kind = table_kind(target)
    kept = None
    if backup and target.exists():
        kept = target.with_name(target.name + ".bak")
        tmp = target.with_name(f".{kept.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(target, tmp)
        except OSError:
            shutil.copy2(target, tmp)
        os.replace(tmp, kept)
    atomic_write(target, lambda p: write_table(frame, p, kind))
    return kept


def stale_temp_files_of(target: str | Path, *, older_than_s: float = 60.0) -> list[Path]:
    """Temp files a killed write of ``target`` (or of its backup) left beside
    it (``.NAME.*.tmp``, ``.NAME.bak.*.tmp``) not touched for ``older_than_s``
    seconds, so a write still running elsewhere is left alone."""
    import time

    target = Path(target)
    if not target.parent.is_dir():
        return []
    now = time.time()
    found = []
    for path in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if path.is_file() and now - path.stat().st_mtime >= older_than_s:
                found.append(path)
        except OSError:
            continue
    return sorted(found)


def table_kind(path: str | Path) -> str:
    """The format name for ``path``'s extension; :class:`ConfigError` if unknown."""
    kind = READERS.get(Path(path).suffix.lower())
    if kind is None:
        raise ConfigError(f"unknown table format {Path(path).suffix!r}; expected one of {sorted(READERS)}", source=str(path))
    return kind


def parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns pyarrow cannot type (mixed objects) become strings; others stay."""
    import pyarrow as pa

    out = frame
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        try:
            pa.array(frame[col], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            if out is frame:
                out = frame.copy()
            out[col] = frame[col].map(lambda v: None if v is None else str(v))
    return out


# ---------------------------------------------------------------------------- job


@dataclass
class Job:
    """A validated batch input.

    ``frame`` is the input table in input order; ``keys`` the canonical id
    keys (one per row, unique); ``prompts`` maps key -> prompt text;
    ``id_col``/``prompt_col`` the column names; ``source`` the file path.
    Every column but the id is *carried* into the results (the legacy script
    carried ``PROMPT`` too).
    """

    frame: pd.DataFrame
    keys: list[str]
    prompts: dict[str, str]
    id_col: str = DEFAULT_ID_COL
    prompt_col: str = DEFAULT_PROMPT_COL
    source: str = ""
    ids: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, keys: Iterable[str]) -> "Job":
        """The job restricted to ``keys`` (input order kept)."""
        wanted = set(keys)
        mask = [k in wanted for k in self.keys]
        frame = self.frame[mask]
        kept = [k for k in self.keys if k in wanted]
        return Job(frame, kept, {k: self.prompts[k] for k in kept}, self.id_col, self.prompt_col, self.source,
                   {k: self.ids[k] for k in kept})

    def shard(self, index: int, count: int) -> "Job":
        """Only the ids of shard ``index`` of ``count`` (see :func:`shard_of`)."""
        return self.subset(k for k in self.keys if shard_of(k, count) == index)


def _rows(labels: list[str], limit: int = 8) -> str:
    """``"line 3"`` / ``"lines 3, 7"``: positions as the file counts them."""
    words = [label.split(" ", 1) for label in labels]
    unit = words[0][0] if words else "row"
    shown = ", ".join(w[-1] for w in words[:limit])
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return f"{unit} {shown}{more}" if len(labels) == 1 else f"{unit}s {shown}{more}"


def validate_job(frame: pd.DataFrame, *, id_col: str = DEFAULT_ID_COL, prompt_col: str = DEFAULT_PROMPT_COL, source: str = "",
                 labels: list[str] | None = None) -> Job:
    """Check ``frame`` and build a :class:`Job`.

    Raises one :class:`ConfigError` (``source`` = file, ``field`` = the first
    bad column) listing *every* problem at once (issue 13): an absent column,
    missing or duplicated ids, missing / non-text / blank prompts. Positions
    are ``labels`` (from :func:`read_table` ``with_lines``: 1-based file lines
    with the header counted for CSV/JSONL) or 1-based rows.
    """
    frame = frame.reset_index(drop=True)
    labels = labels if labels is not None and len(labels) == len(frame) else [f"row {i + 1}" for i in range(len(frame))]
    problems: list[tuple[str, str]] = []
    absent = [col for col in (id_col, prompt_col) if col not in frame.columns]
    for col in absent:
        problems.append((col, f"column {col!r} not found; columns are {list(map(str, frame.columns))}"))
    keys: list[str] = []
    raw_ids: list[Any] = []
    if id_col not in absent:
        raw_ids = frame[id_col].tolist()
        missing = [labels[i] for i, v in enumerate(raw_ids) if is_missing_id(v)]
        if missing:
            problems.append((id_col, f"missing id at {_rows(missing)}"))
        keys = [id_key(v) for v in raw_ids]
        seen: dict[str, int] = {}
        dups: dict[str, list[int]] = {}
        for pos, key in enumerate(keys):
            if is_missing_id(raw_ids[pos]):
                continue
            if key in seen:
                dups.setdefault(key, [seen[key]]).append(pos)
            else:
                seen[key] = pos
        for k, v in dups.items():
            problems.append((id_col, f"duplicate id {k!r} at {_rows([labels[i] for i in v])}"))
    prompts: list[Any] = []
    if prompt_col not in absent:
        prompts = frame[prompt_col].tolist()
        bad = [labels[i] for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()]
        if bad:
            problems.append((prompt_col, f"missing, blank or non-text prompt at {_rows(bad)}"))
    if problems:
        raise ConfigError(_problem_list([f"{col}: {msg}" if len(problems) > 1 else msg for col, msg in problems]),
                          source=source, field=problems[0][0])
    return Job(frame, keys, dict(zip(keys, prompts)), id_col, prompt_col, source, dict(zip(keys, raw_ids)))


def load_job(path: str | Path, *, id_col: str = DEFAULT_ID_COL, prompt_col: str = DEFAULT_PROMPT_COL,
             trust_pickle: bool = False) -> Job:
    """:func:`read_table` (ids as text for CSV, positions as file lines) then :func:`validate_job`."""
    frame, labels = read_table(path, id_col=id_col, trust_pickle=trust_pickle, with_lines=True)
    return validate_job(frame, id_col=id_col, prompt_col=prompt_col, source=str(path), labels=labels)


# ---------------------------------------------------------------------- results


def success_mask(frame: pd.DataFrame) -> pd.Series:
    """Rows that hold a success, whatever the table's source: a non-blank
    ``RESULT`` that is not *marked* failed. A row is marked failed only by a
    ``STATUS`` value other than ``"ok"`` (``failed``, ``pending``); a missing
    ``STATUS`` column or an empty cell in it (a legacy ``RESULTS.pkl`` row
    after a concat with our ``results.parquet``) does not mark anything, so
    such a row with text is a success (issue 12, item 1)."""
    if RESULT_COL not in frame.columns:
        return pd.Series(False, index=frame.index)
    result = frame[RESULT_COL]
    has_text = result.notna() & (result.astype(str).str.strip() != "")
    if STATUS_COL in frame.columns:
        status = frame[STATUS_COL].astype(object)
        unmarked = status.isna() | (status.astype(str).str.strip() == "")
        return has_text & (unmarked | (status == "ok"))
    return has_text


def succeeded_keys(frame: pd.DataFrame, id_col: str = DEFAULT_ID_COL) -> set[str]:
    """Keys of ids with a success in a results table (empty if no id column)."""
    if id_col not in frame.columns or frame.empty:
        return set()
    return set(id_keys(frame.loc[success_mask(frame), id_col]))


@dataclass
class MergeReport:
    """What :func:`merge_frames` did. ``rows_in`` rows read, ``ids`` ids out,
    ``succeeded`` of them with a success, ``duplicates_dropped`` rows dropped,
    ``conflicts`` ids with differing successes (earliest input kept),
    ``conflict_examples`` up to 5 ``(key, kept_input, other_input)`` (1-based
    input numbers), ``conflict_keys`` every such id key."""

    rows_in: int = 0
    ids: int = 0
    succeeded: int = 0
    duplicates_dropped: int = 0
    conflicts: int = 0
    conflict_examples: list[tuple[str, int, int]] = field(default_factory=list)
    conflict_keys: list[str] = field(default_factory=list)


def merge_frames(frames: list[pd.DataFrame], *, id_col: str = DEFAULT_ID_COL) -> tuple[pd.DataFrame, MergeReport]:
    """Merge result tables by id, earliest first.

    Guarantees: one row per id; an id with a success anywhere keeps a
    success; among successes the earliest frame's (then earliest row's) is
    kept; row order is first appearance. Columns are the union (missing cells
    are NA). Runs in O(n log n) over all rows (≈1 s for 1M rows).
    Raises :class:`ConfigError` when a frame lacks ``id_col``.
    """
    report = MergeReport()
    parts = []
    for i, frame in enumerate(frames):
        if id_col not in frame.columns:
            if not len(frame):  # an empty file (a JSONL or CSV with no rows has no columns either)
                continue
            raise ConfigError(f"results table {i + 1} has no {id_col!r} column", field=id_col)
        parts.append(frame.reset_index(drop=True))
    if not parts:
        return pd.DataFrame({id_col: [], RESULT_COL: []}), report
    indexed = [(i, p) for i, p in enumerate(parts) if len(p)]
    if not indexed:
        return parts[0].copy(), report
    sources = np.concatenate([np.full(len(p), i, dtype=np.int32) for i, p in indexed])
    df = pd.concat([p for _, p in indexed], ignore_index=True, sort=False) if len(indexed) > 1 else indexed[0][1].copy()
    report.rows_in = len(df)
    keys = id_keys(df[id_col]).to_numpy()
    ok = success_mask(df).to_numpy(dtype=bool)
    rows = np.arange(len(df))
    order = np.lexsort((rows, ~ok))  # successes first, then input order (source order is row order)
    key_sorted = pd.Series(keys[order])
    first = ~key_sorted.duplicated(keep="first").to_numpy()
    codes, _uniques = pd.factorize(keys)  # codes follow each id's first appearance
    kept_rows = order[first]
    kept_rows = kept_rows[np.argsort(codes[kept_rows], kind="stable")]
    # conflicts: successes for one id whose RESULT text differs from the kept one
    ok_rows = order[ok[order]]
    if len(ok_rows):
        ok_keys = pd.Series(keys[ok_rows])
        dup_ok = ok_keys.duplicated(keep=False).to_numpy()
        if dup_ok.any():
            sub = pd.DataFrame({"key": ok_keys[dup_ok].to_numpy(), "row": ok_rows[dup_ok],
                                "text": df[RESULT_COL].to_numpy()[ok_rows[dup_ok]]})
            firsts = sub.drop_duplicates("key", keep="first").set_index("key")
            sub["kept_text"] = sub["key"].map(firsts["text"])
            sub["kept_row"] = sub["key"].map(firsts["row"])
            differing = sub[(sub["row"] != sub["kept_row"]) & (sub["text"].astype(str) != sub["kept_text"].astype(str))]
            report.conflicts = int(differing["key"].nunique())
            report.conflict_keys = differing["key"].drop_duplicates().tolist()
            for rec in differing.drop_duplicates("key").head(5).itertuples():
                report.conflict_examples.append((rec.key, int(sources[rec.kept_row]) + 1, int(sources[rec.row]) + 1))
    merged = df.iloc[kept_rows].reset_index(drop=True)
    if STATUS_COL in merged.columns:  # a success read from a table without STATUS is marked ok, not NaN
        unmarked = merged[STATUS_COL].isna() & ok[kept_rows]
        if unmarked.any():
            merged[STATUS_COL] = merged[STATUS_COL].astype(object).where(~unmarked, "ok")
    report.ids = len(merged)
    report.succeeded = int(ok[kept_rows].sum())
    report.duplicates_dropped = report.rows_in - report.ids
    return merged, report


def to_jsonable(value: Any) -> Any:
    """Numpy scalars and NA to plain JSON values (for summaries and journals)."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def dumps(obj: Any) -> str:
    """Compact JSON with numpy values converted."""
    return json.dumps(obj, default=to_jsonable, ensure_ascii=False, separators=(",", ":"))
