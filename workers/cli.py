"""`llm-lanes`: run the demo, the simulator, workers, beat and Flower; inspect lanes and spend."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lanes import names
from workers.cli_batches import batches_app
from workers.cli_cache import cache_app

cli = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
cli.add_typer(batches_app, name="batches")
cli.add_typer(cache_app, name="cache")
console = Console(width=None if Console().is_terminal else 140)

LANE_QUEUES = {
    "realtime": list(names.REALTIME_QUEUES),
    "deferrable": [names.QUEUE_DEFERRABLE, names.QUEUE_CONTROL],
    "all": list(names.ALL_QUEUES),
}


@cli.command()
def demo(
    interactive: int = typer.Option(12, min=0, help="interactive tasks to enqueue"),
    deferrable: int = typer.Option(24, min=0, help="deferrable tasks to enqueue"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """The main job on embedded defaults (simulator, SQLite, private Redis; no keys)."""
    from workers.demo import run_demo

    report = run_demo(interactive=interactive, deferrable=deferrable, as_json=as_json)
    unfinished = [j for j in report["jobs"] if j["state"] not in ("done",)]
    if unfinished:
        console.print(f"[red]{len(unfinished)} job(s) did not complete[/red]")
        raise typer.Exit(1)


@cli.command()
def simulator(
    host: str = typer.Option("127.0.0.1", help="bind address (loopback by default)"),
    port: int = typer.Option(8099, min=0, max=65535),
    time_scale: float = typer.Option(1.0, help="simulated seconds per real second"),
) -> None:
    """Serve the provider simulator (OpenAI, Azure and Anthropic wire formats)."""
    from workers.simulator.config import SimConfig
    from workers.simulator.server import serve

    serve(host=host, port=port, config=SimConfig(time_scale=time_scale))


@cli.command()
def worker(
    lane: Annotated[str, typer.Option(help="realtime | deferrable | all")] = "realtime",
    concurrency: int = typer.Option(8, min=1),
) -> None:
    """Start a Celery worker for one lane (threads pool; promoted before interactive)."""
    if lane not in LANE_QUEUES:
        raise typer.BadParameter(f"lane: must be one of {', '.join(LANE_QUEUES)}")
    _exec_celery(
        "worker",
        "-Q",
        ",".join(LANE_QUEUES[lane]),
        "-P",
        "threads",
        "-c",
        str(concurrency),
        "-n",
        f"{lane}@%h",
    )


@cli.command()
def beat() -> None:
    """Start THE beat (run exactly one per deployment): watchdog, batch flush and poll."""
    _exec_celery("beat")


@cli.command()
def flower(port: int = typer.Option(0, help="default: LLM_LANES_FLOWER_PORT")) -> None:
    """Start Flower bound to loopback (its /metrics is open even with basic auth)."""
    from lanes.settings import get_settings

    s = get_settings()
    _exec_celery("flower", f"--address={s.flower_address}", f"--port={port or s.flower_port}")


@cli.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Per-lane queue depth (the gauge Flower lacks) and jobs per state."""
    from workers.runtime import get_runtime
    from workers.watchdog import queue_depths

    rt = get_runtime()
    data = {"queue_depth": queue_depths(rt), "jobs": rt.store.count_by_state()}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title="lanes")
    table.add_column("queue")
    table.add_column("waiting", justify="right")
    for q, n in data["queue_depth"].items():
        table.add_row(q, str(n))
    console.print(table)
    jobs = Table(title="jobs by lane:state")
    jobs.add_column("lane:state")
    jobs.add_column("count", justify="right")
    for k, n in sorted(data["jobs"].items()):
        jobs.add_row(k, str(n))
    console.print(jobs)


@cli.command()
def report(
    as_json: bool = typer.Option(False, "--json"),
    since_hours: float = typer.Option(0, help="only the last N hours (0: everything)"),
) -> None:
    """Spend, savings against list price, cache hit ratio, batch share, cascade audit."""
    from datetime import timedelta

    from storage.models import utcnow
    from storage.reports import cascade_summary, summarize
    from workers.runtime import get_runtime

    engine = get_runtime().engine
    since = utcnow() - timedelta(hours=since_hours) if since_hours else None
    summary = summarize(engine, since=since)
    cascade = cascade_summary(engine, since=since)
    if as_json:
        print(json.dumps({**summary.to_json(), "cascade": cascade.to_json()}, indent=2))
        return
    table = Table(title="spend by feature")
    for col in ("feature", "calls", "spend $", "list $", "saved", "cache hit", "batch share"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for name, sl in [*sorted(summary.by_feature.items()), ("TOTAL", summary.total)]:
        table.add_row(
            name,
            str(sl.calls),
            f"{sl.cost_usd:.4f}",
            f"{sl.list_cost_usd:.4f}",
            f"{sl.savings_ratio:.1%}",
            f"{sl.cache_hit_ratio:.1%}",
            f"{sl.batch_share:.1%}",
        )
    console.print(table)
    console.print("cascade: " + cascade.sentence())


@cli.command()
def replay(
    source: str = typer.Argument(
        help="a replay data folder or file (RouterBench, RouteLLM "
        "GSM8K/MMLU) or a shadow-log JSONL from `llm-lanes shadow-export`"
    ),
    policy: str = typer.Option("all", help="which policy rows to show"),
    best: str = typer.Option(None, help="the best (reference) model"),
    cheap: str = typer.Option(None, help="the cheap model (default: chosen on the train split)"),
    min_quality: float = typer.Option(0.95, help="operating-point quality target (x best)"),
    max_cost: float = typer.Option(0.40, help="operating-point cost budget (x best)"),
    save_router: str = typer.Option(
        None, help="write the trained router here (JSON) for LLM_LANES_ROUTER_CLASSIFIER_PATH"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run routing/cascade policies over recorded outcomes: quality and cost against
    always-best, always-cheapest and an oracle, plus the quality/cost frontier."""
    from lanes.replay import render, run_replay

    with console.status("training on the train split, measuring on the test split"):
        report = run_replay(
            source=source,
            policy=policy,
            best=best,
            cheap=cheap,
            min_quality=min_quality,
            max_cost=max_cost,
            save_router=save_router,
            output_json=as_json,
        )
    rendered = render(report)
    if as_json:
        print(rendered)
    else:
        console.print(rendered)


@cli.command("shadow-export")
def shadow_export(path: str = typer.Argument(help="JSONL file to write")) -> None:
    """Write the shadow-mode log (both tiers per job) in the format `replay` reads."""
    from pathlib import Path

    from workers.runtime import get_runtime
    from workers.shadow import shadow_export_lines

    lines = shadow_export_lines(get_runtime().engine)
    Path(path).write_text("".join(line + "\n" for line in lines))
    console.print(f"wrote {len(lines)} shadow samples to {path}")


@cli.command()
def watchdog() -> None:
    """Run one watchdog sweep now (beat runs it periodically)."""
    from workers.runtime import get_runtime
    from workers.watchdog import sweep

    r = sweep(get_runtime())
    console.print(
        f"promoted={len(r.promoted)} republished={len(r.republished)} "
        f"released={len(r.released)} failed={len(r.failed)} depth={r.depth}"
    )


def _exec_celery(*args: str) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", *args]
    os.execv(argv[0], argv)


def main() -> None:
    from lanes.errors import LanesError

    try:
        cli()
    except LanesError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
