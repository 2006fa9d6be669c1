"""Jobs in SQL: inserts, reads and every state change as a conditional update.

`UPDATE ... WHERE state IN (expected)` makes redelivered or duplicated messages harmless: the
second worker's update matches no row, so the first result wins and nothing is done twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lanes.ports import JobRecord, JobState, NewJob
from lanes.task import Lane, LLMTask
from storage.models import Job, to_utc, utcnow

NON_FINAL = (
    JobState.QUEUED,
    JobState.BUFFERED,
    JobState.SUBMITTED,
    JobState.PROMOTED,
    JobState.RUNNING,
)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: str
    task: LLMTask
    promoted: bool
    attempts: int
    """Attempts including this one."""
    lane: Lane


def _record(job: Job, *, created: bool = True) -> JobRecord:
    return JobRecord(
        id=job.id,
        state=JobState(job.state),
        lane=Lane(job.lane),
        created_at=to_utc(job.created_at),  # type: ignore[arg-type]
        deadline=to_utc(job.deadline),
        result=job.result,
        error=job.error,
        created=created,
    )


class SqlJobStore:
    """The `lanes.ports.JobStore` over SQLAlchemy, plus the worker-side transitions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- producer side ---------------------------------------------------------------------

    def insert_jobs(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        for attempt in range(3):
            try:
                return self._insert(jobs)
            except IntegrityError:
                # Another producer inserted one of our idempotency keys meanwhile: re-read.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _insert(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        keys = [j.task.idempotency_key for j in jobs if j.task.idempotency_key]
        with Session(self.engine) as session:
            existing: dict[str, Job] = {}
            if keys:
                rows = session.exec(select(Job).where(Job.idempotency_key.in_(keys)))  # type: ignore[call-overload, union-attr]
                existing = {row.idempotency_key: row for (row,) in rows}
            out: list[JobRecord] = []
            rows_to_insert: list[dict[str, Any]] = []
            first_for_key: dict[str, JobRecord] = {}
            for job in jobs:
                key = job.task.idempotency_key
                if key and key in existing:
                    out.append(_record(existing[key], created=False))
                    continue
                if key and key in first_for_key:
                    out.append(_replace_created(first_for_key[key]))
                    continue
                created = to_utc(job.created_at)
                rows_to_insert.append(
                    {
                        "id": job.id,
                        "state": JobState.QUEUED.value,
                        "lane": job.lane.value,
                        "feature": job.task.feature,
                        "tenant": job.task.tenant,
                        "idempotency_key": key,
                        "payload": job.task.model_dump(mode="json"),
                        "deadline": to_utc(job.deadline),
                        "created_at": created,
                        "updated_at": created,
                        "last_published_at": created,
                        "publish_count": 1,
                    }
                )
                record = JobRecord(
                    id=job.id,
                    state=JobState.QUEUED,
                    lane=job.lane,
                    created_at=job.created_at,
                    deadline=job.deadline,
                )
                if key:
                    first_for_key[key] = record
                out.append(record)
            if rows_to_insert:
                session.execute(insert(Job), rows_to_insert)
            session.commit()
            return out

    def get_job(self, job_id: str) -> JobRecord | None:
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            return None if job is None else _record(job)

    def mark_unpublished(self, job_ids: Sequence[str]) -> None:
        self._update(job_ids, {"last_published_at": None})

    def mark_published(self, job_ids: Sequence[str], *, now: datetime | None = None) -> None:
        when = now or utcnow()
        with Session(self.engine) as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(list(job_ids)))  # type: ignore[attr-defined]
                .values(last_published_at=when, publish_count=Job.publish_count + 1)
            )
            session.commit()

    # -- worker side -----------------------------------------------------------------------

    def load(self, job_id: str) -> tuple[Job, LLMTask] | None:
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            if job is None:
                return None
            session.expunge(job)
        return job, LLMTask.model_validate(job.payload)

    def transition(
        self,
        job_id: str,
        *,
        expected: Iterable[JobState],
        to: JobState,
        **values: Any,
    ) -> bool:
        """Move one job from any `expected` state to `to`; False if it was elsewhere."""
        now = utcnow()
        values.setdefault("updated_at", now)
        if to.final:
            values.setdefault("finished_at", now)
        # Core connection, not an ORM session: this is on every job's hot path.
        with self.engine.begin() as conn:
            res = conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.state.in_([s.value for s in expected]))  # type: ignore[attr-defined]
                .values(state=to.value, **values)
            )
            return res.rowcount == 1  # type: ignore[attr-defined]

    def claim(self, job_id: str) -> ClaimedJob | None:
        """Claim a queued/promoted job for running and load its task, in one round trip.

        `UPDATE ... RETURNING` keeps the hot path of the realtime lane to a single statement;
        None means another copy of the message got there first (or the job is final).
        """
        now = utcnow()
        stmt = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.state.in_([JobState.QUEUED.value, JobState.PROMOTED.value]),
            )
            .values(
                state=JobState.RUNNING.value,
                started_at=now,
                updated_at=now,
                attempts=Job.attempts + 1,
            )
            .returning(Job.payload, Job.promoted, Job.attempts, Job.lane)
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        payload, promoted, attempts, lane = row
        return ClaimedJob(
            id=job_id,
            task=LLMTask.model_validate(payload),
            promoted=bool(promoted),
            attempts=int(attempts),
            lane=Lane(lane),
        )

    def claim_for_run(self, job_id: str) -> bool:
        return self.transition(
            job_id,
            expected=(JobState.QUEUED, JobState.PROMOTED),
            to=JobState.RUNNING,
            started_at=utcnow(),
            attempts=Job.attempts + 1,
        )

    def complete(
        self,
        job_id: str,
        result: dict[str, Any],
        *,
        expected: Iterable[JobState] = (JobState.RUNNING,),
    ) -> bool:
        return self.transition(
            job_id, expected=expected, to=JobState.DONE, result=result, error=None
        )

    def fail(self, job_id: str, reason: str, *, expected: Iterable[JobState] = NON_FINAL) -> bool:
        return self.transition(job_id, expected=expected, to=JobState.FAILED, error=reason[:2000])

    def release(self, job_id: str, *, reason: str) -> bool:
        """Give a running job back to the queue (retryable failure); keeps the last error."""
        return self.transition(
            job_id,
            expected=(JobState.RUNNING,),
            to=JobState.QUEUED,
            error=reason[:2000],
            last_published_at=utcnow(),
        )

    # -- watchdog queries ----------------------------------------------------------------

    def due_for_republish(self, *, older_than: timedelta, limit: int = 500) -> list[Job]:
        """Queued/promoted jobs whose message may be lost (publish failed or Redis restarted)."""
        cutoff = utcnow() - older_than
        with Session(self.engine) as session:
            stmt = (
                select(Job)
                .where(
                    Job.state.in_([JobState.QUEUED.value, JobState.PROMOTED.value]),  # type: ignore[attr-defined]
                    (Job.last_published_at.is_(None)) | (Job.last_published_at < cutoff),  # type: ignore[union-attr, operator]
                )
                .limit(limit)
            )
            return [row for (row,) in session.execute(stmt)]

    def stale_running(self, *, older_than: timedelta, limit: int = 500) -> list[Job]:
        cutoff = utcnow() - older_than
        with Session(self.engine) as session:
            stmt = (
                select(Job)
                .where(Job.state == JobState.RUNNING.value, Job.started_at < cutoff)  # type: ignore[operator]
                .limit(limit)
            )
            return [row for (row,) in session.execute(stmt)]

    def near_deadline(self, *, within: timedelta, limit: int = 500) -> list[Job]:
        """Deferrable jobs not yet running whose deadline falls inside `within` from now."""
        cutoff = utcnow() + within
        states = [JobState.QUEUED.value, JobState.BUFFERED.value, JobState.SUBMITTED.value]
        with Session(self.engine) as session:
            stmt = (
                select(Job)
                .where(
                    Job.lane == Lane.DEFERRABLE.value,
                    Job.state.in_(states),  # type: ignore[attr-defined]
                    Job.deadline < cutoff,  # type: ignore[operator]
                )
                .order_by(Job.deadline)  # type: ignore[arg-type]
                .limit(limit)
            )
            return [row for (row,) in session.execute(stmt)]

    def count_by_state(self) -> dict[str, int]:
        from sqlalchemy import func

        with Session(self.engine) as session:
            rows = session.execute(
                select(Job.lane, Job.state, func.count()).group_by(Job.lane, Job.state)
            )
            return {f"{lane}:{state}": n for lane, state, n in rows}

    def _update(self, job_ids: Sequence[str], values: dict[str, Any]) -> None:
        with Session(self.engine) as session:
            session.execute(update(Job).where(Job.id.in_(list(job_ids))).values(**values))  # type: ignore[attr-defined]
            session.commit()


def _replace_created(record: JobRecord) -> JobRecord:
    from dataclasses import replace

    return replace(record, created=False)
