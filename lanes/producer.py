"""`enqueue()`: validate, write the job row, publish the message, hand back a handle.

Order matters: the row is committed before the message is published, so a worker never sees
a message without a row. If publishing fails the row stays `queued`, the watchdog re-publishes
it, and the caller gets a `PublishError` naming the jobs — a job is never lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lanes import names
from lanes.errors import (
    JobFailedError,
    JobNotFoundError,
    PublishError,
    ResultTimeoutError,
    TaskValidationError,
)
from lanes.ports import Clock, Dispatch, JobRecord, JobState, JobStore, NewJob, Publisher
from lanes.task import Lane, LLMTask, validate_task

QUEUE_FOR_LANE = {
    Lane.INTERACTIVE: names.QUEUE_INTERACTIVE,
    Lane.DEFERRABLE: names.QUEUE_DEFERRABLE,
}


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobHandle:
    """A reference to one job; cheap to create again from its id."""

    job_id: str
    _store: JobStore
    created: bool = True

    def status(self) -> JobState:
        record = self._store.get_job(self.job_id)
        if record is None:
            raise JobNotFoundError(self.job_id)
        return record.state

    def record(self) -> JobRecord:
        record = self._store.get_job(self.job_id)
        if record is None:
            raise JobNotFoundError(self.job_id)
        return record

    def result(self, timeout: float | None = 60.0, *, poll_s: float = 0.02) -> dict[str, Any]:
        """Wait for a final state and return the result (text plus provenance).

        Polls SQL, the source of truth, with a capped backoff; raises `JobFailedError` or
        `ResultTimeoutError`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll_s
        while True:
            record = self.record()
            if record.state is JobState.DONE:
                return record.result or {}
            if record.state is JobState.FAILED:
                raise JobFailedError(self.job_id, record.error or "unknown")
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(
                    f"job {self.job_id} still {record.state.value} after {timeout}s"
                )
            time.sleep(
                delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            )
            delay = min(delay * 1.5, 0.5)


@dataclass
class Producer:
    store: JobStore
    publisher: Publisher
    clock: Clock
    default_max_delay_s: float

    def enqueue(self, task: LLMTask | dict[str, Any]) -> JobHandle:
        return self.enqueue_many([task])[0]

    def enqueue_many(self, tasks: Iterable[LLMTask | dict[str, Any]]) -> list[JobHandle]:
        """All-or-nothing validation, one transaction for the rows, one connection to publish."""
        validated: list[LLMTask] = []
        for index, raw in enumerate(tasks):
            try:
                validated.append(validate_task(raw))
            except TaskValidationError as exc:
                raise TaskValidationError(exc.problems, index=index) from None
        if not validated:
            return []
        now = self.clock.now()
        jobs = [
            NewJob(
                id=new_job_id(),
                task=t,
                lane=t.lane,
                deadline=t.resolve_deadline(now=now, default_max_delay_s=self.default_max_delay_s),
                created_at=now,
            )
            for t in validated
        ]
        records = self.store.insert_jobs(jobs)
        fresh = [r for r in records if r.created]
        dispatches = [Dispatch(job_id=r.id, queue=QUEUE_FOR_LANE[r.lane]) for r in fresh]
        if dispatches:
            try:
                self.publisher.publish(dispatches)
            except Exception as exc:
                ids = [d.job_id for d in dispatches]
                self.store.mark_unpublished(ids)
                raise PublishError(
                    f"{len(ids)} job(s) saved as queued but not published "
                    f"({type(exc).__name__}); the watchdog will re-publish them",
                    job_ids=ids,
                ) from exc
        return [JobHandle(job_id=r.id, _store=self.store, created=r.created) for r in records]

    def handle(self, job_id: str) -> JobHandle:
        return JobHandle(job_id=job_id, _store=self.store)


_default: Producer | None = None


def set_default_producer(producer: Producer | None) -> None:
    """Install the producer `enqueue()` uses (the runtime does this; tests may too)."""
    global _default
    _default = producer


def default_producer() -> Producer:
    global _default
    if _default is None:
        # Imported here so `lanes` stays importable without Celery or SQL drivers.
        from workers.runtime import build_producer

        _default = build_producer()
    return _default


def enqueue(task: LLMTask | dict[str, Any]) -> JobHandle:
    return default_producer().enqueue(task)


def enqueue_many(tasks: Sequence[LLMTask | dict[str, Any]]) -> list[JobHandle]:
    return default_producer().enqueue_many(tasks)


def get_job(job_id: str) -> JobHandle:
    return default_producer().handle(job_id)
