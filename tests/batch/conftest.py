"""Fixtures for the batch tests; the helpers live in ``batch_helpers``."""

from batch_helpers import key, legacy_script  # noqa: F401  (fixtures)
