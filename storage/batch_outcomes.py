"""Line outcomes of the deferrable lane in SQL: what result-line handling reads and writes.

Ingesting a provider batch's results looks up member jobs (`jobs`), skips lines already billed
(`billed`) and applies each chunk's outcomes in one transaction (`apply`). It is split from
`batches` (buffer, claim, batch rows) because it is the one part that bills and finishes jobs;
`SqlBatchStore` inherits it, so callers still see one store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlmodel import Session

from lanes.ports import JobState
from storage.batch_items import BatchItem
from storage.models import Call, Job, to_utc, utcnow


@dataclass(frozen=True, slots=True)
class JobView:
    """The job columns line handling needs (no payload)."""

    id: str
    state: JobState
    batch_id: str | None
    promoted: bool
    feature: str
    tenant: str | None
    deadline: datetime | None
    batch_attempts: int
    segments: tuple[str, ...] = ()


@dataclass
class LineOps:
    """One transaction's worth of line outcomes (see `SqlBatchStore.apply`)."""

    calls: list[Call]
    complete: dict[str, dict[str, Any]]
    """job id -> result payload."""
    rebatch: dict[str, bool]
    """job id -> whether the line errored (counts toward `batch_attempts`)."""
    promote: list[str]
    fail: dict[str, str]
    """job id -> reason."""


class BatchOutcomes:
    """The line-outcome half of `SqlBatchStore` (mixed in; needs only `engine`)."""

    engine: Engine

    def jobs(self, ids: Sequence[str]) -> dict[str, JobView]:
        cols = (
            Job.id,
            Job.state,
            Job.batch_id,
            Job.promoted,
            Job.feature,
            Job.tenant,
            Job.deadline,
            Job.batch_attempts,
            BatchItem.segments,
        )
        stmt = (
            select(*cols)
            .outerjoin(BatchItem, BatchItem.job_id == Job.id)
            .where(Job.id.in_(list(ids)))
        )
        with Session(self.engine) as session:
            return {
                r[0]: JobView(
                    r[0],
                    JobState(r[1]),
                    r[2],
                    bool(r[3]),
                    r[4],
                    r[5],
                    to_utc(r[6]),
                    int(r[7]),
                    tuple(r[8].split("\n")) if r[8] else (),
                )
                for r in session.execute(stmt)
            }

    def billed(self, provider_batch_id: str, ids: Sequence[str]) -> set[str]:
        """Jobs already billed for this provider batch (ingestion re-runs bill nothing twice)."""
        with Session(self.engine) as session:
            stmt = select(Call.job_id).where(
                Call.batch_id == provider_batch_id, Call.job_id.in_(list(ids))
            )
            return {row[0] for row in session.execute(stmt)}

    def apply(self, batch_id: str, ops: LineOps) -> dict[str, set[str]]:
        """Bill and move jobs for one chunk of lines in ONE transaction.

        Each move is conditional on the job still belonging to `batch_id` and being
        `submitted` (or `promoted` but not yet running, for a completion: first result wins).
        Returns the ids actually moved per action.
        """
        done: dict[str, set[str]] = {
            "complete": set(),
            "rebatch": set(),
            "promote": set(),
            "fail": set(),
        }
        now = utcnow()
        mine = (Job.batch_id == batch_id,)
        submitted = Job.state == JobState.SUBMITTED.value
        with Session(self.engine) as session:
            session.add_all(ops.calls)
            for job_id, payload in ops.complete.items():
                res = session.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        *mine,
                        Job.state.in_([JobState.SUBMITTED.value, JobState.PROMOTED.value]),
                    )
                    .values(
                        state=JobState.DONE.value,
                        result=payload,
                        error=None,
                        finished_at=now,
                        updated_at=now,
                    )
                )
                if res.rowcount:  # type: ignore[attr-defined]
                    done["complete"].add(job_id)
            for job_id, errored in ops.rebatch.items():
                values: dict[str, Any] = {
                    "state": JobState.BUFFERED.value,
                    "batch_id": None,
                    "updated_at": now,
                }
                if errored:
                    values["batch_attempts"] = Job.batch_attempts + 1
                res = session.execute(
                    update(Job).where(Job.id == job_id, *mine, submitted).values(**values)
                )
                if res.rowcount:  # type: ignore[attr-defined]
                    done["rebatch"].add(job_id)
            for job_id in ops.promote:
                res = session.execute(
                    update(Job)
                    .where(Job.id == job_id, *mine, submitted)
                    .values(
                        state=JobState.PROMOTED.value,
                        promoted=True,
                        updated_at=now,
                        last_published_at=now,
                    )
                )
                if res.rowcount:  # type: ignore[attr-defined]
                    done["promote"].add(job_id)
            for job_id, reason in ops.fail.items():
                res = session.execute(
                    update(Job)
                    .where(Job.id == job_id, *mine, submitted)
                    .values(
                        state=JobState.FAILED.value,
                        error=reason[:2000],
                        finished_at=now,
                        updated_at=now,
                    )
                )
                if res.rowcount:  # type: ignore[attr-defined]
                    done["fail"].add(job_id)
            gone = done["complete"] | done["promote"] | done["fail"]
            if gone:
                session.execute(delete(BatchItem).where(BatchItem.job_id.in_(list(gone))))
            session.commit()
        return done
