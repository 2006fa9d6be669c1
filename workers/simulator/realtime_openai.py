"""OpenAI (and Azure OpenAI) realtime bodies: Chat Completions, Responses, token counts.

Shapes follow spec §3.1-§3.3 and the OpenAPI schemas' required keys; usage keeps OpenAI's
rule that cached and written tokens are *subsets* of the prompt tokens (§3.2).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from workers.simulator.answers import json_answer, token_logprobs
from workers.simulator.cache import CacheUse, OpenAICachePlan, PrefixCache, openai_use
from workers.simulator.config import SimConfig
from workers.simulator.errors import SimError, bad_request
from workers.simulator.generation import Call, Generation, Outcome, generate, int_param
from workers.simulator.prompts import Prompt
from workers.simulator.tokens import count_text

_VERSION = re.compile(r"^gpt-(\d+)(?:\.(\d+))?")


def model_version(model: str) -> tuple[int, int] | None:
    m = _VERSION.match(model)
    return None if m is None else (int(m.group(1)), int(m.group(2) or 0))


def supports_explicit_cache(model: str) -> bool:
    """GPT-5.6 and later (`gpt-5.6*`, `gpt-6*`, ...) take breakpoints and cache options."""
    version = model_version(model)
    return version is not None and version >= (5, 6)


def served_tier(requested: Any, *, batch: bool) -> str:
    if batch or requested in (None, "auto", "default"):
        return "default"
    return "priority" if requested == "fast" else str(requested)


def cache_plan(call: Call, config: SimConfig, *, responses: bool) -> OpenAICachePlan:
    """Validate the caching fields against the model and decide how the cache is used."""
    body, model = call.body, call.model
    options = body.get("prompt_cache_options")
    retention = body.get("prompt_cache_retention")
    new = supports_explicit_cache(model)
    if not new and options is not None:
        raise SimError(
            400,
            f"'prompt_cache_options' is not supported with model '{model}'.",
            param="prompt_cache_options",
            code="unsupported_parameter",
        )
    if not new and call.prompt.breakpoints():
        raise SimError(
            400,
            f"'prompt_cache_breakpoint' is not supported with model '{model}'.",
            param="prompt_cache_breakpoint",
            code="unsupported_parameter",
        )
    if options is not None and not isinstance(options, dict):
        raise bad_request("'prompt_cache_options' must be an object.", param="prompt_cache_options")
    options = options or {}
    if "ttl" in options and retention is not None:
        raise SimError(
            400,
            "Specify either 'prompt_cache_retention' or 'prompt_cache_options.ttl', not both.",
            param="prompt_cache_retention",
            code="invalid_parameter_combination",
        )
    if retention not in (None, "in_memory", "24h"):
        raise bad_request(
            f"Invalid 'prompt_cache_retention': {retention!r}.",
            param="prompt_cache_retention",
            code="invalid_value",
        )
    version = model_version(model)
    if retention == "in_memory" and version is not None and version >= (5, 5):
        raise bad_request(
            f"'prompt_cache_retention' 'in_memory' is not supported with model "
            f"'{model}'; use '24h'.",
            param="prompt_cache_retention",
            code="unsupported_value",
        )
    mode = options.get("mode", "implicit")
    if mode not in ("implicit", "explicit"):
        raise bad_request(
            f"Invalid 'prompt_cache_options.mode': {mode!r}.",
            param="prompt_cache_options.mode",
            code="invalid_value",
        )
    ttl = options.get("ttl", "30m")
    if ttl not in (("30m", "12h") if responses else ("30m",)):
        raise bad_request(
            f"Invalid 'prompt_cache_options.ttl': {ttl!r}.",
            param="prompt_cache_options.ttl",
            code="invalid_value",
        )
    key = body.get("prompt_cache_key") or ""
    namespace = f"{call.flavor}|{model}|{key}"
    legacy = OpenAICachePlan(
        namespace=namespace,
        explicit_breakpoints=False,
        implicit=True,
        ttl_label=retention or config.openai_default_retention,
        report_writes=False,
        min_tokens=config.openai_min_cache_tokens,
        increment=config.openai_cache_increment,
        in_memory_ttl=config.openai_in_memory_ttl_seconds,
    )
    if not new:
        return legacy
    return replace(
        legacy,
        explicit_breakpoints=True,
        implicit=mode == "implicit",
        ttl_label=ttl,
        report_writes=True,
    )


def _json_format(fmt: Any) -> tuple[bool, dict[str, Any] | None]:
    """(json mode?, schema) from a Chat `response_format` or a Responses `text.format`."""
    if not isinstance(fmt, dict):
        return False, None
    if fmt.get("type") == "json_object":
        return True, None
    if fmt.get("type") == "json_schema":
        holder = fmt.get("json_schema", fmt)
        schema = holder.get("schema") if isinstance(holder, dict) else None
        return True, schema if isinstance(schema, dict) else None
    return False, None


def _forced_function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool the request forces (`tool_choice` required / named), if any."""
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if not tools or choice in (None, "auto", "none"):
        return None
    wanted = None
    if isinstance(choice, dict):
        wanted = choice.get("name") or (choice.get("function") or {}).get("name")
    for tool in tools:
        fn = tool.get("function", tool)
        if wanted is None or fn.get("name") == wanted:
            return {"name": fn.get("name", "tool"), "parameters": fn.get("parameters")}
    return None


