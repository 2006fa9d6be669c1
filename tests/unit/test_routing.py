"""Tier ladder parsing and the router's rules, in their order."""

from __future__ import annotations

import json

import pytest

from lanes.classifier import TextClassifier
from lanes.errors import LanesError, TierConfigError, UnknownTierError
from lanes.routing import Router, RoutingInput, TierLadder, complexity_signals
from lanes.task import LLMTask

LADDER = [
    {
        "name": "cheap",
        "provider": "openai",
        "model": "gpt-mini",
        "max_output_tokens": 512,
        "feature_overrides": {"search": {"max_output_tokens": 50}},
    },
    {
        "name": "local",
        "provider": "openai_compatible",
        "model": "llama",
        "base_url": "http://127.0.0.1:8000/v1",
    },
    {"name": "top", "provider": "anthropic", "model": "claude-big"},
]


@pytest.fixture
def ladder() -> TierLadder:
    return TierLadder.from_json(json.dumps(LADDER))


def test_ladder_order_and_navigation(ladder: TierLadder) -> None:
    assert [t.name for t in ladder] == ["cheap", "local", "top"]
    assert ladder.cheapest.name == "cheap" and ladder.top.name == "top"
    assert ladder.next_above(ladder.cheapest).name == "local"  # type: ignore[union-attr]
    assert ladder.next_above("top") is None
    assert ladder.by_name("local").base_url == "http://127.0.0.1:8000/v1"


def test_feature_overrides(ladder: TierLadder) -> None:
    cheap = ladder.cheapest
    assert cheap.max_output_tokens_for("search") == 50
    assert cheap.max_output_tokens_for("chat") == 512
    assert ladder.top.max_output_tokens_for(None) is None
    assert cheap.model_for("search") == "gpt-mini"


def test_ladder_from_settings_file_shape() -> None:
    assert len(TierLadder.from_data({"tiers": LADDER})) == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("{not json", "tiers: not valid JSON"),
        ("{}", "tiers: must be a JSON list"),
        ("[]", "tiers: the ladder needs at least one tier"),
        ('["cheap"]', "tiers[0]: must be an object"),
        ('[{"provider": "openai", "model": "m"}]', "tiers[0].name"),
        ('[{"name": "a", "provider": "bedrock", "model": "m"}]', "tiers[0].provider"),
        ('[{"name": "a", "provider": "openai"}]', "tiers[0].model"),
        (
            '[{"name": "a", "provider": "openai", "model": "m", "max_output_tokens": 0}]',
            "tiers[0].max_output_tokens",
        ),
        ('[{"name": "a", "provider": "openai_compatible", "model": "m"}]', "tiers[0].base_url"),
        ('[{"name": "a", "provider": "openai", "model": "m", "colour": "red"}]', "tiers[0].colour"),
        (
            '[{"name": "a", "provider": "openai", "model": "m", '
            '"feature_overrides": {"s": {"temperature": 1}}}]',
            "tiers[0].feature_overrides.s.temperature",
        ),
        (
            '[{"name": "a", "provider": "openai", "model": "m"}, '
            '{"name": "a", "provider": "openai", "model": "n"}]',
            "unique",
        ),
    ],
)
def test_ladder_errors_name_the_field(data: str, field: str) -> None:
    with pytest.raises(TierConfigError) as info:
        TierLadder.from_json(data)
    assert field in str(info.value)
    assert isinstance(info.value, LanesError)


def test_unknown_tier_name(ladder: TierLadder) -> None:
    with pytest.raises(UnknownTierError, match="unknown tier 'mid'"):
        ladder.by_name("mid")


# -- router rules ---------------------------------------------------------------------------


def test_default_is_cheapest(ladder: TierLadder) -> None:
    decision = Router(ladder).route(RoutingInput(prompt="What is the capital of France?"))
    assert (decision.tier.name, decision.reason) == ("cheap", "default")


