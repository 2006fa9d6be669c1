"""Provider batch APIs over the official SDKs, reduced to what the deferrable lane needs.

OpenAI and Azure: Files API (purpose `batch`) + Batches API, tagged with our local batch id in
`metadata`. Anthropic: Message Batches (inline requests; no metadata). Both creates run with
the SDK's retries OFF: neither SDK sends an idempotency key, so a retried create after a 500
that had in fact succeeded would make a duplicate batch (spec §8.12). The submitter retries
itself, after listing to see whether the first attempt took effect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import anthropic
import openai

from lanes.flush import LineOutcome
from workers.batch_errors import BatchProviderError, BatchRejectedError
from workers.redact import redact

METADATA_KEY = "llm_lanes_batch"
LIST_PAGES = 5
"""How far back reconciliation looks (pages of 100 newest batches)."""

OPENAI_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


@dataclass(frozen=True)
class ProviderBatch:
    id: str
    status: str
    """Lower-cased provider status (Azure may send `Validating`)."""
    terminal: bool
    created_at: datetime | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Validation errors of a `failed` OpenAI batch."""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        c = self.counts
        return int(c.get("total") or sum(v for k, v in c.items() if k != "total"))

    @property
    def failed_validation(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class ResultLine:
    custom_id: str
    outcome: LineOutcome
    body: dict[str, Any] | None = None
    status: int | None = None
    error: str | None = None
    request_id: str | None = None


class BatchClient(Protocol):
    provider: str

    def retrieve(self, batch_id: str) -> ProviderBatch: ...

    def cancel(self, batch_id: str) -> ProviderBatch: ...

    def results(self, batch: ProviderBatch) -> Iterator[ResultLine]: ...


def _time(value: Any) -> datetime | None:
    """Unix seconds (OpenAI), ISO strings (Azure, older API versions) or datetimes."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class OpenAIBatchClient:
    """OpenAI or Azure OpenAI (same SDK surface; Azure normalised on the way in)."""

    def __init__(self, *, provider: str, client: openai.OpenAI, secrets: tuple[str, ...] = ()):
        self.provider = provider
        self.client = client
        self._once = client.with_options(max_retries=0)
        self._secrets = secrets

    def create_endpoint(self, endpoint: str) -> str:
        """Azure's documented examples create with `/chat/completions` (no `/v1`)."""
        return endpoint.removeprefix("/v1") if self.provider == "azure" else endpoint

    def upload(self, path: Path) -> str:
        """Upload a JSONL file (streamed from disk). A retried upload only wastes a file."""
        with path.open("rb") as fh:
            obj = self._call(lambda: self.client.files.create(file=_named(fh), purpose="batch"))
        return str(obj.id)

    def create(self, *, input_file_id: str, endpoint: str, local_id: str) -> ProviderBatch:
        obj = self._call(
            lambda: self._once.batches.create(
                input_file_id=input_file_id,
                endpoint=self.create_endpoint(endpoint),  # type: ignore[arg-type]
                completion_window="24h",
                metadata={METADATA_KEY: local_id},
            ),
            create=True,
        )
        return self._batch(obj)

    def find(self, local_id: str) -> list[ProviderBatch]:
        """Batches tagged with our local id (usually 0 or 1; more means an SDK-retry dup)."""
        found: list[ProviderBatch] = []
        page = self._call(lambda: self.client.batches.list(limit=100))
        for _ in range(LIST_PAGES):
            for obj in page.data:
                if (obj.metadata or {}).get(METADATA_KEY) == local_id:
                    found.append(self._batch(obj))
            if not page.has_next_page():
                break
            page = self._call(page.get_next_page)
        return sorted(found, key=lambda b: b.created_at or datetime.min.replace(tzinfo=UTC))

    def retrieve(self, batch_id: str) -> ProviderBatch:
        return self._batch(self._call(lambda: self.client.batches.retrieve(batch_id)))

    def cancel(self, batch_id: str) -> ProviderBatch:
        return self._batch(self._call(lambda: self.client.batches.cancel(batch_id)))

    def results(self, batch: ProviderBatch) -> Iterator[ResultLine]:
        """Output then error file, streamed line by line (memory flat for 50k lines)."""
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            with self.client.files.with_streaming_response.content(file_id) as resp:
                for raw in resp.iter_lines():
                    if raw.strip():
                        yield _openai_line(json.loads(raw))

    def _batch(self, obj: Any) -> ProviderBatch:
        status = str(obj.status or "").lower()
        counts = obj.request_counts.to_dict() if obj.request_counts is not None else {}
        errors = []
        if obj.errors is not None and obj.errors.data:
            errors = [e.to_dict() for e in obj.errors.data]
        return ProviderBatch(
            id=obj.id,
            status=status,
            terminal=status in OPENAI_TERMINAL,
            created_at=_time(obj.created_at),
            output_file_id=obj.output_file_id,
            error_file_id=obj.error_file_id,
            counts={k: int(v or 0) for k, v in counts.items()},
            errors=errors,
            metadata=dict(obj.metadata or {}),
        )

    def _call(self, fn: Any, *, create: bool = False) -> Any:
        try:
            return fn()
        except openai.APIStatusError as exc:
            msg = redact(
                f"{self.provider} {exc.status_code}: {str(exc.message)[:300]}", self._secrets
            )
            if 400 <= exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                raise BatchRejectedError(msg, status=exc.status_code) from None
            raise BatchProviderError(msg, status=exc.status_code, ambiguous=create) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise BatchProviderError(
                f"{self.provider}: {type(exc).__name__}", ambiguous=create
            ) from None


def _named(fh: BinaryIO) -> tuple[str, BinaryIO, str]:
    return ("llm-lanes-batch.jsonl", fh, "application/jsonl")


def _openai_line(row: dict[str, Any]) -> ResultLine:
    cid = str(row.get("custom_id") or "")
    resp = row.get("response")
    if resp:
        status = int(resp.get("status_code") or 0)
        body = resp.get("body") or {}
        if status == 200:
            return ResultLine(
                cid, LineOutcome.SUCCEEDED, body=body, status=200, request_id=resp.get("request_id")
            )
        err = body.get("error") if isinstance(body, dict) else None
        message = (err or {}).get("message") if isinstance(err, dict) else None
        return ResultLine(
            cid,
            LineOutcome.ERRORED,
            status=status,
            error=f"{status}: {message or 'request failed'}"[:500],
            request_id=resp.get("request_id"),
        )
    err = row.get("error") or {}
    code = str(err.get("code") or "")
    if code == "batch_expired":
        return ResultLine(cid, LineOutcome.EXPIRED, error=code)
    if code == "batch_cancelled":
        return ResultLine(cid, LineOutcome.CANCELLED, error=code)
    return ResultLine(cid, LineOutcome.ERRORED, error=f"{code}: {err.get('message')}"[:500])


class AnthropicBatchClient:
    """Message Batches. No metadata: reconciliation matches unclaimed batches by size."""

    provider = "anthropic"

    def __init__(self, *, client: anthropic.Anthropic, secrets: tuple[str, ...] = ()):
        self.client = client
        self._once = client.with_options(max_retries=0)
        self._secrets = secrets

    def create(self, requests: list[dict[str, Any]]) -> ProviderBatch:
        return self._batch(
            self._call(lambda: self._once.messages.batches.create(requests=requests), create=True)  # type: ignore[arg-type]
        )

    def find(self, *, count: int, since: datetime, exclude: set[str]) -> list[ProviderBatch]:
        """Unclaimed batches of exactly `count` requests created since `since`, oldest first."""
        found: list[ProviderBatch] = []
        page = self._call(lambda: self.client.messages.batches.list(limit=100))
        for _ in range(LIST_PAGES):
            for obj in page.data:
                b = self._batch(obj)
                if b.id in exclude or b.total != count:
                    continue
                if b.created_at is not None and b.created_at < since:
                    continue
                found.append(b)
            if not page.has_next_page():
                break
            page = self._call(page.get_next_page)
        return sorted(found, key=lambda b: b.created_at or datetime.min.replace(tzinfo=UTC))

    def retrieve(self, batch_id: str) -> ProviderBatch:
        return self._batch(self._call(lambda: self.client.messages.batches.retrieve(batch_id)))

    def cancel(self, batch_id: str) -> ProviderBatch:
        return self._batch(self._call(lambda: self.client.messages.batches.cancel(batch_id)))

    def results(self, batch: ProviderBatch) -> Iterator[ResultLine]:
        for item in self._call(lambda: self.client.messages.batches.results(batch.id)):
            yield _anthropic_line(item)

    def _batch(self, obj: Any) -> ProviderBatch:
        status = str(obj.processing_status or "").lower()
        counts = obj.request_counts.to_dict() if obj.request_counts is not None else {}
        return ProviderBatch(
            id=obj.id,
            status=status,
            terminal=status == "ended",
            created_at=_time(obj.created_at),
            counts={k: int(v or 0) for k, v in counts.items()},
        )

    def _call(self, fn: Any, *, create: bool = False) -> Any:
        try:
            return fn()
        except anthropic.APIStatusError as exc:
            msg = redact(f"anthropic {exc.status_code}: {str(exc.message)[:300]}", self._secrets)
            if 400 <= exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                raise BatchRejectedError(msg, status=exc.status_code) from None
            raise BatchProviderError(msg, status=exc.status_code, ambiguous=create) from None
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
            raise BatchProviderError(f"anthropic: {type(exc).__name__}", ambiguous=create) from None


def _anthropic_line(item: Any) -> ResultLine:
    cid = str(item.custom_id)
    result = item.result
    kind = result.type
    if kind == "succeeded":
        return ResultLine(cid, LineOutcome.SUCCEEDED, body=result.message.to_dict(), status=200)
    if kind == "canceled":
        return ResultLine(cid, LineOutcome.CANCELLED, error="canceled")
    if kind == "expired":
        return ResultLine(cid, LineOutcome.EXPIRED, error="expired")
    err = result.error.error if getattr(result, "error", None) is not None else None
    etype = str(getattr(err, "type", "api_error"))
    message = str(getattr(err, "message", "request failed"))
    status = _ANTHROPIC_STATUS.get(etype, 500)
    return ResultLine(
        cid,
        LineOutcome.ERRORED,
        status=status,
        error=f"{status} {etype}: {message}"[:500],
        request_id=getattr(result.error, "request_id", None),
    )


def client_for(rt: Any, provider: str) -> OpenAIBatchClient | AnthropicBatchClient:
    """The batch client over the realtime lane's SDK client (same keys, timeouts, base URL)."""
    adapter = rt.providers.get(provider)
    secrets = rt.providers.secrets
    if provider == "anthropic":
        return AnthropicBatchClient(client=adapter.client, secrets=secrets)
    return OpenAIBatchClient(provider=provider, client=adapter.client, secrets=secrets)
