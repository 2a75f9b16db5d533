"""``designsim models``: the model catalogue as a table (rich on a terminal, plain
text otherwise) or JSON.

Each row: id, status (ga / preview / deprecated / retired), context window and
maximum output (tokens), the thinking parameter and its values, the price per
million tokens (input / output / cached input / batch input / batch output, USD,
valid today), the date it was read and whether it was verified on Google's own
page, and the lifecycle (shutdown date, replacement). The default model is marked.
"""

from __future__ import annotations

import datetime as dt
import json

import click


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def catalogue_rows(today: dt.date | None = None) -> list[dict]:
    """One JSON-ready dict per catalogued model, prices as valid on ``today`` (default: today, UTC)."""
    from designsim.providers.catalogue import lifecycle_warning, load_catalogue

    cat = load_catalogue()
    rows = []
    for m in cat.models:
        price = m.price_on(today)
        rows.append({
            "id": m.id, "default": m.id == cat.default, "family": m.family, "generation": m.generation, "status": m.status,
            "context_window": m.context_window, "max_output_tokens": m.max_output_tokens,
            "thinking": m.thinking.model_dump(exclude_defaults=True), "temperature": m.temperature.model_dump(),
            "price_per_million": None if price is None else price.model_dump(mode="json", by_alias=True, exclude_none=True),
            "prices": [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in m.prices],
            "released": m.released.isoformat() if m.released else None,
            "deprecated": m.deprecated.isoformat() if m.deprecated else None,
            "shutdown": m.shutdown.isoformat() if m.shutdown else None,
            "replacement": m.replacement, "warning": lifecycle_warning(m.id, today), "note": m.note,
        })
    return rows


def _cells(row: dict) -> list[str]:
    p = row["price_per_million"]
    if p is None:
        price = "unknown"
    else:
        price = " / ".join(_money(p.get(k)) for k in ("input", "output", "cached_input", "batch_input", "batch_output"))
        price += f" (read {p['read']}{'' if p['verified'] else ', unverified'})"
    t = row["thinking"]
    thinking = "—" if t["parameter"] == "none" else f"{t['parameter']}: {','.join(t.get('values', []))}" + (
        f" (default {t['default']})" if t.get("default") else "")
    life = row["status"] + (f", shutdown {row['shutdown']}" if row["shutdown"] else "") + (
        f" → {row['replacement']}" if row["replacement"] else "")
    return [row["id"] + (" (default)" if row["default"] else ""), life, f"{row['context_window']:,}",
            f"{row['max_output_tokens']:,}", thinking, price]


HEADERS = ["model", "status", "context", "max output", "thinking", "USD per 1M: in / out / cached / batch in / batch out"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print {\"read\", \"default\", \"models\": [...]} as JSON.")
@click.option("--current", is_flag=True, help="Only models that are not retired.")
def models(as_json: bool, current: bool) -> int:
    """List the Gemini model catalogue (limits, thinking, prices with the date read, lifecycle). Exit 0."""
    from rich.console import Console
    from rich.table import Table

    from designsim.providers.catalogue import load_catalogue

    cat = load_catalogue()
    rows = [r for r in catalogue_rows() if not current or r["status"] != "retired"]
    if as_json:
        click.echo(json.dumps({"read": cat.read.isoformat(), "default": cat.default, "models": rows}, indent=2))
        return 0
    console = Console()
    if console.is_terminal:
        table = Table(title=f"designsim model catalogue (read {cat.read.isoformat()})")
        for h in HEADERS:
            table.add_column(h, overflow="fold")
        for row in rows:
            table.add_row(*_cells(row), style="dim" if row["status"] == "retired" else None)
        console.print(table)
    else:
        click.echo(f"designsim model catalogue (read {cat.read.isoformat()}); default {cat.default}")
        for row in rows:
            click.echo("  ".join(f"{h}={c}" if i else c for i, (h, c) in enumerate(zip(HEADERS, _cells(row)))))
    return 0
