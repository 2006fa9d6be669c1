"""Provider adapters over the official SDKs (openai, anthropic).

`build_body` and `parse_body` are shared by the realtime call and the batch lane, so a batch
line is byte-for-byte the request the realtime lane would send.
"""

from workers.providers.base import (
    ChatTurn,
    ProviderCallError,
    ProviderRequest,
    ProviderResult,
    TextBlock,
)
from workers.providers.registry import ProviderRegistry

__all__ = [
    "ChatTurn",
    "ProviderCallError",
    "ProviderRegistry",
    "ProviderRequest",
    "ProviderResult",
    "TextBlock",
]
