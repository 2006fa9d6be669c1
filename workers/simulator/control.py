"""The `/_sim/...` control API: JSON over HTTP for tests running in other processes.

Every route mirrors a method of `SimulatorServer`, so an in-process test and a Celery worker
in another process steer the simulator the same way. No auth: the server binds loopback.

    POST   /_sim/faults           {"path": "/v1/chat/completions", "method": "POST",
                                   "faults": [{"status": 429, "retry_after_ms": 10}, ...]}
                                  or {"model": "gpt-5.4", "fault": {...}}
    GET    /_sim/faults           pending queue sizes
    DELETE /_sim/faults           drop every queued fault
    POST   /_sim/scripts          a rule object or {"rules": [...]} -> rules with ids
    GET    /_sim/scripts          live rules
    DELETE /_sim/scripts[?id=N]   drop all rules (or one)
    POST   /_sim/clock/advance    {"seconds": 3600} -> {"now": ...}
    GET    /_sim/clock            {"now": ..., "scale": ...}
    GET    /_sim/requests?since=N {"requests": [...], "last_seq": M}
    GET    /_sim/config           latency and cache settings
    POST   /_sim/config           partial update, e.g. {"latency_ms": {"gpt-5.4": 50}}
    GET    /_sim/cache            {"entries": n}
    POST   /_sim/reset            faults, scripts, cache, request log (and handlers' reset())
    GET    /_sim/health           {"status": "ok", ...}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workers.simulator.faults import Fault, ScriptRule
from workers.simulator.protocol import SimRequest, SimResponse, normalize_path

if TYPE_CHECKING:
    from workers.simulator.server import SimulatorServer

PREFIX = "/_sim/"


class ControlError(ValueError):
    """A malformed control request (answered 400 with `{"error": message}`)."""


def _json(body: Any, status: int = 200) -> SimResponse:
    return SimResponse(status, body, {"x-request-id": "sim-control"})


def _object(request: SimRequest) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError as exc:
        raise ControlError("body is not valid JSON") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


class ControlRoutes:
    def __init__(self, server: SimulatorServer) -> None:
        self._server = server
        self._routes: dict[tuple[str, str], Callable[[SimRequest], Any]] = {
            ("POST", "/_sim/faults"): self._add_faults,
            ("GET", "/_sim/faults"): lambda r: {"pending": server.faults.pending()},
            ("DELETE", "/_sim/faults"): lambda r: self._done(server.clear_faults),
            ("POST", "/_sim/scripts"): self._add_scripts,
            ("GET", "/_sim/scripts"): lambda r: {"rules": server.scripts.rules()},
            ("DELETE", "/_sim/scripts"): self._delete_scripts,
            ("POST", "/_sim/clock/advance"): self._advance,
            ("GET", "/_sim/clock"): lambda r: {
                "now": server.clock.now(),
                "scale": server.clock.scale,
            },
            ("GET", "/_sim/requests"): self._requests,
            ("GET", "/_sim/config"): lambda r: server.config.to_json(),
            ("POST", "/_sim/config"): self._config,
            ("GET", "/_sim/cache"): lambda r: {"entries": len(server.cache)},
            ("POST", "/_sim/reset"): lambda r: self._done(server.reset),
            ("GET", "/_sim/health"): lambda r: server.health(),
        }

    def handle(self, request: SimRequest) -> SimResponse | None:
        route = self._routes.get((request.method, request.path))
        if route is None:
            return None
        try:
            return _json(route(request))
        except (ControlError, ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)

    @staticmethod
    def _done(action: Callable[[], object]) -> dict[str, Any]:
        action()
        return {"ok": True}

    def _add_faults(self, request: SimRequest) -> dict[str, Any]:
        data = _object(request)
        raw = data.get("faults", [data["fault"]] if "fault" in data else None)
        if not isinstance(raw, list) or not raw:
            raise ControlError("give 'faults': [...] or 'fault': {...}")
        faults = [Fault.from_json(f) for f in raw]
        path = data.get("path")
        if isinstance(path, str):
            path = normalize_path(path)[1]
        queued = self._server.add_faults(
            faults, path=path, method=data.get("method", "POST"), model=data.get("model")
        )
        return {"queued": queued}

    def _add_scripts(self, request: SimRequest) -> dict[str, Any]:
        data = _object(request)
        raw = data.get("rules", [data])
        if not isinstance(raw, list):
            raise ControlError("'rules' must be a list")
        added = [self._server.add_script(ScriptRule.from_json(r)) for r in raw]
        return {"rules": [r.to_json() for r in added]}

    def _delete_scripts(self, request: SimRequest) -> dict[str, Any]:
        rule_id = request.query.get("id")
        if rule_id is None:
            self._server.clear_scripts()
            return {"ok": True}
        return {"ok": self._server.scripts.remove(int(rule_id))}

    def _advance(self, request: SimRequest) -> dict[str, Any]:
        seconds = _object(request).get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ControlError("'seconds' must be a number")
        return {"now": self._server.advance(float(seconds))}

    def _requests(self, request: SimRequest) -> dict[str, Any]:
        since = int(request.query.get("since", "0") or 0)
        entries = self._server.requests(since=since)
        return {"requests": entries, "last_seq": self._server.log.last_seq}

    def _config(self, request: SimRequest) -> dict[str, Any]:
        self._server.config.update(_object(request))
        return self._server.config.to_json()
