"""The contract between the simulator's HTTP front and its route handlers.

The HTTP server parses a request once into a `SimRequest` (with Azure paths already mapped to
their OpenAI equivalents) and offers it to each registered `RouteHandler` in turn; the first
one that returns a `SimResponse` answers it. Handlers never touch sockets, so they are tested
without a server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Flavor = Literal["openai", "azure", "anthropic"]


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    """Canonical path: OpenAI and Azure paths as `/v1/...` OpenAI paths, Anthropic as sent."""
    raw_path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-cased header names."""
    body: bytes
    flavor: Flavor
    deployment: str | None
    """Azure deployment segment, when the path carried one."""
    base_url: str
    """`http://host:port` of this server, for absolute URLs such as Anthropic `results_url`."""
    received_at: float
    """Wall-clock `time.time()` when the request line arrived (used by latency benchmarks)."""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def model(self) -> str | None:
        """The body's `model` (Azure: the deployment), for logs, faults and scripts."""
        if self.body[:1] == b"{":
            try:
                body = json.loads(self.body)
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                return str(body["model"])
        return self.deployment


@dataclass
class SimResponse:
    status: int
    body: bytes | dict[str, Any] | list[Any]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


class RouteHandler(Protocol):
    def handle(self, request: SimRequest) -> SimResponse | None:
        """Answer the request, or return None when the route is not this handler's."""


class Executor(Protocol):
    """Runs one request body as the realtime endpoint would, without HTTP.

    The batch engine calls it for every input line. `endpoint` is the canonical path
    (`/v1/chat/completions`, `/v1/responses`, `/v1/messages`). Returns the HTTP status and the
    JSON body the realtime endpoint would have returned (a success object or an error
    envelope). With `batch=True` usage reports the batch service tier.
    """

    def __call__(
        self, *, flavor: Flavor, endpoint: str, body: dict[str, Any], batch: bool
    ) -> tuple[int, dict[str, Any]]: ...


_AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/(?P<dep>[^/]+)(?P<rest>/.*)$")


def normalize_path(raw_path: str) -> tuple[Flavor, str, str | None]:
    """Map a request path to (flavor, canonical OpenAI/Anthropic path, Azure deployment).

    `/v1/messages...` is Anthropic; `/openai/deployments/{dep}/x`, `/openai/v1/x` and
    `/openai/x` are Azure spellings of OpenAI's `/v1/x`; any other `/v1/x` is OpenAI.
    """
    path = raw_path.split("?", 1)[0].rstrip("/") or "/"
    if path.startswith("/v1/messages"):
        return "anthropic", path, None
    m = _AZURE_DEPLOYMENT.match(path)
    if m:
        return "azure", "/v1" + m.group("rest"), m.group("dep")
    if path.startswith("/openai/v1/"):
        return "azure", path[len("/openai") :], None
    if path.startswith("/openai/"):
        return "azure", "/v1" + path[len("/openai") :], None
    return "openai", path, None
