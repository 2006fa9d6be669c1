"""Anthropic Message Batches: `/v1/messages/batches` and its lazily evaluated lifecycle.

Anthropic validates the inline requests synchronously (a bad batch is a 400, not a failed
batch), keeps per-request outcomes hidden until the whole batch has `ended`, and serves the
results JSONL behind an absolute `results_url` that the SDK follows as-is.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from workers.simulator.batch_faults import BatchPlan, FaultBook
from workers.simulator.batch_lines import BatchLine, LineRunner, schedule
from workers.simulator.batch_settings import BatchLimits, BatchTiming
from workers.simulator.batch_wire import (
    BadParam,
    BatchBook,
    anthropic_error,
    anthropic_error_body,
    new_id,
    ok,
    query_int,
    raw,
    rfc3339,
)
from workers.simulator.clock import VirtualClock
from workers.simulator.protocol import Executor, SimRequest, SimResponse

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PREFIX = "/v1/messages/batches"


@dataclass
class MessageBatch:
    id: str
    created_at: float
    expires_at: float
    lines: list[BatchLine]
    plan: BatchPlan
    all_done_at: float | None
    cancel_at: float | None = None
    status: str = "in_progress"
    cancel_initiated_at: float | None = None
    ended_at: float | None = None


def _check_request(item: Any, i: int, seen: dict[str, int]) -> BatchLine:
    where = f"requests.{i}"
    if not isinstance(item, dict):
        raise BadParam(f"{where}: Input should be an object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
        raise BadParam(f"{where}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
    if custom_id in seen:
        raise BadParam(
            f"{where}.custom_id: Duplicate custom_id {custom_id!r} (also used by "
            f"requests.{seen[custom_id]}); custom_id must be unique within a batch"
        )
    seen[custom_id] = i
    params = item.get("params")
    if not isinstance(params, dict):
        raise BadParam(f"{where}.params: Field required")
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise BadParam(f"{where}.params.model: Field required")
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadParam(f"{where}.params.max_tokens: must be an integer >= 1 in batches")
    if not isinstance(params.get("messages"), list) or not params["messages"]:
        raise BadParam(f"{where}.params.messages: Field required")
    if params.get("stream"):
        raise BadParam(f"{where}.params.stream: streaming is not supported in Message Batches")
    if "speed" in params:
        raise BadParam(f"{where}.params.speed: fast mode is not supported in Message Batches")
    return BatchLine(number=i, custom_id=custom_id, body=params)


def _result_type(line: BatchLine, outcome: str) -> str:
    if not line.ran:
        return outcome
    return "succeeded" if line.succeeded and line.response is not None else "errored"


def _result(line: BatchLine, outcome: str) -> dict[str, Any]:
    """One results-JSONL `result`; `outcome` is what unrun lines became (canceled/expired)."""
    kind = _result_type(line, outcome)
    if kind in ("canceled", "expired"):
        return {"type": kind}
    if kind == "succeeded" and line.response is not None:
        message = copy.deepcopy(line.response)
        if isinstance(message.get("usage"), dict):
            message["usage"]["service_tier"] = "batch"
        return {"type": "succeeded", "message": message}
    body = line.response or {}
    if body.get("type") != "error" or not isinstance(body.get("error"), dict):
        text = (
            str((body.get("error") or {}).get("message", "Request failed"))
            if isinstance(body.get("error"), dict)
            else "Request failed"
        )
        body = anthropic_error_body(line.status or 500, text, line.request_id)
    return {"type": "errored", "error": body}


class AnthropicBatches(BatchBook[MessageBatch]):
    def __init__(
        self,
        *,
        clock: VirtualClock,
        execute: Executor,
        timing: BatchTiming,
        limits: BatchLimits,
        faults: FaultBook,
    ) -> None:
        super().__init__(clock=clock, execute=execute, timing=timing, limits=limits, faults=faults)

    # ---- routes -------------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:
        segments = request.path[len(_PREFIX) :].strip("/").split("/")
        segments = [s for s in segments if s]
        method = request.method
        with self._lock:
            try:
                if not segments and method == "POST":
                    return self._create(request)
                if not segments and method == "GET":
                    return self._list(request)
                if len(segments) == 1 and method in ("GET", "DELETE"):
                    return self._one(segments[0], request, delete=method == "DELETE")
                if len(segments) == 2 and segments[1] == "cancel" and method == "POST":
                    return self._cancel(segments[0], request)
                if len(segments) == 2 and segments[1] == "results" and method == "GET":
                    return self._results(segments[0])
            except BadParam as exc:
                return anthropic_error(400, exc.message)
        return anthropic_error(404, f"Not found: {method} {request.raw_path}")

    def _create(self, request: SimRequest) -> SimResponse:
        if len(request.body) > self._limits.anthropic_max_body_bytes:
            return anthropic_error(413, "Request exceeds the maximum allowed number of bytes.")
        try:
            body = request.json()
        except ValueError:
            raise BadParam("The request body is not valid JSON.") from None
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise BadParam("requests: Field required (a non-empty list)")
        if len(requests) > self._limits.anthropic_max_requests:
            raise BadParam(
                f"requests: at most {self._limits.anthropic_max_requests} "
                f"requests per Message Batch"
            )
        seen: dict[str, int] = {}
        lines = [_check_request(item, i, seen) for i, item in enumerate(requests)]
        batch_id = new_id("msgbatch_")
        plan = self._faults.plan(flavor="anthropic", batch_id=batch_id, custom_ids=list(seen))
        if plan.fail_validation:
            raise BadParam("requests.0.params: Simulated validation failure.")
        now = self._clock.now()
        batch = MessageBatch(
            id=batch_id,
            created_at=now,
            expires_at=now + self._timing.window_seconds,
            lines=lines,
            plan=plan,
            all_done_at=schedule(lines, start=now, timing=self._timing, plan=plan),
            cancel_at=None
            if plan.cancel_after_seconds is None
            else now + plan.cancel_after_seconds,
        )
        self._batches[batch_id] = batch
        self.refresh(batch)
        if self._faults.take_ghost("anthropic"):
            return anthropic_error(500, "Internal server error")
        return ok("anthropic", self.to_json(batch, request.base_url))

    def _list(self, request: SimRequest) -> SimResponse:
        q = request.query
        limit = query_int(q, "limit", default=20, low=1, high=1000)
        ids = list(reversed(self._batches))  # newest first
        if q.get("before_id"):
            end = ids.index(q["before_id"]) if q["before_id"] in ids else 0
            page = ids[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            start = 0
            if q.get("after_id"):
                start = ids.index(q["after_id"]) + 1 if q["after_id"] in ids else len(ids)
            page = ids[start : start + limit]
            has_more = start + limit < len(ids)
        data = [self.to_json(self._fresh(i), request.base_url) for i in page]
        return ok(
            "anthropic",
            {
                "data": data,
                "has_more": has_more,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            },
        )

    def _one(self, batch_id: str, request: SimRequest, *, delete: bool) -> SimResponse:
        if batch_id not in self._batches:
            return self._missing(batch_id)
        batch = self._fresh(batch_id)
        if not delete:
            return ok("anthropic", self.to_json(batch, request.base_url))
        if batch.status != "ended":
            raise BadParam(
                f"Message Batch {batch_id} is still processing; cancel it and wait "
                f"for it to end before deleting it."
            )
        del self._batches[batch_id]
        return ok("anthropic", {"id": batch_id, "type": "message_batch_deleted"})

    def _cancel(self, batch_id: str, request: SimRequest) -> SimResponse:
        if batch_id not in self._batches:
            return self._missing(batch_id)
        batch = self._fresh(batch_id)
        if batch.status == "in_progress":
            now = self._clock.now()
            batch.cancel_at = now if batch.cancel_at is None else min(batch.cancel_at, now)
            self.refresh(batch)
        elif batch.status == "ended" and batch.cancel_initiated_at is None:
            raise BadParam(f"Message Batch {batch_id} has already ended and cannot be canceled.")
        return ok("anthropic", self.to_json(batch, request.base_url))

    def _results(self, batch_id: str) -> SimResponse:
        if batch_id not in self._batches:
            return self._missing(batch_id)
        batch = self._fresh(batch_id)
        if batch.status != "ended":
            raise BadParam(
                f"Message Batch {batch_id} has not finished processing; results "
                f"are available once it has ended."
            )
        if self._archived_at(batch) is not None:
            return anthropic_error(
                404,
                f"Results for Message Batch {batch_id} have been "
                f"archived and are no longer available.",
            )
        rows = [
            json.dumps({"custom_id": ln.custom_id, "result": _result(ln, self._outcome(batch))})
            for ln in batch.lines
        ]
        return raw("anthropic", ("\n".join(rows) + "\n").encode(), "application/binary")

    def _missing(self, batch_id: str) -> SimResponse:
        return anthropic_error(404, f"Message Batch {batch_id!r} not found.")

    def _fresh(self, batch_id: str) -> MessageBatch:
        batch = self._batches[batch_id]
        self.refresh(batch)
        return batch

    # ---- lifecycle ----------------------------------------------------------------------
    def refresh(self, batch: MessageBatch) -> None:
        """Catch the batch up with the virtual clock (idempotent; `ended` freezes)."""
        with self._lock:
            if batch.status == "ended":
                return
            now = self._clock.now()
            t = self._timing
            done = math.inf if batch.all_done_at is None else batch.all_done_at
            finishes = done <= batch.expires_at
            natural_end = (
                done + t.finalizing_seconds + batch.plan.extra_finalizing_seconds
                if finishes
                else batch.expires_at
            )
            cancel = (
                batch.cancel_at if batch.cancel_at is not None and batch.cancel_at <= now else None
            )
            if cancel is not None and cancel < natural_end:
                batch.cancel_initiated_at = cancel
                self._run(batch, cancel)
                end = cancel + t.cancel_seconds
                batch.status = "canceling"
            else:
                end = natural_end
                self._run(batch, min(now, done, batch.expires_at))
            if now >= end:
                batch.status = "ended"
                batch.ended_at = end

    def _run(self, batch: MessageBatch, until: float) -> None:
        LineRunner(
            execute=self._execute,
            flavor="anthropic",
            endpoint="/v1/messages",
            error_status=batch.plan.error_status,
        ).run_due(batch.lines, until)

    # ---- views --------------------------------------------------------------------------
    @staticmethod
    def _outcome(batch: MessageBatch) -> str:
        return "canceled" if batch.cancel_initiated_at is not None else "expired"

    def _archived_at(self, batch: MessageBatch) -> float | None:
        archive = batch.created_at + self._timing.results_retention_seconds
        return archive if batch.status == "ended" and self._clock.now() >= archive else None

    def request_counts(self, batch: MessageBatch) -> dict[str, int]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.status != "ended":
            counts["processing"] = len(batch.lines)
            return counts
        for line in batch.lines:
            counts[_result_type(line, self._outcome(batch))] += 1
        return counts

    def to_json(self, batch: MessageBatch, base_url: str) -> dict[str, Any]:
        ended = batch.status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": self.request_counts(batch),
            "created_at": rfc3339(batch.created_at),
            "expires_at": rfc3339(batch.expires_at),
            "ended_at": rfc3339(batch.ended_at),
            "cancel_initiated_at": rfc3339(batch.cancel_initiated_at),
            "archived_at": rfc3339(self._archived_at(batch)),
            "results_url": f"{base_url.rstrip('/')}{_PREFIX}/{batch.id}/results" if ended else None,
        }
