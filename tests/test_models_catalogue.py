"""The model catalogue (issue 10 items 1–2): one source of truth for defaults,
context windows, thinking, prices and lifecycle; `designsim models` lists it."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml

from designsim.cli import main
from designsim.errors import ConfigError
from designsim.providers import catalogue
from designsim.providers.base import Usage
from designsim.providers.catalogue import (DEFAULT_MODEL, cost_usd, default_model, lifecycle_warning, load_catalogue, lookup,
                                           thinking_config)

REPO = Path(__file__).resolve().parent.parent
#: Model ids Google has retired (DESIGN.md "More facts, read 2026-12-01").
RETIRED = ("gemini-2.5-flash", "gemini-2.5-pro")


def test_default_is_the_current_ga_flash_everywhere():
    assert DEFAULT_MODEL == default_model() == "gemini-3.8-flash"
    info = lookup(DEFAULT_MODEL)
    assert info.status == "ga" and (info.context_window, info.max_output_tokens) == (1_048_576, 65_536)
    assert info.thinking.parameter == "level" and info.thinking.values == ["low", "medium", "high"]
    assert info.thinking.default == "medium"
    from designsim.rulebook import DEFAULT_MODEL as RB_DEFAULT, Rulebook, Stage

    rb = Rulebook(scenario="s", directive="d", stages=[Stage(id="a", title="A", focus="f")])
    assert RB_DEFAULT == DEFAULT_MODEL and rb.model == DEFAULT_MODEL and rb.temperature is None


def test_no_retired_model_is_a_default_anywhere():
    """Acceptance: no retired id remains a default in src, prompts, examples, action.yml or workflows."""
    offenders = []
    roots = [REPO / "src", REPO / "prompts", REPO / "examples", REPO / "action.yml", REPO / ".github"]
    files = [p for root in roots if root.exists() for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()]
    for path in files:
        # the catalogue names retired ids on purpose; a cassette records the model it was recorded with
        if path.suffix not in {".py", ".yml", ".yaml", ".j2", ".md", ".json"} or path.name == "models.yml" or "cassette" in path.name:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            for model in RETIRED:
                # a retired id as a value (model: X, default="X", DEFAULT… = "X"), not a mention in prose or a diff
                if re.search(rf"(model|default|DEFAULT\w*)[\"']?\s*[:=]\s*[\"']?{re.escape(model)}(?![\w.-])", line) and not line.lstrip().startswith("+"):
                    offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert offenders == []


def test_catalogue_fields_dates_and_sources():
    cat = load_catalogue()
    assert cat.read == dt.date(2026, 12, 1)
    for m in cat.models:
        for price in m.prices:
            assert price.source.startswith("https://") and price.read <= dt.date(2026, 12, 1)
        if m.status == "retired":
            assert m.replacement and lookup(m.replacement).usable
    ids = {m.id for m in cat.models}
    assert {"gemini-3.8-flash", "gemini-3.7-flash", "gemini-3.5-flash-lite", "gemini-3.1-pro-preview"} <= ids
    # an unconfirmed price is said to be so, not dressed up as exact
    assert lookup("gemini-3.5-flash-lite").prices == []
    assert lookup("gemini-3.7-flash").price_on(dt.date(2026, 12, 1)).verified is False


def test_the_data_file_ships_in_the_package_and_validates():
    raw = yaml.safe_load((REPO / "src/designsim/providers/models.yml").read_text())
    assert raw["default"] == DEFAULT_MODEL
    from importlib import resources

    assert resources.files("designsim.providers").joinpath("models.yml").is_file()


def test_lookup_normalises_prefixes_and_versions():
    assert lookup("models/gemini-3.8-flash").id == "gemini-3.8-flash"
    assert lookup("publishers/google/models/gemini-3.8-flash").id == "gemini-3.8-flash"
    assert lookup("gemini-3.8-flash-001").id == "gemini-3.8-flash"
    assert lookup("gemini-3.8-flash-lite") is None  # another model, not a version
    assert lookup("my-local-model") is None


def test_thinking_maps_to_level_on_gemini3_and_budget_on_25():
    assert thinking_config("gemini-3.8-flash", "low") == {"thinking_level": "LOW"}
    assert thinking_config("gemini-3.1-pro-preview", "high") == {"thinking_level": "HIGH"}
    assert thinking_config("gemini-2.5-flash", "medium") == {"thinking_budget": 8192}
    assert thinking_config("gemini-3.9-flash", "medium") == {"thinking_level": "MEDIUM"}  # unknown but Gemini 3+
    assert thinking_config("gemini-3.8-flash", None) is None
    with pytest.raises(ConfigError, match="does not accept"):
        thinking_config("gemini-2.0-flash", "low")
    with pytest.raises(ConfigError, match="not in designsim's catalogue"):
        thinking_config("my-local-model", "low")


def test_price_periods_and_cost_counts_cached_and_thinking_tokens():
    before, after = dt.date(2026, 12, 31), dt.date(2027, 1, 1)
    info = lookup("gemini-3.8-flash")
    assert info.price_on(before).input == 0.75 and info.price_on(after).input == 1.50
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=400_000, thinking_tokens=300_000)
    cost = cost_usd("gemini-3.8-flash", usage, day=before)
    # 600k fresh input at 0.75 + 400k cached at 0.075 + 1M output (thinking included) at 3.75
    assert cost.usd == pytest.approx(0.45 + 0.03 + 3.75) and cost.verified
    assert cost_usd("gemini-3.8-flash", usage, day=before, batch=True).usd == pytest.approx(0.6 * 0.375 + 0.4 * 0.075 + 1.875)
    assert cost_usd("gemini-3.5-flash-lite", usage).usd is None


def test_lifecycle_warning_names_date_and_replacement():
    warning = lifecycle_warning("gemini-2.5-flash")
    assert "2026-10-16" in warning and "gemini-3.8-flash" in warning
    assert lifecycle_warning("gemini-3.8-flash") is None
    assert "deprecated" in lifecycle_warning("gemini-2.5-flash-lite")


def test_models_command_plain_and_json(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "gemini-3.8-flash (default)" in out and "unverified" in out and "retired" in out
    assert main(["models", "--json", "--current"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["default"] == "gemini-3.8-flash" and data["read"] == "2026-12-01"
    row = next(r for r in data["models"] if r["id"] == "gemini-3.8-flash")
    assert row["price_per_million"]["source"].startswith("https://ai.google.dev/")
    assert all(r["status"] != "retired" for r in data["models"])


def test_a_broken_catalogue_is_a_located_error(monkeypatch):
    class Files:
        def joinpath(self, name):
            return self

        def read_text(self, encoding="utf-8"):
            return "read: 2026-12-01\ndefault: nope\nmodels: []\n"

    monkeypatch.setattr(catalogue.resources, "files", lambda pkg: Files())
    catalogue.load_catalogue.cache_clear()
    try:
        with pytest.raises(ConfigError, match="models.yml"):
            catalogue.load_catalogue()
    finally:
        catalogue.load_catalogue.cache_clear()
