"""Validation of an OpenAI/Azure batch input file, as the providers do it during `validating`.

The providers report content problems not as a 400 on create but as a batch that turns
`failed` with `errors.data[]` entries naming the line; the codes follow the documented ones
(`invalid_json_line`, `duplicate_custom_id`, `url_mismatch`, `model_mismatch`, `empty_file`,
`too_many_tasks`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workers.simulator.batch_lines import BatchLine
from workers.simulator.batch_settings import BatchLimits

SUPPORTED_ENDPOINTS = frozenset(
    {
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/videos",
    }
)
MAX_REPORTED_ERRORS = 100


def canonical_endpoint(endpoint: str, flavor: str) -> str:
    """Azure accepts `/chat/completions` as well as `/v1/chat/completions`."""
    if flavor == "azure" and not endpoint.startswith("/v1/"):
        return "/v1" + endpoint
    return endpoint


@dataclass
class ParsedInput:
    lines: list[BatchLine] = field(default_factory=list)
    model: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(
        self, code: str, message: str, *, line: int | None = None, param: str | None = None
    ) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


def _check_line(
    obj: Any,
    number: int,
    *,
    out: ParsedInput,
    flavor: str,
    endpoint: str,
    seen: dict[str, int],
) -> None:
    if not isinstance(obj, dict):
        out.fail("invalid_json_line", "This line is not a JSON object.", line=number)
        return
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        out.fail(
            "missing_required_parameter",
            "Missing required parameter: 'custom_id'.",
            line=number,
            param="custom_id",
        )
        return
    if custom_id in seen:
        out.fail(
            "duplicate_custom_id",
            f"The custom_id '{custom_id}' on line {number} is a duplicate of the "
            f"custom_id on line {seen[custom_id]}.",
            line=number,
            param="custom_id",
        )
        return
    seen[custom_id] = number
    if obj.get("method") != "POST":
        out.fail(
            "invalid_method", "The only supported method is POST.", line=number, param="method"
        )
        return
    url = obj.get("url")
    if not isinstance(url, str) or canonical_endpoint(url, flavor) != endpoint:
        out.fail(
            "url_mismatch",
            f"The url on line {number} does not match the batch endpoint.",
            line=number,
            param="url",
        )
        return
    body = obj.get("body")
    if not isinstance(body, dict):
        out.fail("invalid_request", "Missing or invalid 'body' object.", line=number, param="body")
        return
    if body.get("stream"):
        out.fail(
            "invalid_request",
            "Streaming is not supported in batches.",
            line=number,
            param="body.stream",
        )
        return
    model = body.get("model")
    if not isinstance(model, str) or not model:
        out.fail(
            "missing_required_parameter",
            "Missing required parameter: 'body.model'.",
            line=number,
            param="body.model",
        )
        return
    if out.model is None:
        out.model = model
    elif model != out.model:
        what = "deployment" if flavor == "azure" else "model"
        out.fail(
            "model_mismatch",
            f"The {what} '{model}' on line {number} differs from '{out.model}'; "
            f"a batch file must use a single {what}.",
            line=number,
            param="body.model",
        )
        return
    out.lines.append(BatchLine(number=number, custom_id=custom_id, body=body))


def parse_input(data: bytes, *, flavor: str, endpoint: str, limits: BatchLimits) -> ParsedInput:
    """Validate every line; `endpoint` is the canonical batch endpoint."""
    out = ParsedInput()
    if len(data) > limits.openai_max_batch_file_bytes:
        out.fail("file_too_large", "The input file exceeds the maximum batch file size.")
        return out
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.fail("invalid_file", "The input file is not valid UTF-8.")
        return out
    seen: dict[str, int] = {}
    count = 0
    for number, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip():
            continue
        count += 1
        try:
            obj = json.loads(raw_line)
        except ValueError:
            out.fail("invalid_json_line", "This line is not parseable as valid JSON.", line=number)
            continue
        _check_line(obj, number, out=out, flavor=flavor, endpoint=endpoint, seen=seen)
    max_requests = limits.max_requests(flavor)
    if count == 0:
        out.fail("empty_file", "The input file is empty.")
    elif count > max_requests:
        out.fail(
            "too_many_tasks",
            f"The batch input file has {count} requests; the maximum is {max_requests}.",
        )
    return out
