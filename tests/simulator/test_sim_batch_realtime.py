"""The batch engine with the realtime engine as its executor: batch lines get the realtime
answers and usage, with the batch service tier (in-process, no HTTP)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from workers.simulator.batches import BatchEngine, BatchTiming
from workers.simulator.clock import VirtualClock
from workers.simulator.config import SimConfig
from workers.simulator.protocol import SimRequest, normalize_path
from workers.simulator.realtime import RealtimeEngine


def _request(method: str, path: str, body: bytes, ctype: str) -> SimRequest:
    flavor, canonical, dep = normalize_path(path)
    return SimRequest(
        method=method,
        path=canonical,
        raw_path=path,
        query={},
        headers={"content-type": ctype},
        body=body,
        flavor=flavor,
        deployment=dep,
        base_url="http://127.0.0.1:1",
        received_at=time.time(),
    )


def _engine() -> tuple[BatchEngine, VirtualClock]:
    clock = VirtualClock(scale=1e-9, start=1_764_300_000.0)
    realtime = RealtimeEngine(config=SimConfig(), clock=clock)
    return BatchEngine(clock=clock, execute=realtime.execute, timing=BatchTiming()), clock


def _call(
    engine: BatchEngine, method: str, path: str, body: Any = b"", ctype: str = "application/json"
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = engine.handle(_request(method, path, raw, ctype))
    assert response is not None and response.status == 200, response
    data = response.encoded()
    return data if path.endswith(("/content", "/results")) else json.loads(data)


def test_openai_batch_lines_run_through_the_realtime_engine() -> None:
    engine, clock = _engine()
    rows = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-5.4-mini",
                "max_completion_tokens": 16,
                "messages": [{"role": "user", "content": f"question {i}"}],
            },
        }
        for i in range(3)
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="in.jsonl"\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    file_id = _call(engine, "POST", "/v1/files", form, f"multipart/form-data; boundary={boundary}")[
        "id"
    ]
    batch = _call(
        engine,
        "POST",
        "/v1/batches",
        {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    )
    clock.advance(3600)
    done = _call(engine, "GET", f"/v1/batches/{batch['id']}")
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    lines = [
        json.loads(x)
        for x in _call(engine, "GET", f"/v1/files/{done['output_file_id']}/content").splitlines()
    ]
    usage_in = sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in lines)
    assert done["usage"]["input_tokens"] == usage_in > 0
    assert {line["response"]["body"]["object"] for line in lines} == {"chat.completion"}


def test_anthropic_batch_results_report_batch_tier() -> None:
    engine, clock = _engine()
    body = {
        "requests": [
            {
                "custom_id": "a",
                "params": {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hello"}],
                },
            }
        ]
    }
    batch = _call(engine, "POST", "/v1/messages/batches", body)
    clock.advance(3600)
    rows = _call(engine, "GET", f"/v1/messages/batches/{batch['id']}/results").splitlines()
    result = json.loads(rows[0])["result"]
    assert result["type"] == "succeeded"
    assert result["message"]["usage"]["service_tier"] == "batch"
    assert result["message"]["type"] == "message"
