"""The simulator's batch side: one `RouteHandler` for files, batches and their test controls.

Routes served (canonical paths; Azure spellings arrive already normalised, flavor "azure"):

- OpenAI/Azure: `/v1/files[/{id}[/content]]`, `/v1/batches[/{id}[/cancel]]` — OpenAI and
  Azure keep separate file and batch namespaces, as separate accounts would.
- Anthropic: `/v1/messages/batches[/{id}[/cancel|/results]]`.
- Controls: `GET|POST|DELETE /_sim/batch_faults`, `GET|POST /_sim/batch_timing`,
  `GET /_sim/batches` (counts per status, per flavor).

Nothing runs in the background: every access evaluates the batches it touches against the
virtual clock, so tests advance the clock instead of sleeping.
"""

from __future__ import annotations

import threading
from typing import Any

from workers.simulator.batch_anthropic import AnthropicBatches
from workers.simulator.batch_faults import BatchFaults, FaultBook
from workers.simulator.batch_openai import OpenAIBatches
from workers.simulator.batch_settings import BatchLimits, BatchTiming
from workers.simulator.batch_wire import ok, openai_error
from workers.simulator.clock import VirtualClock
from workers.simulator.files import FileRoutes, FileStore
from workers.simulator.protocol import Executor, SimRequest, SimResponse

__all__ = ["BatchEngine", "BatchFaults", "BatchLimits", "BatchTiming"]


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class BatchEngine:
    """Files + OpenAI/Azure batches + Anthropic Message Batches, driven by a `VirtualClock`.

    `execute` produces each line's result (as the realtime endpoint would) when the line's
    simulated finish time has passed; `timing`, `limits` and `faults` default to provider-like
    values and stay mutable (`engine.timing.request_seconds = 5`).
    """

    def __init__(
        self,
        *,
        clock: VirtualClock,
        execute: Executor,
        timing: BatchTiming | None = None,
        limits: BatchLimits | None = None,
        faults: BatchFaults | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.timing = timing or BatchTiming()
        self.limits = limits or BatchLimits()
        self.fault_book = FaultBook(faults, seed=seed)
        self._lock = threading.RLock()
        self.files: dict[str, FileStore] = {}
        self._file_routes: dict[str, FileRoutes] = {}
        self.openai: dict[str, OpenAIBatches] = {}
        for flavor in ("openai", "azure"):
            store = FileStore(clock=clock, timing=self.timing)
            self.files[flavor] = store
            self._file_routes[flavor] = FileRoutes(store=store, flavor=flavor, limits=self.limits)
            self.openai[flavor] = OpenAIBatches(
                flavor=flavor,
                clock=clock,
                execute=execute,
                files=store,
                timing=self.timing,
                limits=self.limits,
                faults=self.fault_book,
            )
        self.anthropic = AnthropicBatches(
            clock=clock,
            execute=execute,
            timing=self.timing,
            limits=self.limits,
            faults=self.fault_book,
        )

    # ---- in-process fault API -----------------------------------------------------------
    @property
    def faults(self) -> BatchFaults:
        return self.fault_book.faults

    def set_faults(self, **values: Any) -> BatchFaults:
        """Same keys as the control route: `set_faults(error_custom_ids=["b"], ghost_creates=1)`."""
        return self.fault_book.configure(values)

    def reset_faults(self) -> None:
        self.fault_book.reset()

    def reset(self) -> None:
        """Forget faults, batches and files (the simulator's `/_sim/reset` calls this)."""
        with self._lock:
            self.reset_faults()
            for store in self.files.values():
                store.clear()
            for side in self.openai.values():
                side.clear()
            self.anthropic.clear()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "openai": self.openai["openai"].summary(),
                "azure": self.openai["azure"].summary(),
                "anthropic": self.anthropic.summary(),
                "now": self.clock.now(),
            }

    # ---- RouteHandler -------------------------------------------------------------------
    def handle(self, request: SimRequest) -> SimResponse | None:
        path = request.path
        if path.startswith("/_sim/batch"):
            return self._control(request)
        with self._lock:
            if request.flavor == "anthropic":
                if _is_under(path, "/v1/messages/batches"):
                    return self.anthropic.handle(request)
                return None
            if _is_under(path, "/v1/files"):
                return self._file_routes[request.flavor].handle(request)
            if _is_under(path, "/v1/batches"):
                return self.openai[request.flavor].handle(request)
        return None

    def _control(self, request: SimRequest) -> SimResponse | None:
        path, method = request.path, request.method
        try:
            if path == "/_sim/batches" and method == "GET":
                return ok("openai", self.summary())
            if path == "/_sim/batch_faults":
                if method == "GET":
                    return ok("openai", self.faults.to_json())
                if method == "DELETE":
                    self.reset_faults()
                    return ok("openai", self.faults.to_json())
                if method == "POST":
                    body = request.json()
                    if not isinstance(body, dict):
                        raise ValueError("body: expected a JSON object")
                    return ok("openai", self.fault_book.configure(body).to_json())
            if path == "/_sim/batch_timing":
                if method == "POST":
                    body = request.json()
                    if not isinstance(body, dict):
                        raise ValueError("body: expected a JSON object")
                    with self._lock:
                        self.timing.update(body)
                if method in ("GET", "POST"):
                    return ok("openai", self.timing.to_json())
        except ValueError as exc:
            return openai_error(400, str(exc), code="invalid_control")
        return None
