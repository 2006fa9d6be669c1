"""The deferrable lane's Celery tasks: accumulate (per job), flush and poll (periodic).

`lanes.accumulate` consumes the deferrable queue. It builds the job's batch line ONCE with the
provider adapter's `build_body` (so a batch line is the request the realtime lane would
send), stores it next to the job and moves the job queued → buffered — durable buffering in
SQL, grouped by (provider, endpoint, model). Redelivery is harmless: the move is conditional.
Flushing and polling run from the one beat on the control queue, each under a Redis lock so an
overlapping tick (or a second beat) does nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from lanes import names
from lanes.flush import GroupKey
from lanes.ports import Dispatch, JobState
from workers.batch_ingest import poll
from workers.batch_submit import batch_store, flush
from workers.batch_switch import batching_disabled
from workers.celery_app import app
from workers.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

BATCHABLE = frozenset({"openai", "azure", "anthropic"})
KEY_FLUSH_LOCK = names.KEY_FLUSH_LOCK
KEY_POLL_LOCK = names.KEY_POLL_LOCK
LOCK_TTL_S = 900

T = TypeVar("T")


def batch_line(*, provider: str, job_id: str, endpoint: str, body: dict[str, Any]) -> str:
    """One JSONL line (OpenAI/Azure) or one `requests[]` item (Anthropic), compact JSON."""
    if provider == "anthropic":
        item: dict[str, Any] = {"custom_id": job_id, "params": body}
    else:
        item = {"custom_id": job_id, "method": "POST", "url": endpoint, "body": body}
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def accumulate(rt: Runtime, job_id: str) -> str:
    """Buffer one deferrable job (or hand it to realtime); returns what happened."""
    loaded = rt.store.load(job_id)
    if loaded is None:
        log.error("job %s: message without a row; dropped", job_id)
        return "missing"
    job, task = loaded
    if job.state != JobState.QUEUED.value:
        return "skipped"
    provider = task.provider or rt.settings.default_provider
    model = task.model or rt.settings.default_model
    if provider not in BATCHABLE or batching_disabled(rt):
        return "promoted" if promote(rt, job_id) else "skipped"
    # for_batch: shared static prefixes get Anthropic's 1h TTL (lines run hours apart).
    request = rt.requests.build(task, provider=provider, model=model, for_batch=True)
    body = rt.providers.get(provider).build_body(request)
    line = batch_line(provider=provider, job_id=job_id, endpoint=request.endpoint, body=body)
    key = GroupKey(provider=provider, endpoint=request.endpoint, model=model)
    moved = batch_store(rt).buffer(job_id, key=key, line=line, segments=request.cache_segments)
    return "buffered" if moved else "skipped"


def promote(rt: Runtime, job_id: str) -> bool:
    """queued → promoted, published to the promoted queue (served before interactive work)."""
    moved = rt.store.transition(
        job_id, expected=(JobState.QUEUED,), to=JobState.PROMOTED, promoted=True
    )
    if moved:
        rt.publisher.publish([Dispatch(job_id, names.QUEUE_PROMOTED)])
        rt.store.mark_published([job_id])
    return moved


def _locked(rt: Runtime, key: str, fn: Callable[[], T]) -> T | None:
    client = redis.Redis.from_url(rt.app.conf.broker_url)
    try:
        if not client.set(key, "1", nx=True, ex=LOCK_TTL_S):
            return None
        try:
            return fn()
        finally:
            client.delete(key)
    finally:
        client.close()


@app.task(name=names.TASK_ACCUMULATE)
def accumulate_task(job_id: str) -> str:
    return accumulate(get_runtime(), job_id)


@app.task(name=names.TASK_FLUSH_BATCHES)
def flush_batches() -> dict[str, int]:
    rt = get_runtime()
    report = _locked(rt, KEY_FLUSH_LOCK, lambda: flush(rt))
    if report is None:
        return {"skipped": 1}
    return {
        "submitted": len(report.submitted),
        "jobs": report.jobs,
        "pending": len(report.pending),
        "promoted": len(report.promoted),
    }


@app.task(name=names.TASK_POLL_BATCHES)
def poll_batches() -> dict[str, int]:
    rt = get_runtime()
    report = _locked(rt, KEY_POLL_LOCK, lambda: poll(rt))
    if report is None:
        return {"skipped": 1}
    return {
        "polled": len(report.polled),
        "ingested": len(report.ingested),
        "completed": report.completed,
        "rebatched": report.rebatched,
        "promoted": report.promoted,
    }


__all__ = ["accumulate", "accumulate_task", "flush_batches", "poll_batches", "promote"]
