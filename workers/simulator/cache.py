"""The prompt-prefix cache, with OpenAI's and Anthropic's different rules (spec §6.2, §3.2).

Entries are hashes of rendered prefixes with an expiry on the `VirtualClock`, so a test
advances the clock past a TTL instead of sleeping. Two hash forms exist because the providers
cut prefixes differently: Anthropic only at block boundaries (`block_hashes`), OpenAI at any
token position, 128-token steps or an explicit breakpoint (`token_hashes`). Hits refresh an
entry's lifetime on both providers (OpenAI TTLs are minimums; Anthropic documents refresh).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from workers.simulator.clock import VirtualClock
from workers.simulator.errors import bad_request
from workers.simulator.prompts import Prompt
from workers.simulator.tokens import CHARS_PER_TOKEN

TTL_SECONDS: dict[str, float] = {
    "5m": 300.0,
    "1h": 3600.0,
    "30m": 1800.0,
    "12h": 43_200.0,
    "24h": 86_400.0,
}
ANTHROPIC_MAX_BREAKPOINTS = 4
OPENAI_MAX_READ_BREAKPOINTS = 80
_MAX_ENTRIES = 200_000


@dataclass
class CacheUse:
    """What one request read from and wrote to the cache, in tokens."""

    read: int = 0
    written: int = 0
    written_by_ttl: dict[str, int] = field(default_factory=dict)


@dataclass
class _Entry:
    expires_at: float
    ttl: float


class PrefixCache:
    """Thread-safe map of prefix hash → expiry; one per simulator instance."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def live(self, key: str) -> bool:
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if entry.expires_at <= now:
                del self._entries[key]
                return False
            return True

    def touch(self, key: str) -> None:
        """Restart a live entry's lifetime (a cache hit)."""
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.expires_at = max(entry.expires_at, now + entry.ttl)

    def put(self, key: str, ttl: float) -> None:
        now = self._clock.now()
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}
            entry = self._entries.get(key)
            if entry is None or entry.expires_at <= now:
                self._entries[key] = _Entry(now + ttl, ttl)
            else:
                entry.ttl = max(entry.ttl, ttl)
                entry.expires_at = max(entry.expires_at, now + ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        now = self._clock.now()
        with self._lock:
            return sum(1 for e in self._entries.values() if e.expires_at > now)


def block_hashes(namespace: str, prompt: Prompt) -> list[str]:
    """Hash of the prefix ending with each block (block-boundary prefixes)."""
    digest = hashlib.sha256(namespace.encode())
    out: list[str] = []
    for block in prompt.blocks:
        digest.update(f"{block.head}\x1f{block.text}\x1e".encode())
        out.append(digest.hexdigest())
    return out


def token_hashes(namespace: str, prompt: Prompt, positions: Iterable[int]) -> dict[int, str]:
    """Hash of the first `n` tokens for each `n` in positions, wherever the cut falls.

    A cut inside a block hashes that block's head and the first `4 * m` characters, so two
    prompts sharing their first n tokens share this hash even if their blocks differ later.
    """
    wanted = sorted(set(p for p in positions if p > 0))
    digest = hashlib.sha256(namespace.encode())
    out: dict[int, str] = {}
    start = 0
    i = 0
    for block in prompt.blocks:
        end = start + block.tokens
        while i < len(wanted) and wanted[i] <= end:
            m = wanted[i] - start
            partial = digest.copy()
            partial.update(f"{block.head}\x1f{block.text[: m * CHARS_PER_TOKEN]}\x1d{m}".encode())
            out[wanted[i]] = partial.hexdigest()
            i += 1
        digest.update(f"{block.head}\x1f{block.text}\x1e".encode())
        start = end
    return out


def _split_writes(read: int, writes: list[tuple[int, str]]) -> CacheUse:
    """Attribute newly written tokens to the TTL of the breakpoint that closes each stretch."""
    use = CacheUse(read=read)
    edge = read
    for end, label in sorted(writes):
        if end <= edge:
            continue
        use.written_by_ttl[label] = use.written_by_ttl.get(label, 0) + end - edge
        edge = end
    use.written = edge - read
    return use


def anthropic_validate(prompt: Prompt) -> None:
    """≤ 4 breakpoints, and 1h entries may not follow 5m ones (spec §6.2)."""
    marks = [prompt.blocks[i].breakpoint for i in prompt.breakpoints()]
    if len(marks) > ANTHROPIC_MAX_BREAKPOINTS:
        raise bad_request(
            f"A maximum of {ANTHROPIC_MAX_BREAKPOINTS} blocks with cache_control "
            f"may be provided. Found {len(marks)}."
        )
    seen_5m = False
    for mark in marks:
        ttl = mark.ttl if mark else None
        if ttl == "1h" and seen_5m:
            raise bad_request(
                "A 'ttl'='1h' cache_control block must not come after a "
                "'ttl'='5m' cache_control block."
            )
        seen_5m = seen_5m or ttl in (None, "5m")


def anthropic_use(
    cache: PrefixCache, *, namespace: str, prompt: Prompt, min_tokens: int, lookback: int
) -> CacheUse:
    """Read the longest cached breakpoint prefix (20-block lookback), write the rest.

    Below the model's minimum a breakpoint silently does nothing (no error, counters 0).
    """
    marks = prompt.breakpoints()
    if not marks:
        return CacheUse()
    hashes = block_hashes(namespace, prompt)
    ends = [prompt.tokens_through(i) for i in range(len(prompt.blocks))]
    best, best_key = 0, None
    for b in marks:
        for j in range(b, max(-1, b - lookback), -1):
            if ends[j] < min_tokens:
                break
            if cache.live(hashes[j]):
                if ends[j] > best:
                    best, best_key = ends[j], hashes[j]
                break
    if best_key is not None:
        cache.touch(best_key)
    writes: list[tuple[int, str]] = []
    for b in marks:
        mark = prompt.blocks[b].breakpoint
        label = (mark.ttl if mark else None) or "5m"
        if ends[b] < min_tokens:
            continue
        if ends[b] <= best:
            cache.touch(hashes[b])
            continue
        cache.put(hashes[b], TTL_SECONDS[label])
        writes.append((ends[b], label))
    return _split_writes(best, writes)


@dataclass(frozen=True)
class OpenAICachePlan:
    """How one OpenAI request may use the cache, decided from the model and its options."""

    namespace: str
    explicit_breakpoints: bool
    """GPT-5.6+: content-part breakpoints count; older models never get here with any."""
    implicit: bool
    """Automatic 128-token-step caching (old models always; 5.6+ unless mode=explicit)."""
    ttl_label: str
    report_writes: bool
    """GPT-5.6+ reports (and bills) `cache_write_tokens`; older models write for free."""
    min_tokens: int = 1024
    increment: int = 128
    in_memory_ttl: float = 600.0


def openai_use(cache: PrefixCache, *, plan: OpenAICachePlan, prompt: Prompt) -> CacheUse:
    total = prompt.tokens
    marks: list[tuple[int, str]] = []
    if plan.explicit_breakpoints:
        for i in prompt.breakpoints()[-OPENAI_MAX_READ_BREAKPOINTS:]:
            mark = prompt.blocks[i].breakpoint
            marks.append((prompt.tokens_through(i), (mark.ttl if mark else None) or plan.ttl_label))
    if not plan.implicit and not marks:
        return CacheUse()
    steps: list[int] = []
    if plan.implicit and total >= plan.min_tokens:
        steps = list(range(plan.min_tokens, total + 1, plan.increment))
    eligible = [(end, label) for end, label in marks if end >= plan.min_tokens]
    hashes = token_hashes(plan.namespace, prompt, steps + [end for end, _ in eligible])
    best = 0
    for pos in sorted(set(steps + [end for end, _ in eligible]), reverse=True):
        if cache.live(hashes[pos]):
            best = pos
            cache.touch(hashes[pos])
            break

    def ttl_of(label: str) -> float:
        return plan.in_memory_ttl if label == "in_memory" else TTL_SECONDS[label]

    writes: list[tuple[int, str]] = []
    for pos in steps:
        if pos > best:
            cache.put(hashes[pos], ttl_of(plan.ttl_label))
    if steps and steps[-1] > best:
        writes.append((steps[-1], plan.ttl_label))
    keep = 3 if plan.implicit else 4
    for end, label in eligible[-keep:]:
        if end > best:
            cache.put(hashes[end], ttl_of(label))
            writes.append((end, label))
    use = _split_writes(best, writes)
    if not plan.report_writes:
        return CacheUse(read=best)
    return use
