"""Alerts: a cached prefix that is not being re-read, and spend over a daily budget.

A static segment with a low hit ratio (or whose cache writes exceed its reads) costs more
than it saves on Anthropic and GPT-5.6+, where writes carry a premium: usually a prefix that
changes every call (a timestamp in the "static" text) or traffic too sparse for the TTL.
Spend alerts catch a runaway feature before the invoice does; they are off unless a budget
is set. Each alert is an `Alert` row plus one warning in the log, raised at most once per
key within the cooldown, so a watchdog tick every few seconds does not flood either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from storage.cache_stats import CacheSlice, cache_stats
from storage.models import Alert, Call

log = logging.getLogger(__name__)

KIND_LOW_HIT = "cache_low_hit"
KIND_WRITES_OVER_READS = "cache_writes_over_reads"
KIND_SPEND_DAILY = "spend_daily"
KIND_SPEND_FEATURE = "spend_feature_daily"
_KEY_MAX = 200


class AlertSettings(Protocol):
    cache_alert_min_hit_ratio: float
    cache_alert_metric: str
    cache_alert_min_calls: int
    cache_alert_window_s: float
    alert_cooldown_s: float
    alert_check_interval_s: float
    spend_alert_daily_usd: float | None
    spend_alert_feature_daily_usd: float | None
    spend_alert_feature_limits: dict[str, float]


class AlertRuntime(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def settings(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class AlertCandidate:
    kind: str
    key: str
    message: str
    value: float
    threshold: float


def segment_alerts(
    by_segment: dict[str, CacheSlice], settings: AlertSettings, *, window: str
) -> list[AlertCandidate]:
    """Low hit ratio and writes-over-reads, for segments with enough calls to judge."""
    found: list[AlertCandidate] = []
    floor = settings.cache_alert_min_hit_ratio
    for label, s in sorted(by_segment.items()):
        if s.calls < settings.cache_alert_min_calls:
            continue
        ratio = s.call_hit_ratio if settings.cache_alert_metric == "calls" else s.hit_ratio
        if ratio < floor:
            found.append(
                AlertCandidate(
                    kind=KIND_LOW_HIT,
                    key=f"{KIND_LOW_HIT}:{label}"[:_KEY_MAX],
                    message=(
                        f"static segment {label}: cache hit ratio {ratio:.1%} "
                        f"({settings.cache_alert_metric}) below {floor:.0%} over "
                        f"{s.calls} calls in the last {window}"
                    ),
                    value=ratio,
                    threshold=floor,
                )
            )
        if s.writes_exceed_reads:
            found.append(
                AlertCandidate(
                    kind=KIND_WRITES_OVER_READS,
                    key=f"{KIND_WRITES_OVER_READS}:{label}"[:_KEY_MAX],
                    message=(
                        f"static segment {label}: {s.cache_write_tokens} tokens written to "
                        f"the cache but only {s.cached_input_tokens} read back over {s.calls} "
                        f"calls in the last {window} (write premiums not recovered)"
                    ),
                    value=float(s.cache_write_tokens),
                    threshold=float(s.cached_input_tokens),
                )
            )
    return found


def spend_today(engine: Engine, *, now: datetime) -> dict[str, Decimal]:
    """USD spent per feature since 00:00 UTC today (failed calls included: they cost 0)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stmt = (
        select(Call.feature, func.sum(Call.cost_usd))
        .where(Call.created_at >= midnight)  # type: ignore[arg-type]
        .group_by(Call.feature)
    )
    with Session(engine) as session:
        return {str(f): Decimal(total or 0) for f, total in session.execute(stmt)}


