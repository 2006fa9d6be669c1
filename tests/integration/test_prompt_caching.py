"""The prompt-caching lever end to end: enqueue → real Celery worker → official SDK → simulator
(real prefix cache on a virtual clock) → ledger rows costed to the providers' rules →
per-segment hit ratios and alerts.

Token counts are exact by the simulator's contract (4 characters per token, per block), so
every expected cost below is computed by hand from the price-table row and those counts.
`test_per_segment_hit_ratios` and `test_alert_fires_for_a_segment_with_a_low_hit_ratio` rely
on the realtime lane passing `cache_segments=request.cache_segments` into each ledger
`CallFacts`.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

import lanes
from lanes.caching import PromptSegment
from storage.alerts import KIND_LOW_HIT, KIND_SPEND_FEATURE, KIND_WRITES_OVER_READS, evaluate_alerts
from storage.cache_stats import cache_stats
from storage.models import Alert, Call
from workers.cache_warmup import forget_recent, maybe_warm
from workers.requests import segment_label

pytestmark = pytest.mark.integration

MTOK = Decimal(1_000_000)
TEN_PLACES = Decimal("1e-10")


def text_of(tokens: int, seed: str) -> str:
    """Exactly `tokens` simulator tokens (4 chars each) of text that starts with `seed`."""
    body = (seed + " ") * (tokens * 4 // (len(seed) + 1) + 1)
    return body[: tokens * 4]


def segment(name: str, tokens: int, seed: str, *, version: str | None = None) -> PromptSegment:
    return PromptSegment(name=name, text=text_of(tokens, seed), static=True, version=version)


def toks(text: str) -> int:
    return -(-len(text) // 4)


def ask(
    segments: list[PromptSegment],
    question: str,
    *,
    provider: str,
    model: str,
    api: str | None = None,
    feature: str = "cache-test",
) -> tuple[dict[str, Any], str]:
    task = lanes.LLMTask(
        messages=[{"role": "user", "content": question}],
        segments=segments,
        provider=provider,
        model=model,
        api=api,
        max_output_tokens=16,
        feature=feature,
    )
    handle = lanes.enqueue(task)
    return handle.result(timeout=30), handle.job_id


def row_of(rt: Any, job_id: str) -> Call:
    with Session(rt.engine) as s:
        rows = list(s.exec(select(Call).where(Call.job_id == job_id)))
    assert len(rows) == 1, rows
    return rows[0]


def rows_by_lane(rt: Any, lane: str) -> list[Call]:
    with Session(rt.engine) as s:
        return list(s.exec(select(Call).where(Call.lane == lane).order_by(Call.id)))  # type: ignore[arg-type]


def usd(tokens: int, per_mtok: str) -> Decimal:
    return Decimal(tokens) * Decimal(per_mtok) / MTOK


def assert_cost(row: Call, expected: Decimal) -> None:
    assert Decimal(row.cost_usd).quantize(TEN_PLACES) == expected.quantize(TEN_PLACES)


@pytest.fixture
def wire(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """The JSON bodies the simulator received (path, body), in order."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = simulator.engine.handle

    def handle(request: Any) -> Any:
        if request.method == "POST":
            with contextlib.suppress(ValueError):
                seen.append((request.path, request.json()))
        return original(request)

    monkeypatch.setattr(simulator.engine, "handle", handle)
    return seen


# -- OpenAI ---------------------------------------------------------------------------------


