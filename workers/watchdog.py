"""The watchdog keeps the promises SQL records, whatever Redis or a worker did.

- re-publishes queued jobs whose message may be lost (publish failed, Redis restarted);
- gives back jobs stuck `running` on a dead worker;
- promotes deferrable jobs whose deadline is near to the realtime lane (their own queue,
  consumed before interactive work);
- refreshes the per-lane depth gauge Flower does not have.

Run by exactly one `celery beat`, and idempotent anyway: a Redis lock makes a double tick a
no-op and every move is a conditional update.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import redis

from lanes import names
from lanes.ports import Dispatch, JobState
from lanes.task import Lane
from storage.alerts import evaluate_alerts
from storage.engine import checkpoint
from workers.celery_app import app
from workers.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)


@dataclass
class WatchdogReport:
    republished: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    depth: dict[str, int] = field(default_factory=dict)
    skipped: bool = False


def promotion_window(rt: Runtime) -> timedelta:
    """Promote when the deadline is closer than the margin plus one realtime call."""
    s = rt.settings
    return timedelta(seconds=s.promotion_margin_s + s.interactive_latency_target_s)


def sweep(rt: Runtime) -> WatchdogReport:
    report = WatchdogReport()
    store = rt.store
    s = rt.settings
    dispatches: list[Dispatch] = []

    for job in store.near_deadline(within=promotion_window(rt)):
        if store.transition(
            job.id, expected=(JobState(job.state),), to=JobState.PROMOTED, promoted=True
        ):
            report.promoted.append(job.id)
            dispatches.append(Dispatch(job.id, names.QUEUE_PROMOTED))

    for job in store.stale_running(older_than=timedelta(seconds=s.stale_running_after_s)):
        if job.attempts >= s.job_max_attempts:
            if store.fail(job.id, "worker lost: attempts exhausted", expected=(JobState.RUNNING,)):
                report.failed.append(job.id)
        elif store.release(job.id, reason="worker lost while running"):
            report.released.append(job.id)
            dispatches.append(Dispatch(job.id, _queue_for(job.lane, job.promoted)))

    for job in store.due_for_republish(older_than=timedelta(seconds=s.requeue_after_s)):
        if job.id in report.promoted or job.id in report.released:
            continue
        report.republished.append(job.id)
        dispatches.append(Dispatch(job.id, _queue_for(job.lane, job.promoted)))

    if dispatches:
        rt.publisher.publish(dispatches)
        store.mark_published([d.job_id for d in dispatches])
    report.depth = refresh_depth_gauge(rt)
    checkpoint(rt.engine)
    if report.promoted or report.republished or report.released or report.failed:
        log.warning(
            "watchdog: promoted=%d republished=%d released=%d failed=%d",
            len(report.promoted),
            len(report.republished),
            len(report.released),
            len(report.failed),
        )
    evaluate_alerts(rt)  # cache and spend alerts; throttled, never raises
    return report


def _queue_for(lane: str, promoted: bool) -> str:
    if promoted:
        return names.QUEUE_PROMOTED
    return names.QUEUE_DEFERRABLE if lane == Lane.DEFERRABLE.value else names.QUEUE_INTERACTIVE


def redis_client(rt: Runtime) -> redis.Redis:
    return redis.Redis.from_url(rt.app.conf.broker_url)


def queue_depths(rt: Runtime) -> dict[str, int]:
    """Messages waiting per lane queue (Redis list length), the number Flower lacks."""
    client = redis_client(rt)
    try:
        pipe = client.pipeline()
        for q in names.ALL_QUEUES:
            pipe.llen(q)
        return dict(zip(names.ALL_QUEUES, (int(n) for n in pipe.execute()), strict=True))
    finally:
        client.close()


def refresh_depth_gauge(rt: Runtime) -> dict[str, int]:
    depths = queue_depths(rt)
    client = redis_client(rt)
    try:
        client.hset(names.KEY_DEPTH_GAUGE, mapping=depths)  # type: ignore[arg-type]
    finally:
        client.close()
    return depths


@app.task(name=names.TASK_WATCHDOG)
def watchdog() -> dict[str, int]:
    rt = get_runtime()
    client = redis_client(rt)
    try:
        # A second beat (misconfiguration) or an overlapping tick finds the lock and returns.
        if not client.set(names.KEY_WATCHDOG_LOCK, "1", nx=True, ex=60):
            return {"skipped": 1}
        try:
            report = sweep(rt)
        finally:
            client.delete(names.KEY_WATCHDOG_LOCK)
    finally:
        client.close()
    return {
        "promoted": len(report.promoted),
        "republished": len(report.republished),
        "released": len(report.released),
        "failed": len(report.failed),
    }
