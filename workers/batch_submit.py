"""Flush: turn buffered groups into provider batches, never orphaned and never duplicated.

Order of writes, so a crash at any point is recoverable by the next flush:

1. `Batch` row in `submitting` (local id), then its members claimed buffered → submitted
   with `batch_id` set (conditional: a job the watchdog promoted is left out);
2. OpenAI/Azure: members streamed from SQL (`yield_per`) into a temp JSONL file, uploaded
   (purpose `batch`), the file id stored; Anthropic: the request list built from SQL;
3. create, with the SDK's retries off and `metadata={"llm_lanes_batch": <local id>}`
   (OpenAI/Azure); the provider id stored as soon as the create returns.

Reconciliation of a batch left `submitting` (crash, or a create that failed ambiguously —
e.g. a 500 after the provider stored it): OpenAI/Azure list batches and adopt the one whose
metadata carries our local id (extra tagged copies are cancelled); if none, create again from
the stored input file. Anthropic batches have no metadata: we adopt the oldest batch that no
local row owns, has exactly our request count and was created after our row (minus a clock
skew allowance). Ingestion then bills and completes only jobs that belong to this local batch.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from lanes import names
from lanes.flush import (
    FlushReason,
    GroupKey,
    GroupStats,
    decide,
    flush_reason,
    policy_from_settings,
    split_sizes,
)
from lanes.ports import Dispatch
from storage.batches import LineOps, SqlBatchStore
from storage.models import Batch, utcnow
from workers.batch_client import (
    AnthropicBatchClient,
    OpenAIBatchClient,
    ProviderBatch,
    client_for,
)
from workers.batch_errors import BatchProviderError, BatchRejectedError
from workers.batch_switch import batching_disabled
from workers.runtime import Runtime

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=10)
DRAIN_CHUNK = 1000

FaultHook = Callable[[str, Batch], None]
_fault_hook: FaultHook | None = None


def set_fault_hook(hook: FaultHook | None) -> None:
    """Tests act out crashes: `hook(point, batch)` runs at "after_claim", "after_upload"
    (OpenAI/Azure), "after_build" (Anthropic) and "after_create" (before the provider id is
    stored) and may raise."""
    global _fault_hook
    _fault_hook = hook


def _point(name: str, batch: Batch) -> None:
    if _fault_hook is not None:
        _fault_hook(name, batch)


_stores: dict[object, SqlBatchStore] = {}


def batch_store(rt: Runtime) -> SqlBatchStore:
    """One store per engine (its constructor makes sure the buffer table exists)."""
    engine = rt.engine
    store = _stores.get(engine)
    if store is None:
        store = _stores[engine] = SqlBatchStore(engine)
    return store


def new_batch_id() -> str:
    return "lb_" + uuid.uuid4().hex[:20]


@dataclass
class FlushReport:
    submitted: list[str] = field(default_factory=list)
    """Local batch ids now at the provider."""
    reconciled: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    """Still `submitting` (provider unreachable); the next flush reconciles them."""
    split: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Local batches the provider refused whose lone job was failed."""
    promoted: list[str] = field(default_factory=list)
    """Jobs sent to realtime by the emergency switch."""
    jobs: int = 0


def flush(rt: Runtime, *, now: datetime | None = None, force: bool = False) -> FlushReport:
    """One flusher tick (the Celery task holds a lock; calling it directly is fine in tests)."""
    bs = batch_store(rt)
    now = now or utcnow()
    report = FlushReport()
    stale = now - timedelta(seconds=rt.settings.batch_submit_stale_s)
    for stuck in bs.batches_in(["submitting"], updated_before=stale):
        report.reconciled.append(stuck.id)
        submit(rt, stuck.id, report=report)
    if batching_disabled(rt):
        report.promoted = drain_to_realtime(rt)
        return report
    policy = policy_from_settings(rt.settings)
    stats = {s.key: s for s in bs.group_stats()}
    for decision in decide(stats.values(), policy, now=now, force=force):
        st = stats[decision.key]
        remaining, remaining_bytes = st.count, st.bytes
        while True:
            batch = bs.new_batch(new_batch_id(), key=decision.key, reason=decision.reason)
            claimed, line_bytes = bs.claim(batch.id, key=decision.key, limits=decision.limits)
            if claimed == 0:
                bs.delete_batch(batch.id)
                break
            report.jobs += claimed
            submit(rt, batch.id, report=report)
            remaining -= claimed
            remaining_bytes -= line_bytes
            if decision.reason in (FlushReason.FULL_REQUESTS, FlushReason.FULL_BYTES):
                rest = GroupStats(st.key, remaining, max(0, remaining_bytes), st.oldest_at)
                if flush_reason(rest, policy, now=now) not in (
                    FlushReason.FULL_REQUESTS,
                    FlushReason.FULL_BYTES,
                ):
                    break
    return report