def test_openai_automatic_hits_after_first_call_and_subset_costs(
    sqlite_runtime: Any, celery_worker: Any, wire: list[Any]
) -> None:
    rt = sqlite_runtime
    price = rt.prices.price(provider="openai", model="gpt-5.4")
    assert (price.input, price.cache_read, price.output) == (
        Decimal("2.50"),
        Decimal("0.25"),
        Decimal("15"),
    )
    policy = segment("policy", 1280, "openai refund policy")
    q1, q2 = "Where is my parcel 1?", "Can I return shoes 2?"
    _, job1 = ask([policy], q1, provider="openai", model="gpt-5.4")
    second, job2 = ask([policy], q2, provider="openai", model="gpt-5.4")

    body = wire[-1][1]
    assert body["prompt_cache_key"].startswith("lanes-")
    assert wire[-2][1]["prompt_cache_key"] == body["prompt_cache_key"]
    assert "prompt_cache_breakpoint" not in str(body)  # pre-5.6 models reject it
    assert body["messages"][0] == {"role": "system", "content": policy.text}

    r1, r2 = row_of(rt, job1), row_of(rt, job2)
    assert (r1.input_tokens, r1.cached_input_tokens, r1.cache_write_tokens) == (
        1280 + toks(q1),
        0,
        0,
    )
    # 1,024 + 2 x 128 = 1,280: the whole static prefix, a subset of the prompt tokens.
    assert (r2.input_tokens, r2.cached_input_tokens, r2.cache_write_tokens) == (
        1280 + toks(q2),
        1280,
        0,
    )
    assert second["usage"]["cached_input_tokens"] == 1280
    assert_cost(r1, usd(r1.input_tokens, "2.50") + usd(r1.output_tokens, "15"))
    assert_cost(r2, usd(toks(q2), "2.50") + usd(1280, "0.25") + usd(r2.output_tokens, "15"))
    assert r2.list_cost_usd > r2.cost_usd


def test_gpt56_explicit_breakpoint_writes_at_125x_then_reads(
    sqlite_runtime: Any, celery_worker: Any, wire: list[Any]
) -> None:
    rt = sqlite_runtime
    policy = segment("policy", 1280, "gpt56 policy text")
    q1, q2 = "first question?", "second question?"
    _, job1 = ask([policy], q1, provider="openai", model="gpt-5.6-sol")
    _, job2 = ask([policy], q2, provider="openai", model="gpt-5.6-sol")
    system = wire[-1][1]["messages"][0]["content"]
    assert system == [
        {
            "type": "text",
            "text": policy.text,
            "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "30m"},
        }
    ]
    r1, r2 = row_of(rt, job1), row_of(rt, job2)
    assert (r1.cached_input_tokens, r1.cache_write_tokens) == (0, 1280)
    assert (r2.cached_input_tokens, r2.cache_write_tokens) == (1280, 0)
    # OpenAI subset semantics: uncached = prompt - cached - written; writes 1.25x = $6.25.
    assert_cost(r1, usd(toks(q1), "5.00") + usd(1280, "6.25") + usd(r1.output_tokens, "30"))
    assert_cost(r2, usd(toks(q2), "5.00") + usd(1280, "0.50") + usd(r2.output_tokens, "30"))


def test_openai_below_1024_tokens_never_caches_and_sends_no_breakpoint(
    sqlite_runtime: Any, celery_worker: Any, wire: list[Any]
) -> None:
    rt = sqlite_runtime
    short = segment("short", 1000, "short instructions")
    jobs = [ask([short], f"q{i}?", provider="openai", model="gpt-5.6-sol")[1] for i in range(2)]
    assert all(isinstance(m["content"], str) for m in wire[-1][1]["messages"])
    for job in jobs:
        row = row_of(rt, job)
        assert (row.cached_input_tokens, row.cache_write_tokens) == (0, 0)


# -- Anthropic ------------------------------------------------------------------------------


def test_anthropic_breakpoint_writes_5m_then_reads_at_005x_on_opus_55(
    sqlite_runtime: Any, celery_worker: Any, wire: list[Any]
) -> None:
    rt = sqlite_runtime
    price = rt.prices.price(provider="anthropic", model="claude-opus-5-5")
    assert (price.input, price.cache_read, price.cache_write_short, price.cache_write_long) == (
        Decimal("4"),
        Decimal("0.20"),
        Decimal("5.00"),
        Decimal("8.00"),
    )
    policy = segment("policy", 2048, "anthropic support policy")
    q1, q2 = "How do refunds work?", "And exchanges?"
    _, job1 = ask([policy], q1, provider="anthropic", model="claude-opus-5-5")
    _, job2 = ask([policy], q2, provider="anthropic", model="claude-opus-5-5")
    system = wire[-1][1]["system"]
    assert system == [
        {"type": "text", "text": policy.text, "cache_control": {"type": "ephemeral", "ttl": "5m"}}
    ]
    r1, r2 = row_of(rt, job1), row_of(rt, job2)
    # Ledger keeps subset semantics: input = uncached + read + written (Anthropic's disjoint sum).
    assert (r1.input_tokens, r1.cached_input_tokens, r1.cache_write_tokens) == (
        toks(q1) + 2048,
        0,
        2048,
    )
    assert r1.cache_write_long_tokens == 0
    assert (r2.input_tokens, r2.cached_input_tokens, r2.cache_write_tokens) == (
        toks(q2) + 2048,
        2048,
        0,
    )
    assert_cost(r1, usd(toks(q1), "4") + usd(2048, "5.00") + usd(r1.output_tokens, "20"))
    assert_cost(r2, usd(toks(q2), "4") + usd(2048, "0.20") + usd(r2.output_tokens, "20"))


