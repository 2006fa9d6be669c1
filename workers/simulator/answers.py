"""Deterministic answers: the same model and prompt always give the same text and logprobs.

Everything here derives from a SHA-256 of (model, prompt text, salt), so a test can repeat a
call and compare, and a cascade test sees stable cheap-tier answers. The text is filler, not
language; what matters is its length, its JSON-ness when asked for, and its logprobs.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from workers.simulator.tokens import count_text, split_tokens

_WORDS = (
    "the",
    "queue",
    "lane",
    "batch",
    "cache",
    "token",
    "prompt",
    "answer",
    "model",
    "tier",
    "cheap",
    "fast",
    "slow",
    "result",
    "job",
    "worker",
    "deadline",
    "budget",
    "price",
    "ledger",
    "provider",
    "request",
    "window",
    "prefix",
    "value",
    "check",
    "escalate",
    "simple",
    "clear",
    "steady",
    "signal",
    "measure",
    "retry",
    "promote",
    "buffer",
    "flush",
    "ingest",
    "report",
    "summary",
    "context",
    "detail",
    "reason",
    "plan",
    "draft",
    "final",
    "input",
    "output",
    "simulated",
    "deterministic",
    "stable",
)

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


def seed_for(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def natural_answer(
    *, model: str, prompt_text: str, min_tokens: int, max_tokens: int, index: int = 0
) -> str:
    """Sentence-like filler whose length (in simulator tokens) lies in [min, max]."""
    rng = random.Random(seed_for(model, prompt_text, str(index)))
    low, high = sorted((max(min_tokens, 1), max(max_tokens, 1)))
    target = rng.randint(low, high)
    words: list[str] = []
    text = ""
    while count_text(text) < target:
        words.append(rng.choice(_WORDS))
        text = " ".join(words).capitalize() + "."
    while len(words) > 1 and count_text(text) > target:
        words.pop()
        text = " ".join(words).capitalize() + "."
    return text


def _value(schema: Any, rng: random.Random, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 6:
        return rng.choice(_WORDS)
    for combo in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combo)
        if isinstance(options, list) and options:
            return _value(options[0], rng, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _value(sub, rng, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [_value(schema.get("items"), rng, depth + 1) for _ in range(rng.randint(1, 2))]
    if kind == "integer":
        return rng.randint(0, 100)
    if kind == "number":
        return round(rng.random() * 100, 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))


def json_answer(*, model: str, prompt_text: str, schema: dict[str, Any] | None) -> str:
    """A JSON document: shaped by `schema` when given, else `{"answer": ...}`."""
    rng = random.Random(seed_for(model, prompt_text, "json"))
    if schema is None:
        value: Any = {"answer": " ".join(rng.choice(_WORDS) for _ in range(6))}
    else:
        value = _value(schema, rng, 0)
    return json.dumps(value, separators=(",", ":"))


def _logprob(rng: random.Random, low: bool) -> float:
    if low:
        return round(-(2.5 + rng.random()), 4)
    return round(-(0.001 + rng.random() * 0.15), 4)


def token_logprobs(text: str, *, seed: int, low: bool, top: int) -> list[dict[str, Any]]:
    """Chat-style `logprobs.content` entries, one per simulator token of `text`.

    `low=True` puts every chosen token near -3 (an unsure model) for cascade tests.
    """
    rng = random.Random(seed)
    entries: list[dict[str, Any]] = []
    for token in split_tokens(text):
        lp = _logprob(rng, low)
        alternatives = [{"token": token, "logprob": lp, "bytes": list(token.encode())}]
        for k in range(max(top, 0) - 1):
            alt = rng.choice(_WORDS)[:4]
            alt_lp = round(lp - 1.0 - k - rng.random(), 4)
            alternatives.append({"token": alt, "logprob": alt_lp, "bytes": list(alt.encode())})
        entries.append(
            {
                "token": token,
                "logprob": lp,
                "bytes": list(token.encode()),
                "top_logprobs": alternatives[: max(top, 0)],
            }
        )
    return entries
