"""OpenAI/Azure Files: an in-memory store, the multipart upload parser, and the `/v1/files` routes.

Batch input arrives here as a multipart upload and batch output leaves here as raw JSONL, so
the store keeps bytes verbatim. Files past `expires_at` (virtual clock) read as deleted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any

from workers.simulator.batch_settings import BatchLimits, BatchTiming
from workers.simulator.batch_wire import (
    BadParam,
    new_id,
    not_found_route,
    ok,
    openai_error,
    page_after,
    query_int,
    raw,
    unix,
)
from workers.simulator.clock import VirtualClock
from workers.simulator.protocol import Flavor, SimRequest, SimResponse

UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: float
    expires_at: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": unix(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": unix(self.expires_at),
            "status_details": None,
        }


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _header_param(value: str, header: str, param: str) -> str | None:
    msg = Message()
    msg[header] = value
    got = msg.get_param(param, header=header)
    if got is None or isinstance(got, tuple):
        return None if got is None else str(got[2])
    return str(got)


def parse_multipart(content_type: str, body: bytes) -> dict[str, FormPart]:
    """Split a multipart/form-data body into named parts (last one wins on duplicates)."""
    boundary = _header_param(content_type, "content-type", "boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise BadParam("Expected a multipart/form-data body with a boundary.")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts: dict[str, FormPart] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, chunk = chunk.partition(b"\r\n")  # rest of the delimiter line
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadParam("Malformed multipart part: no header terminator.")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        field_name = _header_param(disposition, "content-disposition", "name")
        if not field_name:
            raise BadParam("Malformed multipart part: no name in Content-Disposition.")
        filename = _header_param(disposition, "content-disposition", "filename")
        parts[field_name] = FormPart(field_name, data, filename, headers.get("content-type"))
    return parts


class FileStore:
    """One flavor's files (OpenAI and Azure keep separate namespaces, as real accounts do)."""

    def __init__(self, *, clock: VirtualClock, timing: BatchTiming) -> None:
        self._clock = clock
        self._timing = timing
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.RLock()

    def add(
        self, *, filename: str, purpose: str, data: bytes, expires_after: float | None = None
    ) -> StoredFile:
        now = self._clock.now()
        if expires_after is None and purpose in ("batch", "batch_output"):
            expires_after = self._timing.file_retention_seconds
        expires_at = None if expires_after is None else now + expires_after
        stored = StoredFile(new_id("file-"), filename, purpose, data, now, expires_at)
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            stored = self._files.get(file_id)
            if stored and stored.expires_at is not None and stored.expires_at <= self._clock.now():
                del self._files[file_id]
                return None
            return stored

    def delete(self, file_id: str) -> bool:
        with self._lock:
            return self.get(file_id) is not None and self._files.pop(file_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def all(self) -> list[StoredFile]:
        with self._lock:
            return [f for f in list(self._files.values()) if self.get(f.id) is not None]


class FileRoutes:
    """`/v1/files[/{id}[/content]]` for one flavor's `FileStore`."""

    def __init__(self, *, store: FileStore, flavor: Flavor, limits: BatchLimits) -> None:
        self.store = store
        self._flavor = flavor
        self._limits = limits

    def handle(self, request: SimRequest) -> SimResponse:
        segments = request.path.split("/")[3:]  # after "", "v1", "files"
        method = request.method
        try:
            if not segments and method == "POST":
                return self._create(request)
            if not segments and method == "GET":
                return self._list(request)
            if len(segments) == 1 and method in ("GET", "DELETE"):
                return self._one(segments[0], delete=method == "DELETE")
            if len(segments) == 2 and segments[1] == "content" and method == "GET":
                return self._content(segments[0])
        except BadParam as exc:
            return openai_error(
                400, exc.message, flavor=self._flavor, param=exc.param, code=exc.code
            )
        return not_found_route(self._flavor, method, request.raw_path)

    def _missing(self, file_id: str) -> SimResponse:
        return openai_error(404, f"No such File object: {file_id}", flavor=self._flavor, param="id")

    def _create(self, request: SimRequest) -> SimResponse:
        if len(request.body) > self._limits.max_upload_bytes:
            return openai_error(
                413,
                "File exceeds the maximum upload size.",
                flavor=self._flavor,
                code="file_too_large",
            )
        parts = parse_multipart(request.headers.get("content-type", ""), request.body)
        purpose = parts["purpose"].text() if "purpose" in parts else ""
        if purpose not in UPLOAD_PURPOSES:
            raise BadParam(f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        upload = parts.get("file")
        if upload is None:
            raise BadParam(
                "Missing required parameter: 'file'.",
                param="file",
                code="missing_required_parameter",
            )
        expires_after: float | None = None
        if "expires_after[seconds]" in parts or "expires_after[anchor]" in parts:
            anchor = parts.get("expires_after[anchor]")
            if anchor is None or anchor.text() != "created_at":
                raise BadParam(
                    "expires_after.anchor must be 'created_at'.", param="expires_after.anchor"
                )
            seconds_part = parts.get("expires_after[seconds]")
            try:
                seconds = int(seconds_part.text()) if seconds_part else -1
            except ValueError:
                seconds = -1
            if not 3600 <= seconds <= 2_592_000:
                raise BadParam(
                    "expires_after.seconds must be between 3600 and 2592000.",
                    param="expires_after.seconds",
                )
            expires_after = float(seconds)
        stored = self.store.add(
            filename=upload.filename or "upload",
            purpose=purpose,
            data=upload.data,
            expires_after=expires_after,
        )
        return ok(self._flavor, stored.to_json())

    def _list(self, request: SimRequest) -> SimResponse:
        q = request.query
        limit = query_int(q, "limit", default=10_000, low=1, high=10_000)
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadParam("Invalid 'order': must be 'asc' or 'desc'.", param="order")
        files = [f for f in self.store.all() if not q.get("purpose") or f.purpose == q["purpose"]]
        if order == "desc":
            files.reverse()
        by_id = {f.id: f for f in files}
        ids, has_more = page_after(list(by_id), q.get("after"), limit)
        data = [by_id[i].to_json() for i in ids]
        return ok(
            self._flavor,
            {
                "object": "list",
                "data": data,
                "has_more": has_more,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            },
        )

    def _one(self, file_id: str, *, delete: bool) -> SimResponse:
        stored = self.store.get(file_id)
        if stored is None:
            return self._missing(file_id)
        if delete:
            self.store.delete(file_id)
            return ok(self._flavor, {"id": file_id, "object": "file", "deleted": True})
        return ok(self._flavor, stored.to_json())

    def _content(self, file_id: str) -> SimResponse:
        stored = self.store.get(file_id)
        if stored is None:
            return self._missing(file_id)
        return raw(self._flavor, stored.data, "application/octet-stream")
