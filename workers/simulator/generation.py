"""What a simulated model "says" for one call, before any provider wraps it in its shape.

Both dialects share this: the deterministic answer, the script rule that may bend it, the
max-token cut and stop sequences. Keeping it provider-neutral is what lets a cascade test
script `refuse` once and see the right field set on Chat, Responses and Messages alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from workers.simulator.answers import REFUSAL_TEXT, json_answer, natural_answer, seed_for
from workers.simulator.config import SimConfig
from workers.simulator.errors import SimError, default_message
from workers.simulator.faults import ScriptRule
from workers.simulator.prompts import Prompt
from workers.simulator.protocol import Flavor
from workers.simulator.tokens import count_text, truncate_text

Finish = Literal["stop", "length", "refusal", "stop_sequence"]


@dataclass
class Call:
    """One realtime request as the engine sees it (HTTP attempt or batch line)."""

    flavor: Flavor
    endpoint: str
    body: dict[str, Any]
    model: str
    batch: bool
    request_id: str
    now: float
    prompt: Prompt = field(default_factory=Prompt)
    rule: ScriptRule | None = None


@dataclass
class Generation:
    text: str
    finish: Finish
    output_tokens: int
    low_logprobs: bool = False
    stop_sequence: str | None = None
    seed: int = 0


@dataclass
class Outcome:
    """A finished call: what to answer and how long (wall seconds) to wait first."""

    status: int
    body: dict[str, Any]
    request_id: str
    latency: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    output_tokens: int = 0


def raise_scripted_error(rule: ScriptRule) -> None:
    if rule.behaviour == "error":
        raise SimError(
            rule.status,
            rule.message or default_message(rule.status),
            code=rule.code,
            error_type=rule.error_type,
            headers=rule.headers,
        )


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    first: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop) if stop else -1
        if at >= 0 and (first is None or at < first[0]):
            first = (at, stop)
    if first is None:
        return text, None
    return text[: first[0]], first[1]


def generate(
    call: Call,
    config: SimConfig,
    *,
    max_tokens: int | None,
    json_schema: dict[str, Any] | None = None,
    json_mode: bool = False,
    stop: list[str] | None = None,
    index: int = 0,
) -> Generation:
    """The answer for `call`: natural (or JSON), then bent by its script rule, then cut."""
    rule = call.rule
    behaviour = rule.behaviour if rule else "normal"
    prompt_text = call.prompt.text
    seed = seed_for(call.model, prompt_text, str(index), "logprobs")
    if behaviour == "refuse":
        text = rule.text if rule and rule.text else REFUSAL_TEXT
        return Generation(text, "refusal", count_text(text), seed=seed)
    if behaviour == "empty":
        return Generation("", "stop", 0, seed=seed)
    if behaviour == "text" and rule is not None:
        text = rule.text or ""
    elif json_mode or json_schema is not None:
        text = json_answer(model=call.model, prompt_text=prompt_text, schema=json_schema)
    else:
        text = natural_answer(
            model=call.model,
            prompt_text=prompt_text,
            min_tokens=config.min_answer_tokens,
            max_tokens=config.max_answer_tokens,
            index=index,
        )
    finish: Finish = "stop"
    if behaviour == "truncate":
        keep = rule.truncate_tokens if rule and rule.truncate_tokens else None
        keep = keep if keep is not None else max(count_text(text) // 2, 1)
        text = truncate_text(text, keep)
        finish = "length"
    stop_hit: str | None = None
    if stop:
        text, stop_hit = _cut_at_stop(text, stop)
        if stop_hit is not None:
            finish = "stop_sequence"
    if max_tokens is not None and count_text(text) > max_tokens:
        text = truncate_text(text, max_tokens)
        finish = "length"
        stop_hit = None
    return Generation(
        text,
        finish,
        count_text(text),
        low_logprobs=behaviour == "low_logprobs",
        stop_sequence=stop_hit,
        seed=seed,
    )


def int_param(body: dict[str, Any], *names: str, low: int = 0) -> int | None:
    """The first of `names` present in body, validated as an integer ≥ low."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise SimError(
                400,
                f"Invalid '{name}': expected an integer >= {low}.",
                param=name,
                code="invalid_value",
            )
        return value
    return None
