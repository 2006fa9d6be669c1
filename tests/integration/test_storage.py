"""The storage layer on SQLite and PostgreSQL: conditional updates, idempotency, queries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from lanes.fakes import MemoryPublisher
from lanes.ports import JobState, SystemClock
from lanes.producer import Producer
from lanes.usage import Usage
from storage.engine import get_engine
from storage.jobs import SqlJobStore
from storage.ledger import CallFacts, Ledger
from storage.models import Call, Job

pytestmark = pytest.mark.integration


@pytest.fixture
def store(database_url: str) -> SqlJobStore:
    return SqlJobStore(get_engine(database_url))


def producer(store: SqlJobStore) -> tuple[Producer, MemoryPublisher]:
    pub = MemoryPublisher()
    return Producer(store=store, publisher=pub, clock=SystemClock(), default_max_delay_s=3600), pub


def task(**kw: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "hello"}], **kw}


def test_bulk_insert_roundtrip(store: SqlJobStore) -> None:
    prod, pub = producer(store)
    handles = prod.enqueue_many([task(feature=f"f{i}", lane="deferrable") for i in range(50)])
    assert len({h.job_id for h in handles}) == 50 and len(pub.sent) == 50
    rec = store.get_job(handles[7].job_id)
    assert rec is not None and rec.state is JobState.QUEUED and rec.deadline is not None
    assert rec.deadline.tzinfo is not None
    loaded = store.load(handles[7].job_id)
    assert loaded is not None and loaded[1].feature == "f7"


def test_concurrent_idempotent_enqueues_make_one_job(store: SqlJobStore) -> None:
    prod, pub = producer(store)
    ids: list[str] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        ids.append(prod.enqueue(task(idempotency_key="invoice-7")).job_id)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert len(pub.sent) == 1
    with Session(store.engine) as s:
        assert len(list(s.exec(select(Job)))) == 1


def test_conditional_transitions_first_result_wins(store: SqlJobStore) -> None:
    prod, _ = producer(store)
    job_id = prod.enqueue(task()).job_id
    assert store.claim_for_run(job_id)
    assert not store.claim_for_run(job_id)
    assert store.complete(job_id, {"text": "first"})
    assert not store.complete(job_id, {"text": "second"})
    assert not store.fail(job_id, "late failure")
    rec = store.get_job(job_id)
    assert rec is not None and rec.state is JobState.DONE and rec.result == {"text": "first"}


def test_watchdog_queries(store: SqlJobStore) -> None:
    prod, _ = producer(store)
    soon = prod.enqueue(task(lane="deferrable", deadline=datetime.now(UTC) + timedelta(minutes=5)))
    later = prod.enqueue(task(lane="deferrable", max_delay_s=86400))
    near = {j.id for j in store.near_deadline(within=timedelta(minutes=10))}
    assert soon.job_id in near and later.job_id not in near
    store.mark_unpublished([later.job_id])
    due = {j.id for j in store.due_for_republish(older_than=timedelta(hours=1))}
    assert due == {later.job_id}
    assert store.claim_for_run(soon.job_id)
    stale = store.stale_running(older_than=timedelta(seconds=-1))
    assert [j.id for j in stale] == [soon.job_id]


def test_ledger_rows_keep_exact_decimal_costs(store: SqlJobStore) -> None:
    from lanes.pricing import PriceTable

    ledger = Ledger(store.engine, PriceTable())
    usage = Usage(input_tokens=12_345, cached_input_tokens=10_240, output_tokens=777)
    row = ledger.record(
        CallFacts(provider="openai", model="gpt-5.4", lane="interactive", usage=usage, job_id=None)
    )
    with Session(store.engine) as s:
        back = s.get(Call, row.id)
        assert back is not None
        assert back.cost_usd == row.cost_usd > 0
        assert back.list_cost_usd > back.cost_usd  # cache reads are cheaper than list
        assert back.cached_input_tokens == 10_240
