"""Server-sent-event renderings of a finished answer (spec §3.10), for `stream: true`.

The simulator computes the whole answer first and then replays it as events in one
Content-Length body: the SDKs' stream parsers cannot tell, and tests stay deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from workers.simulator.tokens import split_tokens

_PIECE_TOKENS = 4


def _pieces(text: str) -> Iterator[str]:
    tokens = split_tokens(text)
    for i in range(0, len(tokens), _PIECE_TOKENS):
        yield "".join(tokens[i : i + _PIECE_TOKENS])


def _data(payload: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def chat_stream(result: dict[str, Any], *, include_usage: bool) -> bytes:
    base = {
        k: result[k]
        for k in ("id", "object", "created", "model", "service_tier", "system_fingerprint")
    }
    base["object"] = "chat.completion.chunk"
    out: list[str] = []

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> None:
        payload = {**base, "choices": choices}
        if include_usage:
            payload["usage"] = usage
        out.append(_data(payload))

    for choice in result["choices"]:
        i, message = choice["index"], choice["message"]
        chunk(
            [
                {
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "finish_reason": None,
                    "logprobs": None,
                }
            ]
        )
        for piece in _pieces(message.get("content") or ""):
            chunk(
                [{"index": i, "delta": {"content": piece}, "finish_reason": None, "logprobs": None}]
            )
        if message.get("refusal"):
            chunk(
                [
                    {
                        "index": i,
                        "delta": {"refusal": message["refusal"]},
                        "finish_reason": None,
                        "logprobs": None,
                    }
                ]
            )
        if message.get("tool_calls"):
            calls = [{"index": k, **call} for k, call in enumerate(message["tool_calls"])]
            chunk(
                [
                    {
                        "index": i,
                        "delta": {"tool_calls": calls},
                        "finish_reason": None,
                        "logprobs": None,
                    }
                ]
            )
        chunk(
            [{"index": i, "delta": {}, "finish_reason": choice["finish_reason"], "logprobs": None}]
        )
    if include_usage:
        chunk([], result["usage"])
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def responses_stream(result: dict[str, Any]) -> bytes:
    out: list[str] = []
    seq = 0

    def emit(kind: str, **fields: Any) -> None:
        nonlocal seq
        out.append(_data({"type": kind, "sequence_number": seq, **fields}, kind))
        seq += 1

    pending = {**result, "status": "in_progress", "output": [], "usage": None, "completed_at": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(result["output"]):
        emit(
            "response.output_item.added",
            output_index=index,
            item={**item, "content": []} if item["type"] == "message" else item,
        )
        for part_index, part in enumerate(item.get("content", [])):
            item_id = item["id"]
            where = {"item_id": item_id, "output_index": index, "content_index": part_index}
            if part["type"] != "output_text":
                emit("response.content_part.added", part=part, **where)
                emit("response.content_part.done", part=part, **where)
                continue
            emit("response.content_part.added", part={**part, "text": ""}, **where)
            for piece in _pieces(part["text"]):
                emit("response.output_text.delta", delta=piece, logprobs=[], **where)
            emit("response.output_text.done", text=part["text"], logprobs=[], **where)
            emit("response.content_part.done", part=part, **where)
        emit("response.output_item.done", output_index=index, item=item)
    final = "response.completed" if result["status"] == "completed" else "response.incomplete"
    emit(final, response=result)
    return "".join(out).encode()


def anthropic_stream(result: dict[str, Any]) -> bytes:
    usage = result["usage"]
    start_usage = {**usage, "output_tokens": 1}
    out = [
        _data(
            {
                "type": "message_start",
                "message": {
                    **result,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            "message_start",
        )
    ]
    for index, block in enumerate(result["content"]):
        if block["type"] == "text":
            out.append(
                _data(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                    "content_block_start",
                )
            )
            for piece in _pieces(block["text"]):
                out.append(
                    _data(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                        "content_block_delta",
                    )
                )
        else:
            out.append(
                _data(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                    "content_block_start",
                )
            )
            out.append(
                _data(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block.get("input", {})),
                        },
                    },
                    "content_block_delta",
                )
            )
        out.append(_data({"type": "content_block_stop", "index": index}, "content_block_stop"))
    out.append(
        _data(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": result["stop_reason"],
                    "stop_sequence": result["stop_sequence"],
                },
                "usage": {"output_tokens": usage["output_tokens"]},
            },
            "message_delta",
        )
    )
    out.append(_data({"type": "message_stop"}, "message_stop"))
    return "".join(out).encode()
