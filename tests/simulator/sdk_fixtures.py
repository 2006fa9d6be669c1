"""Fixtures shared by the realtime simulator tests: one server per module, reset per test,
and official SDK clients without retries (so each request is exactly one attempt)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from workers.simulator.server import SimulatorServer

KEY = "sk-test"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(batch=False) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(sim: SimulatorServer) -> None:
    sim.reset()


@pytest.fixture
def oai(sim: SimulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.openai_base_url, max_retries=0)


@pytest.fixture
def claude(sim: SimulatorServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=sim.anthropic_base_url, max_retries=0)
