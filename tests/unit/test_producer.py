"""Producer semantics on in-memory fakes: idempotency, publish failure, bulk enqueue."""

from __future__ import annotations

import pytest

from lanes.errors import PublishError
from lanes.fakes import MemoryJobStore, MemoryPublisher
from lanes.ports import JobState, ManualClock
from lanes.producer import Producer


def make(fail_publish: bool = False) -> tuple[Producer, MemoryJobStore, MemoryPublisher]:
    store, pub = MemoryJobStore(), MemoryPublisher(fail=fail_publish)
    return (
        Producer(store=store, publisher=pub, clock=ManualClock(), default_max_delay_s=60),
        store,
        pub,
    )


def task(key: str | None = None, lane: str = "interactive") -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "hi"}], "idempotency_key": key, "lane": lane}


def test_idempotency_key_returns_existing_job_without_publishing_again() -> None:
    prod, store, pub = make()
    first = prod.enqueue(task("order-42"))
    again = prod.enqueue(task("order-42"))
    assert again.job_id == first.job_id
    assert first.created and not again.created
    assert len(store.jobs) == 1 and len(pub.sent) == 1


def test_duplicate_keys_inside_one_bulk_call_collapse() -> None:
    prod, store, pub = make()
    handles = prod.enqueue_many([task("k"), task("k"), task(None)])
    assert handles[0].job_id == handles[1].job_id != handles[2].job_id
    assert len(store.jobs) == 2 and len(pub.sent) == 2


def test_publish_failure_keeps_rows_queued_and_names_jobs() -> None:
    prod, store, _ = make(fail_publish=True)
    with pytest.raises(PublishError) as info:
        prod.enqueue_many([task(), task(lane="deferrable")])
    ids = info.value.job_ids
    assert len(ids) == 2
    assert all(store.jobs[i].state is JobState.QUEUED for i in ids)
    assert store.unpublished == set(ids)


def test_store_failure_publishes_nothing() -> None:
    prod, store, pub = make()
    store.fail_insert = True
    with pytest.raises(RuntimeError):
        prod.enqueue(task())
    assert pub.sent == []


def test_handle_status_and_result() -> None:
    prod, store, _ = make()
    h = prod.enqueue(task())
    assert h.status() is JobState.QUEUED
    store.set_state(h.job_id, JobState.DONE, result={"text": "ok"})
    assert h.result(timeout=1) == {"text": "ok"}
