"""Does prompt caching save what `lanes.caching.predicted_savings` says it should?

A support-bot workload: every call carries the same long static header (policies, tools;
>= 4k tokens) and a short dynamic question. It runs through the real request builder, the
SDK adapters and the ledger against an in-process simulator (real prefix cache on a virtual
clock), once per model. Before a share of the calls the simulator clock jumps past every
TTL, so some calls miss and the hit ratio is not trivially 100%.

Per model it prints the measured hit ratio (share of calls that read the prefix), the input
cost with caching (ledger `cost_usd` minus output) and without (ledger `list_cost_usd`, the
same usage priced uncached, minus output), and measured savings divided by the savings
`predicted_savings` gives for that measured hit ratio. Target: within 2% of 1.0.

    python bench/caching.py [--calls 300] [--expiry-rate 0.1] [--header-tokens 4096] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS: tuple[tuple[str, str], ...] = (
    ("openai", "gpt-5.4"),
    ("openai", "gpt-5.6-sol"),
    ("anthropic", "claude-sonnet-5-5"),
)
EXPIRE_ALL_S = 86_401.0
"""Past every TTL in play (OpenAI 24h default retention, 30m breakpoints, Anthropic 5m)."""
MTOK = Decimal(1_000_000)
QUESTIONS = (
    "Where is my order #{n}?",
    "Can I return item {n} after 40 days?",
    "My invoice {n} shows the wrong VAT number.",
    "How do I change the delivery address for parcel {n}?",
    "Is product {n} compatible with the 2026 model?",
)


@dataclass
class ModelResult:
    provider: str
    model: str
    calls: int
    hit_ratio: float
    """Share of calls that read the static prefix from the cache."""
    token_hit_ratio: float
    """cached_input_tokens / input_tokens (what `llm-lanes cache stats` shows first)."""
    input_usd_cached: Decimal
    input_usd_uncached: Decimal
    saved_usd: Decimal
    predicted_saved_usd: Decimal

    @property
    def measured_over_predicted(self) -> float:
        if not self.predicted_saved_usd:
            return float("nan")
        return float(self.saved_usd / self.predicted_saved_usd)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "calls": self.calls,
            "hit_ratio": round(self.hit_ratio, 4),
            "token_hit_ratio": round(self.token_hit_ratio, 4),
            "input_usd_cached": str(self.input_usd_cached),
            "input_usd_uncached": str(self.input_usd_uncached),
            "saved_usd": str(self.saved_usd),
            "saved_fraction_of_input": round(
                float(self.saved_usd / self.input_usd_uncached) if self.input_usd_uncached else 0, 4
            ),
            "predicted_saved_usd": str(self.predicted_saved_usd.quantize(Decimal("1e-10"))),
            "measured_over_predicted": round(self.measured_over_predicted, 4),
        }


def header_text(tokens: int) -> str:
    """Exactly `tokens` simulator tokens (4 characters each) of policy-like text."""
    unit = "Policy 4.2: refunds within 30 days with a receipt; tools: lookup_order, refund. "
    return (unit * (tokens * 4 // len(unit) + 1))[: tokens * 4]


def run_model(
    *,
    sim: Any,
    rt: Any,
    provider: str,
    model: str,
    calls: int,
    expiry_rate: float,
    header: Any,
    rng: random.Random,
    say: Any,
) -> None:
    import lanes
    from workers.requests import RequestBuilder

    builder = RequestBuilder(prices=rt.prices)
    adapter = rt.providers[provider]
    for n in range(calls):
        if n and rng.random() < expiry_rate:
            sim.advance(EXPIRE_ALL_S)
        question = rng.choice(QUESTIONS).format(n=n)
        task = lanes.LLMTask(
            messages=[{"role": "user", "content": question}],
            segments=[header],
            provider=provider,
            model=model,
            max_output_tokens=32,
            feature=f"bench-{model}",
        )
        request = builder.build(task, provider=provider, model=model)
        result = adapter.call(request)
        rt.ledger.record(
            rt.facts(
                provider=provider,
                model=model,
                api=request.api,
                lane="interactive",
                usage=result.usage,
                feature=task.feature,
                cache_segments=request.cache_segments,
            )
        )
        if (n + 1) % 100 == 0:
            say(f"  {provider}/{model}: {n + 1}/{calls} calls")


def measure(*, rt: Any, provider: str, model: str, header: Any, header_tokens: int) -> ModelResult:
    from sqlalchemy import func, select

    from lanes.caching import predicted_savings
    from storage.cache_stats import cache_stats
    from storage.models import Call
    from workers.requests import segment_label

    price = rt.prices.price(provider=provider, model=model)
    stats = cache_stats(rt.engine, provider=provider, model=model)
    seg = stats.by_segment[segment_label(header)]
    with rt.engine.connect() as conn:
        n, cost, listed, inp, out = conn.execute(
            select(
                func.count(),
                func.sum(Call.cost_usd),
                func.sum(Call.list_cost_usd),
                func.sum(Call.input_tokens),
                func.sum(Call.output_tokens),
            ).where(Call.provider == provider, Call.model == model)  # type: ignore[arg-type]
        ).one()
    output_usd = Decimal(out) * price.output / MTOK
    dynamic = (Decimal(inp) - Decimal(header_tokens) * n) / n
    predicted = predicted_savings(
        hit_ratio=seg.call_hit_ratio,
        price=price,
        prefix_tokens=header_tokens,
        dynamic_tokens=int(dynamic),
        ttl="5m" if provider == "anthropic" else "30m",
        output_tokens=int(Decimal(out) / n),
    )
    return ModelResult(
        provider=provider,
        model=model,
        calls=n,
        hit_ratio=seg.call_hit_ratio,
        token_hit_ratio=seg.hit_ratio,
        input_usd_cached=Decimal(cost) - output_usd,
        input_usd_uncached=Decimal(listed) - output_usd,
        saved_usd=Decimal(listed) - Decimal(cost),
        predicted_saved_usd=predicted.saved_usd * n,
    )


class BenchRuntime:
    """The parts of a runtime the bench needs: ledger on a temp SQLite, prices, SDK adapters."""

    def __init__(self, sim: Any, db_path: Path) -> None:
        import anthropic
        import openai

        from lanes.pricing import PriceTable
        from storage.engine import get_engine
        from storage.ledger import CallFacts, Ledger
        from workers.providers.anthropic_adapter import AnthropicProvider
        from workers.providers.openai_adapter import OpenAIProvider

        self.engine = get_engine(f"sqlite:///{db_path}")
        self.prices = PriceTable()
        self.ledger = Ledger(self.engine, self.prices)
        self.facts = CallFacts
        key = "sk-bench-not-a-secret"
        self.providers = {
            "openai": OpenAIProvider(
                name="openai",
                client=openai.OpenAI(api_key=key, base_url=sim.openai_base_url, timeout=30),
            ),
            "anthropic": AnthropicProvider(
                client=anthropic.Anthropic(api_key=key, base_url=sim.anthropic_base_url, timeout=30)
            ),
        }


def render(results: list[ModelResult]) -> str:
    head = (
        f"{'model':<20} {'calls':>5} {'hit':>6} {'input $ cached':>15} {'input $ uncached':>17}"
        f" {'saved':>7} {'measured/predicted':>19}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        saved = float(r.saved_usd / r.input_usd_uncached) if r.input_usd_uncached else 0.0
        lines.append(
            f"{r.model:<20} {r.calls:>5} {r.hit_ratio:>6.1%} {r.input_usd_cached:>15.6f}"
            f" {r.input_usd_uncached:>17.6f} {saved:>7.1%} {r.measured_over_predicted:>19.4f}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per model")
    ap.add_argument("--expiry-rate", type=float, default=0.1, help="share of calls after expiry")
    ap.add_argument("--header-tokens", type=int, default=4096, help="static header length")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.calls < 1 or args.header_tokens < 1024:
        ap.error("--calls must be >= 1 and --header-tokens >= 1024")

    from lanes.caching import PromptSegment
    from workers.simulator.server import SimulatorServer

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    header = PromptSegment(
        name="support-header", text=header_text(args.header_tokens), static=True, version="v3"
    )
    results: list[ModelResult] = []
    with tempfile.TemporaryDirectory(prefix="lanes-cache-bench-") as tmp:
        sim = SimulatorServer(batch=False).start()
        try:
            rt = BenchRuntime(sim, Path(tmp) / "bench.db")
            for provider, model in MODELS:
                say(f"{provider}/{model}: {args.calls} calls, header {args.header_tokens} tokens")
                run_model(
                    sim=sim,
                    rt=rt,
                    provider=provider,
                    model=model,
                    calls=args.calls,
                    expiry_rate=args.expiry_rate,
                    header=header,
                    rng=random.Random(f"{args.seed}-{model}"),
                    say=say,
                )
                results.append(
                    measure(
                        rt=rt,
                        provider=provider,
                        model=model,
                        header=header,
                        header_tokens=args.header_tokens,
                    )
                )
        finally:
            sim.stop()
            from storage.engine import dispose_all

            dispose_all()
    print(render(results))
    worst = max(abs(r.measured_over_predicted - 1.0) for r in results)
    print(
        json.dumps(
            {
                "bench": "caching",
                "calls_per_model": args.calls,
                "header_tokens": args.header_tokens,
                "expiry_rate": args.expiry_rate,
                "models": [r.to_json() for r in results],
                "worst_deviation_from_prediction": round(worst, 4),
                "within_2pct": worst <= 0.02,
            }
        )
    )
    return 0 if worst <= 0.02 else 1


if __name__ == "__main__":
    raise SystemExit(main())