def test_hint_beats_every_other_rule(ladder: TierLadder) -> None:
    router = Router(ladder, feature_tiers={"legal": "top"}, long_prompt_tokens=1)
    d = router.route(RoutingInput(prompt="x" * 100, tier_hint="local", feature="legal"))
    assert (d.tier.name, d.reason) == ("local", "hint")
    with pytest.raises(UnknownTierError):
        router.route(RoutingInput(prompt="x", tier_hint="nope"))


def test_feature_mapping(ladder: TierLadder) -> None:
    router = Router(ladder, feature_tiers={"legal": "top"})
    assert router.route(RoutingInput(prompt="hi", feature="legal")).reason == "feature"
    assert router.route(RoutingInput(prompt="hi", feature="chat")).reason == "default"


def test_long_prompt_goes_up_one_rung_by_default(ladder: TierLadder) -> None:
    router = Router(ladder, long_prompt_tokens=1000)
    assert router.route(RoutingInput(prompt="a" * 3999)).reason == "default"
    d = router.route(RoutingInput(prompt="a" * 4000))
    assert (d.tier.name, d.reason) == ("local", "long_prompt")
    assert router.route(RoutingInput(prompt="a", prompt_tokens=1000)).reason == "long_prompt"


def test_complexity_signals() -> None:
    assert complexity_signals("hi there") == []
    assert complexity_signals("```python\nx = 1\n```") == ["code"]
    assert complexity_signals("Solve 3x + 4 = 19 step by step") == ["math", "multi_step"]
    assert complexity_signals("First read the file, then explain why it fails") == ["multi_step"]
    assert "code" in complexity_signals("def f():\n    return 1")


def test_complexity_rule_needs_enough_signals(ladder: TierLadder) -> None:
    router = Router(ladder, complexity_min_signals=2, complexity_tier="top")
    hard = router.route(RoutingInput(prompt="Prove that 2 + 2 = 4 step by step."))
    assert (hard.tier.name, hard.reason, hard.detail) == ("top", "complexity", "math,multi_step")
    assert router.route(RoutingInput(prompt="Prove it.")).reason == "default"


class FixedProbability:
    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba(self, text: str) -> float:
        return self.p


def test_classifier_threshold(ladder: TierLadder) -> None:
    high = Router(ladder, classifier=FixedProbability(0.8), threshold=0.7)
    d = high.route(RoutingInput(prompt="hello"))
    assert (d.tier.name, d.reason) == ("top", "classifier")
    low = Router(ladder, classifier=FixedProbability(0.6), threshold=0.7)
    assert low.route(RoutingInput(prompt="hello")).reason == "default"


def test_real_classifier_learns_and_round_trips(tmp_path: object, ladder: TierLadder) -> None:
    texts = [
        "prove the theorem about primes",
        "integral of x squared",
        "hello there",
        "good morning friend",
    ] * 10
    labels = [1, 1, 0, 0] * 10
    clf = TextClassifier.fit(texts, labels, min_df=1, steps=200)
    assert clf.predict_proba("prove this integral") > 0.5 > clf.predict_proba("hello friend")
    path = tmp_path / "router.json"  # type: ignore[operator]
    clf.save(path)
    again = TextClassifier.load(path)
    assert abs(again.predict_proba("prove it") - clf.predict_proba("prove it")) < 1e-4
    batch = again.predict_proba_many(["prove it", "hello"])
    assert abs(batch[0] - again.predict_proba("prove it")) < 1e-6
    router = Router(ladder, classifier=again, threshold=0.5, complexity_min_signals=None)
    assert router.route(RoutingInput(prompt="prove the integral")).reason == "classifier"


def test_routing_input_from_task() -> None:
    task = LLMTask(
        messages=[{"role": "user", "content": "hi"}], system="be brief", tier="top", feature="chat"
    )
    inp = RoutingInput.from_task(task)
    assert (inp.prompt, inp.tier_hint, inp.feature) == ("be brief\nhi", "top", "chat")
