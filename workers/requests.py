"""Turns an `LLMTask` into the provider-neutral `ProviderRequest` the adapters send.

This is where the prompt-caching lever is applied: static segments first in canonical order
(byte-identical prefix between calls), Anthropic `cache_control` breakpoints only where the
prefix reaches the model's minimum, a TTL from the observed reuse interval (1h for batches),
and OpenAI `prompt_cache_key` plus explicit breakpoints only on models that accept them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lanes.caching import (
    PromptSegment,
    ReuseTracker,
    anthropic_breakpoints,
    canonical_order,
    choose_anthropic_ttl,
    openai_cache_params,
    static_prefix_hash,
)
from lanes.task import LLMTask
from workers.providers.base import ApiName, ChatTurn, ProviderRequest, TextBlock

log = logging.getLogger(__name__)


def estimate_tokens(text: str) -> int:
    """~4 characters per token: enough to decide whether a prefix is worth a breakpoint."""
    return max(1, (len(text) + 3) // 4)


def default_api(provider: str, requested: str | None) -> ApiName:
    if provider == "anthropic":
        return "messages"
    return "responses" if requested == "responses" else "chat"


@dataclass
class RequestBuilder:
    prices: object | None = None
    tracker: ReuseTracker = field(default_factory=ReuseTracker)

    def build(
        self,
        task: LLMTask,
        *,
        provider: str,
        model: str,
        max_output_tokens: int | None = None,
        logprobs: bool = False,
        for_batch: bool = False,
    ) -> ProviderRequest:
        ordered = canonical_order(task.segments)
        ttl_for: dict[int, str] = {}
        extra_params: dict[str, object] = {}
        cache_key: str | None = None
        explicit = False
        if any(s.static for s in ordered):
            if provider == "anthropic":
                ttl = self._anthropic_ttl(ordered, model=model, for_batch=for_batch)
                for i in anthropic_breakpoints(ordered, model=model, token_counter=estimate_tokens):
                    ttl_for[i] = ttl
            else:
                params = openai_cache_params(ordered, model=model, token_counter=estimate_tokens)
                cache_key = params.get("prompt_cache_key")
                for i, value in (params.get("breakpoints") or {}).items():
                    ttl_for[int(i)] = value["ttl"]
                    explicit = True
        system: list[TextBlock] = []
        user_prefix: list[TextBlock] = []
        for i, seg in enumerate(ordered):
            block = TextBlock(seg.text, cache_ttl=ttl_for.get(i))
            (system if seg.role == "system" else user_prefix).append(block)
        if task.system:
            system.append(TextBlock(task.system))
        turns: list[ChatTurn] = []
        for n, m in enumerate(task.messages):
            blocks = [TextBlock(m.content)]
            if n == 0 and user_prefix:
                blocks = [*user_prefix, *blocks]
            turns.append(ChatTurn(role=m.role, blocks=tuple(blocks)))
        extra: dict[str, object] = dict(extra_params)
        return ProviderRequest(
            provider=provider,
            api=default_api(provider, task.api),
            model=model,
            turns=tuple(turns),
            system=tuple(system),
            max_output_tokens=max_output_tokens or task.max_output_tokens,
            json_schema=task.json_schema,
            logprobs=logprobs,
            prompt_cache_key=cache_key,
            explicit_breakpoints=explicit,
            extra=extra,
            cache_segments=tuple(segment_label(s) for s in ordered if s.static),
        )

    def _anthropic_ttl(self, ordered: list[PromptSegment], *, model: str, for_batch: bool) -> str:
        interval = self.tracker.observe(static_prefix_hash(ordered))
        price = None
        if self.prices is not None:
            try:
                price = self.prices.price(provider="anthropic", model=model)  # type: ignore[attr-defined]
            except Exception:  # unknown model: keep the default 5m TTL
                price = None
        if price is None:
            return "1h" if for_batch else "5m"
        return choose_anthropic_ttl(
            observed_reuse_interval_s=interval, for_batch=for_batch, model_price=price
        )


def segment_label(segment: PromptSegment) -> str:
    """`name@tag`: per-segment hit ratios stay apart across versions of the same segment."""
    return f"{segment.name}@{segment.cache_tag}"
