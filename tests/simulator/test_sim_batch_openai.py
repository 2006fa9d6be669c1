"""In-process tests of the OpenAI/Azure side of the batch engine: files, batch lifecycle,
input validation, fault injection and the control routes (no HTTP server needed)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from workers.simulator.batches import BatchEngine, BatchLimits, BatchTiming
from workers.simulator.clock import VirtualClock
from workers.simulator.protocol import Flavor, SimRequest, SimResponse, normalize_path

T0 = 1_764_300_000.0


class FakeExecutor:
    """Answers like the realtime endpoints would; `bad-model` gets a 404 like a real API."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, *, flavor: Flavor, endpoint: str, body: dict[str, Any], batch: bool
    ) -> tuple[int, dict[str, Any]]:
        self.calls.append({"flavor": flavor, "endpoint": endpoint, "body": body, "batch": batch})
        if body.get("model") == "bad-model":
            return 404, {
                "error": {
                    "message": "model not found",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                }
            }
        if endpoint == "/v1/responses":
            return 200, {
                "id": "resp_1",
                "object": "response",
                "status": "completed",
                "model": body["model"],
                "output": [],
                "usage": {
                    "input_tokens": 20,
                    "output_tokens": 4,
                    "total_tokens": 24,
                    "input_tokens_details": {"cached_tokens": 8},
                    "output_tokens_details": {"reasoning_tokens": 1},
                },
            }
        return 200, {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(T0),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": "ok", "refusal": None},
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }


def make_request(
    method: str, raw_path: str, body: Any = b"", *, headers: dict[str, str] | None = None
) -> SimRequest:
    flavor, path, deployment = normalize_path(raw_path)
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        hdrs.setdefault("content-type", "application/json")
    return SimRequest(
        method=method,
        path=path,
        raw_path=raw_path,
        query=dict(parse_qsl(urlsplit(raw_path).query)),
        headers=hdrs,
        body=body,
        flavor=flavor,
        deployment=deployment,
        base_url="http://127.0.0.1:9",
        received_at=time.time(),
    )


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: application/jsonl\r\n\r\n'
    ).encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def chat_line(
    cid: str, *, model: str = "gpt-x", url: str = "/v1/chat/completions"
) -> dict[str, Any]:
    return {
        "custom_id": cid,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": [{"role": "user", "content": cid}]},
    }