def test_anthropic_miss_after_5m_ttl_expiry(
    sqlite_runtime: Any, celery_worker: Any, simulator: Any
) -> None:
    rt = sqlite_runtime
    policy = segment("policy", 1024, "ttl policy")
    model = "claude-sonnet-5-5"
    jobs = [ask([policy], "q0?", provider="anthropic", model=model)[1]]
    simulator.advance(240)  # within 5m: a hit, which refreshes the entry
    jobs.append(ask([policy], "q1?", provider="anthropic", model=model)[1])
    simulator.advance(301)  # past 5m since the last hit: expired
    jobs.append(ask([policy], "q2?", provider="anthropic", model=model)[1])
    got = [(r.cached_input_tokens, r.cache_write_tokens) for r in (row_of(rt, j) for j in jobs)]
    assert got == [(0, 1024), (1024, 0), (0, 1024)]


def test_anthropic_1h_warmup_outlives_5m_and_bills_2x(
    sqlite_runtime: Any, celery_worker: Any, simulator: Any, wire: list[Any]
) -> None:
    """The batch warm-up writes with the 1h TTL (2x); a line 30 min later still reads it."""
    rt = sqlite_runtime
    forget_recent()
    policy = segment("policy", 2048, "batch shared header")
    model = "claude-opus-5-5"
    task = lanes.LLMTask(
        messages=[{"role": "user", "content": "line 1"}],
        segments=[policy],
        provider="anthropic",
        model=model,
        lane="deferrable",
        feature="nightly",
    )
    assert maybe_warm(rt, provider="anthropic", model=model, task=task, lines_sharing_prefix=100)
    body = wire[-1][1]
    assert body["max_tokens"] == 1
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    [warm] = rows_by_lane(rt, "warmup")
    assert (warm.feature, warm.cache_write_tokens, warm.cache_write_long_tokens) == (
        "nightly",
        2048,
        2048,
    )
    assert warm.output_tokens <= 1 and warm.cache_segments == [segment_label(policy)]
    assert_cost(warm, usd(toks("."), "4") + usd(2048, "8.00") + usd(warm.output_tokens, "20"))
    # Re-warming a live prefix is skipped; one line or a too-short prefix never warms.
    tiny = task.model_copy(update={"segments": [segment("tiny", 100, "tiny")]})
    for again, lines in ((task, 100), (task, 1), (tiny, 500)):
        assert not maybe_warm(
            rt, provider="anthropic", model=model, task=again, lines_sharing_prefix=lines
        )

    simulator.advance(1800)  # a 5m entry would be long gone
    _, job = ask([policy], "line 2?", provider="anthropic", model=model)
    assert row_of(rt, job).cached_input_tokens == 2048
    simulator.advance(3601)
    _, job = ask([policy], "line 3?", provider="anthropic", model=model)
    assert (row_of(rt, job).cached_input_tokens, row_of(rt, job).cache_write_tokens) == (0, 2048)


