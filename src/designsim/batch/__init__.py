"""Durable, rate-limited Gemini prompt batches (``designsim batch``).

* :mod:`~designsim.batch.tables` — input/result tables, id keys, shards, merge by id.
* :mod:`~designsim.batch.checkpoint` — the append-only, fsync'd JSONL journal.
* :mod:`~designsim.batch.runner` — the live runner (window limits, retries, recovery passes) and
  :func:`~designsim.batch.runner.run_batch`, the public entry point.
* :mod:`~designsim.batch.ratelimit` — limits held at the server, concurrency sizing, ``--rpm auto``.
* :mod:`~designsim.batch.batch_api` — the same job through Gemini Batch Mode
  (:mod:`designsim.providers.batch_mode`).
* :mod:`~designsim.batch.outputs` — ``RESULTS.pkl``, ``results.parquet``, text files, ``summary.json``.
* :mod:`~designsim.batch.recover` — post-mortem recovery of any earlier run, the legacy script's included.
* :mod:`~designsim.batch.legacy` — running the unmodified legacy script as a subprocess.
* :mod:`~designsim.batch.cli` — the click group.
"""
