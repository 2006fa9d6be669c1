"""Fault queues (what the next attempts answer) and per-model scripts (how a model behaves).

Faults are consumed one per HTTP attempt, so a test queues "429, then 500" and watches the
SDK retry through them (`x-stainless-retry-count` in the request log tells the attempt).
Scripts shape *successful* answers for cascade tests: a rule matching a model and a prompt
makes that model truncate, refuse, go blank, sound unsure (low logprobs), fail, say a fixed
text, or slow down; they apply to batch lines too because the batch engine runs the same
executor.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workers.simulator.errors import default_message, error_body, request_id_header
from workers.simulator.protocol import Flavor, SimResponse

BEHAVIOURS = frozenset(
    {"normal", "truncate", "refuse", "empty", "low_logprobs", "error", "text", "latency"}
)


def _from_json(cls: Any, data: dict[str, Any], what: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{what}: must be an object")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}")
    return cls(**data)


@dataclass
class Fault:
    """One attempt's forced outcome; `status=None` only delays, then answers normally."""

    status: int | None = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    """JSON value or raw text replacing the provider's error envelope."""
    delay_ms: float = 0.0
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status: must be an HTTP status or null")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        fault: Fault = _from_json(cls, data, "fault")
        return fault

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def response(self, flavor: Flavor, rid: str) -> SimResponse | None:
        if self.status is None:
            return None
        headers = {**request_id_header(flavor, rid)}
        if self.retry_after is not None:
            headers["retry-after"] = _number(self.retry_after)
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = _number(self.retry_after_ms)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        headers.update(self.headers)
        if isinstance(self.body, str):
            return SimResponse(self.status, self.body.encode(), headers, "text/plain")
        if self.body is not None:
            return SimResponse(self.status, self.body, headers)
        message = self.message or default_message(self.status)
        body = error_body(
            flavor, self.status, message, code=self.code, error_type=self.error_type, rid=rid
        )
        return SimResponse(self.status, body, headers)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class FaultQueues:
    """FIFO of faults per `(METHOD, canonical path)` and per model name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], deque[Fault]] = {}

    def push(
        self,
        faults: list[Fault],
        *,
        method: str = "POST",
        path: str | None = None,
        model: str | None = None,
    ) -> int:
        if (path is None) == (model is None):
            raise ValueError("give exactly one of path or model")
        key = ("MODEL", model) if model is not None else (method.upper(), path or "")
        with self._lock:
            queue = self._queues.setdefault(key, deque())
            queue.extend(faults)
            return len(queue)

    def take(self, *, method: str, path: str, model: str | None) -> Fault | None:
        """The next fault for this attempt: path queue first (exact method, then `*`)."""
        keys = [(method.upper(), path), ("*", path)]
        if model:
            keys.append(("MODEL", model))
        with self._lock:
            for key in keys:
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"method": m, "path": p, "count": len(q)}
                if m != "MODEL"
                else {"model": p, "count": len(q)}
                for (m, p), q in self._queues.items()
                if q
            ]

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


@dataclass
class ScriptRule:
    """`behaviour` for prompts to `model` (glob) containing `contains` / matching `regex`.

    No `contains` and no `regex` (or `match: "always"`) matches every prompt. `uses` limits
    how many calls the rule shapes before it retires (None: forever).
    """

    behaviour: str = "normal"
    model: str | None = None
    contains: str | None = None
    regex: str | None = None
    match: str | None = None
    uses: int | None = None
    text: str | None = None
    """`text`: the exact answer; `refuse`: the refusal wording."""
    status: int = 500
    error_type: str | None = None
    message: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: float | None = None
    truncate_tokens: int | None = None
    """`truncate`: tokens kept (default: half the natural answer, at least 1)."""
    id: int = 0

    def __post_init__(self) -> None:
        if self.behaviour == "latency_ms":
            self.behaviour = "latency"
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour: must be one of {sorted(BEHAVIOURS)}")
        if self.match not in (None, "always"):
            raise ValueError("match: only 'always' is supported (use contains/regex)")
        if self.regex is not None:
            re.compile(self.regex)
        if self.uses is not None and self.uses < 1:
            raise ValueError("uses: must be >= 1 or null")
        if self.behaviour == "error" and not 400 <= self.status <= 599:
            raise ValueError("status: an error rule needs a 4xx/5xx status")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScriptRule:
        rule: ScriptRule = _from_json(cls, data, "script rule")
        return rule

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, model: str, prompt_text: str) -> bool:
        if self.model is not None and not fnmatch.fnmatchcase(model, self.model):
            return False
        if self.contains is not None and self.contains not in prompt_text:
            return False
        return self.regex is None or re.search(self.regex, prompt_text) is not None


class ScriptBook:
    """Ordered rules; the first live match shapes the call and spends one use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[ScriptRule] = []
        self._next_id = 1

    def add(self, rule: ScriptRule) -> ScriptRule:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def match(self, model: str, prompt_text: str) -> ScriptRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(model, prompt_text):
                    if rule.uses is not None:
                        rule.uses -= 1
                        if rule.uses == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) < before

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
