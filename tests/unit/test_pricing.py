"""Cost formulas (spec 6.1) with hand-computed expectations, and price resolution."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanes.errors import LanesError, PriceDataError, UnknownModelError
from lanes.pricing import ModelPrice, PriceTable, compute_cost
from lanes.usage import Usage

D = Decimal


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable()


def test_openai_56_subset_semantics_and_125x_writes(table: PriceTable) -> None:
    usage = Usage(
        input_tokens=10_000, cached_input_tokens=6_000, cache_write_tokens=2_000, output_tokens=500
    )
    cost = table.cost(provider="openai", model="gpt-5.6-sol", usage=usage)
    # uncached 2,000 x $5, read 6,000 x $0.50, write 2,000 x $6.25 (1.25 x 5), out 500 x $30
    assert cost.uncached_input == D("0.01")
    assert cost.cache_read == D("0.003")
    assert cost.cache_write == D("0.0125")
    assert cost.output == D("0.015")
    assert cost.usd == D("0.0405")
    assert cost.price_version == "override:2026-11-28"


def test_openai_before_56_writes_bill_as_plain_input(table: PriceTable) -> None:
    with_writes = Usage(
        input_tokens=10_000, cached_input_tokens=4_000, cache_write_tokens=3_000, output_tokens=100
    )
    cost = table.cost(provider="openai", model="gpt-5.4", usage=with_writes)
    # 3,000 x 2.5 + 4,000 x 0.25 + 3,000 x 2.5 + 100 x 15 = 17,500 micro-USD
    assert cost.usd == D("0.0175")
    no_writes = Usage(input_tokens=10_000, cached_input_tokens=4_000, output_tokens=100)
    assert table.cost(provider="openai", model="gpt-5.4", usage=no_writes).usd == cost.usd


def test_anthropic_5m_and_1h_writes(table: PriceTable) -> None:
    usage = Usage.from_anthropic(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 5_000,
            "cache_creation_input_tokens": 3_000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1_000,
                "ephemeral_1h_input_tokens": 2_000,
            },
            "output_tokens": 200,
        }
    )
    cost = table.cost(provider="anthropic", model="claude-opus-5", usage=usage)
    # 100 x 5 + 5,000 x 0.5 + 1,000 x 6.25 + 2,000 x 10 + 200 x 25 = 34,250 micro-USD
    assert cost.uncached_input == D("0.0005")
    assert cost.cache_read == D("0.0025")
    assert cost.cache_write == D("0.02625")
    assert cost.usd == D("0.03425")


@pytest.mark.parametrize("model", ["claude-opus-5", "claude-haiku-4-5", "claude-opus-5-5"])
def test_anthropic_write_multipliers(table: PriceTable, model: str) -> None:
    price = table.price(provider="anthropic", model=model)
    million_5m = Usage(input_tokens=1_000_000, cache_write_tokens=1_000_000)
    million_1h = Usage(
        input_tokens=1_000_000, cache_write_tokens=1_000_000, cache_write_long_tokens=1_000_000
    )
    assert compute_cost(price, million_5m).usd == price.input * D("1.25")
    assert compute_cost(price, million_1h).usd == price.input * 2


def test_opus_55_reads_at_005x(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000)
    cost = table.cost(provider="anthropic", model="claude-opus-5-5", usage=usage)
    assert cost.usd == D("0.20")
    assert cost.usd == D(4) * D("0.05")


def test_batch_halves_everything(table: PriceTable) -> None:
    usage = Usage(
        input_tokens=10_000, cached_input_tokens=6_000, cache_write_tokens=2_000, output_tokens=500
    )
    cost = table.cost(provider="openai", model="gpt-5.6-sol", usage=usage, batch=True)
    assert cost.usd == D("0.02025")
    assert cost.batch is True
    realtime = table.cost_realtime_equivalent(provider="openai", model="gpt-5.6-sol", usage=usage)
    assert realtime.usd == D("0.0405")


usages = st.builds(
    lambda total, cached, write, long_share, out: Usage(
        input_tokens=total + cached + write,
        cached_input_tokens=cached,
        cache_write_tokens=write,
        cache_write_long_tokens=write * long_share // 100,
        output_tokens=out,
    ),
    st.integers(0, 300_000),
    st.integers(0, 200_000),
    st.integers(0, 200_000),
    st.integers(0, 100),
    st.integers(0, 50_000),
)
models = st.sampled_from(
    [
        ("openai", "gpt-5.6-terra"),
        ("openai", "gpt-5.4-mini"),
        ("anthropic", "claude-haiku-5-5"),
        ("anthropic", "claude-opus-5-5"),
    ]
)


@given(usage=usages, provider_model=models)
def test_batch_factor_applies_to_every_term(usage: Usage, provider_model: tuple[str, str]) -> None:
    provider, model = provider_model
    table = PriceTable(use_genai_prices=False)
    real = table.cost(provider=provider, model=model, usage=usage)
    batch = table.cost(provider=provider, model=model, usage=usage, batch=True)
    assert batch.usd == real.usd * D("0.5")
    assert batch.cache_write == real.cache_write * D("0.5")


@given(usage=usages)
def test_caching_never_costs_more_when_writes_are_free(usage: Usage) -> None:
    table = PriceTable(use_genai_prices=False)
    cost = table.cost(provider="openai", model="gpt-5.4-mini", usage=usage)
    plain = table.cost_without_cache(provider="openai", model="gpt-5.4-mini", usage=usage)
    assert cost.usd <= plain.usd
    assert plain.cache_read == plain.cache_write == 0


def test_cost_without_cache_prices_all_input_fully(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000, cached_input_tokens=800, output_tokens=0)
    plain = table.cost_without_cache(provider="anthropic", model="claude-opus-5-5", usage=usage)
    assert plain.usd == D(1_000) * D(4) / D(1_000_000)


def test_unknown_model_names_provider_and_model(table: PriceTable) -> None:
    with pytest.raises(UnknownModelError) as info:
        table.price(provider="openai", model="gpt-nonexistent-9")
    assert isinstance(info.value, LanesError)
    assert info.value.provider == "openai"
    assert info.value.model == "gpt-nonexistent-9"
    assert "'gpt-nonexistent-9'" in str(info.value) and "'openai'" in str(info.value)


def test_genai_prices_fallback_and_switch() -> None:
    with_genai = PriceTable().price(provider="openai", model="gpt-4o")
    assert with_genai.version.startswith("genai-prices:")
    with pytest.raises(UnknownModelError):
        PriceTable(use_genai_prices=False).price(provider="openai", model="gpt-4o")


def test_azure_uses_openai_prices(table: PriceTable) -> None:
    assert table.price(provider="azure", model="gpt-5.6-luna") == table.price(
        provider="openai", model="gpt-5.6-luna"
    )


def test_dated_snapshot_and_vendor_prefix(table: PriceTable) -> None:
    assert table.price(provider="openai", model="gpt-5.4-2026-03-01").input == D("2.50")
    assert table.price(provider="anthropic", model="claude-haiku-4-5-20251001").input == D("1")
    assert table.price(provider="openai_compatible", model="meta/llama-2-70b-chat").input == D(
        "0.90"
    )


@pytest.mark.parametrize(
    ("provider", "model", "inp", "out"),
    [
        ("openai", "gpt-4-1106-preview", "10", "30"),
        ("openai", "gpt-3.5-turbo-1106", "1", "2"),
        ("anthropic", "claude-v2", "8", "24"),
        ("anthropic", "claude-v1", "8", "24"),
        ("anthropic", "claude-instant-v1", "0.8", "2.4"),
        ("together", "mistralai/mixtral-8x7b-chat", "0.6", "0.6"),
        ("together", "mistralai/mistral-7b-chat", "0.2", "0.2"),
        ("together", "zero-one-ai/Yi-34B-Chat", "0.8", "0.8"),
        ("together", "WizardLM/WizardLM-13B-V1.2", "0.3", "0.3"),
        ("together", "meta/code-llama-instruct-34b-chat", "0.776", "0.776"),
    ],
)
def test_replay_models_resolve(
    table: PriceTable, provider: str, model: str, inp: str, out: str
) -> None:
    price = table.price(provider=provider, model=model)
    assert (price.input, price.output) == (D(inp), D(out))


def test_long_context_tier_applies_to_whole_request(table: PriceTable) -> None:
    usage = Usage(input_tokens=300_000, output_tokens=1_000)
    cost = table.cost(provider="openai", model="gpt-5.4", usage=usage)
    assert cost.usd == D(300_000) * 5 / 1_000_000 + D(1_000) * D("22.5") / 1_000_000


def test_extra_override_file_wins_and_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "version": "v7",
                "providers": {
                    "openai": {"gpt-5.4": {"input": "1", "output": "2"}},
                    "openai_compatible": {
                        "my-llama": {"input": "0.1", "output": "0.2", "batch_factor": 1}
                    },
                },
            }
        )
    )
    table = PriceTable(extra_override_path=path)
    mine = table.price(provider="openai", model="gpt-5.4")
    assert (mine.input, mine.cache_read, mine.version) == (D(1), D(1), "custom:v7")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost(
        provider="openai_compatible", model="my-llama", usage=usage, batch=True
    ).usd == D("0.3")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"models": {}}),
        json.dumps({"providers": {"openai": {"x": {"input": "1"}}}}),
        json.dumps({"providers": {"openai": {"x": {"input": "-1", "output": "1"}}}}),
    ],
)
def test_malformed_override_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PriceDataError):
        PriceTable(extra_override_path=path)


def test_model_price_defaults_mean_no_discount() -> None:
    price = ModelPrice.from_mapping({"input": "3", "output": "4"}, version="t")
    assert price.cache_read == price.cache_write_short == price.cache_write_long == D(3)
    assert price.batch_factor == D("0.5")
