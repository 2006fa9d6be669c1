"""Prompt-caching policy: stable prefix, breakpoints, TTL choice and the price math."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanes.caching import (
    PromptSegment,
    ReuseTracker,
    anthropic_breakpoints,
    anthropic_min_cacheable_tokens,
    break_even_hit_ratio,
    canonical_order,
    choose_anthropic_ttl,
    openai_cache_params,
    predicted_savings,
    static_prefix_hash,
    warmup_pays,
)
from lanes.ports import ManualClock
from lanes.pricing import ModelPrice, PriceTable, compute_cost
from lanes.usage import Usage

D = Decimal
PRICES = PriceTable(use_genai_prices=False)
OPUS_5 = PRICES.price(provider="anthropic", model="claude-opus-5")
OPUS_55 = PRICES.price(provider="anthropic", model="claude-opus-5-5")
SOL = PRICES.price(provider="openai", model="gpt-5.6-sol")
MINI = PRICES.price(provider="openai", model="gpt-5.4-mini")


def count_words(text: str) -> int:
    return len(text.split())


def seg(
    name: str, words: int, *, layer: int = 0, static: bool = True, role: str = "system"
) -> PromptSegment:
    return PromptSegment(
        name=name, text=" ".join([name] * words), static=static, layer=layer, role=role
    )  # type: ignore[arg-type]


# --- segments, tags and order -------------------------------------------------------------


def test_changed_text_gets_new_tag_without_version_bump() -> None:
    a = PromptSegment(name="rules", text="Be brief.", static=True, version="v1")
    b = PromptSegment(name="rules", text="Be brief!", static=True, version="v1")
    same = PromptSegment(name="other", text="Be brief.", static=True, version="v1")
    assert a.cache_tag != b.cache_tag
    assert a.cache_tag == same.cache_tag
    assert a.cache_tag.startswith("v1-")
    assert PromptSegment(name="x", text="Be brief.").cache_tag == a.content_hash


def test_canonical_order_static_first_dynamic_kept() -> None:
    q1 = seg("q1", 3, static=False, role="user")
    docs = seg("docs", 5, layer=2)
    tools = seg("tools", 5, layer=0)
    q0 = seg("q0", 3, static=False, role="user")
    policy = seg("policy", 5, layer=1)
    shared_user = seg("a-user-doc", 5, layer=0, role="user")
    order = canonical_order([q1, docs, shared_user, tools, q0, policy])
    assert [s.name for s in order] == ["tools", "policy", "docs", "a-user-doc", "q1", "q0"]


segment_lists = st.lists(
    st.builds(
        PromptSegment,
        name=st.sampled_from(["a", "b", "c", "d"]),
        text=st.text(max_size=20),
        static=st.just(True),
        layer=st.integers(0, 3),
        role=st.sampled_from(["system", "user"]),
    ),
    min_size=1,
    max_size=8,
)


@given(static=segment_lists, seed=st.integers(0, 2**32 - 1))
def test_any_permutation_gives_the_same_prefix(static: list[PromptSegment], seed: int) -> None:
    dynamic = [PromptSegment(name="q", text="question", role="user")]
    shuffled = list(static)
    random.Random(seed).shuffle(shuffled)
    assert static_prefix_hash(static + dynamic) == static_prefix_hash(dynamic + shuffled)
    assert canonical_order(static)[: len(static)] == canonical_order(shuffled)[: len(static)]


def test_prefix_hash_tracks_static_text_only() -> None:
    base = [seg("tools", 5), PromptSegment(name="q", text="one", role="user")]
    other_question = [seg("tools", 5), PromptSegment(name="q", text="two", role="user")]
    edited = [seg("tools", 6), PromptSegment(name="q", text="one", role="user")]
    assert static_prefix_hash(base) == static_prefix_hash(other_question)
    assert static_prefix_hash(base) != static_prefix_hash(edited)


# --- Anthropic breakpoints ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "minimum"),
    [
        ("claude-opus-5-5", 512),
        ("claude-sonnet-5-5", 512),
        ("claude-opus-5", 512),
        ("claude-fable-5-1", 512),
        ("claude-mythos-5", 512),
        ("claude-opus-4-8", 1024),
        ("claude-sonnet-5", 1024),
        ("claude-sonnet-4-5-20250929", 1024),
        ("claude-opus-4-1", 1024),
        ("claude-opus-4-20250514", 1024),
        ("claude-opus-4-7", 2048),
        ("claude-mythos-preview", 2048),
        ("claude-opus-4-6", 4096),
        ("claude-opus-4-5", 4096),
        ("claude-haiku-4-5", 4096),
        ("some-unknown-model", 1024),
    ],
)
def test_min_cacheable_tokens(model: str, minimum: int) -> None:
    assert anthropic_min_cacheable_tokens(model) == minimum


def test_breakpoints_at_layer_ends_above_minimum() -> None:
    segments = [
        seg("tools", 600),
        seg("policy", 600, layer=1),
        seg("q", 100, static=False, role="user"),
    ]
    # cumulative 600 after index 0, 1,200 after index 1
    assert anthropic_breakpoints(segments, model="claude-opus-5-5", token_counter=count_words) == [
        0,
        1,
    ]
    assert anthropic_breakpoints(
        segments, model="claude-sonnet-4-5", token_counter=count_words
    ) == [1]
    assert (
        anthropic_breakpoints(segments, model="claude-haiku-4-5", token_counter=count_words) == []
    )


def test_breakpoints_capped_at_four_longest() -> None:
    segments = [seg(f"l{i}", 600, layer=i) for i in range(6)]
    assert anthropic_breakpoints(segments, model="claude-opus-5", token_counter=count_words) == [
        2,
        3,
        4,
        5,
    ]
    assert anthropic_breakpoints(
        segments, model="claude-opus-5", token_counter=count_words, max_breakpoints=1
    ) == [5]


def test_breakpoints_only_between_layers() -> None:
    segments = [seg("b", 400), seg("a", 400), seg("q", 10, static=False, role="user")]
    # both static segments share layer 0: only the end of the layer qualifies
    assert anthropic_breakpoints(segments, model="claude-opus-5", token_counter=count_words) == [1]


def test_dynamic_system_text_cuts_static_user_text_from_prefix() -> None:
    segments = [
        seg("tools", 600),
        seg("doc", 600, role="user", layer=1),
        seg("today", 5, static=False),
        seg("q", 5, static=False, role="user"),
    ]
    assert anthropic_breakpoints(segments, model="claude-opus-5", token_counter=count_words) == [0]


def test_no_static_no_breakpoints() -> None:
    segments = [seg("q", 5000, static=False, role="user")]
    assert anthropic_breakpoints(segments, model="claude-opus-5", token_counter=count_words) == []
    assert openai_cache_params(segments, model="gpt-5.6-sol") == {}


# --- OpenAI params ------------------------------------------------------------------------


def test_openai_explicit_breakpoints_only_on_56_and_6() -> None:
    segments = [
        seg("tools", 800),
        seg("docs", 800, layer=1),
        seg("q", 5, static=False, role="user"),
    ]
    for model in ("gpt-5.4", "gpt-5.5", "gpt-5.4-mini", "gpt-4o", "gpt-5.60"):
        params = openai_cache_params(segments, model=model)
        assert set(params) == {"prompt_cache_key"}, model
    for model in ("gpt-5.6-sol", "gpt-5.6-luna-2026-06-01", "gpt-6-astra", "gpt-6.1-terra"):
        params = openai_cache_params(segments, model=model, token_counter=count_words)
        # 800 < 1,024 after index 0; 1,600 after index 1
        assert params["breakpoints"] == {1: {"mode": "explicit", "ttl": "30m"}}, model


def test_openai_cache_key_follows_static_prefix() -> None:
    a = [seg("tools", 10), seg("docs", 10, layer=1), seg("q", 3, static=False, role="user")]
    b = [seg("q", 9, static=False, role="user"), seg("docs", 10, layer=1), seg("tools", 10)]
    key_a = openai_cache_params(a, model="gpt-5.4")["prompt_cache_key"]
    assert key_a == openai_cache_params(b, model="gpt-5.4")["prompt_cache_key"]
    assert len(key_a) <= 64
    sharded = openai_cache_params(a, model="gpt-5.4", shard=3)["prompt_cache_key"]
    assert sharded == key_a + "-s3"


# --- TTL and price math -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "for_batch", "expected"),
    [
        (60.0, False, "5m"),
        (200.0, False, "5m"),
        (1200.0, False, "1h"),
        (3000.0, False, "1h"),
        (7200.0, False, "5m"),
        (None, False, "5m"),
        (None, True, "1h"),
        (30.0, True, "1h"),
    ],
)
def test_ttl_choice(interval: float | None, for_batch: bool, expected: str) -> None:
    got = choose_anthropic_ttl(
        observed_reuse_interval_s=interval, for_batch=for_batch, model_price=OPUS_55
    )
    assert got == expected


def test_ttl_stays_5m_when_long_writes_do_not_pay() -> None:
    # 1h write 3x: 3 + 0.1 >= 2 x 1.25, so two 5m writes are cheaper than one 1h write + read
    odd = ModelPrice(
        input=D(1),
        output=D(1),
        cache_read=D("0.1"),
        cache_write_short=D("1.25"),
        cache_write_long=D(3),
    )
    assert (
        choose_anthropic_ttl(observed_reuse_interval_s=1200, for_batch=False, model_price=odd)
        == "5m"
    )


def test_break_even_hit_ratios_match_spec() -> None:
    assert break_even_hit_ratio(SOL, "30m") == pytest.approx(0.25 / 1.15)  # ~22%
    assert break_even_hit_ratio(OPUS_5, "1h") == pytest.approx(1 / 1.9)  # ~53%
    assert break_even_hit_ratio(MINI, "30m") == 0.0


@pytest.mark.parametrize(("lines", "pays"), [(3, False), (4, True), (100, True), (1, False)])
def test_warmup_math(lines: int, pays: bool) -> None:
    # N x 0.5 x (1 - 0.3) x (10 - 0.5)/5 input-units vs one write of 2 units:
    # N=3 -> 1.995 < 2, N=4 -> 2.66 > 2
    assert (
        warmup_pays(
            lines_sharing_prefix=lines,
            prefix_tokens=2000,
            model_price=OPUS_5,
            expected_hit_ratio_without_warmup=0.3,
            ttl="1h",
        )
        is pays
    )


def test_warmup_useless_when_already_hitting() -> None:
    assert not warmup_pays(
        lines_sharing_prefix=10_000,
        prefix_tokens=2000,
        model_price=OPUS_5,
        expected_hit_ratio_without_warmup=1.0,
        ttl="1h",
    )


def test_predicted_savings_by_hand() -> None:
    pred = predicted_savings(
        hit_ratio=0.8, price=SOL, prefix_tokens=10_000, dynamic_tokens=1_000, ttl="30m"
    )
    # with: 10,000 x (0.8 x 0.5 + 0.2 x 6.25) + 1,000 x 5 = 21,500 micro-USD; without: 55,000
    assert pred.usd_with_cache == D("0.0215")
    assert pred.usd_without_cache == D("0.055")
    assert pred.saved_fraction == pytest.approx(1 - 21_500 / 55_000)


@pytest.mark.parametrize("batch", [False, True])
def test_predicted_savings_agrees_with_cost_formula(batch: bool) -> None:
    prefix, dynamic, out = 4_000, 300, 50
    all_hits = Usage(input_tokens=prefix + dynamic, cached_input_tokens=prefix, output_tokens=out)
    all_writes = Usage(
        input_tokens=prefix + dynamic,
        cache_write_tokens=prefix,
        cache_write_long_tokens=prefix,
        output_tokens=out,
    )
    for hit_ratio, usage in ((1.0, all_hits), (0.0, all_writes)):
        pred = predicted_savings(
            hit_ratio=hit_ratio,
            price=OPUS_55,
            prefix_tokens=prefix,
            dynamic_tokens=dynamic,
            ttl="1h",
            output_tokens=out,
            batch=batch,
        )
        assert pred.usd_with_cache == compute_cost(OPUS_55, usage, batch=batch).usd


def test_predicted_savings_zero_at_break_even() -> None:
    h = break_even_hit_ratio(OPUS_5, "5m")
    pred = predicted_savings(
        hit_ratio=h, price=OPUS_5, prefix_tokens=1_000_000, dynamic_tokens=0, ttl="5m"
    )
    assert float(pred.saved_usd) == pytest.approx(0.0, abs=1e-9)
    assert predicted_savings(
        hit_ratio=0.0, price=OPUS_5, prefix_tokens=1000, dynamic_tokens=0, ttl="5m"
    ).saved_fraction == pytest.approx(-0.25)


# --- reuse tracking -----------------------------------------------------------------------


def test_reuse_tracker_intervals() -> None:
    clock = ManualClock()
    tracker = ReuseTracker(clock=clock)
    assert tracker.observe("p") is None
    clock.advance(100)
    assert tracker.observe("p") == pytest.approx(100)
    clock.advance(300)
    assert tracker.observe("p") == pytest.approx(300)
    assert tracker.typical_interval("p") == pytest.approx(200)
    assert tracker.hit_ratio("p", ttl_s=300) == 1.0
    assert tracker.hit_ratio("p", ttl_s=200) == 0.5
    assert tracker.typical_interval("unseen") is None


def test_reuse_tracker_is_bounded() -> None:
    clock = ManualClock()
    tracker = ReuseTracker(clock=clock, max_prefixes=2)
    for name in ("a", "b", "a", "c"):
        clock.advance(10)
        tracker.observe(name)
    assert tracker.typical_interval("a") == pytest.approx(20)
    assert tracker.observe("b") is None  # evicted as least recently used
