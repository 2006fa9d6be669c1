"""Settings from the environment (prefix `LLM_LANES_`), typed and checked at start-up.

Operators tune lane SLAs here without touching code; a bad value stops the process with a
message naming the variable, instead of surfacing as a confusing failure hours later.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lanes.errors import SettingsError

ENV_PREFIX = "LLM_LANES_"

ProviderName = Literal["openai", "anthropic", "azure", "openai_compatible"]


class LanesSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    # transport and storage
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices(ENV_PREFIX + "REDIS_URL", "REDIS_URL")
    )
    database_url: str = "sqlite:///.llm-lanes/lanes.db"

    # providers: keys are secrets, never printed; base URLs point SDKs at the simulator
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    azure_api_key: SecretStr | None = None
    azure_endpoint: str | None = None
    azure_api_version: str = "2025-04-01-preview"
    openai_compatible_base_url: str | None = None
    openai_compatible_api_key: SecretStr | None = None

    price_overrides_path: str | None = None
    """JSON price file for models the maintained table lacks (custom, self-hosted)."""

    default_provider: ProviderName = "openai"
    default_model: str = "gpt-5.4-mini"

    # lane SLAs
    interactive_latency_target_s: float = Field(default=30.0, gt=0)
    deferrable_max_delay_s: float = Field(default=24 * 3600.0, gt=0)
    promotion_margin_s: float = Field(default=900.0, ge=0)

    # robustness
    provider_timeout_s: float = Field(default=60.0, gt=0, le=900)
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    visibility_timeout_s: int = Field(default=3600, ge=60)
    requeue_after_s: float = Field(default=300.0, gt=0)
    """A queued job whose message is this old with no worker start is re-published."""
    stale_running_after_s: float = Field(default=1800.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1)

    # deployment
    flower_address: str = "127.0.0.1"
    flower_port: int = Field(default=5555, ge=1, le=65535)
    worker_concurrency: int = Field(default=8, ge=1, le=512)
    housekeeping_interval_s: float = Field(default=15.0, gt=0, le=3600)
    """Beat period of the watchdog, the batch flusher and the batch poller."""

    # ---- deferrable lane: batching (accumulator, flush, poll) -- owned by the batch lane ----
    batching_disabled: bool = False
    """Emergency switch: no new batches; new and buffered deferrable jobs go to realtime."""
    batch_max_wait_s: float = Field(default=600.0, gt=0)
    """Flush a group once its oldest buffered task has waited this long."""
    batch_turnaround_s: float = Field(default=4 * 3600.0, gt=0)
    """Expected submit-to-results time; a member whose deadline is closer (plus the
    promotion margin) forces a flush, and an expired line is re-batched only if it fits."""
    batch_min_requests: int = Field(default=1, ge=1)
    """Smallest batch the age or deadline triggers will submit."""
    batch_openai_max_requests: int = Field(default=50_000, ge=1, le=50_000)
    batch_openai_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    batch_azure_max_requests: int = Field(default=100_000, ge=1, le=100_000)
    batch_azure_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    batch_anthropic_max_requests: int = Field(default=100_000, ge=1, le=100_000)
    batch_anthropic_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    batch_max_line_retries: int = Field(default=2, ge=0, le=20)
    """Errored batch lines are re-batched this many times, then the job fails."""
    batch_poll_min_s: float = Field(default=30.0, gt=0)
    batch_poll_max_s: float = Field(default=600.0, gt=0)
    """Poll backoff of an open batch: doubles from min to max (Azure asks for >= 60 s)."""
    batch_submit_stale_s: float = Field(default=300.0, gt=0)
    """A batch left `submitting` this long (crashed flush) is reconciled by the next flush."""
    # ---- end of the batching block ------------------------------------------------------------

    # ---- prompt caching: segment and spend alerts, batch warm-up -- owned by the caching lever --
    cache_alert_min_hit_ratio: float = Field(default=0.5, ge=0, le=1)
    """A static segment whose hit ratio stays below this over the window raises an alert."""
    cache_alert_metric: Literal["tokens", "calls"] = "calls"
    """Hit ratio used by that alert: cached/input tokens, or the share of calls that read the
    cache (use "calls" when the dynamic part dwarfs the static prefix)."""
    cache_alert_min_calls: int = Field(default=20, ge=1)
    """Segment alerts need at least this many calls in the window (no alerts on noise)."""
    cache_alert_window_s: float = Field(default=24 * 3600.0, gt=0)
    alert_cooldown_s: float = Field(default=6 * 3600.0, ge=0)
    """The same alert key is not raised again within this time."""
    alert_check_interval_s: float = Field(default=300.0, ge=0)
    """Watchdog ticks evaluate alerts at most this often per process (the queries scan the
    window)."""
    spend_alert_daily_usd: float | None = Field(default=None, gt=0)
    """Alert when today's (UTC) total spend exceeds this. Unset: off."""
    spend_alert_feature_daily_usd: float | None = Field(default=None, gt=0)
    """Alert when one feature's spend today (UTC) exceeds this. Unset: off."""
    spend_alert_feature_limits: dict[str, float] = Field(default_factory=dict)
    """Per-feature limits overriding the one above, as JSON: {"search": 50, "chat": 200}."""
    cache_warmup_enabled: bool = True
    """Send one realtime request to write a shared prefix before a batch, when it pays."""
    cache_warmup_baseline_hit_ratio: float = Field(default=0.3, ge=0, le=1)
    """Expected in-batch hit ratio without warm-up (Anthropic says best effort, 30-98%)."""
    # ---- end of the prompt caching block ------------------------------------------------------

    # ---- interactive lane: tiered cascade ------------------------------------------------------
    tiers: str | None = None
    """JSON ladder, cheapest first: [{"name": "cheap", "provider": "openai", "model": "...",
    "max_output_tokens": 512, "feature_overrides": {...}}, ...]. Unset: no cascade."""
    tiers_file: str | None = None
    """Path to a JSON file with the same ladder (used when LLM_LANES_TIERS is unset)."""
    cascade_rollout_percent: float = Field(default=100.0, ge=0, le=100)
    """Share of eligible traffic that goes through the cascade; the rest uses the default tier."""
    cascade_default_tier: str | None = None
    """Tier for traffic outside the rollout and the answering tier in shadow mode (default: top)."""
    cascade_shadow: bool = False
    """Answer with the default tier, also call the routed cheap tier, log both for replay."""
    cascade_min_mean_logprob: float | None = Field(default=None, le=0)
    """Escalate when the mean token log-prob is below this (where the provider returns them)."""
    cascade_verifier_tier: str | None = None
    """Ask this tier to confirm a cheap answer before accepting it."""
    cascade_verifier_mode: Literal["judge", "agree"] = "judge"
    """judge: the verifier answers YES/NO about the cheap answer; agree: it answers the same
    task and the cheap answer stands only if both agree (what `llm-lanes replay` measures)."""
    cascade_answer_formats: str | None = None
    """JSON {feature: "choice" | "final_number" | "python"}: answers must be well-formed."""
    cascade_acceptance_hook: str | None = None
    """`module:function(task, attempt) -> reason | None`, a custom acceptance check."""
    moderation_hook: str | None = None
    """`module:function(text) -> reason | None`, run on every tier's output alike."""
    router_classifier_path: str | None = None
    """A trained router (JSON, from `llm-lanes replay --save-router`)."""
    router_threshold: float = Field(default=0.5, ge=0, le=1)
    router_feature_tiers: str | None = None
    """JSON {feature: tier name}: features that always start on a given tier."""
    # ---- end of the cascade block --------------------------------------------------------------

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


def load_settings(**overrides: object) -> LanesSettings:
    """Read the environment; raise `SettingsError` naming each bad variable."""
    try:
        settings = LanesSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("bad settings: " + "; ".join(problems)) from None
    if settings.promotion_margin_s >= settings.deferrable_max_delay_s:
        raise SettingsError(
            f"{ENV_PREFIX}PROMOTION_MARGIN_S: must be below "
            f"{ENV_PREFIX}DEFERRABLE_MAX_DELAY_S ({settings.deferrable_max_delay_s})"
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> LanesSettings:
    return load_settings()
