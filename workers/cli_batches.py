"""`llm-lanes batches ...`: list batches with counts, cancel one, flip the emergency switch.

Mounted by workers/cli.py with `cli.add_typer(batches_app, name="batches")`. The functions
under the commands take a runtime, so tests and scripts call them without a shell.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from workers.batch_errors import BatchLaneError, BatchProviderError

if TYPE_CHECKING:
    from workers.runtime import Runtime

batches_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Deferrable lane: provider batches and the emergency switch to realtime.",
)
console = Console()


class BatchNotFoundError(BatchLaneError):
    """No local batch has this local or provider id."""


class BatchNotCancellableError(BatchLaneError):
    """The batch is not running at the provider (not yet submitted, or already ended)."""


def batch_rows(rt: Runtime, *, limit: int = 50) -> list[dict[str, Any]]:
    from storage.models import to_utc
    from workers.batch_submit import batch_store

    rows = []
    for b, members in batch_store(rt).list_batches(limit):
        created = to_utc(b.created_at)
        rows.append(
            {
                "id": b.id,
                "provider": b.provider,
                "model": b.model,
                "endpoint": b.endpoint,
                "state": b.state,
                "provider_batch_id": b.provider_batch_id,
                "provider_status": b.provider_status,
                "requests": b.request_count,
                "bytes": b.bytes,
                "reason": b.reason,
                "parent_id": b.parent_id,
                "created_at": created.isoformat() if created else None,
                "provider_counts": b.counts or {},
                "jobs_by_state": members,
                "cancel_requested": b.cancel_requested,
                "error": b.error,
            }
        )
    return rows


def cancel_batch(rt: Runtime, any_id: str) -> dict[str, Any]:
    """Ask the provider to cancel; the poller ingests what finished and re-routes the rest."""
    from workers.batch_client import client_for
    from workers.batch_submit import batch_store

    bs = batch_store(rt)
    batch = bs.find_batch(any_id)
    if batch is None:
        raise BatchNotFoundError(f"no batch {any_id!r} (local or provider id)")
    if batch.state != "submitted" or not batch.provider_batch_id:
        raise BatchNotCancellableError(f"batch {batch.id} is {batch.state}: nothing to cancel")
    pb = client_for(rt, batch.provider).cancel(batch.provider_batch_id)
    bs.update_batch(batch.id, cancel_requested=True, provider_status=pb.status, next_poll_at=None)
    return {"id": batch.id, "provider_batch_id": pb.id, "provider_status": pb.status}


def _runtime() -> Runtime:
    from workers.runtime import get_runtime

    return get_runtime()


@batches_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="one JSON document"),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Newest batches, with provider counts and their jobs by state."""
    rows = batch_rows(_runtime(), limit=limit)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="batches")
    for col in ("id", "provider", "model", "state", "provider", "requests", "jobs", "reason"):
        table.add_column(col)
    for r in rows:
        jobs = " ".join(f"{k}={v}" for k, v in sorted(r["jobs_by_state"].items()))
        table.add_row(
            r["id"],
            r["provider"],
            r["model"],
            r["state"],
            f"{r['provider_batch_id'] or '-'} {r['provider_status'] or ''}".strip(),
            str(r["requests"]),
            jobs or "-",
            r["reason"] or "",
        )
    console.print(table)


@batches_app.command()
def cancel(batch_id: str = typer.Argument(..., help="local (lb_...) or provider batch id")) -> None:
    """Cancel a batch at the provider; unfinished lines are re-batched or sent to realtime."""
    try:
        out = cancel_batch(_runtime(), batch_id)
    except (BatchLaneError, BatchProviderError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"cancelling {out['id']} ({out['provider_batch_id']}): {out['provider_status']}")


@batches_app.command()
def switch(state: str = typer.Argument("status", help="on | off | status")) -> None:
    """Emergency switch: `on` stops batching and sends the deferrable lane to realtime."""
    from workers.batch_switch import set_switch, switch_status

    rt = _runtime()
    if state not in ("on", "off", "status"):
        raise typer.BadParameter("state: must be on, off or status")
    if state != "status":
        set_switch(rt, state == "on")
    s = switch_status(rt)
    where = ", ".join(k for k in ("env", "redis") if s[k]) or "off"
    console.print(f"emergency realtime switch: {'ON' if s['on'] else 'off'} ({where})")
    if state == "off" and s["env"]:
        console.print("note: LLM_LANES_BATCHING_DISABLED=true still holds it on")
