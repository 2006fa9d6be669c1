"""Input lines of a batch, when each one finishes on the virtual clock, and running them.

Both batch dialects share this: a line is scheduled at creation, and the executor is called
for it lazily, the first time anybody looks at the batch after its finish time. Running in
finish order keeps the realtime prompt cache's view of the batch deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from workers.simulator.batch_faults import BatchPlan
from workers.simulator.batch_settings import BatchTiming
from workers.simulator.batch_wire import anthropic_error_body, request_id
from workers.simulator.protocol import Executor, Flavor


@dataclass
class BatchLine:
    number: int
    """1-based line number (OpenAI) or position in `requests` (Anthropic)."""
    custom_id: str
    body: dict[str, Any]
    done_at: float | None = None
    """Simulated time the line finishes; None when it never runs (stalled by a fault)."""
    forced_error: bool = False
    status: int | None = None
    response: dict[str, Any] | None = None
    request_id: str = ""

    @property
    def ran(self) -> bool:
        return self.status is not None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def finished_by(self, t: float) -> bool:
        return self.done_at is not None and self.done_at <= t


def schedule(
    lines: list[BatchLine], *, start: float, timing: BatchTiming, plan: BatchPlan
) -> float | None:
    """Stamp each line's finish time; return when the last one finishes (None: never)."""
    slot = 0
    last = start
    never = False
    for line in lines:
        line.forced_error = line.custom_id in plan.errored
        if line.custom_id in plan.stalled:
            line.done_at = None
            never = True
            continue
        line.done_at = start + (slot // timing.concurrency + 1) * timing.request_seconds
        last = line.done_at
        slot += 1
    return None if never else last


def _openai_forced(status: int) -> dict[str, Any]:
    if status >= 500:
        message = "The server had an error while processing your request. Sorry about that!"
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return {
        "error": {
            "message": "Simulated line failure.",
            "type": "invalid_request_error",
            "param": None,
            "code": "simulated_error",
        }
    }


class LineRunner:
    """Runs due lines through the executor (or a forced error) exactly once each."""

    def __init__(
        self, *, execute: Executor, flavor: Flavor, endpoint: str, error_status: int
    ) -> None:
        self._execute = execute
        self._flavor = flavor
        self._endpoint = endpoint
        self._error_status = error_status

    def run_due(self, lines: Iterable[BatchLine], until: float) -> None:
        due = [ln for ln in lines if not ln.ran and ln.finished_by(until)]
        due.sort(key=lambda ln: (ln.done_at or 0.0, ln.number))
        for line in due:
            self._run(line)

    def _run(self, line: BatchLine) -> None:
        rid = request_id()
        line.request_id = rid
        if line.forced_error:
            line.status = self._error_status
            line.response = self._forced_body(rid)
            return
        try:
            status, body = self._execute(
                flavor=self._flavor, endpoint=self._endpoint, body=line.body, batch=True
            )
        except Exception as exc:  # a broken executor must not wedge the batch
            status, body = 500, self._crash_body(rid, exc)
        line.status = status
        line.response = body

    def _forced_body(self, rid: str) -> dict[str, Any]:
        if self._flavor == "anthropic":
            return anthropic_error_body(self._error_status, "Simulated line failure.", rid)
        return _openai_forced(self._error_status)

    def _crash_body(self, rid: str, exc: Exception) -> dict[str, Any]:
        message = f"Internal error while executing the request: {type(exc).__name__}"
        if self._flavor == "anthropic":
            return anthropic_error_body(500, message, rid)
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def count_by(lines: Iterable[BatchLine], predicate: Callable[[BatchLine], bool]) -> int:
    return sum(1 for ln in lines if predicate(ln))
