"""Errors of the deferrable (batch) lane. Messages never carry an API key."""

from __future__ import annotations


class BatchLaneError(Exception):
    """Base class of batch lane errors."""


class BatchProviderError(BatchLaneError):
    """A provider batch call failed after our own handling.

    `ambiguous` means the request may have taken effect server-side (5xx, timeout, lost
    connection): a create must be reconciled by listing before it is tried again.
    """

    def __init__(self, message: str, *, status: int | None = None, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.ambiguous = ambiguous


class BatchRejectedError(BatchProviderError):
    """The provider refused the batch itself (a 4xx on create): retrying the same batch fails."""


class NotBatchableError(BatchLaneError):
    """The job's provider has no batch API here (it is served in realtime instead)."""


class SimulatedCrashError(BatchLaneError):
    """Raised by a test hook at a named failure point, to act out a process crash."""