class Sim:
    def __init__(self, **engine_kw: Any) -> None:
        self.clock = VirtualClock(scale=1e-9, start=T0)
        self.executor = FakeExecutor()
        timing = BatchTiming(
            validating_seconds=10, request_seconds=1, finalizing_seconds=10, cancel_seconds=30
        )
        self.engine = BatchEngine(
            clock=self.clock, execute=self.executor, timing=timing, **engine_kw
        )
        self.prefix = "/v1"

    def call(self, method: str, path: str, body: Any = b"", **kw: Any) -> SimResponse:
        response = self.engine.handle(make_request(method, path, body, **kw))
        assert response is not None, path
        return response

    def json(self, method: str, path: str, body: Any = b"", *, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status == status, response.body
        return json.loads(response.encoded())

    def upload(self, data: bytes, **fields: str) -> dict[str, Any]:
        body, ctype = multipart({"purpose": "batch", **fields}, "in.jsonl", data)
        response = self.call("POST", f"{self.prefix}/files", body, headers={"Content-Type": ctype})
        assert response.status == 200, response.body
        return json.loads(response.encoded())

    def create(
        self, rows: list[dict[str, Any]], *, endpoint: str = "/v1/chat/completions", **extra: Any
    ) -> dict[str, Any]:
        file_id = self.upload(jsonl(rows))["id"]
        return self.json(
            "POST",
            f"{self.prefix}/batches",
            {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", **extra},
        )

    def get(self, batch_id: str) -> dict[str, Any]:
        return self.json("GET", f"{self.prefix}/batches/{batch_id}")

    def lines(self, file_id: str | None) -> dict[str, dict[str, Any]]:
        assert file_id
        data = self.call("GET", f"{self.prefix}/files/{file_id}/content").encoded()
        return {row["custom_id"]: row for row in map(json.loads, data.decode().splitlines())}


@pytest.fixture
def sim() -> Sim:
    return Sim()


def test_files_upload_list_retrieve_content_delete(sim: Sim) -> None:
    data = jsonl([chat_line("a")])
    created = sim.upload(
        data, **{"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    )
    assert created["object"] == "file" and created["purpose"] == "batch"
    assert created["bytes"] == len(data) and created["filename"] == "in.jsonl"
    assert created["expires_at"] == created["created_at"] + 3600
    fid = created["id"]
    assert sim.call("GET", f"/v1/files/{fid}/content").encoded() == data
    listing = sim.json("GET", "/v1/files?purpose=batch")
    assert [f["id"] for f in listing["data"]] == [fid] and listing["has_more"] is False
    assert sim.json("DELETE", f"/v1/files/{fid}") == {"id": fid, "object": "file", "deleted": True}
    missing = sim.call("GET", f"/v1/files/{fid}")
    assert missing.status == 404 and "x-request-id" in missing.headers


def test_file_expires_on_the_virtual_clock(sim: Sim) -> None:
    fid = sim.upload(
        b"x\n", **{"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    )["id"]
    sim.clock.advance(3601)
    assert sim.call("GET", f"/v1/files/{fid}").status == 404


def test_file_upload_rejects_bad_purpose_and_expiry(sim: Sim) -> None:
    body, ctype = multipart({"purpose": "nonsense"}, "a.jsonl", b"{}")
    bad = sim.call("POST", "/v1/files", body, headers={"content-type": ctype})
    assert bad.status == 400
    assert json.loads(bad.encoded())["error"]["param"] == "purpose"
    body, ctype = multipart(
        {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "5"},
        "a.jsonl",
        b"{}",
    )
    assert sim.call("POST", "/v1/files", body, headers={"content-type": ctype}).status == 400
    assert (
        sim.call("POST", "/v1/files", b"{}", headers={"content-type": "application/json"}).status
        == 400
    )


def test_happy_path_lifecycle_is_lazy_and_stamped(sim: Sim) -> None:
    batch = sim.create([chat_line(c) for c in "abc"], metadata={"lane": "deferrable"})
    bid = batch["id"]
    assert batch["status"] == "validating" and batch["expires_at"] == int(T0) + 86_400
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert batch["metadata"] == {"lane": "deferrable"} and batch["output_file_id"] is None
    sim.clock.advance(11.5)  # validated at +10, first line done at +11
    b = sim.get(bid)
    assert b["status"] == "in_progress" and b["in_progress_at"] == int(T0) + 10
    assert b["request_counts"] == {"total": 3, "completed": 1, "failed": 0}
    assert len(sim.executor.calls) == 1
    sim.clock.advance(2)  # all lines done at +13; finalizing until +23
    b = sim.get(bid)
    assert b["status"] == "finalizing" and b["finalizing_at"] == int(T0) + 13
    assert b["output_file_id"] is None
    sim.clock.advance(10)
    b = sim.get(bid)
    assert b["status"] == "completed" and b["completed_at"] == int(T0) + 23
    assert b["model"] == "gpt-x" and b["error_file_id"] is None
    assert b["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert b["usage"] == {
        "input_tokens": 30,
        "input_tokens_details": {"cached_tokens": 6},
        "output_tokens": 15,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 45,
    }
    out = sim.lines(b["output_file_id"])
    assert set(out) == {"a", "b", "c"}
    assert out["b"]["response"]["status_code"] == 200 and out["b"]["error"] is None
    assert out["b"]["response"]["body"]["object"] == "chat.completion"
    assert out["b"]["id"].startswith("batch_req_")
    assert all(c["batch"] and c["endpoint"] == "/v1/chat/completions" for c in sim.executor.calls)
    assert len(sim.executor.calls) == 3
    meta = sim.json("GET", f"/v1/files/{b['output_file_id']}")
    assert meta["purpose"] == "batch_output"
    assert sim.get(bid) == b  # terminal states are frozen


def test_responses_endpoint_usage(sim: Sim) -> None:
    rows = [chat_line("r1", url="/v1/responses")]
    rows[0]["body"] = {"model": "gpt-x", "input": "hi"}
    bid = sim.create(rows, endpoint="/v1/responses")["id"]
    sim.clock.advance(100)
    b = sim.get(bid)
    assert b["status"] == "completed"
    assert b["usage"]["input_tokens_details"] == {"cached_tokens": 8}
    assert b["usage"]["output_tokens_details"] == {"reasoning_tokens": 1}


@pytest.mark.parametrize(
    ("rows", "code", "line"),
    [
        ([chat_line("a"), chat_line("b"), chat_line("a")], "duplicate_custom_id", 3),
        ([chat_line("a"), chat_line("b", model="gpt-y")], "model_mismatch", 2),
        ([chat_line("a", url="/v1/responses")], "url_mismatch", 1),
        ([{**chat_line("a"), "method": "GET"}], "invalid_method", 1),
    ],
)
def test_invalid_lines_fail_the_batch(
    sim: Sim, rows: list[dict[str, Any]], code: str, line: int
) -> None:
    bid = sim.create(rows)["id"]
    assert sim.get(bid)["status"] == "validating"
    sim.clock.advance(10)
    b = sim.get(bid)
    assert b["status"] == "failed" and b["failed_at"] == int(T0) + 10
    errors = b["errors"]["data"]
    assert errors[0]["code"] == code and errors[0]["line"] == line
    assert b["request_counts"]["total"] == 0 and not sim.executor.calls


def test_invalid_json_empty_and_too_many(sim: Sim) -> None:
    fid = sim.upload(b'{"custom_id": "a"\n')["id"]
    bid = sim.json(
        "POST",
        "/v1/batches",
        {"input_file_id": fid, "completion_window": "24h", "endpoint": "/v1/chat/completions"},
    )["id"]
    sim.clock.advance(10)
    assert sim.get(bid)["errors"]["data"][0]["code"] == "invalid_json_line"
    small = Sim(limits=BatchLimits(openai_max_requests=2))
    bid = small.create([chat_line(c) for c in "abc"])["id"]
    small.clock.advance(10)
    assert small.get(bid)["errors"]["data"][0]["code"] == "too_many_tasks"
    fid = small.upload(b"\n")["id"]
    bid = small.json(
        "POST",
        "/v1/batches",
        {"input_file_id": fid, "completion_window": "24h", "endpoint": "/v1/chat/completions"},
    )["id"]
    small.clock.advance(10)
    assert small.get(bid)["errors"]["data"][0]["code"] == "empty_file"


def test_create_rejects_bad_parameters_synchronously(sim: Sim) -> None:
    fid = sim.upload(jsonl([chat_line("a")]))["id"]
    base = {"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    for patch in (
        {"endpoint": "/v1/nope"},
        {"completion_window": "48h"},
        {"input_file_id": "file-missing"},
        {"metadata": {"k": "v" * 513}},
        {"metadata": {str(i): "v" for i in range(17)}},
    ):
        response = sim.call("POST", "/v1/batches", {**base, **patch})
        assert response.status == 400, patch
        assert json.loads(response.encoded())["error"]["type"] == "invalid_request_error"
    assert sim.call("GET", "/v1/batches/batch_nope").status == 404


def test_errored_lines_go_to_the_error_file_and_are_not_billed(sim: Sim) -> None:
    sim.engine.set_faults(error_custom_ids=["b"])
    rows = [chat_line("a"), chat_line("b"), chat_line("c")]
    bid = sim.create(rows)["id"]
    sim.clock.advance(1000)
    b = sim.get(bid)
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert b["usage"]["input_tokens"] == 20
    errors = sim.lines(b["error_file_id"])
    assert set(errors) == {"b"}
    assert errors["b"]["response"]["status_code"] == 500
    assert errors["b"]["response"]["body"]["error"]["type"] == "server_error"
    assert set(sim.lines(b["output_file_id"])) == {"a", "c"}


def test_error_fraction_and_executor_errors() -> None:
    sim = Sim(seed=7)
    sim.engine.set_faults(error_fraction=0.5)
    bid = sim.create([chat_line(f"r{i}") for i in range(10)])["id"]
    sim.clock.advance(1000)
    assert sim.get(bid)["request_counts"] == {"total": 10, "completed": 5, "failed": 5}
    sim.engine.reset_faults()
    bid = sim.create([chat_line("x", model="bad-model")])["id"]
    sim.clock.advance(1000)
    b = sim.get(bid)
    assert b["status"] == "completed" and b["output_file_id"] is None
    assert sim.lines(b["error_file_id"])["x"]["response"]["status_code"] == 404


def test_partial_expiry_writes_batch_expired_lines(sim: Sim) -> None:
    sim.engine.set_faults(expire_custom_ids=["b", "c"])
    bid = sim.create([chat_line(c) for c in "abcd"])["id"]
    sim.clock.advance(3600)
    assert sim.get(bid)["status"] == "in_progress"
    assert sim.get(bid)["request_counts"]["completed"] == 2
    sim.clock.advance(86_400)
    b = sim.get(bid)
    assert b["status"] == "expired" and b["expired_at"] == int(T0) + 86_400
    assert b["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    assert set(sim.lines(b["output_file_id"])) == {"a", "d"}
    errors = sim.lines(b["error_file_id"])
    assert set(errors) == {"b", "c"}
    assert errors["b"]["response"] is None
    assert errors["b"]["error"]["code"] == "batch_expired"


def test_slow_lines_expire_naturally(sim: Sim) -> None:
    sim.engine.timing.request_seconds = 50_000
    bid = sim.create([chat_line(c) for c in "abc"])["id"]
    sim.clock.advance(90_000)
    b = sim.get(bid)
    assert b["status"] == "expired"
    assert b["request_counts"] == {"total": 3, "completed": 1, "failed": 2}


def test_azure_batches_do_not_expire_and_accept_short_endpoint() -> None:
    sim = Sim()
    sim.prefix = "/openai"
    sim.engine.set_faults(expire_custom_ids=["b"])
    rows = [
        chat_line("a", model="dep", url="/chat/completions"),
        chat_line("b", model="dep", url="/v1/chat/completions"),
    ]
    batch = sim.create(rows, endpoint="/chat/completions")
    assert batch["endpoint"] == "/chat/completions"
    sim.clock.advance(3 * 86_400)
    b = sim.get(batch["id"])
    assert b["status"] == "in_progress" and b["request_counts"]["completed"] == 1
    assert sim.executor.calls[0]["flavor"] == "azure"
    assert sim.executor.calls[0]["endpoint"] == "/v1/chat/completions"
    cancelled = sim.json("POST", f"/openai/batches/{batch['id']}/cancel")
    assert cancelled["status"] == "cancelling"
    # OpenAI and Azure are separate namespaces.
    assert sim.call("GET", f"/v1/batches/{batch['id']}").status == 404


def test_azure_one_deployment_per_file() -> None:
    sim = Sim()
    sim.prefix = "/openai/v1"
    bid = sim.create([chat_line("a", model="d1"), chat_line("b", model="d2")])["id"]
    sim.clock.advance(10)
    err = sim.get(bid)["errors"]["data"][0]
    assert err["code"] == "model_mismatch" and "deployment" in err["message"]


def test_cancel_mid_progress_keeps_done_work(sim: Sim) -> None:
    bid = sim.create([chat_line(c) for c in "abcde"])["id"]
    sim.clock.advance(12)  # a, b done
    b = sim.json("POST", f"/v1/batches/{bid}/cancel")
    assert b["status"] == "cancelling" and b["cancelling_at"] == int(T0) + 12
    assert sim.json("POST", f"/v1/batches/{bid}/cancel")["status"] == "cancelling"
    sim.clock.advance(30)
    b = sim.get(bid)
    assert b["status"] == "cancelled" and b["cancelled_at"] == int(T0) + 42
    assert b["request_counts"] == {"total": 5, "completed": 2, "failed": 3}
    assert set(sim.lines(b["output_file_id"])) == {"a", "b"}
    errors = sim.lines(b["error_file_id"])
    assert {e["error"]["code"] for e in errors.values()} == {"batch_cancelled"}
    assert len(sim.executor.calls) == 2


def test_cancel_while_validating_and_on_terminal(sim: Sim) -> None:
    bid = sim.create([chat_line("a")])["id"]
    assert sim.json("POST", f"/v1/batches/{bid}/cancel")["status"] == "cancelling"
    sim.clock.advance(1000)
    b = sim.get(bid)
    assert b["status"] == "cancelled" and b["in_progress_at"] is None
    assert b["output_file_id"] is None and b["error_file_id"] is None
    done = sim.create([chat_line("a")])["id"]
    sim.clock.advance(1000)
    response = sim.call("POST", f"/v1/batches/{done}/cancel")
    assert response.status == 400


def test_provider_side_cancel_and_slow_finalizing(sim: Sim) -> None:
    sim.engine.set_faults(provider_cancel=1, cancel_after_seconds=11.5)
    first = sim.create([chat_line(c) for c in "abc"])["id"]
    sim.clock.advance(100)
    b = sim.get(first)
    assert b["status"] == "cancelled" and b["cancelling_at"] == int(T0) + 11
    assert b["request_counts"]["completed"] == 1
    sim.engine.set_faults(extra_finalizing_seconds=500)
    slow = sim.create([chat_line("a")])["id"]
    sim.clock.advance(100)
    assert sim.get(slow)["status"] == "finalizing"
    sim.clock.advance(500)
    assert sim.get(slow)["status"] == "completed"


def test_fail_validation_fault_is_one_shot(sim: Sim) -> None:
    sim.engine.set_faults(fail_validation=True)
    failed = sim.create([chat_line("a")])["id"]
    fine = sim.create([chat_line("a")])["id"]
    sim.clock.advance(1000)
    assert sim.get(failed)["status"] == "failed"
    assert sim.get(fine)["status"] == "completed"


def test_ghost_create_answers_500_but_stores_the_batch(sim: Sim) -> None:
    sim.engine.set_faults(ghost_creates=1)
    fid = sim.upload(jsonl([chat_line("a")]))["id"]
    body = {
        "input_file_id": fid,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"accumulator_batch": "b-1"},
    }
    first = sim.call("POST", "/v1/batches", body)
    assert first.status == 500 and "x-request-id" in first.headers
    second = sim.json("POST", "/v1/batches", body)
    listing = sim.json("GET", "/v1/batches")
    tagged = [b for b in listing["data"] if b["metadata"] == {"accumulator_batch": "b-1"}]
    assert len(tagged) == 2 and second["id"] in {b["id"] for b in tagged}


def test_list_pagination_newest_first(sim: Sim) -> None:
    ids = [sim.create([chat_line("a")])["id"] for _ in range(5)]
    page = sim.json("GET", "/v1/batches?limit=2")
    assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    page = sim.json("GET", f"/v1/batches?limit=2&after={page['last_id']}")
    assert [b["id"] for b in page["data"]] == ids[::-1][2:4] and page["has_more"] is True
    page = sim.json("GET", f"/v1/batches?limit=2&after={page['last_id']}")
    assert [b["id"] for b in page["data"]] == [ids[0]] and page["has_more"] is False
    assert sim.call("GET", "/v1/batches?limit=0").status == 400


def test_control_routes_and_foreign_paths(sim: Sim) -> None:
    faults = sim.json("POST", "/_sim/batch_faults", {"error_fraction": 0.25, "ghost_creates": 2})
    assert faults["error_fraction"] == 0.25 and faults["ghost_creates"] == 2
    assert sim.call("POST", "/_sim/batch_faults", {"bogus": 1}).status == 400
    assert sim.call("POST", "/_sim/batch_faults", {"error_fraction": 2}).status == 400
    assert sim.json("DELETE", "/_sim/batch_faults")["ghost_creates"] == 0
    timing = sim.json("POST", "/_sim/batch_timing", {"request_seconds": 3})
    assert timing["request_seconds"] == 3
    sim.create([chat_line("a")])
    summary = sim.json("GET", "/_sim/batches")
    assert summary["openai"] == {"total": 1, "by_status": {"validating": 1}}
    assert summary["anthropic"]["total"] == 0
    assert sim.engine.handle(make_request("POST", "/v1/chat/completions", {})) is None
    assert sim.engine.handle(make_request("POST", "/v1/messages", {})) is None
    assert sim.call("PUT", "/v1/batches").status == 404
