"""Errors raised by the storage layer."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of storage errors."""


class StaleStateError(StorageError):
    """A conditional update found the row in another state (someone else moved it first)."""
