"""Batch tables: reading jobs and results, id keys, shards, and merging by id.

Input formats (chosen by file extension): ``.pkl``/``.pickle`` (pandas pickle,
the legacy script's format), ``.csv``, ``.jsonl``/``.ndjson`` (one JSON object
per line) and ``.parquet``. A :class:`Job` is validated *before* any request is
sent: the id and prompt columns must exist, every id must be present and
unique, every prompt a non-empty string. Errors are
:class:`~designsim.errors.ConfigError` naming the file, the column and the row
positions (0-based, header excluded).

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
    """Stands in for an object whose class cannot be imported here (the
    legacy ``RESPONSE`` column holds ``google.generativeai`` response objects)."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __reduce__(self):  # re-pickled as None, never as a broken reference
        return (type(None), ())

    def __repr__(self) -> str:
        return f"<unrestorable {self._qualname}>"


class _TolerantUnpickler(pickle.Unpickler):
    """Unpickles a pandas pickle even when some cell objects' modules are missing."""

    missing: set[str]

    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            self.missing.add(f"{module}.{name}")
            return type(name, (_Placeholder,), {"_qualname": f"{module}.{name}"})


def read_pickle_tolerant(path: Path) -> tuple[pd.DataFrame, set[str]]:
    """``pd.read_pickle``, falling back to an unpickler that replaces objects of
    unimportable classes with ``None``. Returns the frame and the set of class
    names that could not be restored (empty when the plain read worked)."""
    try:
        return pd.read_pickle(path), set()
    except (ImportError, AttributeError):
        pass
    unpickler = _TolerantUnpickler(io.BytesIO(path.read_bytes()))
    unpickler.missing = set()
    frame = unpickler.load()
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError("the pickle does not hold a pandas DataFrame", source=str(path))
    for col in frame.columns:
        if frame[col].dtype == object:
            mask = frame[col].map(lambda v: isinstance(v, _Placeholder))
            if mask.any():
                frame[col] = frame[col].where(~mask, None)
    return frame, unpickler.missing


def read_table(path: str | Path, *, tolerant: bool = False) -> pd.DataFrame:
    """Read a table by extension (see :data:`READERS`).

    ``tolerant`` pickles go through :func:`read_pickle_tolerant` (for result
    files whose ``RESPONSE`` objects' module is not installed). Raises
    :class:`ConfigError` for a missing file, an unknown extension, or content
    that does not parse (the message keeps the parser's reason).
    """
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"unknown table format {path.suffix!r}; expected one of {sorted(READERS)}", source=str(path))
    if not path.is_file():
        raise ConfigError("file not found", source=str(path))
    try:
        if kind == "pickle":
            frame = read_pickle_tolerant(path)[0] if tolerant else pd.read_pickle(path)
        elif kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except ConfigError:
        raise
    except Exception as exc:  # the parsers raise a zoo of types; keep their reason
        raise ConfigError(f"cannot read {kind} table: {type(exc).__name__}: {exc}", source=str(path)) from exc
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame, found {type(frame).__name__}", source=str(path))
    return frame


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
    extension). With ``backup`` an existing file is first copied to
    ``NAME.bak[.N]`` (:func:`designsim.fileio.backup_then_replace`), whose path
    is returned."""
    from designsim.fileio import atomic_write, backup_then_replace

    target = Path(target)
    kind = table_kind(target)
    if backup:
        return backup_then_replace(target, lambda p: write_table(frame, p, kind))
    atomic_write(target, lambda p: write_table(frame, p, kind))
    return None


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


def _rows(positions: Iterable[int], limit: int = 8) -> str:
    positions = list(positions)
    shown = ", ".join(str(p) for p in positions[:limit])
    more = f" and {len(positions) - limit} more" if len(positions) > limit else ""
    return f"row {shown}{more}" if len(positions) == 1 else f"rows {shown}{more}"


def validate_job(frame: pd.DataFrame, *, id_col: str = DEFAULT_ID_COL, prompt_col: str = DEFAULT_PROMPT_COL, source: str = "") -> Job:
    """Check ``frame`` and build a :class:`Job`.

    Raises :class:`ConfigError` (``source`` = file, ``field`` = column) when a
    column is absent, an id is missing or duplicated, or a prompt is missing,
    not text, or blank. Row positions in messages are 0-based data rows.
    """
    frame = frame.reset_index(drop=True)
    for col in (id_col, prompt_col):
        if col not in frame.columns:
            raise ConfigError(f"column {col!r} not found; columns are {list(map(str, frame.columns))}", source=source, field=col)
    raw_ids = frame[id_col].tolist()
    missing = [i for i, v in enumerate(raw_ids) if is_missing_id(v)]
    if missing:
        raise ConfigError(f"missing id at {_rows(missing)}", source=source, field=id_col)
    keys = [id_key(v) for v in raw_ids]
    seen: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for pos, key in enumerate(keys):
        if key in seen:
            dups.setdefault(key, [seen[key]]).append(pos)
        else:
            seen[key] = pos
    if dups:
        shown = "; ".join(f"{k!r} at {_rows(v)}" for k, v in list(dups.items())[:5])
        more = f" (and {len(dups) - 5} more ids)" if len(dups) > 5 else ""
        raise ConfigError(f"duplicate ids: {shown}{more}", source=source, field=id_col)
    prompts = frame[prompt_col].tolist()
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ConfigError(f"missing, blank or non-text prompt at {_rows(bad)}", source=source, field=prompt_col)
    return Job(frame, keys, dict(zip(keys, prompts)), id_col, prompt_col, source, dict(zip(keys, raw_ids)))


def load_job(path: str | Path, *, id_col: str = DEFAULT_ID_COL, prompt_col: str = DEFAULT_PROMPT_COL) -> Job:
    """:func:`read_table` then :func:`validate_job`."""
    return validate_job(read_table(path), id_col=id_col, prompt_col=prompt_col, source=str(path))


# ---------------------------------------------------------------------- results


def success_mask(frame: pd.DataFrame) -> pd.Series:
    """Rows that hold a success: ``STATUS == "ok"`` when the table has a
    status column (our ``results.parquet``), else a non-blank ``RESULT``
    (the legacy ``RESULTS.pkl`` only ever holds successes)."""
    if RESULT_COL not in frame.columns:
        return pd.Series(False, index=frame.index)
    result = frame[RESULT_COL]
    has_text = result.notna() & (result.astype(str).str.strip() != "")
    if STATUS_COL in frame.columns:
        return has_text & (frame[STATUS_COL].astype(object) == "ok")
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
    ``conflict_examples`` up to 5 ``(key, kept_input, other_input)``."""

    rows_in: int = 0
    ids: int = 0
    succeeded: int = 0
    duplicates_dropped: int = 0
    conflicts: int = 0
    conflict_examples: list[tuple[str, int, int]] = field(default_factory=list)


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
    kept_rows = np.sort(order[first])
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
            for rec in differing.drop_duplicates("key").head(5).itertuples():
                report.conflict_examples.append((rec.key, int(sources[rec.kept_row]) + 1, int(sources[rec.row]) + 1))
    merged = df.iloc[kept_rows].reset_index(drop=True)
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
