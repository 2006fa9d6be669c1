"""When a buffered group becomes a provider batch, and what to do with lines that come back.

Pure policy (no SQL, no Celery, no network), so every threshold is unit-tested on in-memory
values. A *group* is the set of buffered deferrable tasks sharing (provider, endpoint, model):
providers accept one model and one endpoint per batch.

A group is flushed when any of these holds:
- it fills a batch (the provider's request or byte limit);
- its oldest task has waited `max_wait_s` (latency is bounded even for trickles);
- a member's deadline leaves no room for another wait: deadline - now < turnaround + margin.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from lanes.settings import LanesSettings

# Bytes a line adds beyond its JSON text: "\n" in a JSONL file, "," in Anthropic's array.
LINE_OVERHEAD_BYTES = 1
# Anthropic's inline body wraps the lines in {"requests":[...]}.
BODY_OVERHEAD_BYTES = 16


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GroupKey:
    provider: str
    endpoint: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.endpoint}:{self.model}"


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """A provider's hard limits on one batch."""

    max_requests: int
    max_bytes: int

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1:
            raise ValueError("max_requests and max_bytes: must be >= 1")


@dataclass(frozen=True, slots=True)
class GroupStats:
    """What SQL knows about one group's buffered tasks."""

    key: GroupKey
    count: int
    bytes: int
    oldest_at: datetime
    earliest_deadline: datetime | None = None


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    limits: Mapping[str, BatchLimits]
    """Per provider name; a provider missing here cannot be batched."""
    max_wait_s: float = 600.0
    turnaround_s: float = 4 * 3600.0
    promotion_margin_s: float = 900.0
    min_requests: int = 1

    def limits_for(self, provider: str) -> BatchLimits:
        try:
            return self.limits[provider]
        except KeyError:
            raise ValueError(f"provider {provider!r}: no batch limits (not batchable)") from None

    @property
    def deadline_room(self) -> timedelta:
        return timedelta(seconds=self.turnaround_s + self.promotion_margin_s)


class FlushReason(StrEnum):
    FULL_REQUESTS = "full-requests"
    FULL_BYTES = "full-bytes"
    AGE = "age"
    DEADLINE = "deadline"
    FORCED = "forced"


@dataclass(frozen=True, slots=True)
class FlushDecision:
    key: GroupKey
    reason: FlushReason
    limits: BatchLimits


def batch_body_bytes(line_bytes: int, count: int, *, provider: str) -> int:
    """Bytes on the wire for `count` lines whose JSON texts sum to `line_bytes`."""
    total = line_bytes + count * LINE_OVERHEAD_BYTES
    return total + BODY_OVERHEAD_BYTES if provider == "anthropic" else total


def flush_reason(stats: GroupStats, policy: FlushPolicy, *, now: datetime) -> FlushReason | None:
    """Why this group must be flushed now, or None to keep buffering."""
    if stats.count <= 0:
        return None
    limits = policy.limits_for(stats.key.provider)
    if stats.count >= limits.max_requests:
        return FlushReason.FULL_REQUESTS
    if batch_body_bytes(stats.bytes, stats.count, provider=stats.key.provider) >= limits.max_bytes:
        return FlushReason.FULL_BYTES
    if stats.earliest_deadline is not None and deadline_is_pressing(
        stats.earliest_deadline, policy, now=now
    ):
        return FlushReason.DEADLINE
    if stats.count < policy.min_requests:
        return None
    if (now - stats.oldest_at).total_seconds() >= policy.max_wait_s:
        return FlushReason.AGE
    return None


def deadline_is_pressing(deadline: datetime, policy: FlushPolicy, *, now: datetime) -> bool:
    """True when waiting any longer could make the batch miss this deadline."""
    return deadline - now < policy.deadline_room


def decide(
    groups: Iterable[GroupStats], policy: FlushPolicy, *, now: datetime, force: bool = False
) -> list[FlushDecision]:
    """The groups to flush now, most urgent first (deadline, then fullness, then age)."""
    order = {
        FlushReason.DEADLINE: 0,
        FlushReason.FULL_REQUESTS: 1,
        FlushReason.FULL_BYTES: 1,
        FlushReason.AGE: 2,
        FlushReason.FORCED: 3,
    }
    out: list[tuple[int, datetime, FlushDecision]] = []
    for stats in groups:
        if stats.key.provider not in policy.limits or stats.count <= 0:
            continue
        reason = flush_reason(stats, policy, now=now)
        if reason is None and force:
            reason = FlushReason.FORCED
        if reason is None:
            continue
        decision = FlushDecision(stats.key, reason, policy.limits_for(stats.key.provider))
        out.append((order[reason], stats.oldest_at, decision))
    out.sort(key=lambda item: (item[0], item[1]))
    return [d for _, _, d in out]


