"""Keep secrets out of logs, the ledger and error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable

_KEYLIKE = re.compile(
    r"\b(sk-[A-Za-z0-9_\-]{6,}|sk-ant-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9_\-.]{8,})"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace known secret values and anything shaped like an API key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)
