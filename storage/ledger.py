"""The cost ledger: one `Call` row per provider call or batch line, costed at write time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Engine, insert
from sqlmodel import Session

from lanes.usage import Usage
from storage.models import Call, Escalation

log = logging.getLogger(__name__)


class CostLike(Protocol):
    usd: Decimal
    price_version: str


class Prices(Protocol):
    def cost(self, *, provider: str, model: str, usage: Usage, batch: bool = False) -> Any: ...


@dataclass(frozen=True)
class CallFacts:
    provider: str
    model: str
    lane: str
    usage: Usage
    api: str = "chat"
    job_id: str | None = None
    tier: str | None = None
    feature: str = "default"
    tenant: str | None = None
    batch_id: str | None = None
    attempt: int = 1
    status: str = "ok"
    error_kind: str | None = None
    latency_ms: float = 0.0
    request_id: str | None = None
    batch_priced: bool = False
    cache_segments: Sequence[str] | None = None
    outcome: str | None = None
    baseline: tuple[str, str] | None = None
    """(provider, model) the list price is taken at: what the call would cost with no lever
    at all. None: this call's own model. The cascade passes its default tier."""
    extra_spend: bool = False
    """A call that exists only because of a lever (a discarded cascade attempt, a shadow or
    verifier call, a cache warm-up): its list cost is 0, so it counts against the savings."""


class Ledger:
    def __init__(self, engine: Engine, prices: Prices | None) -> None:
        self.engine = engine
        self.prices = prices

    def price(self, facts: CallFacts) -> tuple[Decimal, Decimal, str]:
        """(cost, list cost = realtime price with no cache, price version)."""
        if self.prices is None:
            return Decimal(0), Decimal(0), "unpriced"
        try:
            cost = self.prices.cost(
                provider=facts.provider,
                model=facts.model,
                usage=facts.usage,
                batch=facts.batch_priced,
            )
            plain = Usage(
                input_tokens=facts.usage.input_tokens, output_tokens=facts.usage.output_tokens
            )
            base_provider, base_model = facts.baseline or (facts.provider, facts.model)
            listed_usd = (
                Decimal(0)
                if facts.extra_spend
                else Decimal(
                    self.prices.cost(provider=base_provider, model=base_model, usage=plain).usd
                )
            )
        except Exception as exc:  # unknown model: keep the row, flag it as unpriced
            log.warning("unpriced call %s/%s: %s", facts.provider, facts.model, exc)
            return Decimal(0), Decimal(0), "unpriced"
        return Decimal(cost.usd), listed_usd, str(cost.price_version)

    def row(self, facts: CallFacts) -> Call:
        cost, listed, version = self.price(facts)
        u = facts.usage
        return Call(
            job_id=facts.job_id,
            provider=facts.provider,
            model=facts.model,
            api=facts.api,
            lane=facts.lane,
            tier=facts.tier,
            feature=facts.feature,
            tenant=facts.tenant,
            batch_id=facts.batch_id,
            attempt=facts.attempt,
            status=facts.status,
            error_kind=facts.error_kind,
            input_tokens=u.input_tokens,
            cached_input_tokens=u.cached_input_tokens,
            cache_write_tokens=u.cache_write_tokens,
            cache_write_long_tokens=u.cache_write_long_tokens,
            output_tokens=u.output_tokens,
            latency_ms=facts.latency_ms,
            cost_usd=cost,
            list_cost_usd=listed,
            price_version=version,
            request_id=facts.request_id,
            cache_segments=list(facts.cache_segments) if facts.cache_segments else None,
            outcome=facts.outcome,
        )

    def record(self, facts: CallFacts) -> Call:
        row = self.row(facts)
        values = row.model_dump(exclude={"id"})
        # Core insert: one statement on the hot path instead of add/flush/refresh.
        with self.engine.begin() as conn:
            row.id = conn.execute(insert(Call).values(**values).returning(Call.id)).scalar_one()
        return row

    def record_many(self, facts: Sequence[CallFacts]) -> int:
        rows = [self.row(f) for f in facts]
        with Session(self.engine) as session:
            session.add_all(rows)
            session.commit()
        return len(rows)

    def record_escalation(
        self,
        *,
        job_id: str,
        feature: str,
        from_tier: str,
        to_tier: str,
        reason: str,
        detail: str | None,
        discarded_cost_usd: Decimal,
    ) -> None:
        with Session(self.engine) as session:
            session.add(
                Escalation(
                    job_id=job_id,
                    feature=feature,
                    from_tier=from_tier,
                    to_tier=to_tier,
                    reason=reason,
                    detail=(detail or "")[:1000] or None,
                    discarded_cost_usd=discarded_cost_usd,
                )
            )
            session.commit()
