"""The deferrable lane end to end: enqueue → Redis → real Celery worker (`lanes.accumulate`)
→ SQL buffer → flush (JSONL + Files + Batches, or Message Batches, through the official SDKs
over HTTP) → simulator (virtual clock, batch faults) → poll → ingest → job rows and ledger.

Flush and poll are called directly for determinism; time passes by advancing the simulator's
virtual clock, never by sleeping. Every test ends with the same audit: each job reached a final
state exactly once, the ledger billed exactly the completed lines, batch lines at the batch
price, and the simulator holds no batch we did not track (no orphans, no duplicates).
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

import lanes
from lanes.caching import PromptSegment
from lanes.ports import JobState
from lanes.usage import Usage
from storage.models import Batch, Call, Job, utcnow
from tests.support import wait_for
from workers import batch_submit
from workers.batch_errors import SimulatedCrashError
from workers.batch_ingest import poll
from workers.batch_submit import flush
from workers.batch_switch import set_switch
from workers.cli_batches import batch_rows, cancel_batch
from workers.requests import segment_label

pytestmark = pytest.mark.integration

DAY = 86_400
MODELS = {"openai": "gpt-5.4-mini", "anthropic": "claude-haiku-4-5", "azure": "gpt-5.4-mini"}
POLICY = PromptSegment(name="policy", text="Tickets are summarised in one line.", static=True)
TIMING = {
    "validating_seconds": 10,
    "request_seconds": 1,
    "finalizing_seconds": 10,
    "cancel_seconds": 30,
    "concurrency": 1,
}


# -- helpers ---------------------------------------------------------------------------------


def control(sim: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        sim.url + path,
        data=data,
        method="POST" if data else "GET",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def faults(sim: Any, **values: Any) -> None:
    control(sim, "/_sim/batch_faults", {"reset": True, **values})


@pytest.fixture
def rt(sqlite_runtime, celery_worker, simulator) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    control(simulator, "/_sim/batch_timing", TIMING)
    faults(simulator)
    set_switch(sqlite_runtime, False)
    batch_submit.set_fault_hook(None)
    yield sqlite_runtime
    batch_submit.set_fault_hook(None)
    set_switch(sqlite_runtime, False)
    faults(simulator)


def enqueue(
    provider: str, n: int, *, max_delay_s: float | None = None, feature: str = "digest"
) -> list[str]:
    tasks = [
        lanes.LLMTask(
            messages=[{"role": "user", "content": f"Summarise ticket #{i} in one line."}],
            lane="deferrable",
            provider=provider,
            model=MODELS[provider],
            max_output_tokens=32,
            max_delay_s=max_delay_s,
            feature=feature,
            tenant="acme",
            segments=[POLICY],
        )
        for i in range(n)
    ]
    return [h.job_id for h in lanes.enqueue_many(tasks)]


def jobs(rt: Any, ids: list[str] | None = None) -> dict[str, Job]:
    with Session(rt.engine) as s:
        rows = list(s.exec(select(Job)))
    return {j.id: j for j in rows if ids is None or j.id in ids}


def states(rt: Any, ids: list[str]) -> Counter[str]:
    return Counter(j.state for j in jobs(rt, ids).values())


def wait_state(rt: Any, ids: list[str], state: JobState, *, timeout: float = 20) -> None:
    wait_for(
        lambda: states(rt, ids)[state.value] == len(ids),
        timeout=timeout,
        what=f"{len(ids)} jobs {state.value}",
    )


def calls(rt: Any) -> list[Call]:
    with Session(rt.engine) as s:
        return list(s.exec(select(Call).order_by(Call.id)))  # type: ignore[arg-type]


def batches(rt: Any) -> list[Batch]:
    with Session(rt.engine) as s:
        return list(s.exec(select(Batch).order_by(Batch.created_at)))  # type: ignore[arg-type]


def later(seconds: float) -> Any:
    return utcnow() + timedelta(seconds=seconds)


def cycle(rt: Any, sim: Any, *, advance: float = 3600) -> None:
    """One full round: flush everything buffered, let the batch run, ingest it."""
    flush(rt, force=True)
    sim.advance(advance)
    poll(rt, force=True)


def sim_batch_ids(sim: Any, provider: str) -> set[str]:
    engine = next(h for h in sim._handlers if hasattr(h, "set_faults"))
    side = engine.anthropic if provider == "anthropic" else engine.openai[provider]
    return {b.id for b in side.batches()}


def audit(rt: Any, sim: Any, ids: list[str], *, provider: str) -> dict[str, Job]:
    """Final exactly once; billed exactly the completed lines; no orphan/duplicate batches."""
    final = jobs(rt, ids)
    assert all(JobState(j.state).final for j in final.values()), states(rt, ids)
    rows = [c for c in calls(rt) if c.status == "ok"]
    per_job = Counter(c.job_id for c in rows)
    for job in final.values():
        want = 1 if job.state == JobState.DONE.value else 0
        extra = 1 if job.promoted and job.batch_id is not None else 0  # batch line + realtime
        assert want <= per_job[job.id] <= want + extra, (job.id, job.state, per_job[job.id])
        if job.state == JobState.DONE.value:
            prov = job.result["provenance"]  # type: ignore[index]
            served = [c for c in rows if c.job_id == job.id and c.lane == prov["lane"]]
            assert len(served) == 1
    for c in rows:
        usage = Usage(
            input_tokens=c.input_tokens,
            cached_input_tokens=c.cached_input_tokens,
            cache_write_tokens=c.cache_write_tokens,
            cache_write_long_tokens=c.cache_write_long_tokens,
            output_tokens=c.output_tokens,
        )
        batch = c.lane == "batch"
        price = rt.prices.cost(provider=c.provider, model=c.model, usage=usage, batch=batch)
        assert c.cost_usd == pytest.approx(Decimal(price.usd), abs=Decimal("1e-10"))
        assert (c.batch_id is not None) == batch
    tracked = {
        b.provider_batch_id for b in batches(rt) if b.provider_batch_id and b.provider == provider
    }
    assert sim_batch_ids(sim, provider) == tracked
    return final


def batch_lines_billed(rt: Any) -> int:
    return sum(1 for c in calls(rt) if c.lane == "batch")


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "azure"])
def test_happy_path(rt, simulator, provider) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue(provider, 6)
    wait_state(rt, ids, JobState.BUFFERED)
    assert flush(rt).submitted == []  # young group, far deadlines: keep buffering
    report = flush(rt, now=later(rt.settings.batch_max_wait_s + 1))  # oldest waited enough
    assert len(report.submitted) == 1 and report.jobs == 6
    assert states(rt, ids) == {"submitted": 6}
    poll(rt, force=True)
    assert states(rt, ids) == {"submitted": 6}  # still running at the provider
    simulator.advance(3600)
    assert poll(rt, force=True).completed == 6
    final = audit(rt, simulator, ids, provider=provider)
    (batch,) = batches(rt)
    assert (batch.state, batch.request_count, batch.reason) == ("ingested", 6, "age")
    for job in final.values():
        prov = job.result["provenance"]  # type: ignore[index]
        assert (prov["lane"], prov["batch_id"], prov["promoted"]) == (
            "batch",
            batch.provider_batch_id,
            False,
        )
        assert job.result["text"]  # type: ignore[index]
    assert batch_lines_billed(rt) == 6
    assert {c.feature for c in calls(rt)} == {"digest"}
    assert {tuple(c.cache_segments or ()) for c in calls(rt)} == {(segment_label(POLICY),)}
    listed = batch_rows(rt)
    assert listed[0]["jobs_by_state"] == {"done": 6}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_errored_lines_are_retried_then_failed(rt, simulator, provider) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue(provider, 4)
    wait_state(rt, ids, JobState.BUFFERED)
    always, once = ids[0], ids[1]
    faults(simulator, error_custom_ids=[always, once], error_status=500)
    cycle(rt, simulator)
    assert jobs(rt, [once])[once].state == "buffered"  # back in the buffer, attempt counted
    faults(simulator, error_custom_ids=[always], error_status=500)
    for _ in range(rt.settings.batch_max_line_retries):
        cycle(rt, simulator)
    final = audit(rt, simulator, ids, provider=provider)
    assert final[always].state == "failed" and "500" in (final[always].error or "")
    assert final[always].batch_attempts == rt.settings.batch_max_line_retries
    assert final[once].state == "done" and final[once].batch_attempts == 1
    assert batch_lines_billed(rt) == 3  # errored lines are never billed


def test_request_errors_fail_without_retry(rt, simulator) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue("openai", 2)
    wait_state(rt, ids, JobState.BUFFERED)
    faults(simulator, error_custom_ids=[ids[0]], error_status=400)
    cycle(rt, simulator)
    final = audit(rt, simulator, ids, provider="openai")
    assert final[ids[0]].state == "failed" and "400" in (final[ids[0]].error or "")
    assert final[ids[1]].state == "done"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_partial_expiry_rebatches_or_promotes(rt, simulator, provider) -> None:  # type: ignore[no-untyped-def]
    relaxed = enqueue(provider, 3)
    urgent = enqueue(provider, 1, max_delay_s=3 * 3600)  # < turnaround + margin after expiry
    ids = relaxed + urgent
    wait_state(rt, ids, JobState.BUFFERED)
    faults(simulator, expire_custom_ids=[relaxed[0], urgent[0]])
    report = flush(rt)  # the urgent member's deadline forces the flush
    assert len(report.submitted) == 1 and report.jobs == 4
    simulator.advance(DAY + 60)
    result = poll(rt, force=True)
    assert (result.completed, result.rebatched, result.promoted) == (2, 1, 1)
    wait_state(rt, urgent, JobState.DONE)  # served by the realtime worker
    faults(simulator)
    cycle(rt, simulator)
    final = audit(rt, simulator, ids, provider=provider)
    assert final[urgent[0]].result["provenance"]["lane"] == "promoted"  # type: ignore[index]
    assert final[relaxed[0]].result["provenance"]["lane"] == "batch"  # type: ignore[index]
    assert len(batches(rt)) == 2
    assert batch_lines_billed(rt) == 3  # expired lines cost nothing


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_failed_batch_is_split_in_halves(rt, simulator, provider) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue(provider, 5)
    wait_state(rt, ids, JobState.BUFFERED)
    faults(simulator, fail_validation=1)
    flush(rt, force=True)
    simulator.advance(60)
    poll(rt, force=True)  # OpenAI fails at validation; Anthropic refused the create (400)
    simulator.advance(3600)
    poll(rt, force=True)
    final = audit(rt, simulator, ids, provider=provider)
    assert {j.state for j in final.values()} == {"done"}
    rows = batches(rt)
    parent = next(b for b in rows if b.parent_id is None)
    children = [b for b in rows if b.parent_id == parent.id]
    assert parent.state == "failed" and "validation" in (parent.error or "").lower()
    assert sorted(b.request_count for b in children) == [2, 3]
    assert batch_lines_billed(rt) == 5


def test_failed_single_job_batch_fails_with_reason(rt, simulator) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue("openai", 1)
    wait_state(rt, ids, JobState.BUFFERED)
    faults(simulator, fail_validation=1)
    cycle(rt, simulator, advance=60)
    final = audit(rt, simulator, ids, provider="openai")
    job = final[ids[0]]
    assert job.state == "failed" and "batch rejected by openai" in (job.error or "")
    assert batch_lines_billed(rt) == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_operator_cancel(rt, simulator, provider) -> None:  # type: ignore[no-untyped-def]
    control(simulator, "/_sim/batch_timing", {"request_seconds": 100})
    ids = enqueue(provider, 4)
    wait_state(rt, ids, JobState.BUFFERED)
    flush(rt, force=True)
    simulator.advance(260)  # two or three lines done
    (batch,) = batches(rt)
    out = cancel_batch(rt, batch.provider_batch_id or "")
    assert out["provider_status"] in ("cancelling", "canceling")
    simulator.advance(60)
    result = poll(rt, force=True)
    assert result.completed >= 1 and result.completed + result.rebatched == 4
    control(simulator, "/_sim/batch_timing", {"request_seconds": 1})
    cycle(rt, simulator)
    final = audit(rt, simulator, ids, provider=provider)
    assert {j.state for j in final.values()} == {"done"}
    assert batch_lines_billed(rt) == 4
    assert batches(rt)[0].cancel_requested


@pytest.mark.parametrize(
    ("provider", "point"),
    [
        ("openai", "after_upload"),
        ("openai", "after_create"),
        ("anthropic", "after_build"),
        ("anthropic", "after_create"),
    ],
)
def test_crash_during_submit_is_reconciled(rt, simulator, provider, point) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue(provider, 3)
    wait_state(rt, ids, JobState.BUFFERED)

    def crash(name: str, _batch: Any) -> None:
        if name == point:
            raise SimulatedCrashError(name)

    batch_submit.set_fault_hook(crash)
    with pytest.raises(SimulatedCrashError):
        flush(rt, force=True)
    batch_submit.set_fault_hook(None)
    (stuck,) = batches(rt)
    assert stuck.state == "submitting"
    assert flush(rt).reconciled == []  # not stale yet: maybe another flusher is on it
    report = flush(rt, now=later(rt.settings.batch_submit_stale_s + 1))
    assert report.reconciled == [stuck.id] and report.submitted == [stuck.id]
    simulator.advance(3600)
    poll(rt, force=True)
    audit(rt, simulator, ids, provider=provider)  # exactly one provider batch, all done
    assert len(sim_batch_ids(simulator, provider)) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_create_500_after_success_is_adopted_not_duplicated(rt, simulator, provider) -> None:  # type: ignore[no-untyped-def]
    ids = enqueue(provider, 3)
    wait_state(rt, ids, JobState.BUFFERED)
    faults(simulator, ghost_creates=1)  # stored server-side, answered 500
    report = flush(rt, force=True)
    assert len(report.submitted) == 1 and not report.pending
    assert len(sim_batch_ids(simulator, provider)) == 1  # the SDK would have made two
    simulator.advance(3600)
    poll(rt, force=True)
    audit(rt, simulator, ids, provider=provider)
    assert batch_lines_billed(rt) == 3


def test_emergency_switch_sends_the_lane_to_realtime(rt, simulator) -> None:  # type: ignore[no-untyped-def]
    buffered = enqueue("openai", 2)
    wait_state(rt, buffered, JobState.BUFFERED)
    set_switch(rt, True)
    report = flush(rt, force=True)
    assert sorted(report.promoted) == sorted(buffered) and report.submitted == []
    fresh = enqueue("anthropic", 2)  # new jobs skip the buffer entirely
    ids = buffered + fresh
    wait_state(rt, ids, JobState.DONE)
    set_switch(rt, False)
    final = audit(rt, simulator, ids, provider="openai")
    assert {j.result["provenance"]["lane"] for j in final.values()} == {"promoted"}  # type: ignore[index]
    assert batches(rt) == [] and batch_lines_billed(rt) == 0
    again = enqueue("openai", 1)  # switch off: back to batching
    wait_state(rt, again, JobState.BUFFERED)


def test_env_switch_disables_batching(rt, simulator) -> None:  # type: ignore[no-untyped-def]
    from workers.runtime import Runtime, set_runtime

    disabled = Runtime(
        settings=rt.settings.model_copy(update={"batching_disabled": True}), app=rt.app
    )
    set_runtime(disabled)
    try:
        ids = enqueue("openai", 2)
        wait_state(disabled, ids, JobState.DONE)
    finally:
        set_runtime(rt)
    assert batches(rt) == []


@pytest.fixture
def rt_both(lane_runtime, celery_worker, simulator) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    control(simulator, "/_sim/batch_timing", TIMING)
    faults(simulator)
    set_switch(lane_runtime, False)
    yield lane_runtime


def test_groups_by_provider_endpoint_model_on_both_engines(rt_both, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = rt_both
    chat = enqueue("openai", 3)
    claude = enqueue("anthropic", 2)
    responses = [
        h.job_id
        for h in lanes.enqueue_many(
            [
                lanes.LLMTask(
                    messages=[{"role": "user", "content": f"Classify note {i}."}],
                    lane="deferrable",
                    provider="openai",
                    model="gpt-5.4",
                    api="responses",
                    max_output_tokens=16,
                )
                for i in range(2)
            ]
        )
    ]
    ids = chat + claude + responses
    wait_state(rt, ids, JobState.BUFFERED)
    report = flush(rt, force=True)
    assert len(report.submitted) == 3 and report.jobs == 7
    groups = {(b.provider, b.endpoint, b.model): b.request_count for b in batches(rt)}
    assert groups == {
        ("openai", "/v1/chat/completions", "gpt-5.4-mini"): 3,
        ("anthropic", "/v1/messages", "claude-haiku-4-5"): 2,
        ("openai", "/v1/responses", "gpt-5.4"): 2,
    }
    simulator.advance(3600)
    assert poll(rt, force=True).completed == 7
    audit(rt, simulator, chat + responses, provider="openai")
    audit(rt, simulator, claude, provider="anthropic")


def test_periodic_tasks_take_a_lock(rt, simulator) -> None:  # type: ignore[no-untyped-def]
    import redis

    from workers.accumulator import KEY_FLUSH_LOCK, KEY_POLL_LOCK, flush_batches, poll_batches

    ids = enqueue("openai", 2)
    wait_state(rt, ids, JobState.BUFFERED)
    assert flush_batches()["submitted"] == 0  # young group: nothing to do yet
    assert poll_batches()["polled"] == 0
    client = redis.Redis.from_url(rt.app.conf.broker_url)
    try:
        client.set(KEY_FLUSH_LOCK, "1")  # another beat's tick in progress
        client.set(KEY_POLL_LOCK, "1")
        assert flush_batches() == {"skipped": 1} and poll_batches() == {"skipped": 1}
    finally:
        client.delete(KEY_FLUSH_LOCK, KEY_POLL_LOCK)
        client.close()
    assert states(rt, ids) == {"buffered": 2}


def test_shared_prefix_is_warmed_once_and_batch_lines_read_it(rt, simulator) -> None:  # type: ignore[no-untyped-def]
    handbook = PromptSegment(
        name="handbook",
        static=True,
        version="v1",
        text=" ".join(
            f"Rule {i}: summarise tickets in plain words, cite the order id." for i in range(80)
        ),
    )
    tasks = [
        lanes.LLMTask(
            messages=[{"role": "user", "content": f"Summarise ticket #{i}."}],
            lane="deferrable",
            provider="anthropic",
            model="claude-sonnet-5-5",
            max_output_tokens=32,
            feature="digest",
            segments=[handbook],
        )
        for i in range(40)
    ]
    ids = [h.job_id for h in lanes.enqueue_many(tasks)]
    wait_state(rt, ids, JobState.BUFFERED)
    flush(rt, force=True)
    warm = [c for c in calls(rt) if c.lane == "warmup"]
    assert len(warm) == 1  # one realtime request for the whole batch
    assert warm[0].cache_write_long_tokens > 0  # written with the 1h TTL batch lines carry
    simulator.advance(120)  # well inside the hour
    assert poll(rt, force=True).completed == 40
    lines = [c for c in calls(rt) if c.lane == "batch"]
    assert len(lines) == 40 and all(c.cached_input_tokens > 0 for c in lines)
    assert all(c.cache_write_tokens == 0 for c in lines)
    audit(rt, simulator, ids, provider="anthropic")
