"""The main job on embedded defaults: a realistic mix of both lanes through the public API.

No API keys and no Docker: a private Redis, the simulator, real Celery workers and a SQLite
file. Prints what each job cost and what the levers saved, then stops what it started.
"""

from __future__ import annotations

import json
import os
import random
import time
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

POLICY = (
    "You are the support assistant of Northwind Outfitters. Follow the policy below.\n"
    + "\n".join(
        f"Policy {i}: Customers may return unworn items within {30 + i} days with a receipt; "
        f"store credit is offered for section {i} exceptions; escalate disputes over ${100 + i}."
        for i in range(60)
    )
)
QUESTIONS = [
    "Can I return boots I wore once on a trail?",
    "My parcel shows delivered but I never got it. What now?",
    "Do you price-match a competitor's sale?",
    "How do I change the size on an order I placed an hour ago?",
    "Is the down jacket machine washable?",
    "Can I get store credit instead of a refund?",
    "Why was my card charged twice?",
    "Do gift cards expire?",
    "Explain in detail how the warranty applies to a zipper that broke after 14 months.",
]
TIERS = [
    {"name": "cheap", "provider": "openai", "model": "gpt-5.4-nano", "max_output_tokens": 200},
    {"name": "standard", "provider": "openai", "model": "gpt-5.4-mini", "max_output_tokens": 400},
    {"name": "best", "provider": "openai", "model": "gpt-5.4", "max_output_tokens": 800},
]
DOCS = [
    "Quarterly review of the returns desk: volumes, reasons and turnaround",
    "Customer interview notes on the winter catalogue",
    "Warehouse incident log for week 47",
    "Supplier contract renewal memo for technical fabrics",
]


def workload(*, interactive: int, deferrable: int, seed: int = 7) -> list[dict[str, Any]]:
    """Support chat (interactive, a cached static policy) and nightly digests (deferrable)."""
    rng = random.Random(seed)
    policy = {"name": "returns-policy", "text": POLICY, "static": True, "version": "v3"}
    tasks: list[dict[str, Any]] = []
    for i in range(interactive):
        task: dict[str, Any] = {
            "messages": [{"role": "user", "content": rng.choice(QUESTIONS)}],
            "segments": [policy],
            "system": "Answer in two sentences.",
            "lane": "interactive",
            "feature": "support-chat",
            "tenant": f"store-{i % 3}",
            "max_output_tokens": 200,
        }
        if i % 3 == 2:  # a third name their model; the rest go through the tier cascade
            task.update(provider="anthropic", model="claude-sonnet-5-5")
        tasks.append(task)
    for i in range(deferrable):
        doc = rng.choice(DOCS)
        details = "Details follow. " * rng.randint(20, 80)
        tasks.append(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": f"Summarise in five bullets: {doc} (#{i}). {details}",
                    }
                ],
                "provider": "openai",
                "model": "gpt-5.4",
                "lane": "deferrable",
                "max_delay_s": 3600,
                "feature": "nightly-digest",
                "tenant": f"store-{i % 3}",
                "max_output_tokens": 300,
            }
        )
    rng.shuffle(tasks)
    return tasks


