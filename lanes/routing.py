"""Which tier a request starts on: the tier ladder and the router.

The cascade starts cheap and escalates on failed checks; the router only decides where to
*start*, so a request that will obviously need a strong model does not pay for a cheap
attempt first. Rules are ordered and each decision names the rule that fired, for the audit
log. Decisions are on the hot path of every interactive job, so everything costly (regexes,
tier lookups) is prepared once in `__init__`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from lanes.errors import TierConfigError, UnknownTierError

if TYPE_CHECKING:
    from lanes.task import LLMTask

PROVIDERS = ("openai", "anthropic", "azure", "openai_compatible")
_OVERRIDABLE = {"max_output_tokens": int, "model": str}
_TIER_FIELDS = {"name", "provider", "model", "max_output_tokens", "feature_overrides", "base_url"}


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    provider: str
    model: str
    max_output_tokens: int | None = None
    feature_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per feature tag: {"max_output_tokens": 200, "model": "..."}."""
    base_url: str | None = None
    """For `openai_compatible` (vLLM, Ollama, ...)."""

    def max_output_tokens_for(self, feature: str | None) -> int | None:
        override = self.feature_overrides.get(feature or "", {})
        value = override.get("max_output_tokens", self.max_output_tokens)
        return None if value is None else int(value)

    def model_for(self, feature: str | None) -> str:
        return str(self.feature_overrides.get(feature or "", {}).get("model", self.model))


class TierLadder:
    """Tiers ordered cheapest first; the cascade climbs it one rung at a time."""

    def __init__(self, tiers: list[Tier]) -> None:
        if not tiers:
            raise TierConfigError("tiers: the ladder needs at least one tier")
        self.tiers: tuple[Tier, ...] = tuple(tiers)
        self._index = {t.name: i for i, t in enumerate(self.tiers)}
        if len(self._index) != len(self.tiers):
            raise TierConfigError("tiers: tier names must be unique")

    @classmethod
    def from_json(cls, text: str) -> TierLadder:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TierConfigError(f"tiers: not valid JSON ({exc})") from None
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: Any) -> TierLadder:
        """A list of tier objects, or {"tiers": [...]} as in a settings file."""
        if isinstance(data, Mapping) and "tiers" in data:
            data = data["tiers"]
        if not isinstance(data, list):
            raise TierConfigError("tiers: must be a JSON list of tier objects, cheapest first")
        return cls([_parse_tier(item, f"tiers[{i}]") for i, item in enumerate(data)])

    def __iter__(self) -> Iterator[Tier]:
        return iter(self.tiers)

    def __len__(self) -> int:
        return len(self.tiers)

    @property
    def cheapest(self) -> Tier:
        return self.tiers[0]

    @property
    def top(self) -> Tier:
        return self.tiers[-1]

    def index(self, tier: Tier | str) -> int:
        name = tier if isinstance(tier, str) else tier.name
        try:
            return self._index[name]
        except KeyError:
            raise UnknownTierError(name, known=list(self._index)) from None

    def by_name(self, name: str) -> Tier:
        return self.tiers[self.index(name)]

    def next_above(self, tier: Tier | str) -> Tier | None:
        """The next rung up, or None at the top (nothing left to escalate to)."""
        i = self.index(tier) + 1
        return self.tiers[i] if i < len(self.tiers) else None


def _parse_tier(item: Any, where: str) -> Tier:
    if not isinstance(item, Mapping):
        raise TierConfigError(f"{where}: must be an object")
    unknown = sorted(set(item) - _TIER_FIELDS)
    if unknown:
        raise TierConfigError(f"{where}.{unknown[0]}: unknown field")
    for key in ("name", "provider", "model"):
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise TierConfigError(f"{where}.{key}: required, a non-empty string")
    if item["provider"] not in PROVIDERS:
        raise TierConfigError(f"{where}.provider: must be one of {', '.join(PROVIDERS)}")
    cap = item.get("max_output_tokens")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise TierConfigError(f"{where}.max_output_tokens: must be a positive integer")
    base_url = item.get("base_url")
    if base_url is not None and not (isinstance(base_url, str) and "://" in base_url):
        raise TierConfigError(f"{where}.base_url: must be a URL")
    if item["provider"] == "openai_compatible" and base_url is None:
        raise TierConfigError(f"{where}.base_url: required for provider openai_compatible")
    overrides = item.get("feature_overrides", {})
    if not isinstance(overrides, Mapping):
        raise TierConfigError(f"{where}.feature_overrides: must be an object keyed by feature")
    for feature, override in overrides.items():
        at = f"{where}.feature_overrides.{feature}"
        if not isinstance(override, Mapping):
            raise TierConfigError(f"{at}: must be an object")
        for key, value in override.items():
            kind = _OVERRIDABLE.get(key)
            if kind is None:
                raise TierConfigError(f"{at}.{key}: not overridable (use {sorted(_OVERRIDABLE)})")
            if not isinstance(value, kind) or isinstance(value, bool) or value in (0, ""):
                raise TierConfigError(f"{at}.{key}: must be a non-empty {kind.__name__}")
    return Tier(
        name=item["name"],
        provider=item["provider"],
        model=item["model"],
        max_output_tokens=cap,
        feature_overrides=MappingProxyType({k: dict(v) for k, v in overrides.items()}),
        base_url=base_url,
    )


