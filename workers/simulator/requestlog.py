"""The log of requests the simulator received, for tests that count attempts.

Entries carry what a test asserts on (which path, which model, which retry attempt, what
status came back) and deliberately never any header value that could hold a credential.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class LogEntry:
    seq: int
    received_at: float
    """Wall-clock `time.time()` when the request line arrived."""
    method: str
    path: str
    """Canonical path (Azure spellings mapped to `/v1/...`)."""
    raw_path: str
    flavor: str
    model: str | None
    deployment: str | None
    retry_count: int | None
    """`x-stainless-retry-count`: 0 for the first attempt, 1 for the first retry..."""
    status: int | None = None
    client_request_id: str | None = None
    """The caller's `X-Client-Request-Id` (llm-lanes sends the job id) for correlation."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._seq = 0

    def record(self, **fields: Any) -> LogEntry:
        with self._lock:
            self._seq += 1
            entry = LogEntry(seq=self._seq, **fields)
            self._entries.append(entry)
            return entry

    def since(self, seq: int = 0) -> list[LogEntry]:
        with self._lock:
            return [e for e in self._entries if e.seq > seq]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        """Forget entries but keep numbering, so a `since` cursor held by a test stays valid."""
        with self._lock:
            self._entries.clear()
