"""Turns an `LLMTask` into the provider-neutral `ProviderRequest` the adapters send."""

from __future__ import annotations

from lanes.task import LLMTask
from workers.providers.base import ApiName, ChatTurn, ProviderRequest, TextBlock


def default_api(provider: str, requested: str | None) -> ApiName:
    if provider == "anthropic":
        return "messages"
    return "responses" if requested == "responses" else "chat"


def to_provider_request(
    task: LLMTask,
    *,
    provider: str,
    model: str,
    max_output_tokens: int | None = None,
    logprobs: bool = False,
) -> ProviderRequest:
    system = (TextBlock(task.system),) if task.system else ()
    turns = tuple(ChatTurn(role=m.role, blocks=(TextBlock(m.content),)) for m in task.messages)
    return ProviderRequest(
        provider=provider,
        api=default_api(provider, task.api),
        model=model,
        turns=turns,
        system=system,
        max_output_tokens=max_output_tokens or task.max_output_tokens,
        json_schema=task.json_schema,
        logprobs=logprobs,
    )
