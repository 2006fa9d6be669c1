"""What an OpenAI/Azure batch looks like on the wire: the batch object and its result lines.

Kept apart from `batch_openai` (routes and the status lifecycle) so the lifecycle reads as
time arithmetic only; everything here is a pure rendering of an `OpenAIBatch` as it stands.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from workers.simulator.batch_faults import BatchPlan
from workers.simulator.batch_lines import BatchLine
from workers.simulator.batch_openai_input import ParsedInput
from workers.simulator.batch_wire import unix
from workers.simulator.protocol import Flavor

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_STAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
_UNRUN = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}


@dataclass
class OpenAIBatch:
    id: str
    flavor: Flavor
    endpoint: str
    """As the client sent it (Azure may omit `/v1`)."""
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after: float | None
    created_at: float
    expires_at: float
    parsed: ParsedInput
    plan: BatchPlan
    cancel_at: float | None = None
    status: str = "validating"
    stamps: dict[str, float] = field(default_factory=dict)
    scheduled: bool = False
    all_done_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def lines(self) -> list[BatchLine]:
        return self.parsed.lines

    @property
    def validated(self) -> bool:
        return "in_progress_at" in self.stamps


def _usage(lines: list[BatchLine]) -> dict[str, Any]:
    inp = out = cached = reasoning = total = 0
    for line in lines:
        if not line.succeeded or not line.response:
            continue
        u = line.response.get("usage") or {}
        i = int(u.get("input_tokens", u.get("prompt_tokens", 0)) or 0)
        o = int(u.get("output_tokens", u.get("completion_tokens", 0)) or 0)
        in_details = u.get("input_tokens_details") or u.get("prompt_tokens_details") or {}
        out_details = u.get("output_tokens_details") or u.get("completion_tokens_details") or {}
        inp, out = inp + i, out + o
        cached += int(in_details.get("cached_tokens", 0) or 0)
        reasoning += int(out_details.get("reasoning_tokens", 0) or 0)
        total += int(u.get("total_tokens", i + o) or 0)
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total,
    }


def result_lines(batch: OpenAIBatch, status: str) -> tuple[list[str], list[str]]:
    """(output file lines, error file lines) of a batch turning terminal with `status`."""
    ok_lines: list[str] = []
    err_lines: list[str] = []
    for line in batch.lines:
        record: dict[str, Any] = {
            "id": "batch_req_" + secrets.token_hex(16),
            "custom_id": line.custom_id,
        }
        if line.ran:
            record["response"] = {
                "status_code": line.status,
                "request_id": line.request_id,
                "body": line.response,
            }
            record["error"] = None
            (ok_lines if line.succeeded else err_lines).append(json.dumps(record))
        else:
            code, message = _UNRUN.get(status, _UNRUN["expired"])
            record["response"] = None
            record["error"] = {"code": code, "message": message}
            err_lines.append(json.dumps(record))
    return ok_lines, err_lines


def request_counts(batch: OpenAIBatch) -> dict[str, int]:
    if not batch.validated:
        return {"total": 0, "completed": 0, "failed": 0}
    completed = sum(1 for ln in batch.lines if ln.succeeded)
    failed = sum(1 for ln in batch.lines if ln.ran and not ln.succeeded)
    if batch.status in ("expired", "cancelled"):
        failed += sum(1 for ln in batch.lines if not ln.ran)
    return {"total": len(batch.lines), "completed": completed, "failed": failed}


def batch_json(batch: OpenAIBatch) -> dict[str, Any]:
    """The `batch` object as `/v1/batches` returns it."""
    errors = None
    if batch.status == "failed":
        errors = {"object": "list", "data": batch.parsed.errors}
    body: dict[str, Any] = {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.parsed.model if batch.validated else None,
        "errors": errors,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": unix(batch.created_at),
        "expires_at": unix(batch.expires_at),
    }
    for stamp in _STAMPS:
        body[stamp] = unix(batch.stamps.get(stamp))
    body["request_counts"] = request_counts(batch)
    body["metadata"] = batch.metadata
    body["usage"] = _usage(batch.lines)
    return body