def test_changed_static_segment_is_a_miss(sqlite_runtime: Any, celery_worker: Any) -> None:
    rt = sqlite_runtime
    v1 = segment("policy", 1024, "policy edition one", version="v1")
    v2 = segment("policy", 1024, "policy edition two", version="v1")  # edited, same version
    assert segment_label(v1) != segment_label(v2)
    model = "claude-sonnet-5-5"
    jobs = [
        ask([seg], f"q{i}?", provider="anthropic", model=model)[1]
        for i, seg in enumerate([v1, v1, v2, v2])
    ]
    got = [(r.cached_input_tokens, r.cache_write_tokens) for r in (row_of(rt, j) for j in jobs)]
    assert got == [(0, 1024), (1024, 0), (0, 1024), (1024, 0)]


def test_no_breakpoint_below_the_models_minimum(
    sqlite_runtime: Any, celery_worker: Any, wire: list[Any]
) -> None:
    rt = sqlite_runtime
    policy = segment("policy", 2000, "haiku policy")  # haiku-4-5 caches from 4,096 tokens
    jobs = [
        ask([policy], f"q{i}?", provider="anthropic", model="claude-haiku-4-5")[1] for i in range(2)
    ]
    assert "cache_control" not in str(wire[-1][1])
    for job in jobs:
        row = row_of(rt, job)
        assert (row.cached_input_tokens, row.cache_write_tokens) == (0, 0)


def test_ledger_costs_exact_on_both_engines(lane_runtime: Any, celery_worker: Any) -> None:
    rt = lane_runtime
    policy = segment("policy", 1536, "both engines policy")
    q1, q2 = "engine question one?", "engine question two?"
    _, a1 = ask([policy], q1, provider="anthropic", model="claude-opus-5-5")
    _, a2 = ask([policy], q2, provider="anthropic", model="claude-opus-5-5")
    _, o1 = ask([policy], q1, provider="openai", model="gpt-5.4")
    _, o2 = ask([policy], q2, provider="openai", model="gpt-5.4")
    ra1, ra2, ro1, ro2 = (row_of(rt, j) for j in (a1, a2, o1, o2))
    assert_cost(ra1, usd(toks(q1), "4") + usd(1536, "5.00") + usd(ra1.output_tokens, "20"))
    assert_cost(ra2, usd(toks(q2), "4") + usd(1536, "0.20") + usd(ra2.output_tokens, "20"))
    assert ro2.cached_input_tokens == 1536  # 1,024 + 4 x 128
    assert_cost(ro1, usd(ro1.input_tokens, "2.50") + usd(ro1.output_tokens, "15"))
    assert_cost(ro2, usd(toks(q2), "2.50") + usd(1536, "0.25") + usd(ro2.output_tokens, "15"))
    for row in (ra1, ra2, ro1, ro2):
        assert row.list_cost_usd >= row.cost_usd or row.cache_write_tokens


# -- measurement and alerts (need cache_segments on realtime ledger rows) -------------------


def test_per_segment_hit_ratios(sqlite_runtime: Any, celery_worker: Any, simulator: Any) -> None:
    rt = sqlite_runtime
    tools = PromptSegment(name="tools", text=text_of(600, "tool list"), static=True, layer=0)
    faq = PromptSegment(name="faq", text=text_of(600, "faq"), static=True, layer=1)
    model = "claude-sonnet-5-5"
    for i in range(3):
        ask([tools, faq], f"support {i}?", provider="anthropic", model=model, feature="support")
    simulator.advance(400)  # everything expires
    ask([tools], "sales 0?", provider="anthropic", model=model, feature="sales")

    with Session(rt.engine) as s:
        rows = list(s.exec(select(Call)))
    stats = cache_stats(rt.engine)
    lt, lf = segment_label(tools), segment_label(faq)
    assert set(stats.by_segment) == {lt, lf}
    for label in (lt, lf):
        carried = [r for r in rows if label in (r.cache_segments or [])]
        got = stats.by_segment[label]
        assert got.calls == len(carried)
        assert got.cached_input_tokens == sum(r.cached_input_tokens for r in carried)
        assert got.input_tokens == sum(r.input_tokens for r in carried)
        assert got.hit_ratio == pytest.approx(got.cached_input_tokens / got.input_tokens)
    assert (stats.by_segment[lt].calls, stats.by_segment[lf].calls) == (4, 3)
    assert stats.by_segment[lf].calls_with_read == 2
    assert stats.by_segment[lt].call_hit_ratio == pytest.approx(2 / 4)
    assert stats.by_feature["sales"].cached_input_tokens == 0
    assert stats.total.calls == 4
    assert stats.to_json()["by_segment"][lf]["calls"] == 3


