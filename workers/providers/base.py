"""Provider-neutral request/result types and the error every adapter raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from lanes.usage import Usage

ApiName = Literal["chat", "responses", "messages"]
FinishReason = Literal["stop", "length", "refusal", "content_filter", "tool", "error", "other"]

ENDPOINTS: dict[str, str] = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
}


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str
    cache_ttl: str | None = None
    """A cache breakpoint after this block, with its TTL ("5m"/"1h" Anthropic, "30m"/"12h"
    OpenAI explicit breakpoints). None: no breakpoint here."""


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Literal["user", "assistant"]
    blocks: tuple[TextBlock, ...]


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    provider: str
    api: ApiName
    model: str
    turns: tuple[ChatTurn, ...]
    system: tuple[TextBlock, ...] = ()
    max_output_tokens: int = 1024
    json_schema: dict[str, Any] | None = None
    logprobs: bool = False
    prompt_cache_key: str | None = None
    explicit_breakpoints: bool = False
    """OpenAI GPT-5.6+: send `prompt_cache_breakpoint` parts (older models reject them)."""
    extra: dict[str, Any] = field(default_factory=dict)
    client_request_id: str | None = None
    """Sent as `X-Client-Request-Id` so provider-side logs can be matched to the job."""
    cache_segments: tuple[str, ...] = ()
    """`name@tag` of the static segments carried (for per-segment cache hit ratios)."""

    @property
    def endpoint(self) -> str:
        return ENDPOINTS[self.api]

    def trace_headers(self) -> dict[str, str] | None:
        """`X-Client-Request-Id: <job id>` so provider-side logs match our jobs."""
        return {"X-Client-Request-Id": self.client_request_id} if self.client_request_id else None


@dataclass(frozen=True, slots=True)
class ProviderResult:
    text: str
    finish_reason: FinishReason
    raw_finish_reason: str | None
    usage: Usage
    model: str
    logprobs: list[float] | None = None
    request_id: str | None = None
    latency_ms: float = 0.0
    refusal: str | None = None


def error_kind(status: int) -> str:
    """One classification of HTTP failures for every adapter (and the ledger's error_kind)."""
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status in (400, 404, 413, 422):
        return "bad_request"
    return "overloaded" if status == 529 else "server"


def retryable(status: int) -> bool:
    """What the SDKs themselves retry (408, 409, 429, 5xx): worth another attempt later."""
    return status in (408, 409, 429) or status >= 500


class ProviderCallError(Exception):
    """A provider call failed after the SDK's own retries. Never carries the API key."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retryable: bool = False,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.request_id = request_id


class Provider(Protocol):
    name: str

    def build_body(self, request: ProviderRequest) -> dict[str, Any]: ...

    def parse_body(self, api: ApiName, body: dict[str, Any]) -> ProviderResult: ...

    def call(self, request: ProviderRequest) -> ProviderResult: ...
