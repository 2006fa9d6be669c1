"""OpenAI Chat Completions and Responses (also Azure OpenAI and OpenAI-compatible servers)."""

from __future__ import annotations

import json
import time
from typing import Any

import openai

from lanes.usage import Usage
from workers.providers.base import (
    ApiName,
    ChatTurn,
    FinishReason,
    ProviderCallError,
    ProviderRequest,
    ProviderResult,
    TextBlock,
    error_kind,
    retryable,
)
from workers.redact import redact

_CHAT_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool",
    "function_call": "tool",
}


def _joined(blocks: tuple[TextBlock, ...]) -> str:
    return "\n\n".join(b.text for b in blocks)


def _chat_content(blocks: tuple[TextBlock, ...], *, explicit: bool) -> str | list[dict[str, Any]]:
    if not explicit or not any(b.cache_ttl for b in blocks):
        return _joined(blocks)
    parts: list[dict[str, Any]] = []
    for b in blocks:
        part: dict[str, Any] = {"type": "text", "text": b.text}
        if b.cache_ttl:
            part["prompt_cache_breakpoint"] = {"mode": "explicit", "ttl": b.cache_ttl}
        parts.append(part)
    return parts


def _responses_content(turn: ChatTurn, *, explicit: bool) -> list[dict[str, Any]]:
    kind = "input_text" if turn.role == "user" else "output_text"
    parts: list[dict[str, Any]] = []
    for b in turn.blocks:
        part: dict[str, Any] = {"type": kind, "text": b.text}
        if explicit and b.cache_ttl and kind == "input_text":
            part["prompt_cache_breakpoint"] = {"mode": "explicit", "ttl": b.cache_ttl}
        parts.append(part)
    return parts


class OpenAIProvider:
    """One client per process; the SDK's own retries and an explicit timeout (never 600 s)."""

    def __init__(self, *, name: str, client: openai.OpenAI, secrets: tuple[str, ...] = ()) -> None:
        self.name = name
        self.client = client
        self._secrets = secrets

    def build_body(self, request: ProviderRequest) -> dict[str, Any]:
        if request.api == "responses":
            return self._responses_body(request)
        explicit = request.explicit_breakpoints
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append(
                {"role": "system", "content": _chat_content(request.system, explicit=explicit)}
            )
        for turn in request.turns:
            messages.append(
                {"role": turn.role, "content": _chat_content(turn.blocks, explicit=explicit)}
            )
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_completion_tokens": request.max_output_tokens,
        }
        if request.logprobs:
            body["logprobs"] = True
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema},
            }
        if request.prompt_cache_key:
            body["prompt_cache_key"] = request.prompt_cache_key
        body.update(request.extra)
        return body

    def _responses_body(self, request: ProviderRequest) -> dict[str, Any]:
        explicit = request.explicit_breakpoints
        body: dict[str, Any] = {
            "model": request.model,
            "input": [
                {"role": t.role, "content": _responses_content(t, explicit=explicit)}
                for t in request.turns
            ],
            "max_output_tokens": request.max_output_tokens,
        }
        if request.system:
            body["instructions"] = _joined(request.system)
        if request.json_schema is not None:
            body["text"] = {
                "format": {"type": "json_schema", "name": "answer", "schema": request.json_schema}
            }
        if request.prompt_cache_key:
            body["prompt_cache_key"] = request.prompt_cache_key
        body.update(request.extra)
        return body

    def parse_body(self, api: ApiName, body: dict[str, Any]) -> ProviderResult:
        if api == "responses":
            return _parse_responses(body)
        return _parse_chat(body)

    def call(self, request: ProviderRequest) -> ProviderResult:
        body = self.build_body(request)
        headers = request.trace_headers()
        started = time.perf_counter()
        try:
            # Raw responses: we parse the JSON once into our own result instead of having
            # the SDK build its pydantic models first (measurable on the realtime hot path).
            if request.api == "responses":
                resp: Any = self.client.responses.with_raw_response.create(
                    **body, extra_headers=headers
                )
            else:
                resp = self.client.chat.completions.with_raw_response.create(
                    **body, extra_headers=headers
                )
        except openai.APIStatusError as exc:
            raise _status_error(exc, self.name, self._secrets) from None
        except openai.APITimeoutError:
            raise ProviderCallError(
                f"{self.name}: timed out after retries", kind="timeout", retryable=True
            ) from None
        except openai.APIConnectionError as exc:
            raise ProviderCallError(
                f"{self.name}: connection failed ({type(exc.__cause__).__name__})",
                kind="connection",
                retryable=True,
            ) from None
        latency = (time.perf_counter() - started) * 1000
        result = self.parse_body(request.api, json.loads(resp.http_response.content))
        return _with(result, latency_ms=latency, request_id=resp.headers.get("x-request-id"))


def _with(result: ProviderResult, **changes: Any) -> ProviderResult:
    from dataclasses import replace

    return replace(result, **changes)


def _status_error(
    exc: openai.APIStatusError, name: str, secrets: tuple[str, ...]
) -> ProviderCallError:
    status = exc.status_code
    kind = error_kind(status)
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = str(body.get("message") or exc.message)[:500]
    return ProviderCallError(
        redact(f"{name} {status} {body.get('type') or kind}: {detail}", secrets),
        kind=kind,
        status=status,
        retryable=retryable(status),
        request_id=exc.request_id,
    )


def _parse_chat(body: dict[str, Any]) -> ProviderResult:
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    refusal = message.get("refusal")
    raw = choice.get("finish_reason")
    finish: FinishReason = "refusal" if refusal else _CHAT_FINISH.get(raw or "", "other")
    logprobs = None
    lp = choice.get("logprobs") or {}
    if lp.get("content"):
        logprobs = [float(item["logprob"]) for item in lp["content"]]
    return ProviderResult(
        text=message.get("content") or "",
        finish_reason=finish,
        raw_finish_reason=raw,
        usage=Usage.from_openai(body.get("usage")),
        model=body.get("model") or "",
        logprobs=logprobs,
        refusal=refusal,
    )


def _parse_responses(body: dict[str, Any]) -> ProviderResult:
    texts: list[str] = []
    refusal = None
    for item in body.get("output") or []:
        if item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            if part.get("type") == "output_text":
                texts.append(part.get("text") or "")
            elif part.get("type") == "refusal":
                refusal = part.get("refusal") or "refused"
    status = body.get("status")
    reason = (body.get("incomplete_details") or {}).get("reason")
    finish: FinishReason
    if refusal:
        finish = "refusal"
    elif status == "incomplete" and reason == "max_output_tokens":
        finish = "length"
    elif status == "incomplete" and reason == "content_filter":
        finish = "content_filter"
    elif status == "completed":
        finish = "stop"
    else:
        finish = "other"
    return ProviderResult(
        text="".join(texts),
        finish_reason=finish,
        raw_finish_reason=reason or status,
        usage=Usage.from_openai(body.get("usage")),
        model=body.get("model") or "",
        refusal=refusal,
    )
