"""The checkpoint: an append-only JSONL journal of every outcome, in ``DIR/journal.jsonl``.

Why JSONL + ``fsync`` rather than SQLite in WAL mode:

* **Constant cost per result.** One ``os.write`` of one line (``O_APPEND``)
  and one ``os.fsync``: the cost does not grow with the journal (the
  benchmark checks 1k vs 100k records). SQLite WAL is also constant, but
  adds a page cache, checkpointing of the WAL into the main file, and three
  files that must travel together.
* **Crash-tolerant by construction.** A line is either whole or is the torn
  last line of a killed process; :meth:`Journal.open` drops a torn tail
  (and truncates it away so the next append starts on a clean line) and
  skips any undecodable line with a warning. Nothing is ever rewritten.
* **An artifact people can read.** ``grep``/``jq`` work on it, it uploads as
  one file with ``actions/upload-artifact``, and two journals concatenate.

Records (pydantic models, one JSON object per line, ``kind`` discriminates):

* :class:`ResultRecord` — one outcome for one id (``status`` ``ok`` or
  ``failed``, the reply text or the failure reason, HTTP ``requests`` spent,
  tokens).
* :class:`BatchJobRecord` — a Gemini Batch Mode job was submitted (its name
  and the ids in it) or finished (``done``), so a later run can poll it.
* :class:`RunRecord` — one invocation ended (counters, seconds).

A process holds an exclusive ``flock`` on the journal while it runs, so two
runs cannot interleave in one directory (the lock dies with the process, even
on SIGKILL).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from designsim.errors import ConfigError

JOURNAL_NAME = "journal.jsonl"
log = logging.getLogger("designsim.batch")


def prompt_digest(prompt: str, system: str | None = None, model: str | None = None) -> str:
    """16 hex chars of SHA-256 over what was asked (prompt, system, model), so a
    resumed run can tell that an id's prompt changed since its answer."""
    h = hashlib.sha256()
    for part in (prompt, system or "", model or ""):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


class ResultRecord(BaseModel):
    """One outcome for one id.

    ``key`` is the canonical id key; ``status`` ``ok``/``failed``; ``text`` the
    reply (ok only); ``reason`` a short failure reason (``"504"``,
    ``"blocked:SAFETY"``, ``"quota:daily"``); ``transient`` whether a later
    pass may fix it; ``requests`` HTTP requests spent on this outcome
    (1 = no retry); tokens as Gemini counted them; ``latency_s`` seconds of the
    successful exchange; ``digest`` from :func:`prompt_digest`; ``pass_no`` 1
    for the main pass, 2.. for recovery passes; ``at`` Unix seconds.
    """

    model_config = ConfigDict(extra="ignore")

    kind: Literal["result"] = "result"
    key: str
    status: Literal["ok", "failed"]
    text: str | None = None
    reason: str = ""
    error: str = ""
    transient: bool = False
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    digest: str = ""
    pass_no: int = 1
    backend: str = "live"
    at: float = Field(default_factory=time.time)


class BatchJobRecord(BaseModel):
    """A Gemini Batch Mode job: ``event`` ``submitted`` (with its ``keys``,
    ``via`` ``inline`` or ``file``), ``done`` (with the final ``state``, also
    ``NOT_FOUND`` for a job that 404s and ``DEADLINE`` for one given up after
    ``--batch-deadline``) or ``create_failed`` (``error``; its ids are
    submitted again, split). ``name`` is ``batches/…``."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["batch_job"] = "batch_job"
    event: Literal["submitted", "done", "create_failed"]
    name: str
    via: str = "inline"
    error: str = ""
    model: str = ""
    keys: list[str] = []
    digests: dict[str, str] = {}
    state: str = ""
    at: float = Field(default_factory=time.time)


class RunRecord(BaseModel):
    """One invocation ended: ``requests``/``retries`` (HTTP), ``duration_s``
    wall seconds, ``stopped`` why it ended early ("" = it did not)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["run"] = "run"
    requests: int = 0
    retries: int = 0
    duration_s: float = 0.0
    stopped: str = ""
    at: float = Field(default_factory=time.time)


Record = Annotated[Union[ResultRecord, BatchJobRecord, RunRecord], Field(discriminator="kind")]
_RECORD = TypeAdapter(Record)


