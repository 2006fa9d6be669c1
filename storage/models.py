"""SQLModel tables. Timestamps are timezone-aware UTC (sqlmodel refuses naive ones)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Index, Numeric
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_utc(value: datetime | None) -> datetime | None:
    """Aware UTC; a naive value (SQLite read-back) is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Job(SQLModel, table=True):
    __tablename__ = "lanes_job"
    __table_args__ = (
        Index("ix_job_state_deadline", "state", "deadline"),
        Index("ix_job_state_published", "state", "last_published_at"),
        Index("ix_job_batch", "batch_id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16)
    lane: str = Field(max_length=16)
    feature: str = Field(default="default", max_length=64)
    tenant: str | None = Field(default=None, max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=200, unique=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    deadline: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_published_at: datetime | None = None
    publish_count: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    promoted: bool = False
    batch_id: str | None = Field(default=None, max_length=64)
    batch_attempts: int = 0
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None


class Call(SQLModel, table=True):
    """One row per provider call (or per batch line): the cost ledger."""

    __tablename__ = "lanes_call"
    __table_args__ = (
        Index("ix_call_created", "created_at"),
        Index("ix_call_feature", "feature", "created_at"),
        Index("ix_call_job", "job_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    provider: str = Field(max_length=32)
    model: str = Field(max_length=200)
    api: str = Field(default="chat", max_length=16)
    lane: str = Field(max_length=16)
    """How it was served: interactive, deferrable (batch), promoted, shadow."""
    tier: str | None = Field(default=None, max_length=64)
    feature: str = Field(default="default", max_length=64)
    tenant: str | None = Field(default=None, max_length=64)
    batch_id: str | None = Field(default=None, max_length=64)
    attempt: int = 1
    status: str = Field(default="ok", max_length=16)
    error_kind: str | None = Field(default=None, max_length=64)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_long_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(18, 10), nullable=False))
    list_cost_usd: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(18, 10), nullable=False)
    )
    """What the same tokens cost at the realtime price with no cache: the savings baseline."""
    price_version: str = Field(default="", max_length=64)
    request_id: str | None = Field(default=None, max_length=128)
    outcome: str | None = Field(default=None, max_length=16)
    """Cascade role of the call: accepted, escalated, shadow, verifier (None: no cascade)."""
    cache_segments: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """Tags of the static prompt segments the call carried (cache hit ratio per segment)."""


class Escalation(SQLModel, table=True):
    __tablename__ = "lanes_escalation"
    __table_args__ = (Index("ix_escalation_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=32, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    feature: str = Field(default="default", max_length=64)
    from_tier: str = Field(max_length=64)
    to_tier: str = Field(max_length=64)
    reason: str = Field(max_length=32)
    detail: str | None = None
    discarded_cost_usd: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(18, 10), nullable=False)
    )


class Batch(SQLModel, table=True):
    """One provider batch. Written before the provider call, reconciled after it."""

    __tablename__ = "lanes_batch"
    __table_args__ = (Index("ix_batch_state", "state", "next_poll_at"),)

    id: str = Field(primary_key=True, max_length=64)
    provider: str = Field(max_length=32)
    endpoint: str = Field(max_length=64)
    model: str = Field(max_length=200)
    state: str = Field(max_length=16)
    provider_batch_id: str | None = Field(default=None, max_length=128, unique=True)
    input_file_id: str | None = Field(default=None, max_length=128)
    output_file_id: str | None = Field(default=None, max_length=128)
    error_file_id: str | None = Field(default=None, max_length=128)
    provider_status: str | None = Field(default=None, max_length=32)
    request_count: int = 0
    bytes: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None
    ended_at: datetime | None = None
    ingested_at: datetime | None = None
    next_poll_at: datetime | None = None
    poll_count: int = 0
    error: str | None = None
    counts: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # -- added by the deferrable lane (additive) --
    updated_at: datetime = Field(default_factory=utcnow)
    reason: str | None = Field(default=None, max_length=32)
    """Why the group was flushed (full-requests, full-bytes, age, deadline, split, forced)."""
    parent_id: str | None = Field(default=None, max_length=64)
    """The failed batch this one was split from."""
    submit_attempts: int = 0
    cancel_requested: bool = False


class ShadowSample(SQLModel, table=True):
    """Shadow mode: the default tier answered, the routed cheap tier ran alongside; both kept
    here so `llm-lanes replay` can compare them offline."""

    __tablename__ = "lanes_shadow_sample"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=32, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    feature: str = Field(default="default", max_length=64)
    prompt: str
    attempts: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))


class Alert(SQLModel, table=True):
    __tablename__ = "lanes_alert"
    __table_args__ = (Index("ix_alert_key_created", "key", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=32)
    key: str = Field(max_length=200)
    message: str
    value: float = 0.0
    threshold: float = 0.0
