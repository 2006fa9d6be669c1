"""Simulated durations and provider limits for the batch engine.

Durations are in simulated seconds on the `VirtualClock`, so a test can set them to match
what it wants to observe and then `advance()` past them; limits default to the providers'
published numbers (spec §5) but are settable so tests need not build 200 MB files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

DAY = 86_400.0


@dataclass
class BatchTiming:
    validating_seconds: float = 10.0
    """OpenAI/Azure: how long a batch sits in `validating` before `in_progress` or `failed`."""
    request_seconds: float = 1.0
    """Processing time of one input line."""
    concurrency: int = 1
    """Lines run side by side: line k ends at start + (k // concurrency + 1) * request_seconds."""
    finalizing_seconds: float = 10.0
    """OpenAI: `finalizing` → `completed`; Anthropic: last line done → `ended`."""
    cancel_seconds: float = 30.0
    """`cancelling`/`canceling` → `cancelled`/`ended`."""
    window_seconds: float = DAY
    """Completion window (`24h`); Azure batches are not expired when it passes."""
    file_retention_seconds: float = 30 * DAY
    """Default expiry of batch input and output files (OpenAI: 30 days)."""
    results_retention_seconds: float = 29 * DAY
    """Anthropic: results are archived this long after the batch was created."""

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown timing field: {key}")
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key}: must be a non-negative number")
            if key == "concurrency":
                if int(value) < 1:
                    raise ValueError("concurrency: must be >= 1")
                value = int(value)
            setattr(self, key, value)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchLimits:
    openai_max_requests: int = 50_000
    azure_max_requests: int = 100_000
    openai_max_batch_file_bytes: int = 200 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    anthropic_max_requests: int = 100_000
    anthropic_max_body_bytes: int = 256 * 1024 * 1024
    metadata_max_pairs: int = 16
    metadata_max_key: int = 64
    metadata_max_value: int = 512

    def max_requests(self, flavor: str) -> int:
        return self.azure_max_requests if flavor == "azure" else self.openai_max_requests