def drain_to_realtime(rt: Runtime) -> list[str]:
    """Emergency switch: every buffered job → promoted, published to the promoted queue."""
    bs = batch_store(rt)
    moved: list[str] = []
    while True:
        ids = bs.buffered_ids(DRAIN_CHUNK)
        if not ids:
            break
        chunk = bs.promote_buffered(ids)
        if chunk:
            rt.publisher.publish([Dispatch(j, names.QUEUE_PROMOTED) for j in chunk])
        moved.extend(chunk)
        if not chunk:
            break
    if moved:
        log.warning("emergency switch: %d buffered job(s) sent to realtime", len(moved))
    return moved


def submit(rt: Runtime, batch_id: str, *, report: FlushReport | None = None) -> str:
    """Bring one `submitting` batch to the provider (or adopt the copy already there)."""
    bs = batch_store(rt)
    report = report if report is not None else FlushReport()
    batch = bs.get_batch(batch_id)
    if batch is None or batch.state != "submitting":
        return "gone"
    _point("after_claim", batch)
    if batch.submit_attempts == 0:
        warm_shared_prefix(rt, batch)
    client = client_for(rt, batch.provider)
    bs.update_batch(batch.id, submit_attempts=batch.submit_attempts + 1)
    try:
        if isinstance(client, AnthropicBatchClient):
            created = _submit_anthropic(rt, client, batch)
        else:
            created = _submit_openai(rt, client, batch)
    except BatchRejectedError as exc:
        log.warning("batch %s rejected by %s: %s", batch.id, batch.provider, exc)
        outcome = split_or_fail(rt, batch, reason=str(exc))
        (report.split if outcome == "split" else report.failed).append(batch.id)
        return outcome
    except BatchProviderError as exc:
        log.warning("batch %s not submitted yet (%s); the next flush reconciles it", batch.id, exc)
        bs.update_batch(batch.id, error=str(exc)[:500])
        report.pending.append(batch.id)
        return "pending"
    if created is not None:
        _point("after_create", batch)
    if created is None:
        bs.update_batch(
            batch.id,
            expected_state="submitting",
            state="ingested",
            error="no members left",
            ingested_at=utcnow(),
        )
        return "empty"
    now = utcnow()
    bs.update_batch(
        batch.id,
        expected_state="submitting",
        state="submitted",
        provider_batch_id=created.id,
        provider_status=created.status,
        submitted_at=now,
        next_poll_at=now + timedelta(seconds=rt.settings.batch_poll_min_s),
        error=None,
    )
    report.submitted.append(batch.id)
    return "submitted"


def _submit_openai(rt: Runtime, client: OpenAIBatchClient, batch: Batch) -> ProviderBatch | None:
    bs = batch_store(rt)
    if batch.submit_attempts > 0 or batch.input_file_id:
        adopted = _adopt_tagged(client, batch)
        if adopted is not None:
            return adopted
    file_id = batch.input_file_id
    if not file_id:
        path, count, size = write_jsonl(bs, batch.id)
        try:
            if count == 0:
                return None
            file_id = client.upload(path)
        finally:
            path.unlink(missing_ok=True)
        bs.update_batch(batch.id, input_file_id=file_id, request_count=count, bytes=size)
        batch.input_file_id = file_id
    _point("after_upload", batch)
    return _create_once(
        lambda: client.create(input_file_id=file_id, endpoint=batch.endpoint, local_id=batch.id),
        lambda: _adopt_tagged(client, batch),
        attempts=rt.settings.provider_max_retries + 1,
    )


def _adopt_tagged(client: OpenAIBatchClient, batch: Batch) -> ProviderBatch | None:
    found = client.find(batch.id)
    if not found:
        return None
    keep, extra = found[0], found[1:]
    for dup in extra:  # only if something else retried a create: stop paying for copies
        log.error("batch %s: duplicate provider batch %s cancelled", batch.id, dup.id)
        try:
            client.cancel(dup.id)
        except BatchProviderError as exc:
            log.error("batch %s: cancelling duplicate %s failed: %s", batch.id, dup.id, exc)
    return keep