@dataclass
class JournalState:
    """The journal folded into per-id state.

    ``best`` maps key -> the record that counts: the *first* success, else the
    latest failure. A success is never replaced by a failure, nor by another
    success for the same prompt; only by a success for a *changed* prompt
    (different :func:`prompt_digest`), whose old answer stays in the journal. ``attempts`` / ``requests``
    count outcomes / HTTP requests per key over every run. ``open_jobs`` maps a Batch
    Mode job name -> its submitted record, for jobs not yet ``done``. ``runs``
    are the run records; ``torn`` / ``corrupt`` count dropped lines.
    """

    best: dict[str, ResultRecord] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    open_jobs: dict[str, BatchJobRecord] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    results: int = 0
    torn: int = 0
    corrupt: int = 0

    def apply(self, record: ResultRecord | BatchJobRecord | RunRecord) -> None:
        if isinstance(record, ResultRecord):
            self.results += 1
            self.attempts[record.key] = self.attempts.get(record.key, 0) + 1
            self.requests[record.key] = self.requests.get(record.key, 0) + record.requests
            current = self.best.get(record.key)
            if (current is None or current.status != "ok"
                    or (record.status == "ok" and record.digest and record.digest != current.digest)):
                self.best[record.key] = record
        elif isinstance(record, BatchJobRecord):
            if record.event == "submitted":
                self.open_jobs[record.name] = record
            elif record.event == "done":
                self.open_jobs.pop(record.name, None)
        else:
            self.runs.append(record)

    def succeeded(self, key: str, digest: str | None = None) -> bool:
        """True when ``key`` has a success (for this ``digest``, if given)."""
        rec = self.best.get(key)
        return rec is not None and rec.status == "ok" and (digest is None or not rec.digest or rec.digest == digest)


class Journal:
    """Append-only, fsync'd JSONL journal (see the module docstring).

    Use :meth:`open` (reads the existing records, repairs a torn tail, takes
    the lock; ``redact`` scrubs secrets from every result) then :meth:`append`; :meth:`close` releases the lock. ``fsync``
    may be turned off only for bulk loads in benchmarks.
    Raises :class:`ConfigError` if another process holds the journal.
    """

    def __init__(self, path: Path, fd: int, state: JournalState, *, fsync: bool = True, redact=None):
        self.redact = redact
        self.path = path
        self._fd = fd
        self.state = state
        self.fsync = fsync

    @classmethod
    def open(cls, directory: str | Path, *, fsync: bool = True, lock: bool = True, redact=None) -> "Journal":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / JOURNAL_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if lock:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ConfigError("another designsim batch run is using this output directory", source=str(path)) from None
        try:
            state = cls._load(path, fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, state, fsync=fsync, redact=redact)

    @staticmethod
    def read_state(directory: str | Path) -> JournalState:
        """Fold an existing journal without locking or repairing it (read-only)."""
        path = Path(directory) / JOURNAL_NAME
        state = JournalState()
        if path.is_file():
            with open(path, "rb") as fh:
                data = fh.read()
            Journal._fold(data, state, path)
        return state

    @staticmethod
    def _fold(data: bytes, state: JournalState, path: Path) -> int:
        """Apply every whole line of ``data``; returns the byte length of the
        whole-line prefix (a torn last line lies beyond it)."""
        end = data.rfind(b"\n") + 1
        if end < len(data):
            state.torn += 1
            log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run", path, len(data) - end)
        for lineno, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                state.apply(_RECORD.validate_json(line))
            except (ValidationError, ValueError) as exc:
                state.corrupt += 1
                log.warning("%s:%d: skipping an unreadable journal line (%s)", path, lineno, type(exc).__name__)
        return end

    @classmethod
    def _load(cls, path: Path, fd: int) -> JournalState:
        state = JournalState()
        size = os.fstat(fd).st_size
        if not size:
            return state
        data = os.pread(fd, size, 0)
        end = cls._fold(data, state, path)
        if end < size:  # cut the torn tail so the next record starts a clean line
            os.ftruncate(fd, end)
            os.fsync(fd)
        return state

    def append(self, record: ResultRecord | BatchJobRecord | RunRecord) -> None:
        """Write one record as one line, fsync it, and fold it into :attr:`state`.
        Cost: one ``write`` + one ``fsync``, independent of the journal's size.
        A result's ``error`` and ``text`` pass through ``redact`` (a
        :class:`designsim.redact.Redactor`) first: an error body may echo a key."""
        if self.redact is not None and isinstance(record, ResultRecord) and self.redact.values:
            update = {"error": self.redact(record.error)}
            if record.text:
                update["text"] = self.redact(record.text)
            record = record.model_copy(update=update)
        elif self.redact is not None and isinstance(record, BatchJobRecord) and record.error and self.redact.values:
            record = record.model_copy(update={"error": self.redact(record.error)})
        line = record.model_dump_json().encode("utf-8") + b"\n"
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self.state.apply(record)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
