"""Batch fault injection: what can go wrong with a provider batch, chosen per engine.

Two kinds of setting: *standing* faults (errored or stalled lines, slow finalizing) apply to
every new batch until reset; *one-shot* faults (fail validation, provider-side cancel, a
create that succeeds but answers 500) are counters consumed by the next batches. Each new
batch takes a frozen `BatchPlan`, so changing faults never rewrites a batch in flight.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_FLAVORS = frozenset({"openai", "azure", "anthropic"})


@dataclass(frozen=True)
class BatchPlan:
    """The faults one batch will suffer, fixed when it is created."""

    fail_validation: bool = False
    errored: frozenset[str] = frozenset()
    """custom_ids whose line answers `error_status` instead of running."""
    error_status: int = 500
    stalled: frozenset[str] = frozenset()
    """custom_ids that never run: they end as `batch_expired` / `expired` (or cancelled)."""
    cancel_after_seconds: float | None = None
    """Provider-side cancellation this long after creation."""
    extra_finalizing_seconds: float = 0.0


@dataclass
class BatchFaults:
    fail_validation: int = 0
    """One-shot: the next N batches fail validation."""
    ghost_creates: int = 0
    """One-shot: the next N creates store the batch but answer 500 (the SDK then retries)."""
    provider_cancel: int = 0
    """One-shot: the next N batches are cancelled by the provider after `cancel_after_seconds`."""
    cancel_after_seconds: float = 0.0
    error_fraction: float = 0.0
    error_custom_ids: set[str] = field(default_factory=set)
    error_status: int = 500
    expire_fraction: float = 0.0
    expire_custom_ids: set[str] = field(default_factory=set)
    extra_finalizing_seconds: float = 0.0
    flavors: set[str] | None = None
    """Limit all faults to these flavors (`openai`, `azure`, `anthropic`); None means all."""

    def applies_to(self, flavor: str) -> bool:
        return self.flavors is None or flavor in self.flavors

    def to_json(self) -> dict[str, Any]:
        return {
            "fail_validation": self.fail_validation,
            "ghost_creates": self.ghost_creates,
            "provider_cancel": self.provider_cancel,
            "cancel_after_seconds": self.cancel_after_seconds,
            "error_fraction": self.error_fraction,
            "error_custom_ids": sorted(self.error_custom_ids),
            "error_status": self.error_status,
            "expire_fraction": self.expire_fraction,
            "expire_custom_ids": sorted(self.expire_custom_ids),
            "extra_finalizing_seconds": self.extra_finalizing_seconds,
            "flavors": None if self.flavors is None else sorted(self.flavors),
        }


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: must be a non-negative integer or a boolean")
    return value


def _fraction(value: Any, key: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{key}: must be a number in [0, 1]")
    return float(value)


def _seconds(value: Any, key: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key}: must be a non-negative number")
    return float(value)


def _ids(value: Any, key: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key}: must be a list of strings")
    return set(value)


class FaultBook:
    """Thread-safe holder of the engine's `BatchFaults` that hands out per-batch plans."""

    def __init__(self, faults: BatchFaults | None = None, *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults = faults or BatchFaults()
        self._seed = seed

    @property
    def faults(self) -> BatchFaults:
        return self._faults

    def reset(self) -> None:
        with self._lock:
            self._faults = BatchFaults()

    def configure(self, values: dict[str, Any]) -> BatchFaults:
        """Apply a JSON-style update (the control route's body); `reset: true` clears first."""
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            if key == "reset":
                continue
            if key in ("fail_validation", "ghost_creates", "provider_cancel"):
                parsed[key] = _count(value, key)
            elif key in ("error_fraction", "expire_fraction"):
                parsed[key] = _fraction(value, key)
            elif key in ("cancel_after_seconds", "extra_finalizing_seconds"):
                parsed[key] = _seconds(value, key)
            elif key in ("error_custom_ids", "expire_custom_ids"):
                parsed[key] = _ids(value, key)
            elif key == "error_status":
                if not isinstance(value, int) or not 400 <= value <= 599:
                    raise ValueError("error_status: must be an HTTP error status (400-599)")
                parsed[key] = value
            elif key == "flavors":
                flavors = None if value is None else _ids(value, key)
                if flavors is not None and not flavors <= _FLAVORS:
                    raise ValueError(f"flavors: must be among {sorted(_FLAVORS)}")
                parsed[key] = flavors
            else:
                raise ValueError(f"unknown batch fault: {key}")
        with self._lock:
            if values.get("reset"):
                self._faults = BatchFaults()
            for key, value in parsed.items():
                setattr(self._faults, key, value)
            return self._faults

    def take_ghost(self, flavor: str) -> bool:
        with self._lock:
            f = self._faults
            if f.ghost_creates > 0 and f.applies_to(flavor):
                f.ghost_creates -= 1
                return True
            return False

    def plan(self, *, flavor: str, batch_id: str, custom_ids: Iterable[str]) -> BatchPlan:
        """Freeze the faults for a new batch, consuming one-shot counters."""
        with self._lock:
            f = self._faults
            if not f.applies_to(flavor):
                return BatchPlan()
            ids = list(custom_ids)
            rng = random.Random(f"{self._seed}:{batch_id}")
            stalled = set(f.expire_custom_ids) & set(ids)
            stalled |= set(rng.sample(ids, round(f.expire_fraction * len(ids))))
            remaining = [i for i in ids if i not in stalled]
            errored = set(f.error_custom_ids) & set(remaining)
            want = round(f.error_fraction * len(ids)) - len(errored)
            pool = [i for i in remaining if i not in errored]
            if want > 0:
                errored |= set(rng.sample(pool, min(want, len(pool))))
            fail = f.fail_validation > 0
            if fail:
                f.fail_validation -= 1
            cancel_after = None
            if f.provider_cancel > 0:
                f.provider_cancel -= 1
                cancel_after = f.cancel_after_seconds
            return BatchPlan(
                fail_validation=fail,
                errored=frozenset(errored),
                error_status=f.error_status,
                stalled=frozenset(stalled),
                cancel_after_seconds=cancel_after,
                extra_finalizing_seconds=f.extra_finalizing_seconds,
            )
