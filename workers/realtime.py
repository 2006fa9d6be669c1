"""The realtime lane: serves interactive (and promoted) jobs with one provider call each.

Redelivery is harmless: a job is claimed with a conditional update, so a second copy of the
message finds it `running`/`done` and does nothing. Every provider call is in the ledger,
including failed ones.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any

from celery import Task

from lanes import names
from lanes.ports import JobState
from lanes.usage import Usage
from storage.jobs import ClaimedJob
from storage.ledger import CallFacts
from workers.celery_app import app
from workers.providers.base import ProviderCallError, ProviderResult
from workers.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)


def served_lane(promoted: bool) -> str:
    return "promoted" if promoted else "interactive"


def result_payload(
    *,
    result: ProviderResult,
    provider: str,
    lane: str,
    tier: str | None,
    cost_usd: Any,
    promoted: bool,
    batch_id: str | None = None,
    escalations: int = 0,
) -> dict[str, Any]:
    """What the handle returns: the answer and how it was served (provenance)."""
    u = result.usage
    return {
        "text": result.text,
        "finish_reason": result.finish_reason,
        "provenance": {
            "lane": lane,
            "provider": provider,
            "model": result.model,
            "tier": tier,
            "batch_id": batch_id,
            "promoted": promoted,
            "cached_input_tokens": u.cached_input_tokens,
            "escalations": escalations,
        },
        "usage": {
            "input_tokens": u.input_tokens,
            "cached_input_tokens": u.cached_input_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "output_tokens": u.output_tokens,
        },
        "cost_usd": str(cost_usd),
    }


def serve(rt: Runtime, job_id: str) -> str:
    """Run one job; returns what happened (for logs and tests)."""
    job = rt.store.claim(job_id)
    if job is None:
        if rt.store.get_job(job_id) is None:
            log.error("job %s: message without a row; dropped", job_id)
            return "missing"
        return "skipped"
    lane = served_lane(job.promoted)
    if rt.cascade is not None and job.task.model is None:
        return _serve_cascade(rt, job, lane=lane)
    return _serve_direct(rt, job, lane=lane)


def _serve_direct(rt: Runtime, job: ClaimedJob, *, lane: str) -> str:
    """A task that names its model: one call to it, no tiers."""
    task = job.task
    provider = task.provider or rt.settings.default_provider
    model = task.model or rt.settings.default_model
    request = replace(
        rt.requests.build(task, provider=provider, model=model), client_request_id=job.id
    )
    base = CallFacts(
        job_id=job.id,
        provider=provider,
        model=model,
        api=request.api,
        lane=lane,
        feature=task.feature,
        tenant=task.tenant,
        attempt=job.attempts,
        usage=Usage(),
        cache_segments=request.cache_segments,
    )
    try:
        result = rt.providers.get(provider).call(request)
    except ProviderCallError as exc:
        rt.ledger.record(replace(base, status="error", error_kind=exc.kind))
        return _retry_or_fail(rt, job, exc, str(exc))
    row = rt.ledger.record(
        replace(
            base, usage=result.usage, latency_ms=result.latency_ms, request_id=result.request_id
        )
    )
    payload = result_payload(
        result=result,
        provider=provider,
        lane=lane,
        tier=None,
        cost_usd=row.cost_usd,
        promoted=job.promoted,
    )
    return "done" if rt.store.complete(job.id, payload) else "lost-race"


def _serve_cascade(rt: Runtime, job: ClaimedJob, *, lane: str) -> str:
    outcome = rt.cascade.run(job, lane=lane)
    total = sum((c.cost for c in outcome.calls), Decimal(0))
    answer = outcome.answer
    if answer is None or answer.result is None:
        last = outcome.calls[-1]
        reason = outcome.failure or "no answer"
        if last.error is not None:
            return _retry_or_fail(rt, job, last.error, reason)
        rt.store.fail(job.id, reason)
        return "failed"
    payload = result_payload(
        result=answer.result,
        provider=answer.tier.provider,
        lane=lane,
        tier=answer.tier.name,
        cost_usd=total,
        promoted=job.promoted,
        escalations=outcome.escalations,
    )
    return "done" if rt.store.complete(job.id, payload) else "lost-race"


def _retry_or_fail(rt: Runtime, job: ClaimedJob, exc: ProviderCallError, reason: str) -> str:
    if exc.retryable and job.attempts < rt.settings.job_max_attempts:
        rt.store.release(job.id, reason=reason)
        return "retry"
    rt.store.fail(job.id, reason)
    return "failed"


@app.task(name=names.TASK_RUN_REALTIME, bind=True, max_retries=None)
def run_realtime(self: Task, job_id: str) -> str:
    rt = get_runtime()
    outcome = serve(rt, job_id)
    if outcome == "retry":
        # The job is back in `queued`; re-publish after a short backoff. Deadlines stay in
        # SQL: if this message is lost, the watchdog re-publishes from the row.
        rt.store.mark_published([job_id])
        raise self.retry(countdown=min(2**self.request.retries, 30), max_retries=None)
    return outcome


__all__ = ["JobState", "run_realtime", "serve"]