def spend_alerts(
    per_feature: dict[str, Decimal], settings: AlertSettings, *, now: datetime
) -> list[AlertCandidate]:
    """Today's total and per-feature spend against the budgets that are set."""
    day = now.astimezone(UTC).date().isoformat()
    found: list[AlertCandidate] = []
    total = sum(per_feature.values(), Decimal(0))
    budget = settings.spend_alert_daily_usd
    if budget is not None and total > Decimal(str(budget)):
        found.append(
            AlertCandidate(
                kind=KIND_SPEND_DAILY,
                key=f"{KIND_SPEND_DAILY}:{day}",
                message=f"spend today ({day} UTC) is ${total:.4f}, over the ${budget} budget",
                value=float(total),
                threshold=float(budget),
            )
        )
    for feature, spent in sorted(per_feature.items()):
        limit = settings.spend_alert_feature_limits.get(
            feature, settings.spend_alert_feature_daily_usd
        )
        if limit is None or spent <= Decimal(str(limit)):
            continue
        found.append(
            AlertCandidate(
                kind=KIND_SPEND_FEATURE,
                key=f"{KIND_SPEND_FEATURE}:{feature}:{day}"[:_KEY_MAX],
                message=(
                    f"feature {feature}: spend today ({day} UTC) is ${spent:.4f}, "
                    f"over the ${limit} budget"
                ),
                value=float(spent),
                threshold=float(limit),
            )
        )
    return found


def raise_alerts(
    engine: Engine,
    candidates: Sequence[AlertCandidate],
    *,
    cooldown: timedelta,
    now: datetime,
) -> list[Alert]:
    """Insert the candidates whose key was not raised within the cooldown; log each one."""
    if not candidates:
        return []
    keys = {c.key for c in candidates}
    with Session(engine) as session:
        recent = select(Alert.key).where(
            Alert.key.in_(keys),  # type: ignore[attr-defined]
            Alert.created_at >= now - cooldown,  # type: ignore[arg-type]
        )
        seen = set(session.execute(recent).scalars())
        rows = []
        for c in candidates:
            if c.key in seen:
                continue
            seen.add(c.key)
            rows.append(
                Alert(
                    created_at=now,
                    kind=c.kind,
                    key=c.key,
                    message=c.message,
                    value=c.value,
                    threshold=c.threshold,
                )
            )
        session.add_all(rows)
        session.commit()
        for row in rows:
            session.refresh(row)
            session.expunge(row)
    for row in rows:
        log.warning("alert %s: %s", row.kind, row.message)
    return rows


_last_run: dict[str, float] = {}
_last_lock = threading.Lock()


def _due(engine: Engine, interval_s: float) -> bool:
    """At most one evaluation per interval per database in this process."""
    key = engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    with _last_lock:
        last = _last_run.get(key)
        if last is not None and now - last < interval_s:
            return False
        _last_run[key] = now
        return True


def evaluate_alerts(
    rt: AlertRuntime, *, now: datetime | None = None, force: bool = False
) -> list[Alert]:
    """Evaluate every alert rule and record the new ones. Never raises.

    Called at the end of each watchdog sweep; throttled to `alert_check_interval_s` unless
    `force`. A failure is logged and yields no alerts: alerting must not break the sweep.
    """
    try:
        settings: AlertSettings = rt.settings
        engine = rt.engine
        if not force and not _due(engine, settings.alert_check_interval_s):
            return []
        now = now or datetime.now(UTC)
        window = timedelta(seconds=settings.cache_alert_window_s)
        stats = cache_stats(engine, since=now - window)
        candidates = segment_alerts(stats.by_segment, settings, window=_human(window))
        if (
            settings.spend_alert_daily_usd is not None
            or settings.spend_alert_feature_daily_usd is not None
            or settings.spend_alert_feature_limits
        ):
            candidates += spend_alerts(spend_today(engine, now=now), settings, now=now)
        return raise_alerts(
            engine, candidates, cooldown=timedelta(seconds=settings.alert_cooldown_s), now=now
        )
    except Exception as exc:  # alerting is advisory; the sweep must go on
        log.error("alert evaluation failed: %s: %s", type(exc).__name__, str(exc)[:300])
        return []


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
