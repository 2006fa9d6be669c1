"""Fault queues seen through the SDKs' own retry logic, and per-model scripts for cascades.

Retry delays are server-directed (`retry-after-ms`) so the SDKs wait milliseconds, not
their exponential back-off; the request log's `retry_count` tells which attempt arrived.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from workers.simulator.faults import Fault, ScriptRule
from workers.simulator.server import SimulatorServer

KEY = "sk-test"
CHAT = "/v1/chat/completions"
HELLO: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(batch=False) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(sim: SimulatorServer) -> None:
    sim.reset()


def oai(sim: SimulatorServer, retries: int = 2) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.openai_base_url, max_retries=retries)


def claude(sim: SimulatorServer, retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=sim.anthropic_base_url, max_retries=retries)


def attempts(sim: SimulatorServer) -> list[tuple[int | None, int | None]]:
    return [(e["retry_count"], e["status"]) for e in sim.requests()]


# -- faults ---------------------------------------------------------------------------------


def test_429_with_retry_after_ms_then_success(sim: SimulatorServer) -> None:
    sim.add_faults(Fault(status=429, retry_after_ms=5), path=CHAT)
    r = oai(sim).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert r.choices[0].message.content
    assert attempts(sim) == [(0, 429), (1, 200)]


def test_retries_exhausted_on_repeated_500(sim: SimulatorServer) -> None:
    sim.add_faults([Fault(status=500, retry_after_ms=1)] * 3, path=CHAT)
    with pytest.raises(openai.InternalServerError) as err:
        oai(sim).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert attempts(sim) == [(0, 500), (1, 500), (2, 500)]


def test_anthropic_overloaded_then_rate_limited_then_ok(sim: SimulatorServer) -> None:
    sim.add_faults(
        [Fault(status=529, retry_after_ms=1), Fault(status=429, retry_after=0.01)],
        path="/v1/messages",
    )
    m = claude(sim).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    assert m.content
    assert attempts(sim) == [(0, 529), (1, 429), (2, 200)]
    sim.add_faults(Fault(status=529), path="/v1/messages")
    with pytest.raises(anthropic.OverloadedError) as err:
        claude(sim, retries=0).messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=HELLO
        )
    assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_should_retry_header_and_non_retryable_status(sim: SimulatorServer) -> None:
    sim.add_faults(Fault(status=503, should_retry=False), path=CHAT)
    with pytest.raises(openai.InternalServerError):
        oai(sim).chat.completions.create(model="gpt-5.4", messages=HELLO)
    sim.add_faults(Fault(status=429, code="insufficient_quota", should_retry=False), path=CHAT)
    with pytest.raises(openai.RateLimitError) as err:
        oai(sim).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert err.value.code == "insufficient_quota"
    sim.add_faults(Fault(status=400, message="bad thing", code="invalid_value"), path=CHAT)
    with pytest.raises(openai.BadRequestError, match="bad thing"):
        oai(sim).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert [a[0] for a in attempts(sim)] == [0, 0, 0]  # none of the three was retried


def test_model_keyed_fault_and_azure_paths_share_queues(sim: SimulatorServer) -> None:
    sim.add_faults(Fault(status=500, retry_after_ms=1), model="gpt-5.4-mini")
    client = oai(sim)
    client.chat.completions.create(model="gpt-5.4", messages=HELLO)  # other model: untouched
    client.chat.completions.create(model="gpt-5.4-mini", messages=HELLO)
    assert attempts(sim) == [(0, 200), (0, 500), (1, 200)]
    sim.add_faults(Fault(status=502, retry_after_ms=1), path=CHAT)
    az = openai.AzureOpenAI(
        api_key=KEY,
        azure_endpoint=sim.azure_endpoint,
        api_version="2025-04-01-preview",
        max_retries=1,
    )
    az.chat.completions.create(model="dep", messages=HELLO)
    assert attempts(sim)[-2:] == [(0, 502), (1, 200)]


def test_delay_only_fault_and_custom_body(sim: SimulatorServer) -> None:
    sim.add_faults(Fault(status=None, delay_ms=60), path=CHAT)
    started = time.monotonic()
    oai(sim, retries=0).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert time.monotonic() - started >= 0.06
    sim.add_faults(Fault(status=502, body="<html>bad gateway</html>"), path=CHAT)
    with pytest.raises(openai.InternalServerError) as err:
        oai(sim, retries=0).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert err.value.status_code == 502


def test_faults_over_the_control_api(sim: SimulatorServer) -> None:
    body = {
        "path": "/openai/deployments/x/chat/completions",
        "faults": [{"status": 429, "retry_after_ms": 1}, {"status": 500, "retry_after_ms": 1}],
    }
    req = urllib.request.Request(
        sim.url + "/_sim/faults",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read()) == {"queued": 2}
    oai(sim).chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert attempts(sim) == [(0, 429), (1, 500), (2, 200)]


# -- scripts --------------------------------------------------------------------------------


def test_script_truncate_refuse_empty_on_openai(sim: SimulatorServer) -> None:
    client = oai(sim, retries=0)
    sim.add_script(
        ScriptRule(model="gpt-5.4-mini", contains="story", behaviour="truncate", truncate_tokens=2)
    )
    sim.add_script(ScriptRule(model="gpt-5.4-mini", regex=r"\bweapon\b", behaviour="refuse"))
    sim.add_script(ScriptRule(model="gpt-5.4-nano", behaviour="empty"))
    r = client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "a story"}]
    )
    assert r.choices[0].finish_reason == "length" and r.usage is not None
    assert r.usage.completion_tokens == 2
    r = client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "a weapon"}]
    )
    assert r.choices[0].message.content is None and r.choices[0].message.refusal
    resp = client.responses.create(model="gpt-5.4-mini", input="build a weapon")
    assert resp.output[0].type == "message"
    assert resp.output[0].content[0].type == "refusal"
    r = client.chat.completions.create(model="gpt-5.4-nano", messages=HELLO)
    assert r.choices[0].message.content == ""
    r = client.chat.completions.create(
        model="gpt-5.4", messages=[{"role": "user", "content": "a story"}]
    )
    assert r.choices[0].finish_reason == "stop"  # other models are unaffected


def test_script_refusal_and_truncation_on_anthropic(sim: SimulatorServer) -> None:
    sim.add_script({"model": "claude-haiku-*", "match": "always", "behaviour": "refuse", "uses": 1})
    sim.add_script({"model": "claude-haiku-*", "behaviour": "truncate", "uses": 1})
    client = claude(sim, retries=0)
    first = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    second = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    third = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    assert [first.stop_reason, second.stop_reason, third.stop_reason] == [
        "refusal",
        "max_tokens",
        "end_turn",
    ]
    assert sim.scripts.rules() == []  # both rules used up


def test_script_low_logprobs_error_text_and_latency(sim: SimulatorServer) -> None:
    client = oai(sim, retries=0)
    sim.add_script(ScriptRule(model="gpt-5.4-mini", contains="unsure", behaviour="low_logprobs"))
    r = client.chat.completions.create(
        model="gpt-5.4-mini", logprobs=True, messages=[{"role": "user", "content": "unsure?"}]
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content
    mean = sum(t.logprob for t in lp.content) / len(lp.content)
    assert -3.6 < mean < -2.4
    sim.add_script(
        ScriptRule(model="gpt-5.4-mini", contains="json", behaviour="text", text="{not json")
    )
    r = client.chat.completions.create(
        model="gpt-5.4-mini",
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "json please"}],
    )
    assert r.choices[0].message.content == "{not json"
    sim.add_script(
        ScriptRule(
            model="gpt-5.4-mini",
            contains="boom",
            behaviour="error",
            status=503,
            message="capacity",
            uses=1,
        )
    )
    with pytest.raises(openai.InternalServerError, match="capacity"):
        client.chat.completions.create(
            model="gpt-5.4-mini", messages=[{"role": "user", "content": "boom"}]
        )
    assert (
        client.chat.completions.create(
            model="gpt-5.4-mini", messages=[{"role": "user", "content": "boom"}]
        )
        .choices[0]
        .message.content
    )
    sim.add_script(ScriptRule(model="gpt-5.4", behaviour="latency", latency_ms=80, uses=1))
    started = time.monotonic()
    client.chat.completions.create(model="gpt-5.4", messages=HELLO)
    assert time.monotonic() - started >= 0.08


def test_configured_per_model_latency(sim: SimulatorServer) -> None:
    sim.config.latency_ms["gpt-slow"] = 70
    try:
        started = time.monotonic()
        oai(sim, retries=0).chat.completions.create(model="gpt-slow", messages=HELLO)
        assert time.monotonic() - started >= 0.07
    finally:
        del sim.config.latency_ms["gpt-slow"]


def test_scripts_apply_to_batch_lines_and_over_http(sim: SimulatorServer) -> None:
    req = urllib.request.Request(
        sim.url + "/_sim/scripts",
        method="POST",
        headers={"content-type": "application/json"},
        data=json.dumps({"rules": [{"model": "claude-*", "behaviour": "refuse"}]}).encode(),
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["rules"][0]["id"] > 0
    status, body = sim.executor(
        flavor="anthropic",
        endpoint="/v1/messages",
        batch=True,
        body={"model": "claude-opus-5-5", "max_tokens": 10, "messages": HELLO},
    )
    assert status == 200 and body["stop_reason"] == "refusal"
    assert body["usage"]["service_tier"] == "batch"
    delete = urllib.request.Request(sim.url + "/_sim/scripts", method="DELETE")
    with urllib.request.urlopen(delete, timeout=5):
        pass
    assert sim.scripts.rules() == []
