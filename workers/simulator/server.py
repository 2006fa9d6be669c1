"""The simulator's HTTP front: loopback server, auth, faults, request log, handler chain.

One request goes: control routes (`/_sim/...`, no auth) → auth → log → the next queued
fault, if any → the realtime engine → extra handlers (the batch engine) → 404. Stdlib only
(`ThreadingHTTPServer`, HTTP/1.1 keep-alive, daemon threads) so the SDKs' connection pools
behave as against the real APIs.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from workers.simulator.cache import PrefixCache
from workers.simulator.clock import VirtualClock
from workers.simulator.config import SimConfig
from workers.simulator.control import PREFIX, ControlRoutes
from workers.simulator.errors import error_body, new_request_id, request_id_header
from workers.simulator.faults import Fault, FaultQueues, ScriptBook, ScriptRule
from workers.simulator.protocol import (
    Executor,
    Flavor,
    RouteHandler,
    SimRequest,
    SimResponse,
    normalize_path,
)
from workers.simulator.realtime import RealtimeEngine
from workers.simulator.requestlog import RequestLog

log = logging.getLogger(__name__)


def default_batch_handler(*, clock: VirtualClock, execute: Executor) -> RouteHandler | None:
    """The batch engine, when that part of the simulator is installed."""
    try:
        module = importlib.import_module("workers.simulator.batches")
    except ImportError:
        return None
    engine_cls = getattr(module, "BatchEngine", None)
    if engine_cls is None:
        return None
    handler: RouteHandler = engine_cls(clock=clock, execute=execute)
    return handler


class SimulatorServer:
    """A provider simulator on `host:port` (port 0 picks a free one at construction)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimConfig | None = None,
        *,
        clock: VirtualClock | None = None,
        extra_handlers: Iterable[RouteHandler] = (),
        batch: bool = True,
    ) -> None:
        self.config = config or SimConfig()
        self.clock = clock or VirtualClock(self.config.time_scale)
        self.engine = RealtimeEngine(config=self.config, clock=self.clock)
        self.faults = FaultQueues()
        self.log = RequestLog(self.config.max_log_entries)
        self._handlers: list[RouteHandler] = [self.engine, *extra_handlers]
        if batch:
            batch_handler = default_batch_handler(clock=self.clock, execute=self.executor)
            if batch_handler is not None:
                self._handlers.append(batch_handler)
        self._control = ControlRoutes(self)
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.sim = self
        self._thread: threading.Thread | None = None

    # -- addresses ----------------------------------------------------------------------
    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def azure_endpoint(self) -> str:
        return self.url

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                args=(0.05,),
                name=f"llm-lanes-sim:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- parts --------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        """Runs a body as the realtime endpoints would; hand it to a batch engine."""
        return self.engine.execute

    @property
    def scripts(self) -> ScriptBook:
        return self.engine.scripts

    @property
    def cache(self) -> PrefixCache:
        return self.engine.cache

    def add_handler(self, handler: RouteHandler) -> None:
        """Offer requests to `handler` after the built-in routes, before the 404."""
        self._handlers.append(handler)

    # -- in-process control API (mirrors /_sim/...) -------------------------------------
    def add_faults(
        self,
        faults: Fault | list[Fault],
        *,
        path: str | None = None,
        method: str = "POST",
        model: str | None = None,
    ) -> int:
        """Queue faults for the next attempts on `(method, path)` or on `model`."""
        items = [faults] if isinstance(faults, Fault) else list(faults)
        return self.faults.push(items, method=method, path=path, model=model)

    def clear_faults(self) -> None:
        self.faults.clear()

    def add_script(self, rule: ScriptRule | dict[str, Any]) -> ScriptRule:
        parsed = rule if isinstance(rule, ScriptRule) else ScriptRule.from_json(rule)
        return self.scripts.add(parsed)

    def clear_scripts(self) -> None:
        self.scripts.clear()

    def advance(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.log.since(since)]

    def reset(self) -> None:
        """Forget faults, scripts, cache entries and the log (the clock keeps its time)."""
        self.faults.clear()
        self.engine.reset()
        self.log.clear()
        for handler in self._handlers[1:]:
            reset = getattr(handler, "reset", None)
            if callable(reset):
                reset()

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "url": self.url,
            "now": self.clock.now(),
            "handlers": [type(h).__name__ for h in self._handlers],
        }

    # -- the request pipeline (no sockets) ----------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        if request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/"):
            answer = self._control.handle(request) or self._offer(request, self._handlers[1:])
            return answer or SimResponse(404, {"error": f"no control route {request.path}"})
        denied = self._check_auth(request)
        if denied is not None:
            self._record(request, None, denied.status)
            return denied
        model = request.model()
        entry = self._record(request, model, None)
        response = self._answer(request, model)
        entry.status = response.status
        return response

    def _answer(self, request: SimRequest, model: str | None) -> SimResponse:
        fault = self.faults.take(method=request.method, path=request.path, model=model)
        if fault is not None:
            if fault.delay_ms > 0:
                time.sleep(fault.delay_ms * self.config.latency_scale / 1000.0)
            forced = fault.response(request.flavor, new_request_id())
            if forced is not None:
                return forced
        answer = self._offer(request, self._handlers)
        if answer is not None:
            return answer
        rid = new_request_id()
        message = f"Invalid URL ({request.method} {request.raw_path.split('?', 1)[0]})"
        return SimResponse(
            404,
            error_body(request.flavor, 404, message, rid=rid),
            request_id_header(request.flavor, rid),
        )

    @staticmethod
    def _offer(request: SimRequest, handlers: Iterable[RouteHandler]) -> SimResponse | None:
        for handler in handlers:
            answer = handler.handle(request)
            if answer is not None:
                return answer
        return None

    def _check_auth(self, request: SimRequest) -> SimResponse | None:
        headers = request.headers
        bearer = headers.get("authorization", "")
        key = (
            (bearer[7:].strip() if bearer.lower().startswith("bearer ") else "")
            or headers.get("x-api-key", "")
            or headers.get("api-key", "")
        )
        if key and (self.config.api_keys is None or key in self.config.api_keys):
            return None
        if not key:
            message = (
                "x-api-key header is required"
                if request.flavor == "anthropic"
                else "You didn't provide an API key. Provide it in an Authorization header "
                "(Bearer auth) or an api-key header."
            )
            code = None
        else:
            message, code = "Incorrect API key provided.", "invalid_api_key"
        rid = new_request_id()
        body = error_body(
            request.flavor,
            401,
            message,
            code=None if request.flavor == "anthropic" else code,
            rid=rid,
        )
        return SimResponse(401, body, request_id_header(request.flavor, rid))

    def _record(self, request: SimRequest, model: str | None, status: int | None) -> Any:
        retry = request.headers.get("x-stainless-retry-count")
        return self.log.record(
            received_at=request.received_at,
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            flavor=request.flavor,
            model=model,
            deployment=request.deployment,
            retry_count=int(retry) if retry and retry.isdigit() else None,
            status=status,
            client_request_id=request.headers.get("x-client-request-id"),
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: SimulatorServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per response). Real providers do not behave like that.
    disable_nagle_algorithm = True
    server: _HTTPServer
    _received_at = 0.0

    def parse_request(self) -> bool:
        self._received_at = time.time()
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        sim = self.server.sim
        split = urlsplit(self.path)
        flavor, path, deployment = normalize_path(split.path)
        request = SimRequest(
            method=self.command,
            path=path,
            raw_path=self.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._body(),
            flavor=flavor,
            deployment=deployment,
            base_url=sim.url,
            received_at=self._received_at,
        )
        try:
            response = sim.dispatch(request)
        except Exception:
            log.exception("simulator handler failed for %s %s", self.command, path)
            response = _crash(flavor)
        self._send(response, flavor)

    def _send(self, response: SimResponse, flavor: Flavor) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        headers = {k.lower(): v for k, v in response.headers.items()}
        if "request-id" not in headers and "x-request-id" not in headers:
            headers.update(request_id_header(flavor, new_request_id()))
        headers["content-type"] = response.content_type
        headers["content-length"] = str(len(payload))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve
    do_PUT = _serve
    do_PATCH = _serve


def _crash(flavor: Flavor) -> SimResponse:
    rid = new_request_id()
    body = error_body(flavor, 500, "The simulator failed while handling the request.", rid=rid)
    return SimResponse(500, body, request_id_header(flavor, rid))


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8400,
    config: SimConfig | None = None,
    batch: bool = True,
) -> None:
    """Run the simulator in the foreground until interrupted (the CLI's entry point)."""
    server = SimulatorServer(host, port, config, batch=batch)
    log.info("llm-lanes simulator listening on %s", server.url)
    print(
        f"llm-lanes simulator listening on {server.url} (OpenAI base_url {server.openai_base_url})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
