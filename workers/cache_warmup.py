"""Warm the prompt cache before a batch whose lines share a long static prefix.

Batch lines run in any order, minutes to hours apart, and in-batch cache hits are best
effort (Anthropic: 30-98%); many lines would each pay a cache write. One realtime request
with the same static prefix and the same breakpoints (Anthropic: the 1h TTL batch lines
carry; `max_tokens: 0` pre-warming is not allowed inside batches) writes the prefix once,
so the lines read it. It is sent only when `lanes.caching.warmup_pays` says the expected
reads repay its full-price write, and it is recorded in the ledger as lane "warmup" so the
savings report counts its cost.

Call it from batch submission, before the provider batch is created:

    maybe_warm(rt, provider=batch.provider, model=batch.model, task=first_member_task,
               lines_sharing_prefix=len(members_with_that_prefix))
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from lanes.caching import (
    OPENAI_MIN_CACHEABLE_TOKENS,
    CacheTTL,
    cacheable_static_count,
    canonical_order,
    static_prefix_hash,
    warmup_pays,
)
from lanes.task import LLMTask, Message
from lanes.usage import Usage
from storage.ledger import CallFacts
from workers.providers.base import ProviderCallError, ProviderRequest
from workers.requests import RequestBuilder, estimate_tokens

log = logging.getLogger(__name__)

WARMUP_LANE = "warmup"
WARMUP_PROMPT = "."
"""The dynamic part of the warm-up request: one token, after every breakpoint."""

_TTL_S = {"5m": 300.0, "30m": 1800.0, "1h": 3600.0, "12h": 43_200.0}
_REWARM_FRACTION = 0.5
"""Skip a warm-up if the same prefix was warmed within half its TTL (it is still live)."""

_recent: dict[tuple[str, str, str], float] = {}
_recent_lock = threading.Lock()


def prefix_tokens(task: LLMTask) -> int:
    """Estimated tokens of the static prefix that caches (what every line shares)."""
    ordered = canonical_order(task.segments)
    return sum(estimate_tokens(s.text) for s in ordered[: cacheable_static_count(task.segments)])


def warmup_request(rt: Any, *, provider: str, model: str, task: LLMTask) -> ProviderRequest:
    """The task's prompt with a one-token question and one output token, built for batch.

    Same segments, same canonical order and `for_batch=True` breakpoints as the batch lines,
    so the bytes up to each breakpoint are identical to theirs.
    """
    warm = task.model_copy(
        update={"messages": [Message(role="user", content=WARMUP_PROMPT)], "max_output_tokens": 1}
    )
    builder = RequestBuilder(prices=getattr(rt, "prices", None))
    return builder.build(warm, provider=provider, model=model, max_output_tokens=1, for_batch=True)


def _ttl_of(request: ProviderRequest) -> CacheTTL | None:
    """The TTL of the request's breakpoints; None if it has none (prefix too short)."""
    for block in (*request.system, *(b for t in request.turns for b in t.blocks)):
        if block.cache_ttl:
            return block.cache_ttl  # type: ignore[return-value]
    return None


def maybe_warm(
    rt: Any, *, provider: str, model: str, task: LLMTask, lines_sharing_prefix: int
) -> bool:
    """Send one warm-up request if it pays; True if one was sent. Never raises.

    A failed warm-up only costs the batch its head start, so errors are logged (and an
    error row goes to the ledger), never propagated into batch submission.
    """
    try:
        return _maybe_warm(
            rt, provider=provider, model=model, task=task, lines_sharing_prefix=lines_sharing_prefix
        )
    except Exception as exc:
        log.warning("cache warm-up skipped: %s: %s", type(exc).__name__, str(exc)[:300])
        return False


def _maybe_warm(
    rt: Any, *, provider: str, model: str, task: LLMTask, lines_sharing_prefix: int
) -> bool:
    settings = rt.settings
    if not getattr(settings, "cache_warmup_enabled", True) or lines_sharing_prefix < 2:
        return False
    if cacheable_static_count(task.segments) == 0 or rt.prices is None:
        return False
    tokens = prefix_tokens(task)
    request = warmup_request(rt, provider=provider, model=model, task=task)
    ttl = _ttl_of(request)
    if provider == "anthropic":
        if ttl is None:  # below the model's minimum: a warm-up would write nothing
            return False
    elif tokens < OPENAI_MIN_CACHEABLE_TOKENS:
        return False
    ttl = ttl or "30m"  # OpenAI implicit caching: the short-write price applies
    price = rt.prices.price(provider=provider, model=model)
    if not warmup_pays(
        lines_sharing_prefix=lines_sharing_prefix,
        prefix_tokens=tokens,
        model_price=price,
        expected_hit_ratio_without_warmup=getattr(settings, "cache_warmup_baseline_hit_ratio", 0.3),
        ttl=ttl,
    ):
        return False
    memo = (provider, model, static_prefix_hash(task.segments))
    now = time.monotonic()
    with _recent_lock:
        last = _recent.get(memo)
        if last is not None and now - last < _TTL_S.get(ttl, 300.0) * _REWARM_FRACTION:
            return False
        _recent[memo] = now
    return _send(rt, request=request, task=task)


def _send(rt: Any, *, request: ProviderRequest, task: LLMTask) -> bool:
    facts: dict[str, Any] = {
        "provider": request.provider,
        "model": request.model,
        "api": request.api,
        "lane": WARMUP_LANE,
        "feature": task.feature,
        "tenant": task.tenant,
        "cache_segments": request.cache_segments,
        "extra_spend": True,  # only exists because of the caching lever
    }
    try:
        result = rt.providers.get(request.provider).call(replace(request, client_request_id=None))
    except ProviderCallError as exc:
        rt.ledger.record(CallFacts(usage=Usage(), status="error", error_kind=exc.kind, **facts))
        log.warning("cache warm-up for %s/%s failed: %s", request.provider, request.model, exc)
        return False
    rt.ledger.record(
        CallFacts(
            usage=result.usage, latency_ms=result.latency_ms, request_id=result.request_id, **facts
        )
    )
    log.info(
        "cache warm-up %s/%s: wrote %d prefix tokens for a batch",
        request.provider,
        request.model,
        result.usage.cache_write_tokens,
    )
    return True


def forget_recent() -> None:
    """Drop the re-warm memo (tests; or after a provider-side cache flush)."""
    with _recent_lock:
        _recent.clear()
