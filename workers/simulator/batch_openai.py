"""OpenAI and Azure OpenAI batches: `/v1/batches` and the lazily evaluated status lifecycle.

A batch's whole future is fixed at creation (validation verdict, each line's finish time,
fault plan), so its state at any virtual time is a pure function of the clock; `refresh`
catches it up on each access and writes the output/error files once it turns terminal.
The batch record and how it renders on the wire live in `batch_openai_wire`.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from workers.simulator.batch_faults import FaultBook
from workers.simulator.batch_lines import LineRunner, schedule
from workers.simulator.batch_openai_input import (
    SUPPORTED_ENDPOINTS,
    canonical_endpoint,
    parse_input,
)
from workers.simulator.batch_openai_wire import (
    TERMINAL,
    OpenAIBatch,
    batch_json,
    request_counts,
    result_lines,
)
from workers.simulator.batch_settings import BatchLimits, BatchTiming
from workers.simulator.batch_wire import (
    BadParam,
    BatchBook,
    not_found_route,
    ok,
    openai_error,
    page_after,
    query_int,
)
from workers.simulator.clock import VirtualClock
from workers.simulator.files import FileStore
from workers.simulator.protocol import Executor, Flavor, SimRequest, SimResponse

__all__ = ["TERMINAL", "OpenAIBatch", "OpenAIBatches"]


def _validate_metadata(value: Any, limits: BatchLimits) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > limits.metadata_max_pairs:
        raise BadParam(
            f"metadata: at most {limits.metadata_max_pairs} string pairs.", param="metadata"
        )
    for key, val in value.items():
        if (
            not isinstance(val, str)
            or len(key) > limits.metadata_max_key
            or len(val) > (limits.metadata_max_value)
        ):
            raise BadParam(
                f"metadata.{key}: keys ≤ {limits.metadata_max_key} chars, string "
                f"values ≤ {limits.metadata_max_value} chars.",
                param="metadata",
            )
    return dict(value)


def _expires_after(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or value.get("anchor") != "created_at"
        or not isinstance(value.get("seconds"), int)
        or not 3600 <= value["seconds"] <= 2_592_000
    ):
        raise BadParam(
            f"{param}: expected {{anchor: 'created_at', seconds: 3600..2592000}}.", param=param
        )
    return float(value["seconds"])


class OpenAIBatches(BatchBook[OpenAIBatch]):
    """One flavor's batches (`openai` or `azure`), over that flavor's `FileStore`."""

    def __init__(
        self,
        *,
        flavor: Flavor,
        clock: VirtualClock,
        execute: Executor,
        files: FileStore,
        timing: BatchTiming,
        limits: BatchLimits,
        faults: FaultBook,
    ) -> None:
        super().__init__(clock=clock, execute=execute, timing=timing, limits=limits, faults=faults)
        self.flavor: Flavor = flavor
        self._files = files

    # ---- routes -------------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse:
        segments = request.path.split("/")[3:]  # after "", "v1", "batches"
        method = request.method
        with self._lock:
            try:
                if not segments and method == "POST":
                    return self._create(request)
                if not segments and method == "GET":
                    return self._list(request)
                if len(segments) == 1 and method == "GET":
                    return self._retrieve(segments[0])
                if len(segments) == 2 and segments[1] == "cancel" and method == "POST":
                    return self._cancel(segments[0])
            except BadParam as exc:
                return openai_error(
                    400, exc.message, flavor=self.flavor, param=exc.param, code=exc.code
                )
        return not_found_route(self.flavor, method, request.raw_path)

    def _create(self, request: SimRequest) -> SimResponse:
        try:
            body = request.json()
        except ValueError:
            raise BadParam("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise BadParam("The request body must be a JSON object.")
        file_id = body.get("input_file_id")
        endpoint = body.get("endpoint")
        if not isinstance(file_id, str) or not isinstance(endpoint, str):
            raise BadParam(
                "Missing required parameters: 'input_file_id' and 'endpoint'.",
                code="missing_required_parameter",
            )
        canonical = canonical_endpoint(endpoint, self.flavor)
        if canonical not in SUPPORTED_ENDPOINTS:
            raise BadParam(f"Invalid 'endpoint': {endpoint!r}.", param="endpoint")
        if body.get("completion_window") != "24h":
            raise BadParam(
                "Invalid 'completion_window': only '24h' is supported.", param="completion_window"
            )
        metadata = _validate_metadata(body.get("metadata"), self._limits)
        out_expiry = _expires_after(body.get("output_expires_after"), "output_expires_after")
        stored = self._files.get(file_id)
        if stored is None:
            raise BadParam(
                f"Invalid 'input_file_id': no such file {file_id!r}.", param="input_file_id"
            )
        if stored.purpose != "batch":
            raise BadParam(
                "The input file must be uploaded with purpose 'batch'.", param="input_file_id"
            )
        batch_id = "batch_" + secrets.token_hex(16)
        parsed = parse_input(
            stored.data, flavor=self.flavor, endpoint=canonical, limits=self._limits
        )
        plan = self._faults.plan(
            flavor=self.flavor, batch_id=batch_id, custom_ids=[ln.custom_id for ln in parsed.lines]
        )
        if plan.fail_validation and not parsed.errors:
            parsed.fail("invalid_request", "Simulated validation failure.", line=1)
        now = self._clock.now()
        batch = OpenAIBatch(
            id=batch_id,
            flavor=self.flavor,
            endpoint=endpoint,
            input_file_id=file_id,
            completion_window="24h",
            metadata=metadata,
            output_expires_after=out_expiry,
            created_at=now,
            expires_at=now + self._timing.window_seconds,
            parsed=parsed,
            plan=plan,
            cancel_at=None
            if plan.cancel_after_seconds is None
            else now + plan.cancel_after_seconds,
        )
        self._batches[batch_id] = batch
        self.refresh(batch)
        if self._faults.take_ghost(self.flavor):
            return openai_error(
                500, "The server had an error while processing your request.", flavor=self.flavor
            )
        return ok(self.flavor, self.to_json(batch))

    def _list(self, request: SimRequest) -> SimResponse:
        limit = query_int(request.query, "limit", default=20, low=1, high=100)
        ids, has_more = page_after(list(reversed(self._batches)), request.query.get("after"), limit)
        data = [self.to_json(self._fresh(i)) for i in ids]
        return ok(
            self.flavor,
            {
                "object": "list",
                "data": data,
                "has_more": has_more,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            },
        )

    def _retrieve(self, batch_id: str) -> SimResponse:
        if batch_id not in self._batches:
            return self._missing(batch_id)
        return ok(self.flavor, self.to_json(self._fresh(batch_id)))

    def _cancel(self, batch_id: str) -> SimResponse:
        if batch_id not in self._batches:
            return self._missing(batch_id)
        batch = self._fresh(batch_id)
        if batch.status in ("cancelling", "cancelled"):
            return ok(self.flavor, self.to_json(batch))
        if batch.status in TERMINAL:
            raise BadParam(
                f"Cannot cancel a batch with status '{batch.status}'.", code="batch_not_cancellable"
            )
        now = self._clock.now()
        batch.cancel_at = now if batch.cancel_at is None else min(batch.cancel_at, now)
        self.refresh(batch)
        return ok(self.flavor, self.to_json(batch))

    def _missing(self, batch_id: str) -> SimResponse:
        return openai_error(
            404, f"No batch found with id '{batch_id}'.", flavor=self.flavor, param="batch_id"
        )

    def _fresh(self, batch_id: str) -> OpenAIBatch:
        batch = self._batches[batch_id]
        self.refresh(batch)
        return batch

    # ---- lifecycle ----------------------------------------------------------------------
    def refresh(self, batch: OpenAIBatch) -> None:
        """Catch the batch up with the virtual clock (idempotent; terminal states freeze)."""
        with self._lock:
            if batch.status in TERMINAL:
                return
            now = self._clock.now()
            t = self._timing
            t_valid = batch.created_at + t.validating_seconds
            cancel = (
                batch.cancel_at if batch.cancel_at is not None and batch.cancel_at <= now else None
            )
            if cancel is not None and cancel < t_valid:
                self._cancelling(batch, cancel, now)
                return
            if now < t_valid:
                batch.status = "validating"
                return
            if batch.parsed.errors:
                batch.status = "failed"
                batch.stamps["failed_at"] = t_valid
                return
            batch.stamps["in_progress_at"] = t_valid
            if not batch.scheduled:
                batch.all_done_at = schedule(batch.lines, start=t_valid, timing=t, plan=batch.plan)
                batch.scheduled = True
            expiry = math.inf if self.flavor == "azure" else batch.expires_at
            done = math.inf if batch.all_done_at is None else batch.all_done_at
            finishes = done <= expiry
            completed_at = done + t.finalizing_seconds + batch.plan.extra_finalizing_seconds
            natural_end = completed_at if finishes else expiry
            if cancel is not None and cancel < natural_end:
                self._cancelling(batch, cancel, now)
            elif finishes and now >= completed_at:
                self._run(batch, done)
                batch.stamps.update(finalizing_at=done, completed_at=completed_at)
                self._finish(batch, "completed")
            elif finishes and now >= done:
                self._run(batch, done)
                batch.stamps["finalizing_at"] = done
                batch.status = "finalizing"
            elif not finishes and now >= expiry:
                self._run(batch, expiry)
                batch.stamps["expired_at"] = expiry
                self._finish(batch, "expired")
            else:
                self._run(batch, now)
                batch.status = "in_progress"

    def _cancelling(self, batch: OpenAIBatch, cancel: float, now: float) -> None:
        cancelled_at = cancel + self._timing.cancel_seconds
        batch.stamps["cancelling_at"] = cancel
        if batch.validated:
            self._run(batch, cancel)
        if now < cancelled_at:
            batch.status = "cancelling"
            return
        batch.stamps["cancelled_at"] = cancelled_at
        self._finish(batch, "cancelled")

    def _run(self, batch: OpenAIBatch, until: float) -> None:
        runner = LineRunner(
            execute=self._execute,
            flavor=self.flavor,
            endpoint=canonical_endpoint(batch.endpoint, self.flavor),
            error_status=batch.plan.error_status,
        )
        runner.run_due(batch.lines, until)

    def _finish(self, batch: OpenAIBatch, status: str) -> None:
        """Turn terminal and write the output/error files (once)."""
        batch.status = status
        if not batch.validated:
            return
        ok_lines, err_lines = result_lines(batch, status)
        batch.output_file_id = self._write(batch, "output", ok_lines)
        batch.error_file_id = self._write(batch, "error", err_lines)

    def _write(self, batch: OpenAIBatch, kind: str, lines: list[str]) -> str | None:
        if not lines:
            return None
        data = ("\n".join(lines) + "\n").encode()
        stored = self._files.add(
            filename=f"{batch.id}_{kind}.jsonl",
            purpose="batch_output",
            data=data,
            expires_after=batch.output_expires_after,
        )
        return stored.id

    # ---- views --------------------------------------------------------------------------
    def request_counts(self, batch: OpenAIBatch) -> dict[str, int]:
        return request_counts(batch)

    def to_json(self, batch: OpenAIBatch) -> dict[str, Any]:
        return batch_json(batch)
