"""Reports over the ledger: spend, savings against list price, cache hit ratio, batch share,
escalations — per feature and overall. Plain data out; rendering lives in the CLI."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from storage.models import Call, Escalation


@dataclass
class Slice:
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    batch_calls: int = 0
    cost_usd: Decimal = Decimal(0)
    list_cost_usd: Decimal = Decimal(0)

    @property
    def savings_usd(self) -> Decimal:
        return self.list_cost_usd - self.cost_usd

    @property
    def savings_ratio(self) -> float:
        return float(self.savings_usd / self.list_cost_usd) if self.list_cost_usd else 0.0

    @property
    def cache_hit_ratio(self) -> float:
        return self.cached_input_tokens / self.input_tokens if self.input_tokens else 0.0

    @property
    def batch_share(self) -> float:
        return self.batch_calls / self.calls if self.calls else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = str(self.cost_usd)
        data["list_cost_usd"] = str(self.list_cost_usd)
        data.update(
            savings_usd=str(self.savings_usd),
            savings_ratio=round(self.savings_ratio, 4),
            cache_hit_ratio=round(self.cache_hit_ratio, 4),
            batch_share=round(self.batch_share, 4),
        )
        return data


@dataclass
class Summary:
    total: Slice = field(default_factory=Slice)
    by_feature: dict[str, Slice] = field(default_factory=dict)
    by_lane: dict[str, Slice] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    """Escalation reason -> count."""

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total.to_json(),
            "by_feature": {k: v.to_json() for k, v in sorted(self.by_feature.items())},
            "by_lane": {k: v.to_json() for k, v in sorted(self.by_lane.items())},
            "escalations": dict(sorted(self.escalations.items())),
        }


def summarize(engine: Engine, *, since: datetime | None = None) -> Summary:
    """Aggregated in SQL (GROUP BY feature, lane), so it stays cheap on a large ledger."""
    stmt = select(
        Call.feature,
        Call.lane,
        Call.status,
        func.count(),
        func.sum(Call.input_tokens),
        func.sum(Call.cached_input_tokens),
        func.sum(Call.cache_write_tokens),
        func.sum(Call.output_tokens),
        func.sum(Call.cost_usd),
        func.sum(Call.list_cost_usd),
    ).group_by(Call.feature, Call.lane, Call.status)
    esc = select(Escalation.reason, func.count()).group_by(Escalation.reason)
    if since is not None:
        stmt = stmt.where(Call.created_at >= since)  # type: ignore[operator]
        esc = esc.where(Escalation.created_at >= since)  # type: ignore[operator]
    summary = Summary()
    feats: dict[str, Slice] = defaultdict(Slice)
    lanes: dict[str, Slice] = defaultdict(Slice)
    with Session(engine) as session:
        for feature, lane, status, n, inp, cached, writes, out, cost, listed in session.execute(
            stmt
        ):
            for target in (summary.total, feats[feature], lanes[lane]):
                target.calls += n
                target.errors += n if status != "ok" else 0
                target.input_tokens += int(inp or 0)
                target.cached_input_tokens += int(cached or 0)
                target.cache_write_tokens += int(writes or 0)
                target.output_tokens += int(out or 0)
                target.batch_calls += n if lane == "batch" else 0
                target.cost_usd += Decimal(cost or 0)
                target.list_cost_usd += Decimal(listed or 0)
        summary.escalations = {reason: n for reason, n in session.execute(esc)}
    summary.by_feature = dict(feats)
    summary.by_lane = dict(lanes)
    return summary


@dataclass
class CascadeSummary:
    """Where cascade jobs ended and why they escalated, for "of N requests, X stayed cheap"."""

    jobs: int = 0
    answered_by_tier: dict[str, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    """`from->to:reason` -> count."""
    discarded_cost_usd: Decimal = Decimal(0)

    def sentence(self) -> str:
        if not self.jobs:
            return "no cascade traffic in this window"
        parts = [f"of {self.jobs} requests"]
        parts += [f"{n} answered on {tier}" for tier, n in sorted(self.answered_by_tier.items())]
        reasons: dict[str, int] = defaultdict(int)
        for key, n in self.escalations.items():
            reasons[key.split(":", 1)[1]] += n
        if reasons:
            why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
            parts.append(f"{sum(reasons.values())} escalations because: {why}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "answered_by_tier": self.answered_by_tier,
            "escalations": self.escalations,
            "discarded_cost_usd": str(self.discarded_cost_usd),
            "sentence": self.sentence(),
        }


def cascade_summary(engine: Engine, *, since: datetime | None = None) -> CascadeSummary:
    answered = (
        select(Call.tier, func.count())
        .where(Call.outcome == "accepted", Call.tier.is_not(None))
        .group_by(Call.tier)
    )
    esc = select(
        Escalation.from_tier,
        Escalation.to_tier,
        Escalation.reason,
        func.count(),
        func.sum(Escalation.discarded_cost_usd),
    ).group_by(Escalation.from_tier, Escalation.to_tier, Escalation.reason)
    if since is not None:
        answered = answered.where(Call.created_at >= since)
        esc = esc.where(Escalation.created_at >= since)
    out = CascadeSummary()
    with Session(engine) as session:
        out.answered_by_tier = {tier: n for tier, n in session.execute(answered)}
        for src, dst, reason, n, cost in session.execute(esc):
            out.escalations[f"{src}->{dst}:{reason}"] = n
            out.discarded_cost_usd += Decimal(cost or 0)
    out.jobs = sum(out.answered_by_tier.values())
    return out
