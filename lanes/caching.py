"""Prompt-caching policy: a byte-stable static prefix, where the breakpoints go, which TTL.

Providers cache exact prefixes, so the one rule that matters is that static text comes first,
always in the same order, with the same bytes. Segments carry a tag derived from their text,
so an edited instruction gets a new tag even if nobody bumped its version.

All price math uses per-token prices from `lanes.pricing.ModelPrice` (USD per 1M tokens); the
ratios quoted in docstrings are the common case (read 0.1x, write 1.25x short / 2x long).
"""

from __future__ import annotations

import hashlib
import re
import statistics
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lanes.clock import Clock, SystemClock
from lanes.pricing import MTOK, ModelPrice

Role = Literal["system", "user"]
CacheTTL = Literal["5m", "1h", "30m", "12h"]
"""Anthropic 5m/1h, OpenAI 30m/12h; 5m and 30m bill as short writes, 1h and 12h as long."""
TokenCounter = Callable[[str], int]

ANTHROPIC_MAX_BREAKPOINTS = 4
OPENAI_MAX_EXPLICIT_BREAKPOINTS = 3
"""Implicit mode: one implicit breakpoint on the latest message plus at most 3 explicit."""
OPENAI_MIN_CACHEABLE_TOKENS = 1024
ANTHROPIC_DEFAULT_MIN_TOKENS = 1024
FIVE_MIN_S = 300.0
ONE_HOUR_S = 3600.0
TTL_SAFETY = 0.9
"""Reuse must come within 90% of a TTL to count on it: intervals are measured start to start."""

_ROLE_RANK = {"system": 0, "user": 1}
_SHORT_TTLS = frozenset({"5m", "30m"})


