"""The realtime simulator through the official SDKs over loopback HTTP: shapes, usage,
determinism, max-token cuts, logprobs, JSON modes, Azure spellings, auth, control API."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from functools import cache
from typing import Any

import anthropic
import openai
import pytest

from tests.simulator.sdk_fixtures import KEY, _clean, claude, oai, sim  # noqa: F401
from tests.support import SHARED
from workers.simulator.server import SimulatorServer
from workers.simulator.tokens import count_text

OPENAPI = SHARED / "reference" / "openai-openapi.yaml"


def http(
    sim: SimulatorServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        sim.url + path,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


def test_chat_completion_shape_usage_and_request_id(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-5.4",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
    )
    assert raw.headers["x-request-id"].startswith("req_")
    r = raw.parse()
    assert r.object == "chat.completion" and r.model == "gpt-5.4"
    choice = r.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and choice.message.refusal is None
    assert r.usage is not None
    assert r.usage.prompt_tokens == count_text("Be brief.") + count_text("Say hello")
    assert r.usage.completion_tokens == count_text(choice.message.content)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    details = r.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 0 and details.cache_write_tokens == 0
    assert r.service_tier == "default"


def test_same_request_same_answer_and_model_changes_it(oai: openai.OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "What is a lane?"}]
    a = oai.chat.completions.create(model="gpt-5.4", messages=msgs)
    b = oai.chat.completions.create(model="gpt-5.4", messages=msgs)
    c = oai.chat.completions.create(model="gpt-5.4-mini", messages=msgs)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.choices[0].message.content != c.choices[0].message.content


def test_max_completion_tokens_truncates_with_length(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model="gpt-5.4",
        max_completion_tokens=3,
        messages=[{"role": "user", "content": "Tell me a story"}],
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 3
    assert len(r.choices[0].message.content or "") <= 12


def test_chat_logprobs(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model="gpt-5.4", logprobs=True, top_logprobs=3, messages=[{"role": "user", "content": "hi"}]
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content
    assert "".join(t.token for t in lp.content) == r.choices[0].message.content
    assert all(-1 < t.logprob < 0 and len(t.top_logprobs) == 3 for t in lp.content)


def test_json_modes(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model="gpt-5.4",
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "json please"}],
    )
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "score": {"type": "integer"}},
        "required": ["city", "score"],
        "additionalProperties": False,
    }
    r2 = oai.responses.create(
        model="gpt-5.4",
        input="city?",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    data = json.loads(r2.output_text)
    assert isinstance(data["city"], str) and isinstance(data["score"], int)


def test_responses_shape_incomplete_and_input_tokens(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model="gpt-5.4", instructions="Be brief.", input="Explain caching")
    assert r.object == "response" and r.status == "completed" and r.output_text
    assert r._request_id and r._request_id.startswith("req_")
    assert r.usage is not None
    counted = oai.responses.input_tokens.count(
        model="gpt-5.4", instructions="Be brief.", input="Explain caching"
    )
    assert counted.input_tokens == r.usage.input_tokens
    assert r.usage.input_tokens_details.cached_tokens == 0
    assert r.usage.input_tokens_details.cache_write_tokens == 0
    cut = oai.responses.create(model="gpt-5.4", input="Explain caching", max_output_tokens=2)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage is not None and cut.usage.output_tokens == 2


def test_anthropic_messages_and_count_tokens(claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert raw.headers["request-id"].startswith("req_")
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant" and m.stop_reason == "end_turn"
    block = m.content[0]
    assert block.type == "text" and block.text
    assert m.usage.input_tokens == count_text("You are terse.") + count_text("Hello")
    assert m.usage.cache_read_input_tokens == 0 and m.usage.cache_creation_input_tokens == 0
    assert m.usage.service_tier == "standard"
    counted = claude.messages.count_tokens(
        model="claude-haiku-4-5",
        system="You are terse.",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert counted.input_tokens == m.usage.input_tokens
    short = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=2, messages=[{"role": "user", "content": "Hello"}]
    )
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2


def test_anthropic_validation_error_envelope(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[])
    assert err.value.status_code == 400
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert isinstance(err.value.body, dict)
    assert err.value.body["error"]["type"] == "invalid_request_error"


def test_azure_client_paths(sim: SimulatorServer) -> None:
    az = openai.AzureOpenAI(
        api_key=KEY,
        azure_endpoint=sim.azure_endpoint,
        api_version="2025-04-01-preview",
        max_retries=0,
    )
    r = az.chat.completions.create(model="my-deploy", messages=[{"role": "user", "content": "hi"}])
    assert r.model == "my-deploy" and r.choices[0].message.content
    r2 = az.responses.create(model="my-deploy", input="hi")
    assert r2.output_text
    v1 = openai.OpenAI(api_key=KEY, base_url=sim.url + "/openai/v1/", max_retries=0)
    assert v1.chat.completions.create(model="dep", messages=[{"role": "user", "content": "x"}])
    log = sim.requests()
    assert [(e["flavor"], e["path"]) for e in log] == [
        ("azure", "/v1/chat/completions"),
        ("azure", "/v1/responses"),
        ("azure", "/v1/chat/completions"),
    ]
    assert log[0]["deployment"] == "my-deploy" and "api-version" in log[0]["raw_path"]


def test_models_list(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "gpt-5.4" in ids and "claude-haiku-4-5" in ids


def test_missing_key_is_401_in_each_dialect_and_never_logged(sim: SimulatorServer) -> None:
    status, headers, body = http(
        sim, "POST", "/v1/chat/completions", {"model": "gpt-5.4", "messages": []}
    )
    assert status == 401 and body["error"]["type"] == "invalid_request_error"
    assert "x-request-id" in {k.lower() for k in headers}
    status, headers, body = http(sim, "POST", "/v1/messages", {"model": "c"})
    assert status == 401 and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert "request-id" in {k.lower() for k in headers}
    status, _, _ = http(
        sim,
        "POST",
        "/v1/messages/count_tokens",
        {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": "secret-key-123"},
    )
    assert status == 200
    assert "secret-key-123" not in json.dumps(sim.requests())


def test_streaming_chat_and_anthropic(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    msgs: Any = [{"role": "user", "content": "stream it"}]
    plain = oai.chat.completions.create(model="gpt-5.4", messages=msgs)
    chunks = list(
        oai.chat.completions.create(
            model="gpt-5.4", messages=msgs, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage is not None
    assert plain.usage is not None and chunks[-1].usage.total_tokens == plain.usage.total_tokens
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text


def test_executor_reports_batch_tier(sim: SimulatorServer) -> None:
    status, body = sim.executor(
        flavor="anthropic",
        endpoint="/v1/messages",
        batch=True,
        body={
            "model": "claude-haiku-4-5",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert status == 200 and body["usage"]["service_tier"] == "batch"
    status, body = sim.executor(
        flavor="openai",
        endpoint="/v1/chat/completions",
        batch=True,
        body={"model": "gpt-5.4", "messages": []},
    )
    assert status == 400 and body["error"]["param"] == "messages"


def test_control_api_over_http(sim: SimulatorServer, oai: openai.OpenAI) -> None:
    status, _, health = http(sim, "GET", "/_sim/health")
    assert status == 200 and health["status"] == "ok"
    before = http(sim, "GET", "/_sim/clock")[2]["now"]
    now = http(sim, "POST", "/_sim/clock/advance", {"seconds": 3600})[2]["now"]
    assert now >= before + 3600
    oai.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "a"}])
    first = http(sim, "GET", "/_sim/requests")[2]
    seq = first["last_seq"]
    oai.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "b"}])
    later = http(sim, "GET", f"/_sim/requests?since={seq}")[2]["requests"]
    assert len(later) == 1 and later[0]["model"] == "gpt-5.4" and later[0]["retry_count"] == 0
    assert http(sim, "POST", "/_sim/config", {"latency_ms": {"gpt-x": 5}})[2]["latency_ms"] == {
        "gpt-x": 5.0
    }
    assert http(sim, "POST", "/_sim/faults", {"faults": []})[0] == 400
    assert http(sim, "POST", "/_sim/reset")[2] == {"ok": True}
    assert http(sim, "GET", "/_sim/requests")[2]["requests"] == []


def test_default_server_registers_the_batch_engine() -> None:
    pytest.importorskip("workers.simulator.batches")
    with SimulatorServer() as server:
        assert "BatchEngine" in server.health()["handlers"]


# -- OpenAPI conformance of the two main bodies (required keys only; no validator here) -----


@cache
def _yaml_lines() -> list[str]:
    return OPENAPI.read_text().splitlines()


def required_keys(schema: str) -> set[str]:
    """Shallowest `required:` list inside `components.schemas.<schema>` of the spec yaml."""
    lines = _yaml_lines()
    start = lines.index(f"    {schema}:")
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"^    \S", lines[i]))
    found: tuple[int, set[str]] | None = None
    for i in range(start, end):
        m = re.match(r"^( *)required:\s*$", lines[i])
        if not m:
            continue
        indent = len(m.group(1))
        keys = set()
        for line in lines[i + 1 : end]:
            item = re.match(rf"^ {{{indent}}}- (\S+)", line)
            if not item:
                break
            keys.add(item.group(1))
        if found is None or indent < found[0]:
            found = (indent, keys)
    assert found is not None
    return found[1]


@pytest.mark.skipif(not OPENAPI.exists(), reason="reference OpenAPI spec not present")
def test_bodies_have_openapi_required_keys(sim: SimulatorServer) -> None:
    status, chat = sim.executor(
        flavor="openai",
        endpoint="/v1/chat/completions",
        batch=False,
        body={
            "model": "gpt-5.4",
            "logprobs": True,
            "top_logprobs": 1,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert status == 200
    assert required_keys("CreateChatCompletionResponse") <= set(chat)
    assert {"finish_reason", "index", "message", "logprobs"} <= set(chat["choices"][0])
    assert required_keys("CompletionUsage") <= set(chat["usage"])
    token = chat["choices"][0]["logprobs"]["content"][0]
    assert required_keys("ChatCompletionTokenLogprob") <= set(token)
    status, resp = sim.executor(
        flavor="openai",
        endpoint="/v1/responses",
        batch=False,
        body={"model": "gpt-5.4", "input": "hi"},
    )
    assert status == 200
    assert required_keys("Response") <= set(resp)
    assert required_keys("ResponseUsage") <= set(resp["usage"])
    assert required_keys("OutputMessage") <= set(resp["output"][0])
    assert required_keys("OutputTextContent") <= set(resp["output"][0]["content"][0])
