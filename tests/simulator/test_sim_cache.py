"""Prompt caching in the simulator, observed through the SDKs' usage objects.

TTLs run on the simulator's virtual clock: tests advance it instead of sleeping. Token
counts follow `workers.simulator.tokens` (4 characters per token, per block).
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.simulator.sdk_fixtures import KEY, _clean, claude, oai, sim  # noqa: F401
from workers.simulator.server import SimulatorServer

SYSTEM_1300 = "S" * 5200  # 1,300 tokens


def chat(
    client: openai.OpenAI, system: str, question: str, model: str = "gpt-5.4", **kw: Any
) -> tuple[int, int, int]:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        **kw,
    )
    assert r.usage is not None and r.usage.prompt_tokens_details is not None
    d = r.usage.prompt_tokens_details
    return r.usage.prompt_tokens, d.cached_tokens or 0, d.cache_write_tokens or 0


# -- OpenAI automatic caching ---------------------------------------------------------------


def test_openai_hits_in_128_token_steps_after_first_call(oai: openai.OpenAI) -> None:
    assert chat(oai, SYSTEM_1300, "q1") == (1301, 0, 0)
    assert chat(oai, SYSTEM_1300, "q2") == (1301, 1280, 0)  # 1024 + 2 * 128, a subset
    assert chat(oai, SYSTEM_1300 + "S" * 600, "q3")[1] == 1280  # longer prompt, same prefix


def test_openai_below_1024_tokens_never_caches(oai: openai.OpenAI) -> None:
    short = "S" * 4000  # 1,000 tokens
    assert chat(oai, short, "q") == (1001, 0, 0)
    assert chat(oai, short, "q") == (1001, 0, 0)


def test_openai_changed_prefix_and_other_cache_key_miss(oai: openai.OpenAI) -> None:
    chat(oai, SYSTEM_1300, "q", prompt_cache_key="tenant-a")
    assert chat(oai, "T" + SYSTEM_1300[1:], "q", prompt_cache_key="tenant-a")[1] == 0
    assert chat(oai, SYSTEM_1300, "q", prompt_cache_key="tenant-b")[1] == 0
    assert chat(oai, SYSTEM_1300, "q", prompt_cache_key="tenant-a")[1] == 1280


def test_openai_retention_expires_on_the_virtual_clock(
    sim: SimulatorServer, oai: openai.OpenAI
) -> None:
    chat(oai, SYSTEM_1300, "q")  # default retention: 24h
    sim.advance(86_000)
    assert chat(oai, SYSTEM_1300, "q")[1] == 1280
    sim.advance(86_401)
    assert chat(oai, SYSTEM_1300, "q")[1] == 0
    chat(oai, "M" * 5200, "q", prompt_cache_retention="in_memory")
    sim.advance(601)
    assert chat(oai, "M" * 5200, "q", prompt_cache_retention="in_memory")[1] == 0


def test_old_models_reject_new_cache_fields(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        chat(oai, SYSTEM_1300, "q", prompt_cache_options={"mode": "explicit"})
    assert err.value.param == "prompt_cache_options"
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(
            model="gpt-5.4",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "x",
                            "prompt_cache_breakpoint": {"mode": "explicit"},
                        }
                    ],
                }
            ],
        )
    assert err.value.param == "prompt_cache_breakpoint"
    with pytest.raises(openai.BadRequestError):
        chat(
            oai,
            SYSTEM_1300,
            "q",
            model="gpt-5.6-sol",
            prompt_cache_retention="24h",
            prompt_cache_options={"ttl": "30m"},
        )


def test_gpt56_explicit_breakpoint_reports_writes(oai: openai.OpenAI) -> None:
    def ask(question: str, **kw: Any) -> tuple[int, int, int]:
        r = oai.chat.completions.create(
            model="gpt-5.6-sol",
            messages=[
                {
                    "role": "system",
                    "content": [
                        {
                            "type": "text",
                            "text": "S" * 4400,  # 1,100 tokens
                            "prompt_cache_breakpoint": {"mode": "explicit"},
                        }
                    ],
                },
                {"role": "user", "content": question},
            ],
            **kw,
        )
        assert r.usage is not None and r.usage.prompt_tokens_details is not None
        d = r.usage.prompt_tokens_details
        return r.usage.prompt_tokens, d.cached_tokens or 0, d.cache_write_tokens or 0

    assert ask("first question") == (1104, 0, 1100)  # exact boundary, not rounded
    assert ask("other question") == (1104, 1100, 0)
    assert chat(oai, "E" * 5200, "q", model="gpt-6-sol", prompt_cache_options={"mode": "explicit"})[
        1:
    ] == (0, 0)  # nothing to write
    assert chat(oai, "E" * 5200, "q", model="gpt-6-sol", prompt_cache_options={"mode": "explicit"})[
        1:
    ] == (0, 0)


def test_responses_cache_write_details_by_ttl(sim: SimulatorServer, oai: openai.OpenAI) -> None:
    def ask() -> Any:
        r = oai.responses.create(
            model="gpt-5.6-terra",
            instructions=SYSTEM_1300,
            input="q",
            prompt_cache_options={"ttl": "12h"},
        )
        assert r.usage is not None
        return r.usage.input_tokens_details

    first = ask()
    assert first.cached_tokens == 0 and first.cache_write_tokens == 1280
    assert first.cache_write_tokens_details.ttl_12h_tokens == 1280
    assert first.cache_write_tokens_details.ttl_30m_tokens == 0
    sim.advance(3600)
    assert ask().cached_tokens == 1280
    sim.advance(43_201)
    assert ask().cached_tokens == 0


# -- Anthropic opt-in caching ---------------------------------------------------------------


def cached_system(text: str, ttl: str | None = None) -> list[Any]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return [{"type": "text", "text": text, "cache_control": control}]


def ask_claude(
    client: anthropic.Anthropic,
    system: Any,
    model: str = "claude-opus-5-5",
    question: str = "hello",
    **kw: Any,
) -> Any:
    m = client.messages.create(
        model=model,
        max_tokens=20,
        system=system,
        messages=[{"role": "user", "content": question}],
        **kw,
    )
    return m.usage


def test_anthropic_write_then_read_with_disjoint_counters(claude: anthropic.Anthropic) -> None:
    system = cached_system("S" * 2400)  # 600 tokens
    first = ask_claude(claude, system)
    assert (
        first.input_tokens,
        first.cache_creation_input_tokens,
        first.cache_read_input_tokens,
    ) == (2, 600, 0)
    assert first.cache_creation.ephemeral_5m_input_tokens == 600
    second = ask_claude(claude, system)
    assert (
        second.input_tokens,
        second.cache_creation_input_tokens,
        second.cache_read_input_tokens,
    ) == (2, 0, 600)
    counted = claude.messages.count_tokens(
        model="claude-opus-5-5", system=system, messages=[{"role": "user", "content": "hello"}]
    )
    assert counted.input_tokens == second.input_tokens + second.cache_read_input_tokens
    changed = ask_claude(claude, cached_system("T" + "S" * 2399))
    assert changed.cache_read_input_tokens == 0 and changed.cache_creation_input_tokens == 600


def test_anthropic_5m_ttl_expires_and_hits_refresh(
    sim: SimulatorServer, claude: anthropic.Anthropic
) -> None:
    system = cached_system("S" * 2400)
    ask_claude(claude, system)
    sim.advance(200)
    assert ask_claude(claude, system).cache_read_input_tokens == 600  # refreshes the TTL
    sim.advance(200)  # 400 s after the write, 200 s after the hit
    assert ask_claude(claude, system).cache_read_input_tokens == 600
    sim.advance(301)
    expired = ask_claude(claude, system)
    assert expired.cache_read_input_tokens == 0 and expired.cache_creation_input_tokens == 600


def test_anthropic_1h_ttl_and_split_by_ttl(
    sim: SimulatorServer, claude: anthropic.Anthropic
) -> None:
    tools: Any = [
        {
            "name": "lookup",
            "description": "D" * 2000,
            "input_schema": {"type": "object", "properties": {}},
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    system = cached_system("S" * 2400)
    first = ask_claude(claude, system, tools=tools)
    c = first.cache_creation
    assert c.ephemeral_1h_input_tokens > 500 and c.ephemeral_5m_input_tokens == 600
    assert first.cache_creation_input_tokens == (
        c.ephemeral_1h_input_tokens + c.ephemeral_5m_input_tokens
    )
    sim.advance(400)  # the 5m entry is gone, the 1h one (tools) still serves
    later = ask_claude(claude, system, tools=tools)
    assert later.cache_read_input_tokens == c.ephemeral_1h_input_tokens
    assert later.cache_creation.ephemeral_5m_input_tokens == 600


def test_anthropic_below_model_minimum_is_silent(claude: anthropic.Anthropic) -> None:
    system = cached_system("S" * 2400)  # 600 tokens < 4,096 for Haiku 4.5
    for _ in range(2):
        usage = ask_claude(claude, system, model="claude-haiku-4-5")
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
        assert usage.input_tokens == 602


def test_anthropic_breakpoint_limits(claude: anthropic.Anthropic) -> None:
    five = [
        {"type": "text", "text": f"block {i}", "cache_control": {"type": "ephemeral"}}
        for i in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError):
        ask_claude(claude, five)
    with pytest.raises(anthropic.BadRequestError):
        ask_claude(claude, cached_system("a") + cached_system("b", ttl="1h"))


def test_anthropic_automatic_mode_and_20_block_lookback(claude: anthropic.Anthropic) -> None:
    def ask(blocks: int) -> Any:
        content: Any = [{"type": "text", "text": f"B{i:03d}" * 300} for i in range(blocks)]
        return claude.messages.create(
            model="claude-opus-5-5",
            max_tokens=5,
            cache_control={"type": "ephemeral"},
            messages=[{"role": "user", "content": content}],
        ).usage

    first = ask(2)  # 2 blocks x 300 tokens, breakpoint on the last one
    assert first.cache_creation_input_tokens == 600 and first.input_tokens == 0
    within = ask(21)  # the new breakpoint is 19 blocks after the cached one
    assert within.cache_read_input_tokens == 600
    assert within.cache_creation_input_tokens == 19 * 300
    beyond = ask(45)  # 24 blocks after the newest entry (block 21): out of reach
    assert beyond.cache_read_input_tokens == 0
