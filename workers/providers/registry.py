"""Builds one SDK client per provider per process from settings (keys from the environment)."""

from __future__ import annotations

import threading

import anthropic
import openai

from lanes.errors import SettingsError
from lanes.settings import LanesSettings
from workers.providers.anthropic_adapter import AnthropicProvider
from workers.providers.base import Provider
from workers.providers.openai_adapter import OpenAIProvider


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


class ProviderRegistry:
    def __init__(self, settings: LanesSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._providers: dict[str, Provider] = {}

    @property
    def secrets(self) -> tuple[str, ...]:
        s = self.settings
        keys = (s.openai_api_key, s.anthropic_api_key, s.azure_api_key, s.openai_compatible_api_key)
        return tuple(k for k in (_secret(v) for v in keys) if k)

    def get(self, name: str, *, base_url: str | None = None) -> Provider:
        """One client per (provider, base URL): tiers may point at different
        OpenAI-compatible servers (a local vLLM, an Ollama box) under one provider name."""
        key = f"{name}@{base_url}" if base_url else name
        with self._lock:
            provider = self._providers.get(key)
            if provider is None:
                provider = self._build(name, base_url=base_url)
                self._providers[key] = provider
            return provider

    def _build(self, name: str, *, base_url: str | None = None) -> Provider:
        s = self.settings
        timeout, retries = s.provider_timeout_s, s.provider_max_retries
        if name == "openai":
            key = _secret(s.openai_api_key)
            if not key:
                raise SettingsError("LLM_LANES_OPENAI_API_KEY: required for provider 'openai'")
            client = openai.OpenAI(
                api_key=key,
                base_url=base_url or s.openai_base_url,
                timeout=timeout,
                max_retries=retries,
            )
            return OpenAIProvider(name=name, client=client, secrets=self.secrets)
        if name == "azure":
            key = _secret(s.azure_api_key)
            if not key or not s.azure_endpoint:
                raise SettingsError(
                    "LLM_LANES_AZURE_API_KEY and LLM_LANES_AZURE_ENDPOINT: required for 'azure'"
                )
            client = openai.AzureOpenAI(
                api_key=key,
                azure_endpoint=s.azure_endpoint,
                api_version=s.azure_api_version,
                timeout=timeout,
                max_retries=retries,
            )
            return OpenAIProvider(name=name, client=client, secrets=self.secrets)
        if name == "openai_compatible":
            base_url = base_url or s.openai_compatible_base_url
            if not base_url:
                raise SettingsError(
                    "LLM_LANES_OPENAI_COMPATIBLE_BASE_URL: required for 'openai_compatible'"
                )
            key = _secret(s.openai_compatible_api_key) or "none"
            client = openai.OpenAI(
                api_key=key,
                base_url=base_url,
                timeout=timeout,
                max_retries=retries,
            )
            return OpenAIProvider(name=name, client=client, secrets=self.secrets)
        if name == "anthropic":
            key = _secret(s.anthropic_api_key)
            if not key:
                raise SettingsError("LLM_LANES_ANTHROPIC_API_KEY: required for 'anthropic'")
            aclient = anthropic.Anthropic(
                api_key=key,
                base_url=base_url or s.anthropic_base_url,
                timeout=timeout,
                max_retries=retries,
            )
            return AnthropicProvider(client=aclient, secrets=self.secrets)
        raise SettingsError(f"provider: unknown provider {name!r}")
