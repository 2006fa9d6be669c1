"""Deterministic token counting: one token per started group of 4 characters.

Real tokenizers differ per model and would make tests guess; this rule is the simulator's
contract so tests (and `count_tokens` / `responses/input_tokens`) can predict usage exactly:

- a text piece of `n` characters (Unicode code points) is `ceil(n / 4)` tokens;
- every content block is counted on its own (a prompt is the sum of its blocks), so block
  boundaries are token boundaries, as Anthropic cache breakpoints need;
- roles and message structure cost nothing (they still change the cache key);
- a non-text part (image, audio, file) costs a flat `MEDIA_TOKENS`;
- a tool definition costs the tokens of its canonical JSON (`canonical_json`).

So `"x" * 4096` in one block is exactly 1,024 tokens.
"""

from __future__ import annotations

import json
from typing import Any

CHARS_PER_TOKEN = 4
MEDIA_TOKENS = 85


def count_text(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def split_tokens(text: str) -> list[str]:
    """The pieces `count_text` counts: 4-character chunks (the last may be shorter)."""
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def join_tokens(tokens: list[str]) -> str:
    return "".join(tokens)


def truncate_text(text: str, max_tokens: int) -> str:
    return text[: max(max_tokens, 0) * CHARS_PER_TOKEN]


def canonical_json(value: Any) -> str:
    """Stable JSON text of a value, so equal tool definitions hash and count alike."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
