"""The official `openai`, `AzureOpenAI` and `anthropic` SDKs driving the batch engine inside
the real `SimulatorServer` over loopback HTTP. Batch timing and faults are set through the
server's `/_sim/batch_*` control routes (as a test in another process would); time passes by
advancing the virtual clock, never by sleeping."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from workers.simulator.config import SimConfig
from workers.simulator.server import SimulatorServer

DAY = 86_400
TIMING = {
    "validating_seconds": 10,
    "request_seconds": 1,
    "finalizing_seconds": 10,
    "cancel_seconds": 30,
}


def control(
    server: SimulatorServer, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def set_faults(server: SimulatorServer, **faults: Any) -> None:
    control(server, "POST", "/_sim/batch_faults", faults)


def set_timing(server: SimulatorServer, **timing: Any) -> None:
    control(server, "POST", "/_sim/batch_timing", timing)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(host="127.0.0.1", port=0, config=SimConfig()).start()
    try:
        set_timing(server, **TIMING)
        yield server
    finally:
        server.stop()


@pytest.fixture
def oai(sim: SimulatorServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=sim.openai_base_url, api_key="sk-test", max_retries=0, timeout=10
    )
    yield client
    client.close()


@pytest.fixture
def claude(sim: SimulatorServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=0, timeout=10
    )
    yield client
    client.close()


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def chat_line(
    cid: str, *, model: str = "gpt-5.4-mini", url: str = "/v1/chat/completions"
) -> dict[str, Any]:
    return {
        "custom_id": cid,
        "method": "POST",
        "url": url,
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": f"say {cid}"}],
            "max_completion_tokens": 20,
        },
    }


def submit(client: openai.OpenAI, rows: list[dict[str, Any]], **extra: Any) -> Any:
    uploaded = client.files.create(
        file=("in.jsonl", jsonl(rows), "application/jsonl"), purpose="batch"
    )
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **extra
    )


def by_custom_id(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    text = client.files.content(file_id).text
    return {row["custom_id"]: row for row in map(json.loads, text.splitlines())}


def test_openai_happy_path(sim: SimulatorServer, oai: openai.OpenAI) -> None:
    uploaded = oai.files.create(
        file=("in.jsonl", jsonl([chat_line(c) for c in "abc"]), "application/jsonl"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert uploaded.purpose == "batch" and uploaded.filename == "in.jsonl"
    assert uploaded.expires_at == uploaded.created_at + 7200
    batch = oai.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"lane": "deferrable"},
    )
    assert batch.status == "validating" and batch._request_id
    sim.advance(3600)
    done = oai.batches.retrieve(batch.id)
    assert done.status == "completed" and done.metadata == {"lane": "deferrable"}
    assert done.request_counts is not None and done.request_counts.completed == 3
    assert done.usage is not None and done.usage.input_tokens > 0
    assert done.completed_at is not None and done.in_progress_at is not None
    lines = by_custom_id(oai, done.output_file_id)
    assert set(lines) == {"a", "b", "c"}
    assert done.usage.input_tokens == sum(
        line["response"]["body"]["usage"]["prompt_tokens"] for line in lines.values()
    )
    assert lines["a"]["response"]["status_code"] == 200
    assert lines["a"]["response"]["body"]["choices"][0]["message"]["role"] == "assistant"
    assert oai.files.retrieve(done.output_file_id or "").purpose == "batch_output"
    assert [b.id for b in oai.batches.list()] == [batch.id]


def test_openai_errored_lines_land_in_error_file(sim: SimulatorServer, oai: openai.OpenAI) -> None:
    set_faults(sim, error_custom_ids=["b"])
    batch = submit(oai, [chat_line(c) for c in "abc"])
    sim.advance(3600)
    done = oai.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    errors = by_custom_id(oai, done.error_file_id)
    assert errors["b"]["response"]["status_code"] == 500
    assert set(by_custom_id(oai, done.output_file_id)) == {"a", "c"}


def test_openai_partial_expiry(sim: SimulatorServer, oai: openai.OpenAI) -> None:
    set_faults(sim, expire_fraction=0.5)
    batch = submit(oai, [chat_line(f"r{i}") for i in range(4)])
    sim.advance(DAY + 60)
    done = oai.batches.retrieve(batch.id)
    assert done.status == "expired" and done.expired_at is not None
    errors = by_custom_id(oai, done.error_file_id)
    assert len(errors) == 2
    assert {e["error"]["code"] for e in errors.values()} == {"batch_expired"}
    assert len(by_custom_id(oai, done.output_file_id)) == 2


def test_openai_failed_validation_duplicate_custom_id(
    sim: SimulatorServer, oai: openai.OpenAI
) -> None:
    batch = submit(oai, [chat_line("a"), chat_line("b"), chat_line("a")])
    sim.advance(60)
    failed = oai.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.errors is not None
    error = (failed.errors.data or [])[0]
    assert error.code == "duplicate_custom_id" and error.line == 3


def test_openai_cancel(sim: SimulatorServer, oai: openai.OpenAI) -> None:
    set_timing(sim, request_seconds=100)
    batch = submit(oai, [chat_line(c) for c in "abcd"])
    sim.advance(250)
    cancelling = oai.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    sim.advance(60)
    cancelled = oai.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.request_counts is not None
    assert cancelled.request_counts.completed == 2
    finished = submit(oai, [chat_line("z")])
    sim.advance(3600)
    with pytest.raises(openai.BadRequestError):
        oai.batches.cancel(finished.id)


def test_openai_ghost_create_is_retried_into_a_duplicate(sim: SimulatorServer) -> None:
    """The SDK retries the 500; both batches exist and carry the accumulator's metadata."""
    set_faults(sim, ghost_creates=1)
    client = openai.OpenAI(
        base_url=sim.openai_base_url, api_key="sk-test", max_retries=1, timeout=10
    )
    batch = submit(client, [chat_line("a")], metadata={"lanes_batch": "acc-1"})
    tagged = [
        b
        for b in client.batches.list(limit=100)
        if (b.metadata or {}).get("lanes_batch") == "acc-1"
    ]
    assert len(tagged) == 2 and batch.id in {b.id for b in tagged}
    client.close()