# -- the router -----------------------------------------------------------------------------


class ProbabilityModel(Protocol):
    def predict_proba(self, text: str) -> float: ...


@dataclass(frozen=True, slots=True)
class RoutingInput:
    prompt: str
    tier_hint: str | None = None
    feature: str | None = None
    prompt_tokens: int | None = None
    """When known; else estimated as characters / 4."""

    @classmethod
    def from_task(cls, task: LLMTask) -> RoutingInput:
        return cls(prompt=task.prompt_text(), tier_hint=task.tier, feature=task.feature)

    def tokens(self) -> int:
        return self.prompt_tokens if self.prompt_tokens is not None else len(self.prompt) // 4


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    tier: Tier
    reason: str
    """hint | feature | long_prompt | complexity | classifier | default"""
    detail: str | None = None


# Keyword hits are plain substring tests on the lower-cased text (C speed); regexes are
# kept for the few patterns that need them.
_CODE_WORDS = (
    "```",
    "\ndef ",
    "\nclass ",
    "\nimport ",
    "#include",
    "console.log",
    "printf(",
    "public static",
    "function(",
    "select * from",
    "[python]",
    "();",
    ") {",
)
_MATH_WORDS = (
    "equation",
    "integral",
    "derivative",
    "probability",
    "theorem",
    "matrix",
    "polynomial",
    "logarithm",
    "\\frac",
    "\\sqrt",
    "\u2211",
    "\u222b",
    "\u221a",
    "\u2264",
    "\u2265",
    "\u2260",
)
_MULTI_WORDS = (
    "step by step",
    "step-by-step",
    "prove",
    "explain why",
    "show that",
    "derive",
    "justify",
    "compare and contrast",
    "trade-off",
    "tradeoff",
)
_ARITHMETIC = re.compile(r"\d ?[-+*/^=\u00d7\u00f7] ?\d")
_FIRST_THEN = re.compile(r"\bfirst\b[^.?!]{0,300}\bthen\b")
_HEAD, _TAIL = 500, 1500
"""Only the head (system prompt) and the tail (the actual ask) are scanned: bounded time."""


def complexity_signals(text: str) -> list[str]:
    """Which kinds of hard-task wording a prompt shows: code, math, multi_step."""
    if len(text) > _HEAD + _TAIL:
        text = text[:_HEAD] + "\n" + text[-_TAIL:]
    low = "\n" + text.lower()
    found = []
    if any(w in low for w in _CODE_WORDS):
        found.append("code")
    if any(w in low for w in _MATH_WORDS) or _ARITHMETIC.search(low):
        found.append("math")
    if any(w in low for w in _MULTI_WORDS) or ("first" in low and _FIRST_THEN.search(low)):
        found.append("multi_step")
    return found


class Router:
    """Picks the starting tier; the first matching rule wins and names itself."""

    def __init__(
        self,
        ladder: TierLadder,
        *,
        feature_tiers: Mapping[str, str] | None = None,
        long_prompt_tokens: int | None = 6000,
        long_prompt_tier: str | None = None,
        complexity_min_signals: int | None = 2,
        complexity_tier: str | None = None,
        classifier: ProbabilityModel | None = None,
        threshold: float = 0.5,
        classifier_tier: str | None = None,
    ) -> None:
        self.ladder = ladder
        step_up = ladder.tiers[min(1, len(ladder) - 1)]
        self._features = {f: ladder.by_name(t) for f, t in (feature_tiers or {}).items()}
        self._long_tokens = long_prompt_tokens
        self._long_tier = ladder.by_name(long_prompt_tier) if long_prompt_tier else step_up
        self._min_signals = complexity_min_signals
        self._complex_tier = ladder.by_name(complexity_tier) if complexity_tier else step_up
        self._classifier = classifier
        self._threshold = threshold
        self._classifier_tier = ladder.by_name(classifier_tier) if classifier_tier else ladder.top

    def route(self, inp: RoutingInput) -> RoutingDecision:
        if inp.tier_hint:
            return RoutingDecision(self.ladder.by_name(inp.tier_hint), "hint")
        if inp.feature is not None:
            mapped = self._features.get(inp.feature)
            if mapped is not None:
                return RoutingDecision(mapped, "feature", inp.feature)
        if self._long_tokens is not None:
            tokens = inp.tokens()
            if tokens >= self._long_tokens:
                return RoutingDecision(self._long_tier, "long_prompt", f"{tokens} tokens")
        if self._min_signals is not None:
            signals = complexity_signals(inp.prompt)
            if len(signals) >= self._min_signals:
                return RoutingDecision(self._complex_tier, "complexity", ",".join(signals))
        if self._classifier is not None:
            p = self._classifier.predict_proba(inp.prompt)
            if p >= self._threshold:
                return RoutingDecision(self._classifier_tier, "classifier", f"p={p:.3f}")
        return RoutingDecision(self.ladder.cheapest, "default")
