"""`llm-lanes cache ...`: is the prompt-caching lever paying off, per feature and segment?"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from storage.cache_stats import CacheSlice, CacheStats

cache_app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()


@cache_app.command()
def stats(
    as_json: bool = typer.Option(False, "--json", help="print the stats as one JSON object"),
    since_hours: float = typer.Option(24.0, "--since-hours", min=0, help="0: all time"),
) -> None:
    """Cache hit ratio and writes vs reads per feature and per static segment (name@tag)."""
    from storage.cache_stats import cache_stats
    from workers.runtime import get_runtime

    since = datetime.now(UTC) - timedelta(hours=since_hours) if since_hours else None
    data = cache_stats(get_runtime().engine, since=since)
    if as_json:
        print(json.dumps(data.to_json(), indent=2))
        return
    render(data)


def render(data: CacheStats) -> None:
    window = f"since {data.since:%Y-%m-%d %H:%M} UTC" if data.since else "all time"
    rows = [*sorted(data.by_feature.items()), ("TOTAL", data.total)]
    console.print(_table(f"prompt cache by feature ({window})", "feature", rows))
    if data.by_segment:
        seg_rows = sorted(data.by_segment.items())
        console.print(_table(f"prompt cache by static segment ({window})", "segment", seg_rows))
    else:
        console.print("no calls carried static segments in this window")


def _table(title: str, first: str, rows: list[tuple[str, CacheSlice]]) -> Table:
    table = Table(title=title)
    table.add_column(first)
    for col in ("calls", "hit (tokens)", "hit (calls)", "read tok", "written tok", "reads/writes"):
        table.add_column(col, justify="right")
    for name, s in rows:
        rw = s.read_write_ratio
        flag = " [red]![/red]" if s.writes_exceed_reads else ""
        table.add_row(
            name,
            str(s.calls),
            f"{s.hit_ratio:.1%}",
            f"{s.call_hit_ratio:.1%}",
            str(s.cached_input_tokens),
            str(s.cache_write_tokens),
            ("-" if rw is None else f"{rw:.2f}") + flag,
        )
    return table
