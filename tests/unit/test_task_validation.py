"""Every invalid task is rejected with an error naming each bad field; nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanes.errors import TaskValidationError
from lanes.fakes import MemoryJobStore, MemoryPublisher
from lanes.ports import ManualClock
from lanes.producer import Producer
from lanes.task import LLMTask

# Each corruption breaks exactly one field: (field named in the error, change to the dict).
CORRUPTIONS: dict[str, tuple[str, Any]] = {
    "no_messages": ("messages", lambda d: d.update(messages=[])),
    "bad_role": ("messages.0.role", lambda d: d["messages"][0].update(role="robot")),
    "empty_content": ("messages.0.content", lambda d: d["messages"][0].update(content="")),
    "zero_tokens": ("max_output_tokens", lambda d: d.update(max_output_tokens=0)),
    "huge_tokens": ("max_output_tokens", lambda d: d.update(max_output_tokens=10**9)),
    "bad_lane": ("lane", lambda d: d.update(lane="soon")),
    "bad_feature": ("feature", lambda d: d.update(feature="has spaces")),
    "bad_tenant": ("tenant", lambda d: d.update(tenant="")),
    "bad_provider": ("provider", lambda d: d.update(provider="acme")),
    "unknown_field": ("temperature", lambda d: d.update(temperature=0.3)),
    "metadata_not_json": ("metadata", lambda d: d.update(metadata={"x": object()})),
    "negative_delay": ("max_delay_s", lambda d: d.update(max_delay_s=-5)),
    "naive_deadline": ("deadline", lambda d: d.update(deadline=datetime(2030, 1, 1))),
    "empty_key": ("idempotency_key", lambda d: d.update(idempotency_key="")),
    "schema_without_type": ("json_schema", lambda d: d.update(json_schema={"properties": {}})),
}


def valid_task(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Summarise the attached ticket."}],
        "feature": "support",
        "tenant": "acme",
        "lane": "interactive",
    }
    base.update(overrides)
    return base


def producer() -> tuple[Producer, MemoryJobStore, MemoryPublisher]:
    store, pub = MemoryJobStore(), MemoryPublisher()
    return (
        Producer(store=store, publisher=pub, clock=ManualClock(), default_max_delay_s=3600),
        store,
        pub,
    )


@settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from(sorted(CORRUPTIONS)), min_size=1, max_size=5), st.integers(0, 4))
def test_every_invalid_task_is_rejected_naming_each_field(
    corruptions: set[str], position: int
) -> None:
    bad = valid_task()
    # Emptying the list removes message 0, so its own corruptions cannot be reported then.
    for name in sorted(corruptions, key=lambda n: n == "no_messages"):
        CORRUPTIONS[name][1](bad)
    if "no_messages" in corruptions:
        corruptions = {c for c in corruptions if c not in ("bad_role", "empty_content")}
    tasks: list[Any] = [valid_task() for _ in range(4)]
    tasks.insert(position, bad)
    prod, store, pub = producer()
    with pytest.raises(TaskValidationError) as info:
        prod.enqueue_many(tasks)
    err = info.value
    assert err.index == position
    # Field-level problems are all reported at once (lane/messages breakage can mask the
    # cross-field checks, which only run on a structurally valid task).
    named = {p.field for p in err.problems}
    for name in corruptions:
        field = CORRUPTIONS[name][0]
        assert field in named, f"{field} missing from {err}"
        assert field in str(err)
    assert store.jobs == {} and pub.sent == []


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"lane": "interactive", "max_delay_s": 60}, "max_delay_s", "only deferrable"),
        (
            {
                "lane": "deferrable",
                "max_delay_s": 60,
                "deadline": datetime.now(UTC) + timedelta(hours=2),
            },
            "max_delay_s",
            "not both",
        ),
        (
            {"lane": "deferrable", "deadline": datetime.now(UTC) - timedelta(hours=1)},
            "deadline",
            "past",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "messages",
            "last message",
        ),
        ({"provider": "anthropic", "api": "responses"}, "api", "Anthropic"),
    ],
)
def test_cross_field_rules_name_field_and_reason(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    prod, store, pub = producer()
    with pytest.raises(TaskValidationError) as info:
        prod.enqueue(valid_task(**overrides))
    assert info.value.fields == [field]
    assert reason in str(info.value)
    assert store.jobs == {} and pub.sent == []


@settings(max_examples=100, deadline=None)
@given(
    content=st.text(min_size=1, max_size=200),
    tokens=st.integers(1, 200_000),
    lane=st.sampled_from(["interactive", "deferrable"]),
    feature=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
)
def test_valid_tasks_are_accepted_and_published_once(
    content: str, tokens: int, lane: str, feature: str
) -> None:
    prod, store, pub = producer()
    handle = prod.enqueue(
        valid_task(
            messages=[{"role": "user", "content": content}],
            max_output_tokens=tokens,
            lane=lane,
            feature=feature,
        )
    )
    assert list(store.jobs) == [handle.job_id]
    assert [d.job_id for d in pub.sent] == [handle.job_id]
    assert pub.sent[0].queue == (
        "lanes.interactive" if lane == "interactive" else "lanes.deferrable"
    )


def test_deferrable_deadline_defaults_to_max_delay() -> None:
    clock = ManualClock()
    store, pub = MemoryJobStore(), MemoryPublisher()
    prod = Producer(store=store, publisher=pub, clock=clock, default_max_delay_s=7200)
    h1 = prod.enqueue(valid_task(lane="deferrable"))
    h2 = prod.enqueue(valid_task(lane="deferrable", max_delay_s=60))
    assert store.jobs[h1.job_id].deadline == clock.now() + timedelta(seconds=7200)
    assert store.jobs[h2.job_id].deadline == clock.now() + timedelta(seconds=60)


def test_task_object_raises_the_same_error() -> None:
    with pytest.raises(TaskValidationError) as info:
        LLMTask(messages=[], max_output_tokens=0)
    assert set(info.value.fields) == {"messages", "max_output_tokens"}