def _submit_anthropic(
    rt: Runtime, client: AnthropicBatchClient, batch: Batch
) -> ProviderBatch | None:
    bs = batch_store(rt)

    def adopt() -> ProviderBatch | None:
        if not batch.request_count:
            return None
        found = client.find(
            count=batch.request_count,
            since=batch.created_at - CLOCK_SKEW,
            exclude=bs.known_provider_ids("anthropic"),
        )
        return found[0] if found else None

    if batch.submit_attempts > 0:
        adopted = adopt()
        if adopted is not None:
            return adopted
    # Anthropic takes the requests inline: memory is bounded by the batch limits, not by
    # the backlog (set LLM_LANES_BATCH_ANTHROPIC_MAX_BYTES lower to cap it further).
    requests = [json.loads(line) for line in bs.iter_lines(batch.id)]
    if not requests:
        return None
    size = sum(len(json.dumps(r)) + 1 for r in requests)
    bs.update_batch(batch.id, request_count=len(requests), bytes=size)
    batch.request_count = len(requests)
    _point("after_build", batch)
    return _create_once(
        lambda: client.create(requests), adopt, attempts=rt.settings.provider_max_retries + 1
    )


def _create_once(
    create: Callable[[], ProviderBatch],
    adopt: Callable[[], ProviderBatch | None],
    *,
    attempts: int,
) -> ProviderBatch:
    """Create; after an ambiguous failure look before creating again (no duplicates)."""
    last: BatchProviderError | None = None
    for _ in range(max(1, attempts)):
        try:
            return create()
        except BatchRejectedError:
            raise
        except BatchProviderError as exc:
            last = exc
            if exc.ambiguous:
                adopted = adopt()
                if adopted is not None:
                    log.warning(
                        "create answered %s but the batch exists: adopted %s",
                        exc.status,
                        adopted.id,
                    )
                    return adopted
    assert last is not None
    raise last


def write_jsonl(bs: SqlBatchStore, batch_id: str) -> tuple[Path, int, int]:
    """Stream the members' lines into a temp file: (path, lines, bytes). Memory stays flat."""
    fd, name = tempfile.mkstemp(prefix=f"llm-lanes-{batch_id}-", suffix=".jsonl")
    count = size = 0
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
        for line in bs.iter_lines(batch_id):
            fh.write(line)
            fh.write("\n")
            count += 1
            size += len(line.encode()) + 1
    return Path(name), count, size


def split_or_fail(rt: Runtime, batch: Batch, *, reason: str) -> str:
    """A batch the provider refused: resubmit it as halves, or fail a lone job with the reason."""
    bs = batch_store(rt)
    ids = bs.member_ids(batch.id)
    bs.update_batch(batch.id, state="failed", error=reason[:500], ended_at=utcnow())
    sizes = split_sizes(len(ids))
    if not sizes:
        why = f"batch rejected by {batch.provider}: {reason}"
        bs.apply(
            batch.id,
            LineOps(calls=[], complete={}, rebatch={}, promote=[], fail={j: why for j in ids}),
        )
        return "failed"
    start = 0
    key = GroupKey(batch.provider, batch.endpoint, batch.model)
    for size in sizes:
        child = bs.new_batch(new_batch_id(), key=key, reason="split", parent_id=batch.id)
        moved = bs.move_members(ids[start : start + size], src=batch.id, dst=child.id)
        bs.update_batch(child.id, request_count=moved)
        start += size
        submit(rt, child.id)
    return "split"


def warm_shared_prefix(rt: Runtime, batch: Batch) -> bool:
    """Warm the prompt cache once for the batch's most shared static prefix, if it pays.

    Batch lines run in any order over hours; a single realtime request first turns most of
    them into cache reads. `maybe_warm` does the price math and never raises.
    """
    from workers.cache_warmup import maybe_warm

    shared = batch_store(rt).most_shared_prefix(batch.id)
    if shared is None or shared[0] < 2:
        return False
    count, sample_job = shared
    loaded = rt.store.load(sample_job)
    if loaded is None:
        return False
    return maybe_warm(
        rt, provider=batch.provider, model=batch.model, task=loaded[1], lines_sharing_prefix=count
    )
