"""Loaded automatically by Python when this directory is on PYTHONPATH (only
the legacy-script subprocesses in tests/batch get it): caps ``time.sleep`` so
the legacy script's fixed 30 s pause between prompts (MAX_DELAY) takes 10 ms.
The legacy script itself stays unmodified; this is not the Gemini SDK."""

import time

_real_sleep = time.sleep


def _short_sleep(seconds):
    _real_sleep(min(float(seconds), 0.01))


time.sleep = _short_sleep
