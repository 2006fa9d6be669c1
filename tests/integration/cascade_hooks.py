"""Hooks the cascade tests load by dotted path, as an operator would configure them."""

from __future__ import annotations

from typing import Any


def reject_drafts(task: Any, attempt: Any) -> str | None:
    return "answer is only a draft" if attempt.text.startswith("DRAFT") else None


def block_forbidden(text: str) -> str | None:
    return "policy: forbidden content" if "FORBIDDEN" in text else None
