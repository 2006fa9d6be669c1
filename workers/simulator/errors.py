"""Errors of the realtime simulator and the two providers' error envelopes (spec §3.9).

The SDKs choose exception classes from the status and read `type`/`code`/`param` (OpenAI) or
`error.type`/`details.error_code` (Anthropic) from these exact shapes, so every realtime error
is built here.
"""

from __future__ import annotations

import uuid
from typing import Any

from workers.simulator.protocol import Flavor

ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

OPENAI_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "conflict_error",
    429: "requests",
}


class SimError(Exception):
    """A request the simulated provider rejects; rendered in the caller's dialect."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type
        self.headers = dict(headers or {})

    def body(self, flavor: Flavor, rid: str | None = None) -> dict[str, Any]:
        return error_body(
            flavor,
            self.status,
            self.message,
            param=self.param,
            code=self.code,
            error_type=self.error_type,
            rid=rid,
        )


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> SimError:
    return SimError(400, message, param=param, code=code)


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def request_id_header(flavor: Flavor, rid: str) -> dict[str, str]:
    return {"request-id": rid} if flavor == "anthropic" else {"x-request-id": rid}


def error_body(
    flavor: Flavor,
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    error_type: str | None = None,
    rid: str | None = None,
) -> dict[str, Any]:
    """The provider's error envelope for `status`."""
    if flavor == "anthropic":
        etype = error_type or ANTHROPIC_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        error: dict[str, Any] = {"type": etype, "message": message}
        if code:
            error["details"] = {"error_code": code}
        return {"type": "error", "error": error, "request_id": rid or new_request_id()}
    etype = error_type or OPENAI_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    if status == 429 and code is None and error_type is None:
        code = "rate_limit_exceeded"
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request.",
    401: "Invalid authentication.",
    403: "Permission denied.",
    404: "Not found.",
    408: "Request timed out.",
    409: "Conflict.",
    429: "Rate limit reached. Please try again later.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable.",
    504: "Gateway timeout.",
    529: "Overloaded",
}


def default_message(status: int) -> str:
    return DEFAULT_MESSAGES.get(status, f"Simulated error {status}.")
