"""Typed settings of the simulator's realtime side: latency, time scale, cache knobs, models.

Latency is real wall time (the SDKs must actually wait for it); cache TTLs and batch windows
run on the `VirtualClock`, whose speed-up is `time_scale`. Everything has a default that makes
tests fast: no latency, time passing at wall speed, any non-empty API key accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-6.1-sol",
    "gpt-6-sol",
    "gpt-6-luna",
    "gpt-5.6-sol",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-haiku-4-5",
)

ANTHROPIC_MIN_CACHE_TOKENS: dict[str, int] = {
    # spec §6.2 (2nd-hand, Oct 2026); matched by the longest model-name prefix.
    "claude-opus-5-5": 512,
    "claude-sonnet-5-5": 512,
    "claude-opus-5": 512,
    "claude-fable-5": 512,
    "claude-fable-5-1": 512,
    "claude-mythos-5": 512,
    "claude-mythos-5-1": 512,
    "claude-opus-4-8": 1024,
    "claude-sonnet-5": 1024,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4": 1024,
    "claude-opus-4-7": 2048,
    "claude-mythos-preview": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
}
ANTHROPIC_DEFAULT_MIN_CACHE_TOKENS = 1024


def _prefix_lookup(table: dict[str, int], model: str, default: int) -> int:
    """Longest key that equals `model` or is a dash-separated prefix of it."""
    best: str | None = None
    for key in table:
        if (model == key or model.startswith(key + "-")) and (best is None or len(key) > len(best)):
            best = key
    return default if best is None else table[best]


@dataclass
class SimConfig:
    latency_ms: dict[str, float] = field(default_factory=dict)
    """Per-model base latency of a realtime call (wall milliseconds)."""
    default_latency_ms: float = 0.0
    per_output_token_ms: float = 0.0
    """Extra wall milliseconds per generated token, so long answers take longer."""
    latency_scale: float = 1.0
    """Multiplier on every simulated latency (0 disables them, e.g. in fast tests)."""
    time_scale: float = 1.0
    """Speed of the `VirtualClock` the server creates when none is passed in."""
    api_keys: frozenset[str] | None = None
    """Accepted keys; None accepts any non-empty key."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """What `GET /v1/models` lists (every model name is accepted regardless)."""
    min_answer_tokens: int = 8
    max_answer_tokens: int = 48
    """Bounds of the natural (unconstrained) answer length, chosen per prompt hash."""
    openai_min_cache_tokens: int = 1024
    openai_cache_increment: int = 128
    openai_default_retention: str = "24h"
    """Pre-GPT-5.6 retention when the request sets none (`in_memory` or `24h`)."""
    openai_in_memory_ttl_seconds: float = 600.0
    anthropic_min_cache_tokens: dict[str, int] = field(default_factory=dict)
    """Overrides of the per-model minimum cacheable prefix (merged over the spec table)."""
    anthropic_lookback_blocks: int = 20
    max_log_entries: int = 10_000

    def latency_for(self, model: str | None) -> float:
        """Base latency in wall seconds for one call to `model`."""
        ms = self.latency_ms.get(model or "", self.default_latency_ms)
        return max(ms, 0.0) * self.latency_scale / 1000.0

    def token_latency(self, output_tokens: int) -> float:
        return max(self.per_output_token_ms, 0.0) * output_tokens * self.latency_scale / 1000.0

    def anthropic_min_cache(self, model: str) -> int:
        table = {**ANTHROPIC_MIN_CACHE_TOKENS, **self.anthropic_min_cache_tokens}
        return _prefix_lookup(table, model, ANTHROPIC_DEFAULT_MIN_CACHE_TOKENS)

    def update(self, values: dict[str, Any]) -> None:
        """Apply a JSON update from the control API; unknown or mistyped keys raise."""
        numbers = {
            "default_latency_ms",
            "per_output_token_ms",
            "latency_scale",
            "openai_in_memory_ttl_seconds",
        }
        for key, value in values.items():
            if key == "latency_ms":
                if not isinstance(value, dict) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
                ):
                    raise ValueError("latency_ms: must map model names to numbers")
                self.latency_ms.update({str(k): float(v) for k, v in value.items()})
            elif key == "anthropic_min_cache_tokens":
                if not isinstance(value, dict):
                    raise ValueError("anthropic_min_cache_tokens: must be an object")
                self.anthropic_min_cache_tokens.update({str(k): int(v) for k, v in value.items()})
            elif key in numbers:
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{key}: must be a non-negative number")
                setattr(self, key, float(value))
            elif key == "openai_default_retention":
                if value not in ("in_memory", "24h"):
                    raise ValueError("openai_default_retention: 'in_memory' or '24h'")
                self.openai_default_retention = value
            else:
                raise ValueError(f"unknown or read-only config field: {key}")

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": dict(self.latency_ms),
            "default_latency_ms": self.default_latency_ms,
            "per_output_token_ms": self.per_output_token_ms,
            "latency_scale": self.latency_scale,
            "time_scale": self.time_scale,
            "models": list(self.models),
            "openai_default_retention": self.openai_default_retention,
            "anthropic_min_cache_tokens": dict(self.anthropic_min_cache_tokens),
        }