def _stops(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(s) for s in value]


def chat_usage(prompt: Prompt, use: CacheUse, output: int) -> dict[str, Any]:
    total = prompt.tokens
    return {
        "prompt_tokens": total,
        "completion_tokens": output,
        "total_tokens": total + output,
        "prompt_tokens_details": {
            "cached_tokens": use.read,
            "cache_write_tokens": use.written,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_choice(
    call: Call, gen: Generation, index: int, *, logprobs: bool, top: int
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": gen.text,
        "refusal": None,
        "annotations": [],
    }
    finish = {"refusal": "stop", "stop_sequence": "stop"}.get(gen.finish, gen.finish)
    lp: dict[str, Any] | None = None
    if gen.finish == "refusal":
        message["content"] = None
        message["refusal"] = gen.text
    if logprobs:
        entries = token_logprobs(gen.text, seed=gen.seed, low=gen.low_logprobs, top=top)
        lp = (
            {"content": None, "refusal": entries}
            if gen.finish == "refusal"
            else {"content": entries, "refusal": None}
        )
    return {"index": index, "message": message, "finish_reason": finish, "logprobs": lp}


def chat(call: Call, config: SimConfig, cache: PrefixCache) -> Outcome:
    body = call.body
    plan = cache_plan(call, config, responses=False)
    max_tokens = int_param(body, "max_completion_tokens", "max_tokens")
    n = int_param(body, "n", low=1) or 1
    logprobs = bool(body.get("logprobs"))
    top = int_param(body, "top_logprobs") or 0
    if top and not logprobs:
        raise bad_request("'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")
    json_mode, schema = _json_format(body.get("response_format"))
    use = openai_use(cache, plan=plan, prompt=call.prompt)
    forced = _forced_function(body)
    choices: list[dict[str, Any]] = []
    output = 0
    for i in range(n):
        if forced is not None and (call.rule is None or call.rule.behaviour == "normal"):
            args = json_answer(
                model=call.model, prompt_text=call.prompt.text, schema=forced["parameters"]
            )
            call_id = "call_" + uuid.uuid4().hex[:24]
            choices.append(
                {
                    "index": i,
                    "finish_reason": "tool_calls",
                    "logprobs": None,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {"name": forced["name"], "arguments": args},
                            }
                        ],
                    },
                }
            )
            output += count_text(args)
            continue
        gen = generate(
            call,
            config,
            max_tokens=max_tokens,
            json_schema=schema,
            json_mode=json_mode,
            stop=_stops(body.get("stop")),
            index=i,
        )
        choices.append(_chat_choice(call, gen, i, logprobs=logprobs, top=top))
        output += gen.output_tokens
    result = {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(call.now),
        "model": call.model,
        "choices": choices,
        "usage": chat_usage(call.prompt, use, output),
        "service_tier": served_tier(body.get("service_tier"), batch=call.batch),
        "system_fingerprint": "fp_llmlanes_sim",
    }
    return Outcome(200, result, call.request_id, output_tokens=output)


