"""The interactive lane end to end: public API → Redis → real Celery worker → official SDK
over HTTP → simulator → SQL job row and ledger row, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import Session, select

import lanes
from lanes import names
from lanes.ports import Dispatch, JobState
from lanes.usage import Usage
from storage.models import Call, Job
from tests.support import wait_for

pytestmark = pytest.mark.integration


def ledger(rt) -> list[Call]:  # type: ignore[no-untyped-def]
    with Session(rt.engine) as s:
        return list(s.exec(select(Call).order_by(Call.id)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "model", "api"),
    [
        ("openai", "gpt-5.4-mini", "chat"),
        ("openai", "gpt-5.4", "responses"),
        ("anthropic", "claude-haiku-4-5", None),
        ("azure", "gpt-5.4-mini", "chat"),
    ],
)
def test_enqueue_to_answer_with_ledger_row(lane_runtime, celery_worker, provider, model, api):  # type: ignore[no-untyped-def]
    rt = lane_runtime
    task = lanes.LLMTask(
        messages=[{"role": "user", "content": "What is the capital of France? Answer briefly."}],
        system="You are a terse geography assistant.",
        provider=provider,
        model=model,
        api=api,
        max_output_tokens=64,
        feature="geo-quiz",
        tenant="acme",
    )
    handle = lanes.enqueue(task)
    result = handle.result(timeout=30)
    assert handle.status() is JobState.DONE
    assert result["text"]
    prov = result["provenance"]
    assert (prov["lane"], prov["provider"], prov["promoted"], prov["batch_id"]) == (
        "interactive",
        provider,
        False,
        None,
    )

    rows = ledger(rt)
    assert len(rows) == 1
    row = rows[0]
    assert row.job_id == handle.job_id
    assert (row.provider, row.model, row.lane, row.feature, row.tenant, row.status) == (
        provider,
        model,
        "interactive",
        "geo-quiz",
        "acme",
        "ok",
    )
    assert row.api == (api or "messages")
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert row.output_tokens <= 64
    assert row.cached_input_tokens == 0 and row.cache_write_tokens == 0  # short prompt
    assert row.latency_ms > 0
    assert row.request_id
    # Cost is exactly the price table's figure for the recorded usage.
    usage = Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens)
    expected = rt.prices.cost(provider=provider, model=model, usage=usage)
    assert row.cost_usd == pytest.approx(Decimal(expected.usd), abs=Decimal("1e-10"))
    assert row.cost_usd > 0 and row.price_version == expected.price_version
    assert Decimal(result["cost_usd"]) == pytest.approx(row.cost_usd, abs=Decimal("1e-10"))
    # The simulator saw exactly one request, carrying the task's prompt.
    assert result["usage"]["input_tokens"] == row.input_tokens


def test_redelivered_message_completes_the_job_once(sqlite_runtime, celery_worker):  # type: ignore[no-untyped-def]
    rt = sqlite_runtime
    handle = lanes.enqueue({"messages": [{"role": "user", "content": "Say hi"}], "feature": "dup"})
    # Two more copies of the same message, as a Redis redelivery or a double publish would.
    rt.publisher.publish([Dispatch(handle.job_id, names.QUEUE_INTERACTIVE)] * 2)
    handle.result(timeout=30)
    wait_for(lambda: _queues_drained(rt) and _worker_idle(), what="all three copies consumed")
    assert handle.status() is JobState.DONE
    assert [r.job_id for r in ledger(rt)] == [handle.job_id]
    with Session(rt.engine) as s:
        job = s.get(Job, handle.job_id)
        assert job is not None and job.attempts == 1


def _queues_drained(rt) -> bool:  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(rt.app.conf.broker_url)
    try:
        return all(client.llen(q) == 0 for q in names.REALTIME_QUEUES)
    finally:
        client.close()


def _worker_idle() -> bool:
    from celery.worker import state

    return not state.active_requests and not state.reserved_requests


def test_exhausted_provider_errors_fail_the_job_with_reason(
    sqlite_runtime, celery_worker, simulator
):  # type: ignore[no-untyped-def]
    rt = sqlite_runtime
    simulator.add_script(
        {"model": "gpt-broken", "behaviour": "error", "status": 500}
    )  # every attempt
    handle = lanes.enqueue({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-broken"})
    with pytest.raises(lanes.JobFailedError) as info:
        handle.result(timeout=60)
    assert "500" in info.value.reason
    rows = ledger(rt)
    assert len(rows) == rt.settings.job_max_attempts
    assert {r.status for r in rows} == {"error"} and all(r.cost_usd == 0 for r in rows)
    assert "sk-test" not in info.value.reason


def test_publish_failure_is_recovered_by_the_watchdog(sqlite_runtime, celery_worker):  # type: ignore[no-untyped-def]
    from celery import Celery

    from lanes.ports import SystemClock
    from lanes.producer import Producer
    from workers.celery_app import configure
    from workers.publisher import CeleryPublisher
    from workers.watchdog import sweep

    rt = sqlite_runtime
    dead = configure(Celery("dead", set_as_current=False), rt.settings)
    dead.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    dead.conf.broker_connection_retry = False
    broken = Producer(
        store=rt.store,
        publisher=CeleryPublisher(dead),
        clock=SystemClock(),
        default_max_delay_s=3600,
    )
    with pytest.raises(lanes.PublishError) as info:
        broken.enqueue({"messages": [{"role": "user", "content": "don't lose me"}]})
    (job_id,) = info.value.job_ids
    assert rt.store.get_job(job_id).state is JobState.QUEUED  # type: ignore[union-attr]
    report = sweep(rt)
    assert job_id in report.republished
    assert lanes.get_job(job_id).result(timeout=30)["text"]


def test_invalid_bulk_enqueue_writes_no_row_and_publishes_nothing(lane_runtime):  # type: ignore[no-untyped-def]
    import redis

    rt = lane_runtime
    good = {"messages": [{"role": "user", "content": "fine"}]}
    bad = {
        "messages": [{"role": "user", "content": "x"}],
        "max_output_tokens": -3,
        "feature": "no spaces allowed",
    }
    with pytest.raises(lanes.TaskValidationError) as info:
        lanes.enqueue_many([good, good, bad])
    assert info.value.index == 2
    assert set(info.value.fields) == {"max_output_tokens", "feature"}
    with Session(rt.engine) as s:
        assert list(s.exec(select(Job))) == []
    client = redis.Redis.from_url(rt.app.conf.broker_url)
    try:
        assert all(client.llen(q) == 0 for q in names.ALL_QUEUES)
    finally:
        client.close()


def test_a_provider_echoing_the_key_does_not_leak_it(sqlite_runtime, celery_worker, simulator):  # type: ignore[no-untyped-def]
    from tests.conftest import TEST_KEYS

    rt = sqlite_runtime
    key = TEST_KEYS["openai_api_key"]
    simulator.add_script(
        {
            "model": "gpt-leaky",
            "behaviour": "error",
            "status": 401,
            "message": f"Incorrect API key provided: {key}",
        }
    )
    handle = lanes.enqueue({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-leaky"})
    with pytest.raises(lanes.JobFailedError) as info:
        handle.result(timeout=30)
    assert "401" in info.value.reason and "[redacted]" in info.value.reason
    assert key not in info.value.reason
    with Session(rt.engine) as s:
        job = s.get(Job, handle.job_id)
        dumped = repr(job.model_dump()) + repr([r.model_dump() for r in ledger(rt)])
    assert key not in dumped
