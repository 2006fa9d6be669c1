"""Poll open batches (with backoff) and ingest their results, line by line, by `custom_id`.

Ingestion streams the provider's results in chunks; each chunk is billed and applied in ONE
transaction, and a line already billed for this provider batch is never billed again, so a
crash mid-file is repaired by simply ingesting again. Only succeeded lines are billed (the
providers charge nothing for errored, expired or cancelled ones), at the batch price, and a
line is billed even when its job was finished elsewhere meanwhile — the provider billed it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lanes import names
from lanes.flush import (
    LineAction,
    LineOutcome,
    chunks,
    line_action,
    policy_from_settings,
    poll_delay_s,
    retryable_status,
)
from lanes.ports import Dispatch, JobState
from storage.batches import JobView, LineOps
from storage.ledger import CallFacts
from storage.models import Batch, utcnow
from workers.batch_client import ProviderBatch, ResultLine, client_for
from workers.batch_errors import BatchProviderError
from workers.batch_submit import batch_store, split_or_fail
from workers.batch_switch import batching_disabled
from workers.realtime import result_payload
from workers.runtime import Runtime

log = logging.getLogger(__name__)

INGEST_CHUNK = 500
LANE = "batch"
_API_FOR_ENDPOINT = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}


@dataclass
class PollReport:
    polled: list[str] = field(default_factory=list)
    ingested: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    completed: int = 0
    rebatched: int = 0
    promoted: int = 0
    failed_jobs: int = 0
    billed: int = 0


def poll(rt: Runtime, *, now: datetime | None = None, force: bool = False) -> PollReport:
    """Poll every batch due (all open ones with `force`); ingest those that ended."""
    now = now or utcnow()
    report = PollReport()
    bs = batch_store(rt)
    due = bs.batches_in(["submitted", "ended"], due_before=None if force else now, limit=500)
    for batch in due:
        try:
            poll_one(rt, batch, now=now, report=report)
        except BatchProviderError as exc:
            log.warning("batch %s: poll failed (%s); backing off", batch.id, exc)
            _back_off(rt, batch, now)
        except Exception:  # one bad batch must not starve the others; ingestion is re-runnable
            log.exception("batch %s: poll/ingest failed; retried on a later tick", batch.id)
            _back_off(rt, batch, now)
    return report


def poll_one(rt: Runtime, batch: Batch, *, now: datetime, report: PollReport) -> str:
    bs = batch_store(rt)
    client = client_for(rt, batch.provider)
    assert batch.provider_batch_id, "a submitted batch has a provider id"
    report.polled.append(batch.id)
    pb = client.retrieve(batch.provider_batch_id)
    if not pb.terminal:
        bs.update_batch(batch.id, provider_status=pb.status, counts=pb.counts)
        _back_off(rt, batch, now)
        return "open"
    if batch.state == "submitted":
        bs.update_batch(
            batch.id,
            expected_state="submitted",
            state="ended",
            provider_status=pb.status,
            counts=pb.counts,
            output_file_id=pb.output_file_id,
            error_file_id=pb.error_file_id,
            ended_at=now,
            next_poll_at=now,
        )
    if pb.failed_validation:
        reason = (
            "; ".join(
                f"line {e.get('line')}: {e.get('code')}: {e.get('message')}" for e in pb.errors[:5]
            )
            or "batch failed validation"
        )
        split_or_fail(rt, batch, reason=reason)
        report.failed.append(batch.id)
        return "failed"
    ingest(rt, batch, pb, now=now, report=report)
    return "ingested"


def _back_off(rt: Runtime, batch: Batch, now: datetime) -> None:
    s = rt.settings
    delay = poll_delay_s(batch.poll_count, min_s=s.batch_poll_min_s, max_s=s.batch_poll_max_s)
    batch_store(rt).update_batch(
        batch.id, poll_count=batch.poll_count + 1, next_poll_at=now + timedelta(seconds=delay)
    )


def ingest(
    rt: Runtime, batch: Batch, pb: ProviderBatch, *, now: datetime, report: PollReport
) -> None:
    bs = batch_store(rt)
    client = client_for(rt, batch.provider)
    disabled = batching_disabled(rt)
    for chunk in chunks(client.results(pb), INGEST_CHUNK):
        _apply_chunk(rt, batch, pb, chunk, now=now, disabled=disabled, report=report)
    # Members with no line in the results never ran: owed to their callers like expired ones.
    leftovers = bs.member_ids(batch.id)
    if leftovers:
        lines = [
            ResultLine(j, LineOutcome.EXPIRED, error="missing from results") for j in leftovers
        ]
        for chunk in chunks(lines, INGEST_CHUNK):
            _apply_chunk(rt, batch, pb, chunk, now=now, disabled=disabled, report=report)
    bs.update_batch(batch.id, state="ingested", ingested_at=utcnow())
    report.ingested.append(batch.id)


def _apply_chunk(
    rt: Runtime,
    batch: Batch,
    pb: ProviderBatch,
    lines: list[ResultLine],
    *,
    now: datetime,
    disabled: bool,
    report: PollReport,
) -> None:
    bs = batch_store(rt)
    ids = [line.custom_id for line in lines]
    jobs = bs.jobs(ids)
    already = bs.billed(pb.id, ids)
    ops = LineOps(calls=[], complete={}, rebatch={}, promote=[], fail={})
    policy = policy_from_settings(rt.settings)
    adapter = rt.providers.get(batch.provider)
    api = _API_FOR_ENDPOINT.get(batch.endpoint, "chat")
    for line in lines:
        job = jobs.get(line.custom_id)
        ours = job is not None and job.batch_id == batch.id
        if line.outcome is LineOutcome.SUCCEEDED:
            result = adapter.parse_body(api, line.body or {})  # type: ignore[arg-type]
            facts = CallFacts(
                provider=batch.provider,
                model=batch.model,
                api=api,
                lane=LANE,
                usage=result.usage,
                job_id=line.custom_id if job is not None else None,
                feature=job.feature if job else "default",
                tenant=job.tenant if job else None,
                batch_id=pb.id,
                attempt=(job.batch_attempts + 1) if job else 1,
                request_id=line.request_id,
                batch_priced=True,
                cache_segments=job.segments if job else None,
            )
            row = rt.ledger.row(facts)
            if line.custom_id not in already:
                ops.calls.append(row)
            if ours and job is not None and job.state in (JobState.SUBMITTED, JobState.PROMOTED):
                ops.complete[line.custom_id] = result_payload(
                    result=result,
                    provider=batch.provider,
                    lane=LANE,
                    tier=None,
                    cost_usd=row.cost_usd,
                    promoted=job.promoted,
                    batch_id=pb.id,
                )
            continue
        if not ours or job is None or job.state is not JobState.SUBMITTED:
            continue
        _route_failure(
            line,
            job,
            ops,
            policy=policy,
            now=now,
            disabled=disabled,
            max_retries=rt.settings.batch_max_line_retries,
        )
    done = bs.apply(batch.id, ops)
    if done["promote"]:
        rt.publisher.publish([Dispatch(j, names.QUEUE_PROMOTED) for j in done["promote"]])
    report.completed += len(done["complete"])
    report.rebatched += len(done["rebatch"])
    report.promoted += len(done["promote"])
    report.failed_jobs += len(done["fail"])
    report.billed += len(ops.calls)


def _route_failure(
    line: ResultLine,
    job: JobView,
    ops: LineOps,
    *,
    policy: Any,
    now: datetime,
    disabled: bool,
    max_retries: int,
) -> None:
    errored = line.outcome is LineOutcome.ERRORED
    action = line_action(
        line.outcome,
        deadline=job.deadline,
        now=now,
        policy=policy,
        attempts=job.batch_attempts,
        max_retries=max_retries,
        retryable=retryable_status(line.status) if errored else True,
        batching_disabled=disabled,
    )
    if action is LineAction.REBATCH:
        ops.rebatch[job.id] = errored
    elif action is LineAction.PROMOTE:
        ops.promote.append(job.id)
    elif action is LineAction.FAIL:
        tries = job.batch_attempts + 1
        ops.fail[job.id] = f"batch line failed ({tries} attempt(s)): {line.error or 'error'}"
