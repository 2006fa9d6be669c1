"""Request bodies rendered into the ordered content blocks that caching and counting see.

Each provider's prefix order (spec §6.2) becomes a flat list of `Block`s: OpenAI tools then
messages (system included), Responses tools then `instructions` then `input`, Anthropic tools
then system then messages. A block's `head` (structure: role, part type, other fields) and
`text` are what the prefix hash covers, never the cache markers themselves, so adding a
breakpoint does not change the prefix it marks; `text` alone counts as tokens and is what
scripts match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workers.simulator.errors import bad_request
from workers.simulator.tokens import MEDIA_TOKENS, canonical_json, count_text

_MEDIA_KINDS = frozenset(
    {"image_url", "input_audio", "file", "input_image", "input_file", "image", "document", "audio"}
)


@dataclass(frozen=True)
class Breakpoint:
    ttl: str | None
    """`5m`/`1h` (Anthropic) or `30m`/`12h` (OpenAI); None inherits the request default."""


@dataclass(frozen=True)
class Block:
    head: str
    """Structure around the text (role marker, part type, non-text fields), canonical."""
    text: str
    tokens: int
    breakpoint: Breakpoint | None = None


@dataclass
class Prompt:
    blocks: list[Block] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(b.tokens for b in self.blocks)

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks if b.text)

    def add(
        self,
        *,
        head: str,
        text: str,
        tokens: int | None = None,
        breakpoint: Breakpoint | None = None,
    ) -> None:
        count = count_text(text) if tokens is None else tokens
        self.blocks.append(Block(head, text, count, breakpoint))

    def breakpoints(self) -> list[int]:
        """Indexes of blocks carrying a cache marker, in prompt order."""
        return [i for i, b in enumerate(self.blocks) if b.breakpoint is not None]

    def tokens_through(self, index: int) -> int:
        return sum(b.tokens for b in self.blocks[: index + 1])


def _without(part: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in part.items() if k not in names}


def _openai_breakpoint(part: dict[str, Any]) -> Breakpoint | None:
    marker = part.get("prompt_cache_breakpoint")
    if marker is None:
        return None
    if not isinstance(marker, dict) or marker.get("mode") != "explicit":
        raise bad_request(
            "prompt_cache_breakpoint.mode must be 'explicit'.", param="prompt_cache_breakpoint.mode"
        )
    ttl = marker.get("ttl")
    if ttl not in (None, "30m", "12h"):
        raise bad_request(
            f"Invalid prompt_cache_breakpoint.ttl: {ttl!r}.", param="prompt_cache_breakpoint.ttl"
        )
    return Breakpoint(ttl)


def _part_text(part: dict[str, Any]) -> str | None:
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text"):
        return str(part.get("text", ""))
    if kind == "refusal":
        return str(part.get("refusal", ""))
    return None


def _add_tools(prompt: Prompt, tools: Any, *, marker: str) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array.", param="tools")
    for tool in tools:
        if not isinstance(tool, dict):
            raise bad_request("Each tool must be an object.", param="tools")
        bp = _anthropic_breakpoint(tool) if marker == "cache_control" else None
        text = canonical_json(_without(tool, marker))
        prompt.add(head="<tool>", text=text, breakpoint=bp)


def _add_openai_content(prompt: Prompt, role: str, content: Any, *, param: str) -> None:
    """One message's content: a string or a list of typed parts (chat or Responses)."""
    head = f"<{role}>"
    if content is None:
        prompt.add(head=head, text="")
        return
    if isinstance(content, str):
        prompt.add(head=head, text=content)
        return
    if not isinstance(content, list):
        raise bad_request(
            f"Invalid type for '{param}': expected a string or an array.", param=param
        )
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise bad_request(f"Invalid content part in '{param}'.", param=f"{param}[{i}]")
        bp = _openai_breakpoint(part)
        text = _part_text(part)
        shape = canonical_json(_without(part, "prompt_cache_breakpoint", "text", "refusal"))
        marker = (head if i == 0 else "+") + shape
        if text is None:
            prompt.add(head=marker, text="", tokens=MEDIA_TOKENS, breakpoint=bp)
        else:
            prompt.add(head=marker, text=text, breakpoint=bp)


