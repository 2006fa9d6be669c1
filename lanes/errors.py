"""Every error `lanes` raises; application code catches `LanesError` for all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class LanesError(Exception):
    """Base class of llm-lanes errors."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class TaskValidationError(LanesError, ValueError):
    """A task was rejected before anything was written or published.

    Carries every bad field at once, so a caller fixes them in one go.
    """

    def __init__(self, problems: Sequence[FieldProblem], *, index: int | None = None) -> None:
        self.problems = list(problems)
        self.index = index
        where = f"task #{index}: " if index is not None else ""
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{where}invalid task ({len(self.problems)} problem(s)): {lines}")

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.problems]


class SettingsError(LanesError):
    """A setting from the environment is missing or malformed (names the variable)."""


class PublishError(LanesError):
    """The job row was written but the message could not be published.

    The job stays `queued` in SQL and the watchdog re-publishes it; `job_ids` says which.
    """

    def __init__(self, message: str, *, job_ids: Sequence[str]) -> None:
        super().__init__(message)
        self.job_ids = list(job_ids)


class JobNotFoundError(LanesError, KeyError):
    """No job with that id."""


class JobFailedError(LanesError):
    """The job ended in `failed`; `reason` is the recorded cause."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class ResultTimeoutError(LanesError, TimeoutError):
    """`result(timeout=...)` ran out before the job reached a final state."""


class UnknownModelError(LanesError, LookupError):
    """No price for this (provider, model): add it to a price override file.

    Raised instead of guessing, because a silently zero-priced call would hide real spend.
    """

    def __init__(self, provider: str, model: str, *, searched: Sequence[str] = ()) -> None:
        self.provider = provider
        self.model = model
        where = f" (searched: {', '.join(searched)})" if searched else ""
        super().__init__(
            f"no price for model {model!r} of provider {provider!r}{where}; "
            "add it to a price override file"
        )


class PriceDataError(LanesError, ValueError):
    """A price override file is unreadable or malformed (names the file and the entry)."""


class TierConfigError(LanesError, ValueError):
    """The tier ladder (LLM_LANES_TIERS or its file) is malformed; names the bad field."""


class UnknownTierError(LanesError, LookupError):
    """A tier name (hint, default, verifier, feature mapping) is not on the ladder."""

    def __init__(self, name: str, *, known: Sequence[str] = ()) -> None:
        self.name = name
        super().__init__(f"unknown tier {name!r} (ladder: {', '.join(known) or 'empty'})")


class ReplayDataError(LanesError, ValueError):
    """A replay source is missing, of an unknown format, or malformed (names file and line)."""