def responses_usage(prompt: Prompt, use: CacheUse, output: int) -> dict[str, Any]:
    total = prompt.tokens
    return {
        "input_tokens": total,
        "input_tokens_details": {
            "cached_tokens": use.read,
            "cache_write_tokens": use.written,
            "cache_write_tokens_details": {
                "ttl_30m_tokens": use.written_by_ttl.get("30m", 0),
                "ttl_12h_tokens": use.written_by_ttl.get("12h", 0),
            },
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total + output,
    }


def responses(call: Call, config: SimConfig, cache: PrefixCache) -> Outcome:
    body = call.body
    plan = cache_plan(call, config, responses=True)
    max_tokens = int_param(body, "max_output_tokens", low=1)
    text_cfg: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
    json_mode, schema = _json_format(text_cfg.get("format"))
    include = body.get("include") or []
    top = int_param(body, "top_logprobs") or 0
    use = openai_use(cache, plan=plan, prompt=call.prompt)
    forced = _forced_function(body)
    status, incomplete = "completed", None
    if forced is not None and (call.rule is None or call.rule.behaviour == "normal"):
        args = json_answer(
            model=call.model, prompt_text=call.prompt.text, schema=forced["parameters"]
        )
        output_items: list[dict[str, Any]] = [
            {
                "type": "function_call",
                "id": "fc_" + uuid.uuid4().hex[:24],
                "call_id": "call_" + uuid.uuid4().hex[:24],
                "name": forced["name"],
                "arguments": args,
                "status": "completed",
            }
        ]
        output = count_text(args)
    else:
        gen = generate(call, config, max_tokens=max_tokens, json_schema=schema, json_mode=json_mode)
        output = gen.output_tokens
        if gen.finish == "refusal":
            content: dict[str, Any] = {"type": "refusal", "refusal": gen.text}
        else:
            logprobs: list[dict[str, Any]] = []
            if "message.output_text.logprobs" in include:
                logprobs = token_logprobs(gen.text, seed=gen.seed, low=gen.low_logprobs, top=top)
            content = {
                "type": "output_text",
                "text": gen.text,
                "annotations": [],
                "logprobs": logprobs,
            }
        if gen.finish == "length":
            status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        output_items = [
            {
                "type": "message",
                "id": "msg_" + uuid.uuid4().hex[:24],
                "role": "assistant",
                "status": status,
                "content": [content],
            }
        ]
    result = {
        "id": "resp_" + uuid.uuid4().hex[:24],
        "object": "response",
        "created_at": int(call.now),
        "status": status,
        "completed_at": int(call.now) if status == "completed" else None,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": max_tokens,
        "model": call.model,
        "output": output_items,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": served_tier(body.get("service_tier"), batch=call.batch),
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text_cfg.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": responses_usage(call.prompt, use, output),
        "metadata": body.get("metadata") or {},
    }
    return Outcome(200, result, call.request_id, output_tokens=output)


def input_tokens(call: Call) -> Outcome:
    body = {"object": "response.input_tokens", "input_tokens": call.prompt.tokens}
    return Outcome(200, body, call.request_id)


def models(config: SimConfig, now: float) -> dict[str, Any]:
    owner = {True: "anthropic", False: "openai"}
    return {
        "object": "list",
        "data": [
            {
                "id": m,
                "object": "model",
                "created": int(now),
                "owned_by": owner[m.startswith("claude")],
            }
            for m in config.models
        ],
    }
