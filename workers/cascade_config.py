"""Cascade configuration from settings: the ladder, the router, hooks, rollout share."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanes.routing import Router, Tier, TierLadder
from lanes.settings import LanesSettings


def load_hook(spec: str | None, *, setting: str) -> Callable[..., Any] | None:
    """`module:function` from a setting; a bad path fails at start-up naming the setting."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError, ValueError) as exc:
        from lanes.errors import SettingsError

        raise SettingsError(f"{setting}: cannot load {spec!r} ({exc})") from None


@dataclass(frozen=True)
class CascadeConfig:
    ladder: TierLadder
    router: Router
    default_tier: Tier
    rollout_percent: float
    shadow: bool
    min_mean_logprob: float | None
    verifier: Tier | None
    verifier_mode: str
    answer_formats: dict[str, str]
    acceptance_hook: Callable[..., Any] | None
    moderation_hook: Callable[..., Any] | None

    @classmethod
    def from_settings(cls, settings: LanesSettings) -> CascadeConfig | None:
        raw = settings.tiers
        if raw is None and settings.tiers_file:
            raw = Path(settings.tiers_file).read_text()
        if raw is None:
            return None
        ladder = TierLadder.from_json(raw)
        classifier = None
        if settings.router_classifier_path:
            from lanes.classifier import TextClassifier

            classifier = TextClassifier.load(settings.router_classifier_path)
        feature_tiers = (
            json.loads(settings.router_feature_tiers) if settings.router_feature_tiers else None
        )
        router = Router(
            ladder,
            feature_tiers=feature_tiers,
            classifier=classifier,
            threshold=settings.router_threshold,
        )
        default = (
            ladder.by_name(settings.cascade_default_tier)
            if settings.cascade_default_tier
            else ladder.top
        )
        verifier = (
            ladder.by_name(settings.cascade_verifier_tier)
            if settings.cascade_verifier_tier
            else None
        )
        return cls(
            ladder=ladder,
            router=router,
            default_tier=default,
            rollout_percent=settings.cascade_rollout_percent,
            shadow=settings.cascade_shadow,
            min_mean_logprob=settings.cascade_min_mean_logprob,
            verifier=verifier,
            verifier_mode=settings.cascade_verifier_mode,
            answer_formats=json.loads(settings.cascade_answer_formats or "{}"),
            acceptance_hook=load_hook(
                settings.cascade_acceptance_hook, setting="LLM_LANES_CASCADE_ACCEPTANCE_HOOK"
            ),
            moderation_hook=load_hook(
                settings.moderation_hook, setting="LLM_LANES_MODERATION_HOOK"
            ),
        )


def in_rollout(job_id: str, percent: float) -> bool:
    """Stable per job: a redelivered job takes the same path."""
    bucket = int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big") % 10_000
    return bucket < percent * 100
