"""Anthropic Messages over the official SDK."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import anthropic

from lanes.usage import Usage
from workers.providers.base import (
    ApiName,
    FinishReason,
    ProviderCallError,
    ProviderRequest,
    ProviderResult,
    TextBlock,
    error_kind,
    retryable,
)
from workers.redact import redact

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
    "tool_use": "tool",
    "pause_turn": "other",
}


def _blocks(blocks: tuple[TextBlock, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in blocks:
        block: dict[str, Any] = {"type": "text", "text": b.text}
        if b.cache_ttl:
            block["cache_control"] = {"type": "ephemeral", "ttl": b.cache_ttl}
        out.append(block)
    return out


class AnthropicProvider:
    def __init__(self, *, client: anthropic.Anthropic, secrets: tuple[str, ...] = ()) -> None:
        self.name = "anthropic"
        self.client = client
        self._secrets = secrets

    def build_body(self, request: ProviderRequest) -> dict[str, Any]:
        system = list(request.system)
        if request.json_schema is not None:
            # No typed structured-output parameter in this SDK version: ask in a dynamic block
            # placed after every cache breakpoint, so it never invalidates the cached prefix.
            system.append(
                TextBlock(
                    "Reply with only a JSON value matching this JSON schema: "
                    + json.dumps(request.json_schema, sort_keys=True)
                )
            )
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_output_tokens,
            "messages": [{"role": t.role, "content": _blocks(t.blocks)} for t in request.turns],
        }
        if system:
            body["system"] = _blocks(tuple(system))
        body.update(request.extra)
        return body

    def parse_body(self, api: ApiName, body: dict[str, Any]) -> ProviderResult:
        text = "".join(
            b.get("text") or "" for b in body.get("content") or [] if b.get("type") == "text"
        )
        raw = body.get("stop_reason")
        finish = _STOP.get(raw or "", "other")
        return ProviderResult(
            text=text,
            finish_reason=finish,
            raw_finish_reason=raw,
            usage=Usage.from_anthropic(body.get("usage")),
            model=body.get("model") or "",
            refusal=text or "refused" if finish == "refusal" else None,
        )

    def call(self, request: ProviderRequest) -> ProviderResult:
        body = self.build_body(request)
        started = time.perf_counter()
        try:
            resp = self.client.messages.with_raw_response.create(
                **body, extra_headers=request.trace_headers()
            )
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            kind = error_kind(status)
            raise ProviderCallError(
                redact(f"anthropic {status} {kind}: {str(exc.message)[:500]}", self._secrets),
                kind=kind,
                status=status,
                retryable=retryable(status),
                request_id=exc.request_id,
            ) from None
        except anthropic.APITimeoutError:
            raise ProviderCallError(
                "anthropic: timed out after retries", kind="timeout", retryable=True
            ) from None
        except anthropic.APIConnectionError:
            raise ProviderCallError(
                "anthropic: connection failed", kind="connection", retryable=True
            ) from None
        latency = (time.perf_counter() - started) * 1000
        result = self.parse_body("messages", json.loads(resp.http_response.content))
        return replace(result, latency_ms=latency, request_id=resp.headers.get("request-id"))
