"""Wire details shared by the batch routes: ids, timestamps, error envelopes, pagination.

The OpenAI and Anthropic SDKs key their exception classes and `request_id` attributes on
these exact shapes and headers, so every batch/file response is built through here.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from workers.simulator.errors import ANTHROPIC_TYPES
from workers.simulator.protocol import Flavor, SimResponse

_ALNUM = string.ascii_letters + string.digits

ANTHROPIC_ERROR_TYPES = ANTHROPIC_TYPES  # one table, shared with the realtime errors


class BadParam(ValueError):
    """A request parameter is invalid; routes turn it into a 400 in the caller's dialect."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def request_id() -> str:
    return new_id("req_", 24)


def rfc3339(ts: float | None) -> str | None:
    """Anthropic batch timestamps are RFC 3339 strings (the SDK parses them to datetime)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def unix(ts: float | None) -> int | None:
    """OpenAI batch and file timestamps are Unix seconds (int)."""
    return None if ts is None else int(ts)


def id_header(flavor: Flavor) -> dict[str, str]:
    rid = request_id()
    if flavor == "anthropic":
        return {"request-id": rid}
    return {"x-request-id": rid}


def ok(flavor: Flavor, body: dict[str, Any] | list[Any], status: int = 200) -> SimResponse:
    return SimResponse(status=status, body=body, headers=id_header(flavor))


def raw(flavor: Flavor, data: bytes, content_type: str) -> SimResponse:
    return SimResponse(status=200, body=data, headers=id_header(flavor), content_type=content_type)


def openai_error(
    status: int,
    message: str,
    *,
    flavor: Flavor = "openai",
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> SimResponse:
    if type_ is None:
        type_ = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return SimResponse(status=status, body=body, headers={**id_header(flavor), **(headers or {})})


def anthropic_error_body(status: int, message: str, rid: str | None = None) -> dict[str, Any]:
    error_type = ANTHROPIC_ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": rid or request_id(),
    }


def anthropic_error(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> SimResponse:
    rid = request_id()
    body = anthropic_error_body(status, message, rid)
    return SimResponse(status=status, body=body, headers={"request-id": rid, **(headers or {})})


def error_for(
    flavor: Flavor, status: int, message: str, *, param: str | None = None, code: str | None = None
) -> SimResponse:
    """The error envelope of the caller's provider."""
    if flavor == "anthropic":
        return anthropic_error(status, message)
    return openai_error(status, message, flavor=flavor, param=param, code=code)


def not_found_route(flavor: Flavor, method: str, path: str) -> SimResponse:
    return error_for(flavor, 404, f"Invalid URL ({method} {path})", code="unknown_url")


def query_int(query: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw_value = query.get(name)
    if raw_value is None or raw_value == "":
        return default
    try:
        value = int(raw_value)
    except ValueError:
        raise BadParam(f"Invalid '{name}': expected an integer.", param=name) from None
    if not low <= value <= high:
        raise BadParam(f"Invalid '{name}': must be between {low} and {high}.", param=name)
    return value


def page_after(ids: list[str], after: str | None, limit: int) -> tuple[list[str], bool]:
    """Slice an ordered id list after a cursor; unknown cursors give an empty page."""
    start = 0
    if after:
        if after not in ids:
            return [], False
        start = ids.index(after) + 1
    chunk = ids[start : start + limit]
    return chunk, start + limit < len(ids)


if TYPE_CHECKING:
    from workers.simulator.batch_faults import FaultBook
    from workers.simulator.batch_settings import BatchLimits, BatchTiming
    from workers.simulator.clock import VirtualClock
    from workers.simulator.protocol import Executor

B = TypeVar("B")


class BatchBook(Generic[B]):
    """What both providers' batch stores share: a lock, the batches by id, and catching each
    batch up with the virtual clock before it is read (`refresh`, per provider)."""

    def __init__(
        self,
        *,
        clock: VirtualClock,
        execute: Executor,
        timing: BatchTiming,
        limits: BatchLimits,
        faults: FaultBook,
    ) -> None:
        self._clock = clock
        self._execute = execute
        self._timing = timing
        self._limits = limits
        self._faults = faults
        self._batches: dict[str, B] = {}
        self._lock = threading.RLock()

    def refresh(self, batch: B) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        with self._lock:
            self._batches.clear()

    def batches(self) -> list[B]:
        with self._lock:
            for batch in self._batches.values():
                self.refresh(batch)
            return list(self._batches.values())

    def summary(self) -> dict[str, Any]:
        counts = Counter(getattr(b, "status") for b in self.batches())  # noqa: B009
        return {"total": sum(counts.values()), "by_status": dict(counts)}