def test_anthropic_batch_results_are_typed(
    sim: SimulatorServer, claude: anthropic.Anthropic
) -> None:
    set_faults(sim, error_custom_ids=["b"])
    requests = [
        {
            "custom_id": cid,
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": 32,
                "messages": [{"role": "user", "content": "hi"}],
            },
        }
        for cid in "abc"
    ]
    batch = claude.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 3
    with pytest.raises(anthropic.AnthropicError):
        claude.messages.batches.results(batch.id)
    sim.advance(3600)
    ended = claude.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert ended.request_counts.succeeded == 2 and ended.request_counts.errored == 1
    assert ended.results_url == f"{sim.anthropic_base_url}/v1/messages/batches/{batch.id}/results"
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert set(results) == {"a", "b", "c"}
    ok = results["a"]
    assert ok.type == "succeeded" and ok.message.usage.service_tier == "batch"
    assert results["b"].type == "errored"
    assert [b.id for b in claude.messages.batches.list()] == [batch.id]
    assert claude.messages.batches.delete(batch.id).type == "message_batch_deleted"


def test_anthropic_cancel_and_validation(sim: SimulatorServer, claude: anthropic.Anthropic) -> None:
    params: Any = {
        "model": "claude-haiku-4-5",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.create(
            requests=[{"custom_id": "a", "params": params}, {"custom_id": "a", "params": params}]
        )
    set_timing(sim, request_seconds=100)
    batch = claude.messages.batches.create(
        requests=[{"custom_id": c, "params": params} for c in "abc"]
    )
    sim.advance(150)
    assert claude.messages.batches.cancel(batch.id).processing_status == "canceling"
    sim.advance(60)
    types = {r.custom_id: r.result.type for r in claude.messages.batches.results(batch.id)}
    assert types == {"a": "succeeded", "b": "canceled", "c": "canceled"}


def test_azure_files_and_batches(sim: SimulatorServer) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=sim.azure_endpoint,
        api_version="2025-04-01-preview",
        api_key="sk-test",
        max_retries=0,
        timeout=10,
    )
    rows = [chat_line(c, model="gpt-batch-deploy", url="/chat/completions") for c in "ab"]
    uploaded = client.files.create(
        file=("in.jsonl", jsonl(rows), "application/jsonl"), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]
        completion_window="24h",
    )
    assert batch.endpoint == "/chat/completions"
    sim.advance(3 * DAY)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.model == "gpt-batch-deploy"
    assert set(by_custom_id(client, done.output_file_id)) == {"a", "b"}
    plain = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        plain.batches.retrieve(batch.id)
    plain.close()
    client.close()


def test_control_summary_and_reset(
    sim: SimulatorServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    submit(oai, [chat_line("a")])
    claude.messages.batches.create(
        requests=[
            {
                "custom_id": "a",
                "params": {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            }
        ]
    )
    summary = control(sim, "GET", "/_sim/batches")
    assert summary["openai"]["by_status"] == {"validating": 1}
    assert summary["anthropic"]["by_status"] == {"in_progress": 1}
    set_faults(sim, ghost_creates=3)
    control(sim, "POST", "/_sim/reset", {})
    assert control(sim, "GET", "/_sim/batch_faults")["ghost_creates"] == 0
    assert control(sim, "GET", "/_sim/batches")["openai"]["total"] == 0
    with pytest.raises(openai.BadRequestError) as info:
        oai.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert info.value.request_id
