"""The deferrable lane in SQL: the durable buffer, batch rows, and line-outcome bookkeeping.

A buffered job keeps its state on its `Job` row (the source of truth) and its ready-made batch
line in a `BatchItem` row (built once by the accumulator with the provider adapter's
`build_body`), so packing a batch only streams text from SQL to a file. Every job move here is
conditional on (state, batch_id), so a job the watchdog promoted meanwhile is left alone.
The line-outcome half (`jobs`, `billed`, `apply`) lives in `batch_outcomes` and the item table
in `batch_items`; both are re-exported here, so callers import the store from one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlmodel import Session

from lanes.flush import BatchCutter, BatchLimits, GroupKey, GroupStats
from lanes.ports import JobState
from storage.batch_items import BatchItem
from storage.batch_outcomes import BatchOutcomes, JobView, LineOps
from storage.models import Batch, Job, to_utc, utcnow

__all__ = ["BatchItem", "JobView", "LineOps", "SqlBatchStore"]

CLAIM_CHUNK = 1000
STREAM_CHUNK = 2000


class SqlBatchStore(BatchOutcomes):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        BatchItem.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]

    # -- accumulator --------------------------------------------------------------------

    def buffer(
        self, job_id: str, *, key: GroupKey, line: str, segments: Sequence[str] = ()
    ) -> bool:
        """Store the line and move the job queued → buffered in one transaction."""
        now = utcnow()
        with Session(self.engine) as session:
            if session.get(BatchItem, job_id) is None:
                session.add(
                    BatchItem(
                        job_id=job_id,
                        provider=key.provider,
                        endpoint=key.endpoint,
                        model=key.model,
                        line=line,
                        bytes=len(line.encode()),
                        buffered_at=now,
                        segments="\n".join(segments) or None,
                    )
                )
                session.flush()
            res = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.QUEUED.value)
                .values(state=JobState.BUFFERED.value, updated_at=now)
            )
            session.commit()
            return res.rowcount == 1  # type: ignore[attr-defined]

    def group_stats(self) -> list[GroupStats]:
        stmt = (
            select(
                BatchItem.provider,
                BatchItem.endpoint,
                BatchItem.model,
                func.count(),
                func.sum(BatchItem.bytes),
                func.min(BatchItem.buffered_at),
                func.min(Job.deadline),
            )
            .join(Job, Job.id == BatchItem.job_id)
            .where(Job.state == JobState.BUFFERED.value)
            .group_by(BatchItem.provider, BatchItem.endpoint, BatchItem.model)
        )
        with Session(self.engine) as session:
            return [
                GroupStats(
                    key=GroupKey(p, e, m),
                    count=int(n),
                    bytes=int(b or 0),
                    oldest_at=to_utc(oldest),  # type: ignore[arg-type]
                    earliest_deadline=to_utc(dl),
                )
                for p, e, m, n, b, oldest, dl in session.execute(stmt)
            ]

    def buffered_ids(self, limit: int) -> list[str]:
        with Session(self.engine) as session:
            stmt = (
                select(Job.id)
                .join(BatchItem, BatchItem.job_id == Job.id)
                .where(Job.state == JobState.BUFFERED.value)
                .limit(limit)
            )
            return [row[0] for row in session.execute(stmt)]

    # -- flush: claim members into a batch row written before any provider call ----------

    def new_batch(
        self, batch_id: str, *, key: GroupKey, reason: str, parent_id: str | None = None
    ) -> Batch:
        now = utcnow()
        row = Batch(
            id=batch_id,
            provider=key.provider,
            endpoint=key.endpoint,
            model=key.model,
            state="submitting",
            reason=reason,
            parent_id=parent_id,
            created_at=now,
            updated_at=now,
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            session.expunge(row)
        return row

    def claim(self, batch_id: str, *, key: GroupKey, limits: BatchLimits) -> tuple[int, int]:
        """Move buffered jobs of `key` (earliest deadline first) into `batch_id`.

        Streams in chunks and stops at the first line that would break a limit, so memory
        holds one chunk of ids whatever the backlog. Returns (jobs, body bytes).
        """
        cutter = BatchCutter(limits, key.provider)
        while cutter.count < limits.max_requests:
            want = min(CLAIM_CHUNK, limits.max_requests - cutter.count)
            with Session(self.engine) as session:
                rows = session.execute(
                    select(Job.id, BatchItem.bytes)
                    .join(BatchItem, BatchItem.job_id == Job.id)
                    .where(
                        Job.state == JobState.BUFFERED.value,
                        BatchItem.provider == key.provider,
                        BatchItem.endpoint == key.endpoint,
                        BatchItem.model == key.model,
                    )
                    .order_by(Job.deadline)  # walks ix_job_state_deadline, no sort
                    .limit(want)
                ).all()
                if not rows:
                    break
                take: list[str] = []
                full = False
                for job_id, size in rows:
                    if not cutter.fits(size):
                        full = True
                        break
                    cutter.add(size)
                    take.append(job_id)
                if take:
                    # One statement per id (executemany): `id = ?` always plans on the primary
                    # key, where `id IN (...) AND state = ?` may scan the whole state index.
                    session.connection().execute(
                        update(Job)
                        .where(Job.id == bindparam("jid"), Job.state == JobState.BUFFERED.value)
                        .values(
                            state=JobState.SUBMITTED.value, batch_id=batch_id, updated_at=utcnow()
                        ),
                        [{"jid": job_id} for job_id in take],
                    )
                session.commit()
            if full or len(rows) < want:
                break
        claimed = self.count_members(batch_id)
        self.update_batch(batch_id, request_count=claimed, bytes=cutter.bytes)
        return claimed, cutter.line_bytes

    def most_shared_prefix(self, batch_id: str) -> tuple[int, str] | None:
        """(members, one member's job id) of the static-segment set most members share."""
        stmt = (
            select(func.count(), func.min(BatchItem.job_id))
            .select_from(BatchItem)
            .join(Job, Job.id == BatchItem.job_id)
            .where(Job.batch_id == batch_id, BatchItem.segments.is_not(None))
            .group_by(BatchItem.segments)
            .order_by(func.count().desc())
            .limit(1)
        )
        with Session(self.engine) as session:
            row = session.execute(stmt).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def count_members(self, batch_id: str) -> int:
        with Session(self.engine) as session:
            stmt = (
                select(Job.state, func.count()).where(Job.batch_id == batch_id).group_by(Job.state)
            )
            return sum(
                int(n) for state, n in session.execute(stmt) if state == JobState.SUBMITTED.value
            )

    def iter_lines(self, batch_id: str) -> Iterator[str]:
        """The member lines of a batch, streamed (`yield_per`).

        Filtered on `batch_id` only in SQL (so the planner takes `ix_job_batch`, not a scan of
        every submitted job) and on state here.
        """
        stmt = (
            select(BatchItem.line, Job.state)
            .join(Job, Job.id == BatchItem.job_id)
            .where(Job.batch_id == batch_id)
            .execution_options(yield_per=STREAM_CHUNK)
        )
        submitted = JobState.SUBMITTED.value
        with Session(self.engine) as session:
            for line, state in session.execute(stmt):
                if state == submitted:
                    yield line

    def member_ids(
        self, batch_id: str, *, states: Sequence[JobState] = (JobState.SUBMITTED,)
    ) -> list[str]:
        wanted = {s.value for s in states}
        with Session(self.engine) as session:
            stmt = select(Job.id, Job.state).where(Job.batch_id == batch_id)
            return sorted(job_id for job_id, state in session.execute(stmt) if state in wanted)

    def move_members(self, ids: Sequence[str], *, src: str, dst: str) -> int:
        """Re-home submitted members of a failed batch into a split child."""
        with Session(self.engine) as session:
            res = session.execute(
                update(Job)
                .where(
                    Job.id.in_(list(ids)),
                    Job.batch_id == src,
                    Job.state == JobState.SUBMITTED.value,
                )
                .values(batch_id=dst, updated_at=utcnow())
            )
            session.commit()
            return int(res.rowcount)  # type: ignore[attr-defined]

    # -- batch rows -----------------------------------------------------------------------

    def get_batch(self, batch_id: str) -> Batch | None:
        with Session(self.engine) as session:
            row = session.get(Batch, batch_id)
            if row is None:
                return None
            session.expunge(row)
            return row

    def find_batch(self, any_id: str) -> Batch | None:
        """By local id or provider batch id (operators paste either)."""
        with Session(self.engine) as session:
            row = (
                session.get(Batch, any_id)
                or session.scalars(select(Batch).where(Batch.provider_batch_id == any_id)).first()
            )
            if row is None:
                return None
            session.expunge(row)
            return row

    def update_batch(
        self, batch_id: str, *, expected_state: str | None = None, **values: Any
    ) -> bool:
        values.setdefault("updated_at", utcnow())
        stmt = update(Batch).where(Batch.id == batch_id)
        if expected_state is not None:
            stmt = stmt.where(Batch.state == expected_state)
        with Session(self.engine) as session:
            res = session.execute(stmt.values(**values))
            session.commit()
            return res.rowcount == 1  # type: ignore[attr-defined]

    def delete_batch(self, batch_id: str) -> None:
        with Session(self.engine) as session:
            session.execute(delete(Batch).where(Batch.id == batch_id))
            session.commit()

    def batches_in(
        self,
        states: Iterable[str],
        *,
        due_before: datetime | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
    ) -> list[Batch]:
        stmt = select(Batch).where(Batch.state.in_(list(states)))
        if due_before is not None:
            stmt = stmt.where((Batch.next_poll_at.is_(None)) | (Batch.next_poll_at <= due_before))
        if updated_before is not None:
            stmt = stmt.where(Batch.updated_at <= updated_before)
        with Session(self.engine) as session:
            out = list(session.scalars(stmt.order_by(Batch.created_at).limit(limit)))
            for row in out:
                session.expunge(row)
            return out

    def known_provider_ids(self, provider: str) -> set[str]:
        with Session(self.engine) as session:
            stmt = select(Batch.provider_batch_id).where(
                Batch.provider == provider, Batch.provider_batch_id.is_not(None)
            )
            return {row[0] for row in session.execute(stmt)}

    def list_batches(self, limit: int = 100) -> list[tuple[Batch, dict[str, int]]]:
        """Newest batches with their members counted by job state."""
        with Session(self.engine) as session:
            rows = list(
                session.scalars(select(Batch).order_by(Batch.created_at.desc()).limit(limit))
            )
            ids = [r.id for r in rows]
            counts: dict[str, dict[str, int]] = {i: {} for i in ids}
            if ids:
                stmt = (
                    select(Job.batch_id, Job.state, func.count())
                    .where(Job.batch_id.in_(ids))
                    .group_by(Job.batch_id, Job.state)
                )
                for bid, state, n in session.execute(stmt):
                    counts[bid][state] = int(n)
            for row in rows:
                session.expunge(row)
            return [(r, counts[r.id]) for r in rows]

    # -- emergency and bulk moves ---------------------------------------------------------

    def promote_buffered(self, ids: Sequence[str]) -> list[str]:
        """Emergency switch: buffered → promoted (conditional), item rows dropped."""
        now = utcnow()
        moved: list[str] = []
        with Session(self.engine) as session:
            for job_id in ids:
                res = session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == JobState.BUFFERED.value)
                    .values(
                        state=JobState.PROMOTED.value,
                        promoted=True,
                        updated_at=now,
                        last_published_at=now,
                    )
                )
                if res.rowcount:  # type: ignore[attr-defined]
                    moved.append(job_id)
            if moved:
                session.execute(delete(BatchItem).where(BatchItem.job_id.in_(moved)))
            session.commit()
        return moved

    def insert_items_raw(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert of ready-made items (benchmarks and bulk loaders)."""
        with Session(self.engine) as session:
            session.execute(insert(BatchItem), list(rows))
            session.commit()