def render_chat(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    prompt = Prompt()
    _add_tools(prompt, body.get("tools"), marker="prompt_cache_breakpoint")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise bad_request(
                f"Invalid message at index {i}: 'role' is required.", param=f"messages[{i}].role"
            )
        role = str(message["role"])
        _add_openai_content(prompt, role, message.get("content"), param=f"messages[{i}].content")
        for call in message.get("tool_calls") or []:
            text = canonical_json(call)
            prompt.add(head="+<call>", text=text)
    return prompt


def render_responses(body: dict[str, Any]) -> Prompt:
    prompt = Prompt()
    _add_tools(prompt, body.get("tools"), marker="prompt_cache_breakpoint")
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        prompt.add(head="<instructions>", text=instructions)
    items = body.get("input")
    if items is None:
        raise bad_request(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if isinstance(items, str):
        _add_openai_content(prompt, "user", items, param="input")
        return prompt
    if not isinstance(items, list):
        raise bad_request("Invalid type for 'input': expected a string or an array.", param="input")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"Invalid input item at index {i}.", param=f"input[{i}]")
        if "role" in item:
            _add_openai_content(
                prompt, str(item["role"]), item.get("content"), param=f"input[{i}].content"
            )
        else:  # function calls, their outputs, reasoning items...
            text = canonical_json(item)
            prompt.add(head="<item>", text=text)
    return prompt


def _anthropic_breakpoint(block: dict[str, Any]) -> Breakpoint | None:
    marker = block.get("cache_control")
    if marker is None:
        return None
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
        raise bad_request("cache_control.type: Input should be 'ephemeral'")
    ttl = marker.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise bad_request(f"cache_control.ttl: Input should be '5m' or '1h', got {ttl!r}")
    return Breakpoint(ttl)


def _anthropic_text(block: dict[str, Any]) -> str | None:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return canonical_json(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, str):
            return content
        return canonical_json(content)
    if kind in ("thinking", "redacted_thinking"):
        return str(block.get("thinking", block.get("data", "")))
    return None


def _add_anthropic_blocks(prompt: Prompt, head: str, blocks: Iterable[Any], where: str) -> None:
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            raise bad_request(f"{where}.{i}: each content block needs a 'type'")
        text = _anthropic_text(block)
        bp = _anthropic_breakpoint(block)
        shape = _without(block, "cache_control")
        if block.get("type") in ("text", "tool_use"):
            shape = _without(shape, "text", "input")
        marker = (head if i == 0 else "+") + canonical_json(shape)
        if text is None:
            prompt.add(head=marker, text="", tokens=MEDIA_TOKENS, breakpoint=bp)
        else:
            prompt.add(head=marker, text=text, breakpoint=bp)


def render_anthropic(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise bad_request("messages: Field required")
    prompt = Prompt()
    _add_tools(prompt, body.get("tools"), marker="cache_control")
    system = body.get("system")
    if isinstance(system, str):
        if system:
            prompt.add(head="<system>", text=system)
    elif isinstance(system, list):
        _add_anthropic_blocks(prompt, "<system>", system, "system")
    elif system is not None:
        raise bad_request("system: Input should be a valid string or list of text blocks")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise bad_request(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        head = f"<{message['role']}>"
        content = message.get("content")
        if isinstance(content, str):
            prompt.add(head=head, text=content)
        elif isinstance(content, list):
            _add_anthropic_blocks(prompt, head, content, f"messages.{i}.content")
        else:
            raise bad_request(f"messages.{i}.content: Field required")
    top = body.get("cache_control")
    if top is not None:
        bp = _anthropic_breakpoint({"cache_control": top})
        if prompt.blocks and prompt.blocks[-1].breakpoint is None:
            last = prompt.blocks[-1]
            prompt.blocks[-1] = Block(last.head, last.text, last.tokens, bp)
    return prompt
