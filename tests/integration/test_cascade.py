"""The tiered cascade end to end: real worker, official SDKs, simulator scripted per model.

Ladder: cheap (openai gpt-5.4-nano) -> mid (openai gpt-5.4-mini) -> top (openai gpt-5.4).
Each test scripts the cheap model to fail one way and checks the answer, the escalation audit
rows and the ledger rows of every attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

import lanes
from lanes.settings import load_settings
from storage.models import Call, Escalation, ShadowSample
from tests.conftest import _sim_settings
from workers.runtime import Runtime, set_runtime

pytestmark = pytest.mark.integration

LADDER = [
    {"name": "cheap", "provider": "openai", "model": "gpt-5.4-nano", "max_output_tokens": 256},
    {"name": "mid", "provider": "openai", "model": "gpt-5.4-mini", "max_output_tokens": 512},
    {"name": "top", "provider": "openai", "model": "gpt-5.4", "max_output_tokens": 1024},
]
HOOKS = "tests.integration.cascade_hooks"


@pytest.fixture
def make_rt(
    tmp_path, celery_app_configured, celery_worker, simulator, redis_url
) -> Iterator[Callable[..., Runtime]]:  # type: ignore[no-untyped-def]
    """A runtime with the ladder configured (plus overrides), installed for the worker too."""
    import redis

    from lanes import names

    client = redis.Redis.from_url(redis_url)
    client.delete(*names.ALL_QUEUES)
    client.close()
    simulator.reset()

    def make(**overrides: Any) -> Runtime:
        settings = load_settings(
            redis_url=redis_url,
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            **{**_sim_settings(simulator), "tiers": json.dumps(LADDER), **overrides},
        )
        rt = Runtime(settings=settings, app=celery_app_configured)
        set_runtime(rt)
        return rt

    yield make
    set_runtime(None)


def ask(content: str, **kw: Any) -> dict[str, Any]:
    return lanes.enqueue(
        {"messages": [{"role": "user", "content": content}], "feature": "helpdesk", **kw}
    ).result(timeout=60)


def rows(rt: Runtime, model: type) -> list[Any]:
    with Session(rt.engine) as s:
        return list(s.exec(select(model).order_by(model.id)))  # type: ignore[attr-defined]


def test_simple_question_stays_on_the_cheap_tier(make_rt) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt()
    result = ask("What are your opening hours?")
    assert result["provenance"]["tier"] == "cheap"
    assert result["provenance"]["escalations"] == 0
    (call,) = rows(rt, Call)
    assert (call.tier, call.model, call.outcome, call.lane) == (
        "cheap",
        "gpt-5.4-nano",
        "accepted",
        "interactive",
    )
    assert rows(rt, Escalation) == []


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"behaviour": "truncate"}, "truncated"),
        ({"behaviour": "refuse"}, "refusal"),
        ({"behaviour": "empty"}, "empty"),
        ({"behaviour": "error", "status": 500}, "error"),
    ],
)
def test_each_failed_check_escalates_one_rung_with_an_audit_row(
    make_rt, simulator, rule, reason
) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt(provider_max_retries=0)
    simulator.add_script({"model": "gpt-5.4-nano", **rule})
    result = ask("Where is my parcel?")
    assert result["provenance"]["tier"] == "mid"
    assert result["provenance"]["escalations"] == 1
    calls = rows(rt, Call)
    assert [(c.tier, c.outcome) for c in calls] == [("cheap", "escalated"), ("mid", "accepted")]
    (esc,) = rows(rt, Escalation)
    assert (esc.from_tier, esc.to_tier, esc.reason, esc.feature) == (
        "cheap",
        "mid",
        reason,
        "helpdesk",
    )
    assert esc.discarded_cost_usd == calls[0].cost_usd
    if reason == "error":
        assert calls[0].status == "error" and calls[0].cost_usd == 0
    else:
        assert calls[0].cost_usd > 0  # the discarded attempt was billed and is accounted for
    assert Decimal(result["cost_usd"]) == calls[0].cost_usd + calls[1].cost_usd


def test_escalates_all_the_way_and_accepts_the_top_answer(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt()
    simulator.add_script({"model": "gpt-5.4-nano", "behaviour": "truncate"})
    simulator.add_script({"model": "gpt-5.4-mini", "behaviour": "refuse"})
    result = ask("Explain the warranty terms")
    assert result["provenance"]["tier"] == "top"
    assert [(e.from_tier, e.to_tier, e.reason) for e in rows(rt, Escalation)] == [
        ("cheap", "mid", "truncated"),
        ("mid", "top", "refusal"),
    ]


def test_answer_failing_the_requested_json_schema_escalates(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt()
    simulator.add_script(
        {"model": "gpt-5.4-nano", "behaviour": "text", "text": "sure, here: {oops"}
    )
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    result = ask("Give me the refund status as JSON", json_schema=schema)
    assert result["provenance"]["tier"] == "mid"
    assert isinstance(json.loads(result["text"]), dict)
    assert [e.reason for e in rows(rt, Escalation)] == ["schema"]


def test_low_logprob_confidence_escalates(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt(cascade_min_mean_logprob=-1.0)
    simulator.add_script({"model": "gpt-5.4-nano", "behaviour": "low_logprobs"})
    assert ask("Is this covered?")["provenance"]["tier"] == "mid"
    assert [e.reason for e in rows(rt, Escalation)] == ["low_confidence"]


def test_verifier_on_another_tier_can_reject_the_cheap_answer(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt(cascade_verifier_tier="top")
    simulator.add_script(
        {
            "model": "gpt-5.4",
            "contains": "Proposed answer",
            "behaviour": "text",
            "text": "NO, it misses the return window.",
        }
    )
    result = ask("Can I return shoes after 40 days?")
    # cheap rejected by the verifier, then mid rejected as well, so the answer comes from top.
    assert result["provenance"]["tier"] == "top"
    assert [e.reason for e in rows(rt, Escalation)] == ["verifier", "verifier"]
    assert sum(1 for c in rows(rt, Call) if c.outcome == "verifier") == 2


def test_user_hook_rejects_a_draft(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt(cascade_acceptance_hook=f"{HOOKS}:reject_drafts")
    simulator.add_script({"model": "gpt-5.4-nano", "behaviour": "text", "text": "DRAFT maybe"})
    assert ask("Summarise my order")["provenance"]["tier"] == "mid"
    (esc,) = rows(rt, Escalation)
    assert (esc.reason, esc.detail) == ("user_hook", "answer is only a draft")


def test_moderation_hook_runs_on_every_tier_alike(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt(cascade_rollout_percent=0, moderation_hook=f"{HOOKS}:block_forbidden")
    simulator.add_script({"model": "gpt-5.4", "behaviour": "text", "text": "FORBIDDEN words"})
    assert rt.cascade is not None
    with pytest.raises(lanes.JobFailedError, match="moderation"):
        ask("Tell me something")  # outside the rollout: top tier only, blocked there too
    rt2 = make_rt(moderation_hook=f"{HOOKS}:block_forbidden")
    simulator.add_script({"model": "gpt-5.4-nano", "behaviour": "text", "text": "FORBIDDEN too"})
    assert ask("Tell me more")["provenance"]["tier"] == "mid"
    assert [e.reason for e in rows(rt2, Escalation)] == ["moderation"]


def test_rollout_percentage_splits_traffic_stably(make_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.cascade_config import in_rollout

    rt = make_rt(cascade_rollout_percent=50)
    handles = lanes.enqueue_many(
        [{"messages": [{"role": "user", "content": f"hi {i}"}]} for i in range(24)]
    )
    tiers = {h.job_id: h.result(timeout=60)["provenance"]["tier"] for h in handles}
    for job_id, tier in tiers.items():
        assert tier == ("cheap" if in_rollout(job_id, 50) else "top")
    assert {"cheap", "top"} <= set(tiers.values())
    assert rows(rt, Escalation) == []


def test_shadow_mode_answers_with_default_and_logs_both(make_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.shadow import shadow_export_lines

    rt = make_rt(cascade_shadow=True)
    result = ask("What is the delivery time to Oslo?")
    assert result["provenance"]["tier"] == "top"
    calls = rows(rt, Call)
    assert sorted((c.tier, c.lane, c.outcome) for c in calls) == [
        ("cheap", "shadow", "shadow"),
        ("top", "interactive", "accepted"),
    ]
    (sample,) = rows(rt, ShadowSample)
    assert [a["tier"] for a in sample.attempts] == ["top", "cheap"]
    line = json.loads(shadow_export_lines(rt.engine)[0])
    assert line["prompt"].endswith("What is the delivery time to Oslo?")
    assert {a["model"] for a in line["attempts"]} == {"gpt-5.4", "gpt-5.4-nano"}


def test_explicit_model_bypasses_the_cascade(make_rt) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt()
    result = ask("hello", model="gpt-5.4")
    assert result["provenance"]["tier"] is None
    assert [c.outcome for c in rows(rt, Call)] == [None]


def test_report_says_where_requests_ended_and_why(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    from storage.reports import cascade_summary

    rt = make_rt()
    simulator.add_script({"model": "gpt-5.4-nano", "contains": "hard", "behaviour": "truncate"})
    handles = lanes.enqueue_many(
        [{"messages": [{"role": "user", "content": f"easy question {i}"}]} for i in range(6)]
        + [{"messages": [{"role": "user", "content": f"hard question {i}"}]} for i in range(2)]
    )
    for h in handles:
        h.result(timeout=60)
    summary = cascade_summary(rt.engine)
    assert summary.jobs == 8
    assert summary.answered_by_tier == {"cheap": 6, "mid": 2}
    assert summary.escalations == {"cheap->mid:truncated": 2}
    assert summary.discarded_cost_usd > 0
    assert summary.sentence().startswith("of 8 requests; 6 answered on cheap; 2 answered on mid")


def test_agreement_verifier_keeps_matching_answers_and_escalates_others(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    """The mode `llm-lanes replay` measured on RouterBench: a second cheap model answers the
    same task; the cheap answer stands only when both give the same (extracted) answer."""
    rt = make_rt(
        cascade_verifier_tier="mid",
        cascade_verifier_mode="agree",
        cascade_answer_formats=json.dumps({"quiz": "choice"}),
    )
    simulator.add_script(
        {"model": "gpt-5.4-nano", "contains": "Q1", "behaviour": "text", "text": "B"}
    )
    simulator.add_script(
        {"model": "gpt-5.4-mini", "contains": "Q1", "behaviour": "text", "text": "(B)"}
    )
    simulator.add_script(
        {"model": "gpt-5.4-nano", "contains": "Q2", "behaviour": "text", "text": "A"}
    )
    simulator.add_script(
        {"model": "gpt-5.4-mini", "contains": "Q2", "behaviour": "text", "text": "C"}
    )
    assert ask("Q1: pick one of A-D", feature="quiz")["provenance"]["tier"] == "cheap"
    assert ask("Q2: pick one of A-D", feature="quiz")["provenance"]["tier"] != "cheap"
    (esc,) = rows(rt, Escalation)
    assert (esc.reason, esc.detail) == ("verifier", "mid gave a different answer")


def test_declared_answer_format_is_checked(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    rt = make_rt(cascade_answer_formats=json.dumps({"quiz": "choice"}))
    simulator.add_script(
        {"model": "gpt-5.4-nano", "behaviour": "text", "text": "I think maybe the second"}
    )
    simulator.add_script({"model": "gpt-5.4-mini", "behaviour": "text", "text": "B"})
    assert ask("Which option? A, B, C or D", feature="quiz")["text"] == "B"
    assert [e.reason for e in rows(rt, Escalation)] == ["format"]


def test_a_tier_can_live_on_its_own_openai_compatible_server(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    """E.g. a local vLLM as the cheap tier: the tier's base_url picks the server."""
    ladder = [
        {
            "name": "local",
            "provider": "openai_compatible",
            "model": "llama-local",
            "base_url": simulator.openai_base_url,
        },
        {"name": "top", "provider": "openai", "model": "gpt-5.4"},
    ]
    rt = make_rt(tiers=json.dumps(ladder), openai_compatible_base_url=None)
    result = ask("What is two plus two?")
    assert result["provenance"]["tier"] == "local"
    (call,) = rows(rt, Call)
    assert (call.provider, call.model) == ("openai_compatible", "llama-local")
    assert simulator.requests()[-1]["model"] == "llama-local"


