"""The pure flush policy (lanes/flush.py) on in-memory values and a manual clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanes.clock import ManualClock
from lanes.flush import (
    BatchCutter,
    BatchLimits,
    FlushPolicy,
    FlushReason,
    GroupKey,
    GroupStats,
    LineAction,
    LineOutcome,
    batch_body_bytes,
    chunks,
    decide,
    flush_reason,
    line_action,
    policy_from_settings,
    poll_delay_s,
    retryable_status,
    split_sizes,
)
from lanes.settings import load_settings

OPENAI = GroupKey("openai", "/v1/chat/completions", "gpt-5.4-mini")
CLAUDE = GroupKey("anthropic", "/v1/messages", "claude-haiku-4-5")
POLICY = FlushPolicy(
    limits={"openai": BatchLimits(100, 10_000), "anthropic": BatchLimits(200, 20_000)},
    max_wait_s=600,
    turnaround_s=3600,
    promotion_margin_s=900,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def stats(
    clock: ManualClock,
    key: GroupKey = OPENAI,
    *,
    count: int = 10,
    size: int = 100,
    age_s: float = 0,
    deadline_in_s: float | None = 86_400,
) -> GroupStats:
    now = clock.now()
    return GroupStats(
        key=key,
        count=count,
        bytes=count * size,
        oldest_at=now - timedelta(seconds=age_s),
        earliest_deadline=None if deadline_in_s is None else now + timedelta(seconds=deadline_in_s),
    )


def test_young_small_group_keeps_buffering(clock: ManualClock) -> None:
    assert flush_reason(stats(clock), POLICY, now=clock.now()) is None
    assert decide([stats(clock)], POLICY, now=clock.now()) == []


def test_full_by_requests_and_by_bytes(clock: ManualClock) -> None:
    assert (
        flush_reason(stats(clock, count=100), POLICY, now=clock.now()) is FlushReason.FULL_REQUESTS
    )
    # 50 lines of 199 bytes + 50 newlines = 10,000 bytes: exactly the limit
    assert flush_reason(stats(clock, count=50, size=199), POLICY, now=clock.now()) is (
        FlushReason.FULL_BYTES
    )
    assert flush_reason(stats(clock, count=50, size=198), POLICY, now=clock.now()) is None


def test_age_trigger_follows_the_clock(clock: ManualClock) -> None:
    group = stats(clock)
    clock.advance(599)
    assert flush_reason(group, POLICY, now=clock.now()) is None
    clock.advance(1)
    assert flush_reason(group, POLICY, now=clock.now()) is FlushReason.AGE


def test_deadline_pressure_flushes_even_a_single_young_task(clock: ManualClock) -> None:
    room = POLICY.turnaround_s + POLICY.promotion_margin_s
    assert (
        flush_reason(stats(clock, count=1, deadline_in_s=room + 1), POLICY, now=clock.now()) is None
    )
    assert (
        flush_reason(stats(clock, count=1, deadline_in_s=room - 1), POLICY, now=clock.now())
        is FlushReason.DEADLINE
    )


def test_min_requests_holds_back_age_but_never_deadline(clock: ManualClock) -> None:
    policy = FlushPolicy(limits=POLICY.limits, max_wait_s=600, min_requests=20)
    assert flush_reason(stats(clock, count=5, age_s=10_000), policy, now=clock.now()) is None
    assert flush_reason(stats(clock, count=5, deadline_in_s=60), policy, now=clock.now()) is (
        FlushReason.DEADLINE
    )


def test_decide_orders_by_urgency_and_skips_unbatchable(clock: ManualClock) -> None:
    aged = stats(clock, age_s=700)
    urgent = stats(clock, CLAUDE, deadline_in_s=60)
    compat = stats(clock, GroupKey("openai_compatible", "/v1/chat/completions", "m"), age_s=9e9)
    out = decide([aged, urgent, compat], POLICY, now=clock.now())
    assert [(d.key, d.reason) for d in out] == [
        (CLAUDE, FlushReason.DEADLINE),
        (OPENAI, FlushReason.AGE),
    ]
    assert out[0].limits == POLICY.limits["anthropic"]
    forced = decide([stats(clock)], POLICY, now=clock.now(), force=True)
    assert [d.reason for d in forced] == [FlushReason.FORCED]


def test_cutter_stops_at_either_limit() -> None:
    cutter = BatchCutter(BatchLimits(3, 10_000), "openai")
    for _ in range(3):
        assert cutter.fits(10)
        cutter.add(10)
    assert not cutter.fits(10)  # request limit
    cutter = BatchCutter(BatchLimits(100, 25), "openai")
    cutter.add(10)  # 11 bytes with its newline
    assert cutter.fits(12)  # 11 + 13 = 24
    cutter.add(12)
    assert not cutter.fits(1)  # 24 + 2 = 26 > 25
    assert cutter.bytes == 24


def test_cutter_gives_an_oversized_line_its_own_batch() -> None:
    cutter = BatchCutter(BatchLimits(10, 100), "anthropic")
    assert cutter.fits(1_000)
    cutter.add(1_000)
    assert not cutter.fits(1)


@given(
    st.lists(st.integers(min_value=1, max_value=500), max_size=300),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=600, max_value=20_000),
)
def test_cutter_never_breaks_limits_when_lines_fit(
    sizes: list[int], max_requests: int, max_bytes: int
) -> None:
    cutter = BatchCutter(BatchLimits(max_requests, max_bytes), "openai")
    for size in sizes:
        if not cutter.fits(size):
            break
        cutter.add(size)
    assert cutter.count <= max_requests
    assert cutter.bytes <= max_bytes
    assert cutter.count == min(len(sizes), cutter.count)


def test_anthropic_body_counts_its_envelope() -> None:
    assert (
        batch_body_bytes(100, 2, provider="anthropic")
        == batch_body_bytes(100, 2, provider="openai") + 16
    )


@pytest.mark.parametrize(
    ("outcome", "deadline_in_s", "attempts", "retryable", "disabled", "action"),
    [
        (LineOutcome.SUCCEEDED, 10, 5, False, True, LineAction.COMPLETE),
        (LineOutcome.ERRORED, 86_400, 0, True, False, LineAction.REBATCH),
        (LineOutcome.ERRORED, 86_400, 2, True, False, LineAction.FAIL),
        (LineOutcome.ERRORED, 86_400, 0, False, False, LineAction.FAIL),
        (LineOutcome.ERRORED, 600, 0, True, False, LineAction.PROMOTE),
        (LineOutcome.EXPIRED, 86_400, 9, True, False, LineAction.REBATCH),
        (LineOutcome.EXPIRED, 3_600, 0, True, False, LineAction.PROMOTE),
        (LineOutcome.CANCELLED, 86_400, 0, True, False, LineAction.REBATCH),
        (LineOutcome.CANCELLED, 86_400, 0, True, True, LineAction.PROMOTE),
    ],
)
def test_line_action(
    clock: ManualClock,
    outcome: LineOutcome,
    deadline_in_s: float,
    attempts: int,
    retryable: bool,
    disabled: bool,
    action: LineAction,
) -> None:
    got = line_action(
        outcome,
        deadline=clock.now() + timedelta(seconds=deadline_in_s),
        now=clock.now(),
        policy=POLICY,
        attempts=attempts,
        max_retries=2,
        retryable=retryable,
        batching_disabled=disabled,
    )
    assert got is action


def test_retryable_statuses() -> None:
    assert [retryable_status(s) for s in (None, 500, 529, 429, 408, 409, 400, 401, 404)] == [
        True,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_poll_backoff_doubles_then_caps() -> None:
    assert [poll_delay_s(n, min_s=30, max_s=600) for n in range(7)] == [
        30,
        60,
        120,
        240,
        480,
        600,
        600,
    ]
    assert poll_delay_s(10_000, min_s=30, max_s=600) == 600
    with pytest.raises(ValueError):
        poll_delay_s(-1, min_s=1, max_s=2)


def test_split_sizes() -> None:
    assert split_sizes(1) == [] and split_sizes(0) == []
    assert split_sizes(5) == [3, 2]
    assert split_sizes(7, parts=3) == [3, 2, 2]
    assert sum(split_sizes(50_001)) == 50_001


def test_chunks_stream() -> None:
    assert list(chunks(iter("abcde"), 2)) == [["a", "b"], ["c", "d"], ["e"]]


def test_policy_from_settings_uses_provider_limits() -> None:
    policy = policy_from_settings(load_settings(batch_max_wait_s=42.0))
    assert policy.max_wait_s == 42.0
    assert policy.limits["openai"] == BatchLimits(50_000, 200 * 1024 * 1024)
    assert policy.limits["azure"] == BatchLimits(100_000, 200 * 1024 * 1024)
    assert policy.limits["anthropic"] == BatchLimits(100_000, 256 * 1024 * 1024)
    with pytest.raises(ValueError):
        policy.limits_for("openai_compatible")
