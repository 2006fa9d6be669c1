"""Provider-neutral token usage.

OpenAI counts cached and cache-write tokens *inside* `prompt_tokens`; Anthropic reports
`input_tokens`, `cache_read_input_tokens` and `cache_creation_input_tokens` as disjoint
counters. We keep OpenAI's convention (subsets of the total) everywhere so a ledger row never
double counts and `uncached_input_tokens` is always derived, never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    """All input tokens of the call, cached and cache-written ones included."""
    cached_input_tokens: int = 0
    """Read from the prompt cache (subset of input_tokens)."""
    cache_write_tokens: int = 0
    """Written to the prompt cache (subset of input_tokens), all TTLs."""
    cache_write_long_tokens: int = 0
    """Part of cache_write_tokens written with the long TTL (Anthropic 1h, OpenAI 12h)."""
    output_tokens: int = 0

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "cache_write_long_tokens",
            "output_tokens",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cached_input_tokens + cache_write_tokens: exceed input_tokens")
        if self.cache_write_long_tokens > self.cache_write_tokens:
            raise ValueError("cache_write_long_tokens: exceeds cache_write_tokens")

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens - self.cache_write_tokens

    @property
    def cache_write_short_tokens(self) -> int:
        return self.cache_write_tokens - self.cache_write_long_tokens

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage:
        """Chat Completions (`prompt_tokens`...) or Responses (`input_tokens`...) usage."""
        if not usage:
            return cls()
        if "prompt_tokens" in usage:
            total_in = usage.get("prompt_tokens") or 0
            details = usage.get("prompt_tokens_details") or {}
            out = usage.get("completion_tokens") or 0
        else:
            total_in = usage.get("input_tokens") or 0
            details = usage.get("input_tokens_details") or {}
            out = usage.get("output_tokens") or 0
        writes = details.get("cache_write_tokens") or 0
        ttl = details.get("cache_write_tokens_details") or {}
        return cls(
            input_tokens=total_in,
            cached_input_tokens=details.get("cached_tokens") or 0,
            cache_write_tokens=writes,
            cache_write_long_tokens=min(writes, ttl.get("ttl_12h_tokens") or 0),
            output_tokens=out,
        )

    @classmethod
    def from_anthropic(cls, usage: Mapping[str, Any] | None) -> Usage:
        if not usage:
            return cls()
        read = usage.get("cache_read_input_tokens") or 0
        write = usage.get("cache_creation_input_tokens") or 0
        by_ttl = usage.get("cache_creation") or {}
        return cls(
            input_tokens=(usage.get("input_tokens") or 0) + read + write,
            cached_input_tokens=read,
            cache_write_tokens=write,
            cache_write_long_tokens=min(write, by_ttl.get("ephemeral_1h_input_tokens") or 0),
            output_tokens=usage.get("output_tokens") or 0,
        )