def test_alert_fires_for_a_segment_with_a_low_hit_ratio(
    sqlite_runtime: Any, celery_worker: Any, simulator: Any
) -> None:
    rt = sqlite_runtime
    rt.settings = rt.settings.model_copy(
        update={"cache_alert_min_calls": 3, "cache_alert_min_hit_ratio": 0.5}
    )
    cold = segment("cold", 1024, "rarely reused prefix")
    warm = segment("warm", 1024, "often reused prefix")
    model = "claude-sonnet-5-5"
    for i in range(3):  # cold: every call comes after the 5m TTL ran out
        ask([cold], f"cold {i}?", provider="anthropic", model=model)
        simulator.advance(301)
    for i in range(4):  # warm: one write, then reads
        ask([warm], f"warm {i}?", provider="anthropic", model=model)

    raised = evaluate_alerts(rt, force=True)
    keys = {a.key for a in raised}
    assert f"{KIND_LOW_HIT}:{segment_label(cold)}" in keys
    assert f"{KIND_WRITES_OVER_READS}:{segment_label(cold)}" in keys
    assert not any(segment_label(warm) in k for k in keys)
    assert evaluate_alerts(rt, force=True) == []  # cooldown: no second alert
    with Session(rt.engine) as s:
        assert len(list(s.exec(select(Alert)))) == len(raised)


def test_spend_alert_per_feature_through_the_watchdog(
    sqlite_runtime: Any, celery_worker: Any
) -> None:
    from workers.watchdog import sweep

    rt = sqlite_runtime
    rt.settings = rt.settings.model_copy(update={"spend_alert_feature_limits": {"pricey": 1e-6}})
    ask([segment("p", 1024, "pricey")], "q?", provider="openai", model="gpt-5.4", feature="pricey")
    ask([segment("c", 1024, "cheap")], "q?", provider="openai", model="gpt-5.4", feature="cheap")
    sweep(rt)
    with Session(rt.engine) as s:
        alerts = list(s.exec(select(Alert)))
    assert [(a.kind, a.key.split(":")[1]) for a in alerts] == [(KIND_SPEND_FEATURE, "pricey")]
    assert alerts[0].value > alerts[0].threshold == pytest.approx(1e-6)
    assert "sk-" not in alerts[0].message


def test_sparse_reuse_moves_the_realtime_lane_to_the_1h_ttl(
    sqlite_runtime: Any, celery_worker: Any, simulator: Any, wire: list[Any]
) -> None:
    """Reuse every 20 minutes: a 5m entry dies between calls, so after observing the interval
    the lane writes with the 1h TTL (Opus 5.5: 8 + 0.2 < 2 x 5), and the next call hits."""
    from lanes.caching import ReuseTracker
    from lanes.clock import ManualClock
    from workers.requests import RequestBuilder

    rt = sqlite_runtime
    clock = ManualClock()  # the worker's reuse tracker, moved in step with the simulator
    rt.__dict__["requests"] = RequestBuilder(prices=rt.prices, tracker=ReuseTracker(clock=clock))
    policy = segment("policy", 1024, "sparse policy")
    jobs = []
    for i in range(3):
        jobs.append(ask([policy], f"q{i}?", provider="anthropic", model="claude-opus-5-5")[1])
        clock.advance(1200)
        simulator.advance(1200)
    ttls = [
        block["cache_control"]["ttl"]
        for path, body in wire
        if path == "/v1/messages"
        for block in body.get("system", [])
        if "cache_control" in block
    ]
    assert ttls == ["5m", "1h", "1h"]
    rows = [row_of(rt, j) for j in jobs]
    assert (rows[0].cache_write_tokens, rows[0].cache_write_long_tokens) == (1024, 0)
    assert (rows[1].cached_input_tokens, rows[1].cache_write_long_tokens) == (0, 1024)
    assert (rows[2].cached_input_tokens, rows[2].cache_write_tokens) == (1024, 0)
