"""The alert rules, without a database: which segments and budgets raise what."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from lanes.settings import load_settings
from storage.alerts import (
    KIND_LOW_HIT,
    KIND_SPEND_DAILY,
    KIND_SPEND_FEATURE,
    KIND_WRITES_OVER_READS,
    segment_alerts,
    spend_alerts,
)
from storage.cache_stats import CacheSlice

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def sl(calls: int, *, reads: int, inp: int, cached: int, written: int) -> CacheSlice:
    return CacheSlice(
        calls=calls,
        calls_with_read=reads,
        input_tokens=inp,
        cached_input_tokens=cached,
        cache_write_tokens=written,
    )


def test_low_hit_ratio_needs_enough_calls_and_respects_the_metric() -> None:
    s = load_settings(cache_alert_min_calls=10)
    segs = {
        "cold@a": sl(12, reads=2, inp=12_000, cached=2_000, written=10_000),
        "hot@b": sl(12, reads=11, inp=12_000, cached=11_000, written=1_000),
        "young@c": sl(3, reads=0, inp=3_000, cached=0, written=3_000),
    }
    found = {(a.kind, a.key) for a in segment_alerts(segs, s, window="24h")}
    assert found == {
        (KIND_LOW_HIT, "cache_low_hit:cold@a"),
        (KIND_WRITES_OVER_READS, "cache_writes_over_reads:cold@a"),
    }
    # A long dynamic part caps the token ratio; the call ratio judges the prefix alone.
    long_tail = {"p@d": sl(10, reads=9, inp=40_000, cached=9_000, written=1_000)}
    by_tokens = load_settings(cache_alert_min_calls=10, cache_alert_metric="tokens")
    assert [a.kind for a in segment_alerts(long_tail, by_tokens, window="24h")] == [KIND_LOW_HIT]
    assert s.cache_alert_metric == "calls"  # the default judges the prefix alone
    assert segment_alerts(long_tail, s, window="24h") == []


def test_spend_alerts_are_off_by_default_and_keyed_by_day() -> None:
    spent = {"search": Decimal("12.5"), "chat": Decimal("3")}
    assert spend_alerts(spent, load_settings(), now=NOW) == []
    s = load_settings(
        spend_alert_daily_usd=10,
        spend_alert_feature_daily_usd=5,
        spend_alert_feature_limits={"search": 20},
    )
    got = [(a.kind, a.key) for a in spend_alerts(spent, s, now=NOW)]
    assert got == [(KIND_SPEND_DAILY, "spend_daily:2026-11-28")]
    s = load_settings(spend_alert_feature_daily_usd=2, spend_alert_feature_limits={"chat": 4})
    got = [(a.kind, a.key) for a in spend_alerts(spent, s, now=NOW)]
    assert got == [(KIND_SPEND_FEATURE, "spend_feature_daily:search:2026-11-28")]


def test_slice_ratios_and_json() -> None:
    s = sl(4, reads=3, inp=4_000, cached=3_000, written=1_000)
    assert (s.hit_ratio, s.call_hit_ratio, s.read_write_ratio) == (0.75, 0.75, 3.0)
    assert not s.writes_exceed_reads
    assert CacheSlice().to_json()["read_write_ratio"] is None
