"""Anthropic realtime bodies: Messages and count_tokens (spec §3.7).

Usage keeps Anthropic's rule that `input_tokens`, `cache_creation_input_tokens` and
`cache_read_input_tokens` are *disjoint* (§3.2), with creation split by TTL; inside a batch
`usage.service_tier` is `"batch"`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from workers.simulator.answers import json_answer
from workers.simulator.cache import PrefixCache, anthropic_use, anthropic_validate
from workers.simulator.config import SimConfig
from workers.simulator.errors import SimError, bad_request
from workers.simulator.generation import Call, Outcome, generate
from workers.simulator.tokens import count_text

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "refusal": "refusal",
    "stop_sequence": "stop_sequence",
}


def validate(body: dict[str, Any], *, counting: bool = False) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad_request("model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: at least one message is required")
    if counting:
        return
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise bad_request("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise bad_request("max_tokens: Input should be a non-negative integer")


def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice")
    if not tools or not isinstance(choice, dict) or choice.get("type") not in ("any", "tool"):
        return None
    wanted = choice.get("name") if choice.get("type") == "tool" else None
    return next((t for t in tools if wanted is None or t["name"] == wanted), None)


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def messages(call: Call, config: SimConfig, cache: PrefixCache) -> Outcome:
    body = call.body
    validate(body)
    max_tokens: int = body["max_tokens"]
    if call.batch and (max_tokens == 0 or body.get("stream") or body.get("speed") == "fast"):
        raise bad_request("max_tokens=0, stream and speed=fast are not supported in batches.")
    anthropic_validate(call.prompt)
    use = anthropic_use(
        cache,
        namespace=f"anthropic|{call.model}",
        prompt=call.prompt,
        min_tokens=config.anthropic_min_cache(call.model),
        lookback=config.anthropic_lookback_blocks,
    )
    content: list[dict[str, Any]] = []
    stop_sequence = None
    forced = _forced_tool(body)
    if max_tokens == 0:  # cache pre-warm: nothing generated
        stop_reason, output = "max_tokens", 0
    elif forced is not None and (call.rule is None or call.rule.behaviour == "normal"):
        args = json_answer(
            model=call.model, prompt_text=call.prompt.text, schema=forced.get("input_schema")
        )
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": forced["name"],
                "input": _loads(args),
            }
        )
        stop_reason, output = "tool_use", count_text(args)
    else:
        schema = _schema(body)
        gen = generate(
            call,
            config,
            max_tokens=max_tokens,
            json_schema=schema,
            json_mode=schema is not None,
            stop=body.get("stop_sequences"),
        )
        if gen.text or gen.finish == "refusal":
            content.append({"type": "text", "text": gen.text})
        stop_reason, output = _STOP_REASONS[gen.finish], gen.output_tokens
        stop_sequence = gen.stop_sequence
    usage = {
        "input_tokens": call.prompt.tokens - use.read - use.written,
        "output_tokens": output,
        "cache_creation_input_tokens": use.written,
        "cache_read_input_tokens": use.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": use.written_by_ttl.get("5m", 0),
            "ephemeral_1h_input_tokens": use.written_by_ttl.get("1h", 0),
        },
        "service_tier": "batch" if call.batch else "standard",
    }
    result = {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
    return Outcome(200, result, call.request_id, output_tokens=output)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:  # a schema can only produce valid JSON; keep the guard honest
        raise SimError(500, "Simulator produced invalid tool input.") from exc


def count_tokens(call: Call) -> Outcome:
    validate(call.body, counting=True)
    return Outcome(200, {"input_tokens": call.prompt.tokens}, call.request_id)


def models(config: SimConfig) -> dict[str, Any]:
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
        for m in config.models
        if m.startswith("claude")
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
