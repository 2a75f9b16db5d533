"""The action tests' fixtures live in :mod:`actionfixtures` (importable from other test directories too)."""

from actionfixtures import (  # noqa: F401  (pytest finds fixtures by name in a conftest's namespace)
    Runner, _unpaced_github, ghe_github, github, openapi, payloads, rulebook_text, runner, small_diff, sync_payload,
)
