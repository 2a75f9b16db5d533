"""Running the legacy batch script, unmodified, as a subprocess.

``BETA_gemini-api-template.py`` (kept outside this project) is interactive:
it asks for the input pickle's path on stdin, asks for an API key on stdin
when ``GEMINI_API_KEY`` is unset, and writes ``results_<YYYYmmdd_HHMMSS>/``
(``RESULTS.pkl``, ``NN_result.txt``, ``LOG.log``) into its *current working
directory*. It hard-codes the columns ``PROMPT_ID`` and ``PROMPT`` and sleeps
30 s between prompts (at most 2 requests/min).

So :func:`run_legacy_script` gives it a fresh temporary working directory
holding only the retry table, answers the path prompt on stdin, passes the key
through the environment (never stdin, never a file), and then finds the one
``results_*`` directory it created there. Its ``RESULTS.pkl`` stores the SDK's
response objects in a ``RESPONSE`` column; when that module is not
importable here those cells become ``None`` (see
:func:`designsim.batch.tables.read_pickle_tolerant`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from designsim.batch.tables import DEFAULT_ID_COL, DEFAULT_PROMPT_COL, RESULT_COL, read_pickle_tolerant
from designsim.errors import ConfigError

#: Column names the legacy script hard-codes (``PROMPT_INDEX_COLUMN``, ``PROMPT_COLUMN``).
LEGACY_ID_COL = DEFAULT_ID_COL
LEGACY_PROMPT_COL = DEFAULT_PROMPT_COL
RETRY_FILE = "RETRY_INPUT.pkl"
_SAVED_TO = re.compile(r"Results saved to (results_\d{8}_\d{6})")


@dataclass
class LegacyRun:
    """Outcome of one legacy-script run: ``results`` (its ``RESULTS.pkl``, or an
    empty frame), ``results_dir`` where its directory was kept (``None`` if it
    made none), ``returncode``, the tail of its stderr, and class names whose
    pickled objects could not be restored."""

    results: pd.DataFrame
    results_dir: Path | None
    returncode: int
    stderr_tail: str = ""
    unrestorable: set[str] = field(default_factory=set)


def legacy_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ``GEMINI_API_KEY`` filled from ``GOOGLE_API_KEY``
    if needed. Raises :class:`ConfigError` when there is no key at all (the
    script would otherwise block on ``input()`` asking for one)."""
    env = dict(os.environ if base is None else base)
    if not env.get("GEMINI_API_KEY"):
        if env.get("GOOGLE_API_KEY"):
            env["GEMINI_API_KEY"] = env["GOOGLE_API_KEY"]
        else:
            raise ConfigError("the legacy script needs GEMINI_API_KEY in the environment (it would prompt for it on stdin)",
                              field="GEMINI_API_KEY")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_legacy_script(script: str | Path, frame: pd.DataFrame, *, keep_under: str | Path, id_col: str = DEFAULT_ID_COL,
                      prompt_col: str = DEFAULT_PROMPT_COL, timeout_s: float | None = None,
                      python: str = sys.executable, env: dict[str, str] | None = None) -> LegacyRun:
    """Run ``script`` on the prompts in ``frame`` and read back its results.

    ``frame`` is renamed to the legacy column names if ``id_col`` /
    ``prompt_col`` differ. The created ``results_<stamp>/`` directory is moved
    under ``keep_under`` (for the audit trail). ``timeout_s`` seconds bound the
    child (``None``: no bound). Raises :class:`ConfigError` for a missing key
    or a column clash; a failing child is reported in the returned
    :class:`LegacyRun`, not raised.
    """
    script = Path(script).resolve()
    if not script.is_file():
        raise ConfigError("legacy script not found", source=str(script))
    renames = {c: n for c, n in ((id_col, LEGACY_ID_COL), (prompt_col, LEGACY_PROMPT_COL)) if c != n}
    clash = [n for c, n in renames.items() if n in frame.columns]
    if clash:
        raise ConfigError(f"cannot rename to the legacy column names: {clash} already exist", field=id_col)
    child_env = legacy_env(env)
    work = Path(tempfile.mkdtemp(prefix="designsim-legacy-"))
    try:
        frame.rename(columns=renames).to_pickle(work / RETRY_FILE, protocol=4)
        try:
            proc = subprocess.run([python, str(script)], cwd=work, input=f"{RETRY_FILE}\n", text=True,
                                  capture_output=True, timeout=timeout_s, env=child_env)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = -9
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")) + f"\n[timed out after {timeout_s}s]"
        made = _results_dir(work, stdout)
        results = pd.DataFrame({LEGACY_ID_COL: [], RESULT_COL: []})
        unrestorable: set[str] = set()
        kept = None
        if made is not None:
            pkl = made / "RESULTS.pkl"
            if pkl.is_file():
                results, unrestorable = read_pickle_tolerant(pkl)
            dest_root = Path(keep_under)
            dest_root.mkdir(parents=True, exist_ok=True)
            kept = dest_root / made.name
            if kept.exists():
                kept = dest_root / f"{made.name}_{datetime.now().strftime('%f')}"
            shutil.move(str(made), kept)
        results = results.rename(columns={v: k for k, v in renames.items()})
        return LegacyRun(results, kept, returncode, "\n".join(stderr.strip().splitlines()[-15:]), unrestorable)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _results_dir(work: Path, stdout: str) -> Path | None:
    """The ``results_<stamp>`` directory the script created in ``work``: the
    one its stdout names, else the newest one there."""
    match = _SAVED_TO.search(stdout or "")
    if match and (work / match.group(1)).is_dir():
        return work / match.group(1)
    found = sorted(p for p in work.glob("results_*") if p.is_dir())
    return found[-1] if found else None
