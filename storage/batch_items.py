"""The buffered-line table, on its own so both halves of the deferrable lane's SQL can use it.

`batches` (buffer, claim, stream) and `batch_outcomes` (apply result lines) both read and
delete these rows; keeping the table here lets each import it without importing the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from storage.models import utcnow


class BatchItem(SQLModel, table=True):
    """One buffered job's batch line, grouped by what one provider batch may hold."""

    __tablename__ = "lanes_batch_item"
    __table_args__ = (Index("ix_batch_item_group", "provider", "endpoint", "model"),)

    job_id: str = Field(primary_key=True, max_length=32)
    provider: str = Field(max_length=32)
    endpoint: str = Field(max_length=64)
    model: str = Field(max_length=200)
    line: str = Field(sa_column=Column(Text, nullable=False))
    bytes: int = 0
    buffered_at: datetime = Field(default_factory=utcnow)
    segments: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """Static prompt segments the line carries (`name@tag`, newline-joined), for the ledger."""
