"""Prompt-cache effectiveness from the ledger: per feature and per static segment.

Caching only saves money when prefixes are re-read before they expire, so the numbers that
matter are how many input tokens were read from the cache and whether the writes (which
cost a premium on Anthropic and GPT-5.6+) are paid back by reads. A segment is identified
by its `name@tag`, so an edited instruction shows up as a new segment instead of quietly
dragging the old one's ratio down.

Aggregation happens in SQL: GROUP BY feature, and GROUP BY the elements of the
`cache_segments` JSON array (`json_each` on SQLite, `json_array_elements_text` on
PostgreSQL); a call is counted once for every segment label it carried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, literal_column, select, true
from sqlalchemy.sql import ColumnElement, Select

from storage.models import Call

_CALLS = Call.__table__  # type: ignore[attr-defined]


@dataclass
class CacheSlice:
    """Cache counters of a set of successful calls (ledger semantics: subsets of input)."""

    calls: int = 0
    calls_with_read: int = 0
    calls_with_write: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_long_tokens: int = 0

    @property
    def hit_ratio(self) -> float:
        """Share of input tokens read from the cache (cached_input_tokens / input_tokens)."""
        return self.cached_input_tokens / self.input_tokens if self.input_tokens else 0.0

    @property
    def call_hit_ratio(self) -> float:
        """Share of calls that read anything from the cache (independent of prompt length)."""
        return self.calls_with_read / self.calls if self.calls else 0.0

    @property
    def read_write_ratio(self) -> float | None:
        """Cached reads per written token; None when nothing was written."""
        if not self.cache_write_tokens:
            return None
        return self.cached_input_tokens / self.cache_write_tokens

    @property
    def writes_exceed_reads(self) -> bool:
        """Paying write premiums that reads do not recover (a prefix that expires unused)."""
        return self.cache_write_tokens > self.cached_input_tokens

    def add_row(self, row: Iterable[Any]) -> None:
        n, reads, writes, inp, cached, written, written_long = (int(v or 0) for v in row)
        self.calls += n
        self.calls_with_read += reads
        self.calls_with_write += writes
        self.input_tokens += inp
        self.cached_input_tokens += cached
        self.cache_write_tokens += written
        self.cache_write_long_tokens += written_long

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        rw = self.read_write_ratio
        data.update(
            hit_ratio=round(self.hit_ratio, 4),
            call_hit_ratio=round(self.call_hit_ratio, 4),
            read_write_ratio=None if rw is None else round(rw, 4),
            writes_exceed_reads=self.writes_exceed_reads,
        )
        return data


@dataclass
class CacheStats:
    since: datetime | None = None
    total: CacheSlice = field(default_factory=CacheSlice)
    by_feature: dict[str, CacheSlice] = field(default_factory=dict)
    by_segment: dict[str, CacheSlice] = field(default_factory=dict)
    """`name@tag` -> counters of every call that carried that static segment."""

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "total": self.total.to_json(),
            "by_feature": {k: v.to_json() for k, v in sorted(self.by_feature.items())},
            "by_segment": {k: v.to_json() for k, v in sorted(self.by_segment.items())},
        }


def _counters() -> list[ColumnElement[Any]]:
    c = _CALLS.c
    return [
        func.count(),
        func.sum(case((c.cached_input_tokens > 0, 1), else_=0)),
        func.sum(case((c.cache_write_tokens > 0, 1), else_=0)),
        func.sum(c.input_tokens),
        func.sum(c.cached_input_tokens),
        func.sum(c.cache_write_tokens),
        func.sum(c.cache_write_long_tokens),
    ]


def _filtered(
    stmt: Select[Any],
    *,
    since: datetime | None,
    provider: str | None,
    model: str | None,
    feature: str | None,
) -> Select[Any]:
    c = _CALLS.c
    stmt = stmt.where(c.status == "ok")  # failed calls carry no tokens, only noise
    if since is not None:
        stmt = stmt.where(c.created_at >= since)
    if provider is not None:
        stmt = stmt.where(c.provider == provider)
    if model is not None:
        stmt = stmt.where(c.model == model)
    if feature is not None:
        stmt = stmt.where(c.feature == feature)
    return stmt


def _segment_elements(dialect: str) -> Any:
    """A table-valued function yielding one `value` row per label of `cache_segments`."""
    col = _CALLS.c.cache_segments
    if dialect == "sqlite":
        # JSON null (a call without static segments) yields one row whose value is NULL.
        return func.json_each(col).table_valued("value", name="seg")
    if dialect == "postgresql":
        # json_array_elements_text raises on a JSON scalar: feed it [] for those rows.
        arr = case((func.json_typeof(col) == "array", col), else_=literal_column("'[]'::json"))
        return func.json_array_elements_text(arr).table_valued("value", name="seg")
    return None


def cache_stats(
    engine: Engine,
    *,
    since: datetime | None = None,
    provider: str | None = None,
    model: str | None = None,
    feature: str | None = None,
) -> CacheStats:
    """Hit ratios and write/read balance per feature and per static segment since `since`."""
    where = {"since": since, "provider": provider, "model": model, "feature": feature}
    stats = CacheStats(since=since)
    by_feature = _filtered(
        select(_CALLS.c.feature, *_counters()).group_by(_CALLS.c.feature), **where
    )
    with engine.connect() as conn:
        for feature_name, *row in conn.execute(by_feature):
            slice_ = stats.by_feature.setdefault(str(feature_name), CacheSlice())
            slice_.add_row(row)
            stats.total.add_row(row)
        elements = _segment_elements(engine.dialect.name)
        if elements is not None:
            seg = (
                select(elements.c.value, *_counters())
                .select_from(_CALLS.join(elements, true()))
                .where(elements.c.value.is_not(None))
                .group_by(elements.c.value)
            )
            for label, *row in conn.execute(_filtered(seg, **where)):
                stats.by_segment.setdefault(str(label), CacheSlice()).add_row(row)
        else:
            _segments_in_python(conn, stats, where)
    return stats


def _segments_in_python(conn: Any, stats: CacheStats, where: dict[str, Any]) -> None:
    """Portable fallback for engines without JSON table functions (same numbers, slower)."""
    c = _CALLS.c
    stmt = _filtered(
        select(
            c.cache_segments,
            c.cached_input_tokens,
            c.cache_write_tokens,
            c.input_tokens,
            c.cache_write_long_tokens,
        ),
        **where,
    )
    for labels, cached, written, inp, written_long in conn.execute(stmt):
        for label in labels or ():
            row = (1, int(cached > 0), int(written > 0), inp, cached, written, written_long)
            stats.by_segment.setdefault(str(label), CacheSlice()).add_row(row)