def test_shadow_log_feeds_the_offline_replay(make_rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Shadow mode in production -> `llm-lanes shadow-export` -> `llm-lanes replay`."""
    from lanes.replay import run_replay
    from workers.shadow import shadow_export_lines

    rt = make_rt(cascade_shadow=True)
    handles = lanes.enqueue_many(
        [{"messages": [{"role": "user", "content": f"Question number {i}?"}]} for i in range(40)]
    )
    for h in handles:
        h.result(timeout=60)
    path = tmp_path / "shadow.jsonl"
    path.write_text("".join(line + "\n" for line in shadow_export_lines(rt.engine)))
    report = run_replay(source=path, verifiers=False, folds=2, classifier_steps=50)
    data = report.to_dict()
    text = json.dumps(data)
    assert "gpt-5.4-nano" in text and "gpt-5.4" in text
    assert "always-best" in text and "always-cheap" in text


def test_savings_baseline_is_the_default_tier(make_rt, simulator) -> None:  # type: ignore[no-untyped-def]
    """The ledger's list cost prices the answer on the default tier and counts discarded
    attempts as extra spend, so reported savings include (and are reduced by) the cascade."""
    rt = make_rt()
    simulator.add_script({"model": "gpt-5.4-nano", "contains": "hard", "behaviour": "truncate"})
    ask("easy one")
    ask("hard one")
    calls = rows(rt, Call)
    top = next(t for t in LADDER if t["name"] == "top")
    for c in calls:
        if c.outcome == "escalated":
            assert c.list_cost_usd == 0 and c.cost_usd > 0
        else:
            plain = lanes.usage.Usage(input_tokens=c.input_tokens, output_tokens=c.output_tokens)
            at_top = rt.prices.cost(provider="openai", model=top["model"], usage=plain)
            assert c.list_cost_usd == pytest.approx(Decimal(at_top.usd), abs=Decimal("1e-10"))
            assert c.list_cost_usd > c.cost_usd  # answered on a cheaper tier
    assert [c.outcome for c in calls].count("escalated") == 1