class PromptSegment(BaseModel):
    """A named piece of a prompt; static segments form the cacheable prefix.

    `layer` orders static text by how rarely it changes (0 tools/instructions, 1 policies,
    2 shared documents...), so an edit to a later layer keeps the earlier layers cached.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    text: str
    static: bool = False
    version: str | None = Field(default=None, min_length=1, max_length=64)
    layer: int = Field(default=0, ge=0, le=64)
    role: Role = "system"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    @property
    def cache_tag(self) -> str:
        """Version plus hash: an edited text changes the tag even without a version bump."""
        return f"{self.version}-{self.content_hash}" if self.version else self.content_hash


def _static_key(segment: PromptSegment) -> tuple[int, int, str, str]:
    return (_ROLE_RANK[segment.role], segment.layer, segment.name, segment.content_hash)


def canonical_order(segments: Sequence[PromptSegment]) -> list[PromptSegment]:
    """Static segments by (role, layer, name), then dynamic ones as given.

    System comes before user because providers render system before messages; within a role,
    layers ascend. Ties on name are broken by the text hash so any input order of the static
    segments yields the same bytes. Render segments in exactly this order.
    """
    static = sorted((s for s in segments if s.static), key=_static_key)
    return static + [s for s in segments if not s.static]


def static_prefix_hash(segments: Sequence[PromptSegment]) -> str:
    """Hash of what reaches the wire for the static prefix (role and text, in order)."""
    digest = hashlib.sha256()
    for segment in canonical_order(segments):
        if not segment.static:
            break
        data = segment.text.encode("utf-8")
        digest.update(f"{segment.role}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()[:32]


def cacheable_static_count(segments: Sequence[PromptSegment]) -> int:
    """How many leading segments of `canonical_order` are a stable prefix on the wire.

    A dynamic system segment is rendered before every user segment, so static user segments
    after it cannot be part of the cached prefix.
    """
    ordered = canonical_order(segments)
    has_dynamic_system = any(not s.static and s.role == "system" for s in ordered)
    count = 0
    for segment in ordered:
        if not segment.static or (has_dynamic_system and segment.role == "user"):
            break
        count += 1
    return count


def _layer_ends(segments: Sequence[PromptSegment]) -> list[int]:
    """Indices (in canonical order) of the last segment of each static (role, layer) group."""
    ordered = canonical_order(segments)
    count = cacheable_static_count(segments)
    return [
        i
        for i in range(count)
        if i == count - 1
        or (ordered[i].role, ordered[i].layer) != (ordered[i + 1].role, ordered[i + 1].layer)
    ]


_CLAUDE = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d{1,2}))?(?:-|$)")
_ANTHROPIC_MIN = {
    ("opus", "5", "5"): 512,
    ("sonnet", "5", "5"): 512,
    ("opus", "5", None): 512,
    ("opus", "4", "8"): 1024,
    ("sonnet", "5", None): 1024,
    ("opus", "4", None): 1024,
    ("opus", "4", "1"): 1024,
    ("sonnet", "4", None): 1024,
    ("sonnet", "4", "5"): 1024,
    ("sonnet", "4", "6"): 1024,
    ("opus", "4", "7"): 2048,
    ("opus", "4", "6"): 4096,
    ("opus", "4", "5"): 4096,
    ("haiku", "4", "5"): 4096,
}


def anthropic_min_cacheable_tokens(model: str) -> int:
    """Shortest prefix Anthropic caches for this model (spec 6.2); shorter ones silently miss."""
    name = model.strip().lower()
    if "mythos" in name and "preview" in name:
        return 2048
    if re.search(r"claude-3(-5)?-haiku", name):
        return 2048
    match = _CLAUDE.search(name)
    if match is None:
        return ANTHROPIC_DEFAULT_MIN_TOKENS
    family, major, minor = match.groups()
    if family in ("fable", "mythos"):
        return 512
    return _ANTHROPIC_MIN.get((family, major, minor), ANTHROPIC_DEFAULT_MIN_TOKENS)


def _qualifying_ends(
    segments: Sequence[PromptSegment], *, min_tokens: int, token_counter: TokenCounter | None
) -> list[tuple[int, int]]:
    """(index, cumulative tokens) of static layer ends whose prefix is long enough to cache."""
    ordered = canonical_order(segments)
    ends = set(_layer_ends(segments))
    found: list[tuple[int, int]] = []
    total = 0
    for i in range(max(ends, default=-1) + 1):
        total += token_counter(ordered[i].text) if token_counter else 0
        if i in ends and (token_counter is None or total >= min_tokens):
            found.append((i, total))
    return found


def anthropic_breakpoints(
    segments: Sequence[PromptSegment],
    *,
    model: str,
    token_counter: TokenCounter,
    max_breakpoints: int = ANTHROPIC_MAX_BREAKPOINTS,
) -> list[int]:
    """Indices into `canonical_order(segments)` after which to put `cache_control`.

    Candidates are the end of the static prefix and each boundary between static layers,
    kept only where the cumulative prefix reaches the model's minimum (a shorter breakpoint
    is silently ignored yet still takes one of the 4 slots). With more candidates than slots
    the longest prefixes win: they are the ones a hit saves the most on. Pass a lower
    `max_breakpoints` if the caller also marks conversation history.
    """
    limit = min(max_breakpoints, ANTHROPIC_MAX_BREAKPOINTS)
    ends = _qualifying_ends(
        segments, min_tokens=anthropic_min_cacheable_tokens(model), token_counter=token_counter
    )
    return [i for i, _ in ends[-limit:]] if limit > 0 else []


_OPENAI_EXPLICIT = re.compile(r"^(?:[\w.-]+/)?gpt-(?:5\.6|6)(?:[.-]|$)")


def openai_supports_explicit_breakpoints(model: str) -> bool:
    """Only GPT-5.6 and GPT-6 families; older models answer 400 to the new cache fields."""
    return _OPENAI_EXPLICIT.match(model.strip().lower()) is not None


def openai_cache_params(
    segments: Sequence[PromptSegment],
    *,
    model: str,
    ttl: Literal["30m", "12h"] = "30m",
    shard: int | None = None,
    token_counter: TokenCounter | None = None,
) -> dict[str, Any]:
    """Request fields for OpenAI prefix caching.

    Returns `{"prompt_cache_key": ...}` for every model (routes equal prefixes to the same
    cache; pass `shard` above ~15 requests/min per key) and, only on GPT-5.6+/GPT-6, a
    `"breakpoints"` map {index in canonical order: prompt_cache_breakpoint value} that the
    adapter pops and attaches to those content parts. No `prompt_cache_options` is sent:
    implicit mode keeps the automatic breakpoint on the latest message.
    """
    if not any(s.static for s in segments):
        return {}
    key = f"lanes-{static_prefix_hash(segments)[:24]}"
    params: dict[str, Any] = {"prompt_cache_key": key if shard is None else f"{key}-s{shard}"}
    if openai_supports_explicit_breakpoints(model):
        ends = _qualifying_ends(
            segments, min_tokens=OPENAI_MIN_CACHEABLE_TOKENS, token_counter=token_counter
        )
        chosen = [i for i, _ in ends[-OPENAI_MAX_EXPLICIT_BREAKPOINTS:]]
        if chosen:
            value = {"mode": "explicit", "ttl": ttl}
            params["breakpoints"] = {i: dict(value) for i in chosen}
    return params


def choose_anthropic_ttl(
    *, observed_reuse_interval_s: float | None, for_batch: bool, model_price: ModelPrice
) -> Literal["5m", "1h"]:
    """5m for frequent reuse, 1h for sparse reuse within the hour and for shared batch prefixes.

    Hits refresh either TTL for free, so in steady state a kept entry costs one read per use.
    - interval < ~5 min: 5m keeps it; the write is 1.25x instead of 2x -> "5m".
    - 5 min < interval < ~1 h: a 5m entry expires before each reuse, so every call writes
      again (2 calls cost 2 x 1.25 = 2.5x input), while 1h writes once and then reads
      (2 x ... = 2.0 + 0.1 = 2.1x; Opus 5.5: 8 + 0.2 = 8.2 < 10). "1h" when
      write_long + read < 2 x write_short with this model's prices, i.e. already by the
      second call; it beats not caching (2 x 1.0) from the third call on.
    - interval > 1 h: neither TTL survives; "5m" writes cheaper (better: don't cache).
    - batches: lines of one batch run minutes to hours apart in any order -> "1h" (spec 6.2).
    """
    if for_batch:
        return "1h"
    if observed_reuse_interval_s is None or observed_reuse_interval_s < FIVE_MIN_S * TTL_SAFETY:
        return "5m"
    if observed_reuse_interval_s > ONE_HOUR_S * TTL_SAFETY:
        return "5m"
    one_hour = model_price.cache_write_long + model_price.cache_read
    return "1h" if one_hour < 2 * model_price.cache_write_short else "5m"


def _write_price(price: ModelPrice, ttl: CacheTTL) -> Decimal:
    return price.cache_write_short if ttl in _SHORT_TTLS else price.cache_write_long


def break_even_hit_ratio(price: ModelPrice, ttl: CacheTTL) -> float:
    """Hit ratio above which caching a prefix beats not caching it.

    Per prefix token: h*read + (1-h)*write = input  ->  h* = (write - input) / (write - read).
    GPT-5.6 (1.25x / 0.1x): 0.25/1.15 = 21.7%; Anthropic 1h (2x / 0.1x): 1/1.9 = 52.6%;
    free writes (pre-5.6 OpenAI): 0.
    """
    write = _write_price(price, ttl)
    if write <= price.input or write <= price.cache_read:
        return 0.0
    return float((write - price.input) / (write - price.cache_read))


def warmup_pays(
    *,
    lines_sharing_prefix: int,
    prefix_tokens: int,
    model_price: ModelPrice,
    expected_hit_ratio_without_warmup: float,
    ttl: CacheTTL,
    expected_hit_ratio_with_warmup: float = 1.0,
) -> bool:
    """Whether one realtime request that writes the prefix before a batch pays for itself.

    Per line, the prefix costs batch_factor * (h*read + (1-h)*write): a miss writes, a hit
    reads. Warming raises h from h0 to h1 for N lines and costs one realtime write (no
    batch discount; its own few output tokens are ignored):
        pays  <=>  N * batch_factor * (h1 - h0) * (write - read) > write
    e.g. Anthropic 1h (write 2x, read 0.1x), N=100, h0=0.3: 100*0.5*0.7*1.9 = 66.5 > 2.
    The prefix length cancels out, but a prefix below the cacheable minimum never caches.
    """
    if lines_sharing_prefix <= 0 or prefix_tokens <= 0:
        return False
    price = model_price.for_input_tokens(prefix_tokens)
    write = _write_price(price, ttl)
    gain = Decimal(str(expected_hit_ratio_with_warmup - expected_hit_ratio_without_warmup))
    saved = lines_sharing_prefix * price.batch_factor * gain * (write - price.cache_read)
    return saved > write


@dataclass(frozen=True, slots=True)
class SavingsPrediction:
    """Expected USD per request, with and without caching (input and output included)."""

    usd_without_cache: Decimal
    usd_with_cache: Decimal

    @property
    def saved_usd(self) -> Decimal:
        return self.usd_without_cache - self.usd_with_cache

    @property
    def saved_fraction(self) -> float:
        """Share of the bill saved; negative when writes cost more than hits save."""
        if self.usd_without_cache == 0:
            return 0.0
        return float(self.saved_usd / self.usd_without_cache)


def predicted_savings(
    *,
    hit_ratio: float,
    price: ModelPrice,
    prefix_tokens: int,
    dynamic_tokens: int,
    ttl: CacheTTL,
    output_tokens: int = 0,
    batch: bool = False,
) -> SavingsPrediction:
    """Expected per-request cost when a share `hit_ratio` of requests reads the prefix.

    with    = prefix*(h*read + (1-h)*write) + dynamic*input + output*out
    without = (prefix + dynamic)*input + output*out
    (times batch_factor for batch). The benchmark compares this with the ledger.
    """
    if not 0.0 <= hit_ratio <= 1.0:
        raise ValueError("hit_ratio: must be within [0, 1]")
    row = price.for_input_tokens(prefix_tokens + dynamic_tokens)
    h = Decimal(str(hit_ratio))
    factor = row.batch_factor if batch else Decimal(1)
    rest = Decimal(dynamic_tokens) * row.input + Decimal(output_tokens) * row.output
    cached_prefix = Decimal(prefix_tokens) * (h * row.cache_read + (1 - h) * _write_price(row, ttl))
    return SavingsPrediction(
        usd_without_cache=(Decimal(prefix_tokens) * row.input + rest) * factor / MTOK,
        usd_with_cache=(cached_prefix + rest) * factor / MTOK,
    )


class ReuseTracker:
    """Observed reuse intervals per static-prefix hash, in memory and bounded.

    Feeds `choose_anthropic_ttl`; each worker process keeps its own (an estimate is enough).
    """

    def __init__(
        self, *, clock: Clock | None = None, window: int = 32, max_prefixes: int = 10_000
    ) -> None:
        self._clock = clock or SystemClock()
        self._window = window
        self._max = max_prefixes
        self._last: OrderedDict[str, float] = OrderedDict()
        self._intervals: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def observe(self, prefix_hash: str) -> float | None:
        """Record a use now; returns seconds since the previous use of this prefix, if any."""
        now = self._clock.now().timestamp()
        with self._lock:
            previous = self._last.pop(prefix_hash, None)
            self._last[prefix_hash] = now
            interval = None
            if previous is not None:
                interval = max(0.0, now - previous)
                self._intervals.setdefault(prefix_hash, deque(maxlen=self._window)).append(interval)
            while len(self._last) > self._max:
                evicted, _ = self._last.popitem(last=False)
                self._intervals.pop(evicted, None)
            return interval

    def typical_interval(self, prefix_hash: str) -> float | None:
        """Median of recent intervals (robust to one burst or one long pause)."""
        with self._lock:
            recent = self._intervals.get(prefix_hash)
            return statistics.median(recent) if recent else None

    def hit_ratio(self, prefix_hash: str, *, ttl_s: float) -> float | None:
        """Share of recent reuses that came within `ttl_s` (would have hit the cache)."""
        with self._lock:
            recent = self._intervals.get(prefix_hash)
            if not recent:
                return None
            return sum(1 for i in recent if i <= ttl_s) / len(recent)