def run_demo(
    *, interactive: int = 12, deferrable: int = 24, as_json: bool = False
) -> dict[str, Any]:
    console = Console(stderr=as_json, width=None if Console().is_terminal else 120)
    from workers.stack import start_stack

    with console.status("starting the embedded stack") as status:
        stack = start_stack(
            extra_env={
                "LLM_LANES_BATCH_MAX_WAIT_S": "2",
                "LLM_LANES_BATCH_POLL_MIN_S": "1",
                "LLM_LANES_BATCH_POLL_MAX_S": "2",
                "LLM_LANES_TIERS": json.dumps(TIERS),
            },
            progress=lambda msg: status.update(msg),
        )
    try:
        os.environ.update(stack.env)
        from lanes.settings import get_settings
        from workers.runtime import get_runtime

        get_settings.cache_clear()
        import lanes

        rt = get_runtime()
        # The cheap tier cuts its detailed answers short: those escalate, the rest stay cheap.
        stack.simulator.add_script(
            {"model": "gpt-5.4-nano", "contains": "in detail", "behaviour": "truncate"}
        )
        tasks = workload(interactive=interactive, deferrable=deferrable)
        started = time.monotonic()
        handles = lanes.enqueue_many(tasks)
        outcomes = _follow(console, handles, tasks)
        elapsed = time.monotonic() - started
        from storage.reports import cascade_summary, summarize

        summary = summarize(rt.engine)
        cascade = cascade_summary(rt.engine)
        report = {
            "elapsed_s": round(elapsed, 2),
            "jobs": outcomes,
            "summary": summary.to_json(),
            "cascade": cascade.to_json(),
        }
        if as_json:
            print(json.dumps(report, indent=2))
        else:
            _print(console, outcomes, summary)
            console.print(f"cascade: {cascade.sentence()}")
            console.print(f"finished in {elapsed:.1f}s; everything the demo started is stopped")
        return report
    finally:
        with console.status("stopping what the demo started"):
            stack.stop()


def _follow(
    console: Console, handles: list[Any], tasks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    from lanes.ports import JobState

    pending = {h.job_id: (h, t) for h, t in zip(handles, tasks, strict=True)}
    outcomes: list[dict[str, Any]] = []
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bars = {
            lane: progress.add_task(f"{lane:<11}", total=sum(1 for t in tasks if t["lane"] == lane))
            for lane in ("interactive", "deferrable")
        }
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for job_id, (handle, task) in list(pending.items()):
                record = handle.record()
                if not record.state.final:
                    continue
                del pending[job_id]
                progress.advance(bars[task["lane"]])
                outcomes.append(_outcome(record, task, failed=record.state is JobState.FAILED))
            time.sleep(0.1)
    for job_id, (_handle, task) in pending.items():
        outcomes.append({"job_id": job_id, "lane": task["lane"], "state": "unfinished"})
    return outcomes


def _outcome(record: Any, task: dict[str, Any], *, failed: bool) -> dict[str, Any]:
    result = record.result or {}
    prov = result.get("provenance", {})
    usage = result.get("usage", {})
    return {
        "job_id": record.id,
        "lane": task["lane"],
        "state": record.state.value,
        "served_as": prov.get("lane"),
        "tier": prov.get("tier"),
        "model": prov.get("model") or task.get("model"),
        "input_tokens": usage.get("input_tokens", 0),
        "cached_input_tokens": usage.get("cached_input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "cost_usd": result.get("cost_usd", "0"),
        "error": record.error if failed else None,
    }


def _print(console: Console, outcomes: list[dict[str, Any]], summary: Any) -> None:
    table = Table(title="What each job cost")
    for col in (
        "job",
        "lane",
        "served as",
        "tier",
        "model",
        "in tok",
        "cached",
        "out tok",
        "cost $",
    ):
        table.add_column(col, justify="right" if col.endswith(("tok", "cached", "$")) else "left")
    for o in sorted(outcomes, key=lambda o: (o["lane"], o["job_id"])):
        table.add_row(
            o["job_id"][:8],
            o["lane"],
            str(o.get("served_as") or o["state"]),
            str(o.get("tier") or "-"),
            str(o.get("model")),
            str(o.get("input_tokens", "")),
            str(o.get("cached_input_tokens", "")),
            str(o.get("output_tokens", "")),
            f"{Decimal(o.get('cost_usd') or 0):.6f}",
        )
    console.print(table)
    t = summary.total
    totals = Table(title="Totals (from the cost ledger)")
    for col in ("calls", "spend $", "list price $", "saved", "cache hit", "batch share", "errors"):
        totals.add_column(col, justify="right")
    totals.add_row(
        str(t.calls),
        f"{t.cost_usd:.6f}",
        f"{t.list_cost_usd:.6f}",
        f"{t.savings_ratio:.1%}",
        f"{t.cache_hit_ratio:.1%}",
        f"{t.batch_share:.1%}",
        str(t.errors),
    )
    console.print(totals)
