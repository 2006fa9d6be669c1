"""In-process tests of Anthropic Message Batches in the batch engine (no HTTP server needed)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from workers.simulator.batches import BatchEngine, BatchLimits, BatchTiming
from workers.simulator.clock import VirtualClock
from workers.simulator.protocol import Flavor, SimRequest, SimResponse, normalize_path

T0 = 1_764_300_000.0
BASE = "http://127.0.0.1:8123"


class FakeExecutor:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, *, flavor: Flavor, endpoint: str, body: dict[str, Any], batch: bool
    ) -> tuple[int, dict[str, Any]]:
        self.calls.append({"flavor": flavor, "endpoint": endpoint, "body": body, "batch": batch})
        if body["model"] == "bad-model":
            return 404, {
                "type": "error",
                "request_id": "req_x",
                "error": {"type": "not_found_error", "message": "model: bad-model"},
            }
        return 200, {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }


def params(model: str = "claude-x", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def reqs(*ids: str) -> dict[str, Any]:
    return {"requests": [{"custom_id": cid, "params": params()} for cid in ids]}


class Sim:
    def __init__(self, **engine_kw: Any) -> None:
        self.clock = VirtualClock(scale=1e-9, start=T0)
        self.executor = FakeExecutor()
        timing = BatchTiming(request_seconds=1, finalizing_seconds=10, cancel_seconds=30)
        self.engine = BatchEngine(
            clock=self.clock, execute=self.executor, timing=timing, **engine_kw
        )

    def call(self, method: str, path: str, body: Any = b"") -> SimResponse:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        flavor, canonical, dep = normalize_path(path)
        request = SimRequest(
            method=method,
            path=canonical,
            raw_path=path,
            query=dict(parse_qsl(urlsplit(path).query)),
            headers={"content-type": "application/json"},
            body=body,
            flavor=flavor,
            deployment=dep,
            base_url=BASE,
            received_at=time.time(),
        )
        response = self.engine.handle(request)
        assert response is not None
        return response

    def json(self, method: str, path: str, body: Any = b"", *, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status == status, response.body
        assert "request-id" in response.headers
        return json.loads(response.encoded())

    def results(self, batch_id: str) -> dict[str, dict[str, Any]]:
        data = self.call("GET", f"/v1/messages/batches/{batch_id}/results").encoded()
        rows = [json.loads(line) for line in data.decode().splitlines()]
        return {row["custom_id"]: row["result"] for row in rows}


@pytest.fixture
def sim() -> Sim:
    return Sim()


def test_create_progress_and_results(sim: Sim) -> None:
    batch = sim.json("POST", "/v1/messages/batches", reqs("a", "b", "c"))
    bid = batch["id"]
    assert bid.startswith("msgbatch_") and batch["type"] == "message_batch"
    assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
    assert datetime.fromisoformat(batch["created_at"]).timestamp() == T0
    assert datetime.fromisoformat(batch["expires_at"]).timestamp() == T0 + 86_400
    sim.clock.advance(2.5)
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["request_counts"] == {
        "processing": 3,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert len(sim.executor.calls) == 2
    assert sim.call("GET", f"/v1/messages/batches/{bid}/results").status == 400
    sim.clock.advance(11)  # last line at +3, ended at +13
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["processing_status"] == "ended"
    assert datetime.fromisoformat(b["ended_at"]).timestamp() == T0 + 13
    assert b["results_url"] == f"{BASE}/v1/messages/batches/{bid}/results"
    assert b["request_counts"]["succeeded"] == 3
    results = sim.results(bid)
    assert set(results) == {"a", "b", "c"}
    assert results["a"]["type"] == "succeeded"
    assert results["a"]["message"]["usage"]["service_tier"] == "batch"
    assert all(
        c["batch"] and c["endpoint"] == "/v1/messages" and c["flavor"] == "anthropic"
        for c in sim.executor.calls
    )


@pytest.mark.parametrize(
    "body",
    [
        {"requests": []},
        {
            "requests": [
                {"custom_id": "a", "params": params()},
                {"custom_id": "a", "params": params()},
            ]
        },
        {"requests": [{"custom_id": "a", "params": params(stream=True)}]},
        {"requests": [{"custom_id": "a", "params": {**params(), "max_tokens": 0}}]},
        {"requests": [{"custom_id": "a", "params": params(speed="fast")}]},
        {"requests": [{"custom_id": "bad id!", "params": params()}]},
        {"requests": [{"custom_id": "a"}]},
    ],
)
def test_invalid_create_is_a_400(sim: Sim, body: dict[str, Any]) -> None:
    err = sim.json("POST", "/v1/messages/batches", body, status=400)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["request_id"].startswith("req_")


def test_duplicate_message_names_the_request(sim: Sim) -> None:
    err = sim.json("POST", "/v1/messages/batches", reqs("a", "b", "a"), status=400)
    assert "requests.2.custom_id" in err["error"]["message"]


def test_limits() -> None:
    sim = Sim(limits=BatchLimits(anthropic_max_requests=2, anthropic_max_body_bytes=2000))
    sim.json("POST", "/v1/messages/batches", reqs("a", "b", "c"), status=400)
    big = {"requests": [{"custom_id": "a", "params": params(system="x" * 3000)}]}
    err = sim.json("POST", "/v1/messages/batches", big, status=413)
    assert err["error"]["type"] == "request_too_large"


def test_errored_and_expired_lines(sim: Sim) -> None:
    sim.engine.set_faults(error_custom_ids=["b"], expire_custom_ids=["c"])
    body = reqs("a", "b", "c")
    body["requests"].append({"custom_id": "d", "params": params(model="bad-model")})
    bid = sim.json("POST", "/v1/messages/batches", body)["id"]
    sim.clock.advance(3600)
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["processing_status"] == "in_progress"
    assert b["request_counts"]["processing"] == 4 and b["request_counts"]["errored"] == 0
    sim.clock.advance(86_400)
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["processing_status"] == "ended"
    assert datetime.fromisoformat(b["ended_at"]).timestamp() == T0 + 86_400
    assert b["request_counts"] == {
        "processing": 0,
        "succeeded": 1,
        "errored": 2,
        "canceled": 0,
        "expired": 1,
    }
    results = sim.results(bid)
    assert results["b"]["type"] == "errored"
    assert results["b"]["error"]["error"]["type"] == "api_error"
    assert results["d"]["error"]["error"]["type"] == "not_found_error"
    assert results["c"] == {"type": "expired"}


def test_cancel_then_delete(sim: Sim) -> None:
    bid = sim.json("POST", "/v1/messages/batches", reqs("a", "b", "c", "d"))["id"]
    sim.clock.advance(2)
    assert sim.call("DELETE", f"/v1/messages/batches/{bid}").status == 400
    b = sim.json("POST", f"/v1/messages/batches/{bid}/cancel")
    assert b["processing_status"] == "canceling"
    assert datetime.fromisoformat(b["cancel_initiated_at"]).timestamp() == T0 + 2
    assert b["request_counts"]["processing"] == 4
    sim.clock.advance(30)
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["processing_status"] == "ended"
    assert b["request_counts"] == {
        "processing": 0,
        "succeeded": 2,
        "errored": 0,
        "canceled": 2,
        "expired": 0,
    }
    assert sim.results(bid)["d"] == {"type": "canceled"}
    assert sim.json("POST", f"/v1/messages/batches/{bid}/cancel")["processing_status"] == "ended"
    deleted = sim.json("DELETE", f"/v1/messages/batches/{bid}")
    assert deleted == {"id": bid, "type": "message_batch_deleted"}
    assert sim.call("GET", f"/v1/messages/batches/{bid}").status == 404


def test_cancel_after_natural_end_is_rejected(sim: Sim) -> None:
    bid = sim.json("POST", "/v1/messages/batches", reqs("a"))["id"]
    sim.clock.advance(100)
    assert sim.call("POST", f"/v1/messages/batches/{bid}/cancel").status == 400


def test_provider_cancel_ghost_create_and_archive(sim: Sim) -> None:
    sim.engine.set_faults(provider_cancel=1, cancel_after_seconds=1.5, ghost_creates=1)
    first = sim.call("POST", "/v1/messages/batches", reqs("a", "b", "c"))
    assert first.status == 500
    assert json.loads(first.encoded())["error"]["type"] == "api_error"
    listing = sim.json("GET", "/v1/messages/batches")
    assert len(listing["data"]) == 1
    bid = listing["data"][0]["id"]
    sim.clock.advance(100)
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["request_counts"]["succeeded"] == 1 and b["request_counts"]["canceled"] == 2
    sim.clock.advance(29 * 86_400)
    b = sim.json("GET", f"/v1/messages/batches/{bid}")
    assert b["archived_at"] is not None
    assert sim.call("GET", f"/v1/messages/batches/{bid}/results").status == 404


def test_fail_validation_fault(sim: Sim) -> None:
    sim.engine.set_faults(fail_validation=1)
    sim.json("POST", "/v1/messages/batches", reqs("a"), status=400)
    sim.json("POST", "/v1/messages/batches", reqs("a"))


def test_list_pagination(sim: Sim) -> None:
    ids = [sim.json("POST", "/v1/messages/batches", reqs("a"))["id"] for _ in range(5)]
    newest_first = ids[::-1]
    page = sim.json("GET", "/v1/messages/batches?limit=2")
    assert [b["id"] for b in page["data"]] == newest_first[:2] and page["has_more"]
    assert page["first_id"] == newest_first[0] and page["last_id"] == newest_first[1]
    page = sim.json("GET", f"/v1/messages/batches?limit=2&after_id={page['last_id']}")
    assert [b["id"] for b in page["data"]] == newest_first[2:4] and page["has_more"]
    page = sim.json("GET", f"/v1/messages/batches?limit=2&after_id={page['last_id']}")
    assert [b["id"] for b in page["data"]] == newest_first[4:] and not page["has_more"]
    page = sim.json("GET", f"/v1/messages/batches?limit=2&before_id={newest_first[4]}")
    assert [b["id"] for b in page["data"]] == newest_first[2:4] and page["has_more"]
    page = sim.json("GET", f"/v1/messages/batches?limit=2&before_id={newest_first[1]}")
    assert [b["id"] for b in page["data"]] == newest_first[:1] and not page["has_more"]
    assert sim.call("GET", "/v1/messages/batches?limit=1001").status == 400


def test_summary_counts_anthropic(sim: Sim) -> None:
    sim.json("POST", "/v1/messages/batches", reqs("a"))
    sim.clock.advance(100)
    sim.json("POST", "/v1/messages/batches", reqs("a"))
    summary = sim.engine.summary()["anthropic"]
    assert summary == {"total": 2, "by_status": {"ended": 1, "in_progress": 1}}
