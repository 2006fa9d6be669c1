"""Ports between the pure policies and the processes: job store, publisher, clock.

`lanes` talks to SQL and Redis only through these Protocols, so application code can import it
without Celery or a database driver and unit tests run on the in-memory fakes in
`lanes.fakes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from lanes.clock import Clock, ManualClock, SystemClock
from lanes.task import Lane, LLMTask

__all__ = [
    "Clock",
    "Dispatch",
    "JobRecord",
    "JobState",
    "JobStore",
    "ManualClock",
    "NewJob",
    "Publisher",
    "SystemClock",
]


class JobState(StrEnum):
    QUEUED = "queued"
    BUFFERED = "buffered"
    SUBMITTED = "submitted"
    PROMOTED = "promoted"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    task: LLMTask
    lane: Lane
    deadline: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    state: JobState
    lane: Lane
    created_at: datetime
    deadline: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created: bool = True
    """False when an idempotency key matched an existing job: nothing new was published."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What a publisher sends: the job id and its queue (the task itself stays in SQL)."""

    job_id: str
    queue: str


class JobStore(Protocol):
    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        """Write all rows in one transaction, or none. Returns records in input order.

        A job whose idempotency key exists already comes back as the existing record with
        `created=False`.
        """

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def mark_unpublished(self, job_ids: Sequence[str]) -> None:
        """Note that publishing failed, so the watchdog re-publishes these first."""


class Publisher(Protocol):
    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """Send every message or raise; partial sends are allowed (duplicates are harmless)."""