@dataclass
class BatchCutter:
    """Packs lines in order until the next one would break the request or byte limit.

    Fed one line size at a time (streamed from SQL), so nothing but two counters is held.
    """

    limits: BatchLimits
    provider: str
    count: int = 0
    line_bytes: int = 0

    def fits(self, size: int) -> bool:
        if self.count >= self.limits.max_requests:
            return False
        after = batch_body_bytes(self.line_bytes + size, self.count + 1, provider=self.provider)
        # A single line larger than the limit still gets a batch of its own (the provider
        # rejects it and the split/fail path reports the reason); never an empty batch.
        return self.count == 0 or after <= self.limits.max_bytes

    def add(self, size: int) -> None:
        self.count += 1
        self.line_bytes += size

    @property
    def bytes(self) -> int:
        return batch_body_bytes(self.line_bytes, self.count, provider=self.provider)


class LineOutcome(StrEnum):
    """Provider-neutral fate of one batch line."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class LineAction(StrEnum):
    COMPLETE = "complete"
    REBATCH = "rebatch"
    PROMOTE = "promote"
    FAIL = "fail"


def line_action(
    outcome: LineOutcome,
    *,
    deadline: datetime | None,
    now: datetime,
    policy: FlushPolicy,
    attempts: int,
    max_retries: int,
    retryable: bool = True,
    batching_disabled: bool = False,
) -> LineAction:
    """What a job whose line came back with `outcome` does next.

    `attempts` counts the earlier failed lines of this job (errors only). Errored lines are
    retried in a later batch up to `max_retries`, unless the error says retrying cannot help
    (a 4xx request error). Lines that never ran (expired, cancelled) cost nothing and are owed
    to the caller: re-batched if the deadline still leaves room, else served in realtime.
    """
    if outcome is LineOutcome.SUCCEEDED:
        return LineAction.COMPLETE
    if outcome is LineOutcome.ERRORED and (not retryable or attempts >= max_retries):
        return LineAction.FAIL
    if batching_disabled:
        return LineAction.PROMOTE
    if deadline is not None and deadline_is_pressing(deadline, policy, now=now):
        return LineAction.PROMOTE
    return LineAction.REBATCH


def retryable_status(status: int | None) -> bool:
    """Server-side trouble (5xx, 408, 409, 429) is worth another batch; request errors are not."""
    if status is None:
        return True
    return status in (408, 409, 429) or status >= 500


def poll_delay_s(poll_count: int, *, min_s: float, max_s: float) -> float:
    """Backoff between polls of one open batch: min, 2·min, 4·min, ... capped at max."""
    if poll_count < 0:
        raise ValueError("poll_count: must be >= 0")
    return float(min(max_s, min_s * (2 ** min(poll_count, 30))))


def split_sizes(count: int, parts: int = 2) -> list[int]:
    """Sizes of the parts a failed batch is split into (halves by default; never empty)."""
    if count < 2:
        return []
    parts = max(2, min(parts, count))
    base, extra = divmod(count, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Fixed-size lists from a stream (bounded memory for long id or result streams)."""
    buf: list[T] = []
    for item in items:
        buf.append(item)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def policy_from_settings(settings: LanesSettings) -> FlushPolicy:
    """The policy the `LLM_LANES_BATCH_*` settings describe."""
    s = settings
    limits = {
        "openai": BatchLimits(s.batch_openai_max_requests, s.batch_openai_max_bytes),
        "azure": BatchLimits(s.batch_azure_max_requests, s.batch_azure_max_bytes),
        "anthropic": BatchLimits(s.batch_anthropic_max_requests, s.batch_anthropic_max_bytes),
    }
    return FlushPolicy(
        limits=limits,
        max_wait_s=s.batch_max_wait_s,
        turnaround_s=s.batch_turnaround_s,
        promotion_margin_s=s.promotion_margin_s,
        min_requests=s.batch_min_requests,
    )
