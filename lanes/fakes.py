"""In-memory fakes of the ports, for fast unit tests of the pure policies."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lanes.ports import Dispatch, JobRecord, JobState, NewJob


@dataclass
class MemoryJobStore:
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    unpublished: set[str] = field(default_factory=set)
    fail_insert: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        with self._lock:
            if self.fail_insert:
                raise RuntimeError("store unavailable")
            out: list[JobRecord] = []
            staged: dict[str, JobRecord] = {}
            staged_keys: dict[str, str] = {}
            for job in jobs:
                key = job.task.idempotency_key
                existing_id = key and (self.keys.get(key) or staged_keys.get(key))
                if existing_id:
                    prior = self.jobs.get(existing_id) or staged[existing_id]
                    out.append(replace(prior, created=False))
                    continue
                record = JobRecord(
                    id=job.id,
                    state=JobState.QUEUED,
                    lane=job.lane,
                    created_at=job.created_at,
                    deadline=job.deadline,
                )
                staged[job.id] = record
                if key:
                    staged_keys[key] = job.id
                out.append(record)
            self.jobs.update(staged)
            self.keys.update(staged_keys)
            return out

    def get_job(self, job_id: str) -> JobRecord | None:
        return self.jobs.get(job_id)

    def mark_unpublished(self, job_ids: Sequence[str]) -> None:
        self.unpublished.update(job_ids)

    def set_state(self, job_id: str, state: JobState, **changes: object) -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], state=state, **changes)  # type: ignore[arg-type]


@dataclass
class MemoryPublisher:
    sent: list[Dispatch] = field(default_factory=list)
    fail: bool = False

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        if self.fail:
            raise ConnectionError("broker unavailable")
        self.sent.extend(dispatches)
