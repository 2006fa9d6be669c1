"""The provider-neutral task application code enqueues, and its validation.

A task is checked completely before anything is written: every bad field is reported in one
`TaskValidationError`, so nothing is half-written and the caller fixes all problems at once.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lanes.caching import PromptSegment
from lanes.errors import FieldProblem, TaskValidationError

MAX_OUTPUT_TOKENS_LIMIT = 200_000
MAX_METADATA_BYTES = 16_384
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")


class Lane(StrEnum):
    INTERACTIVE = "interactive"
    DEFERRABLE = "deferrable"


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=2_000_000)


class LLMTask(BaseModel):
    """One LLM request and the promise attached to it (its lane and deadline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[Message] = Field(min_length=1, max_length=1000)
    system: str | None = Field(default=None, max_length=2_000_000)
    segments: list[PromptSegment] = Field(default_factory=list, max_length=64)
    """Named prompt parts; static ones go first, in a canonical order, so they are cached."""
    lane: Lane = Lane.INTERACTIVE
    provider: Literal["openai", "anthropic", "azure", "openai_compatible"] | None = None
    model: str | None = Field(default=None, min_length=1, max_length=200)
    tier: str | None = Field(default=None, min_length=1, max_length=64)
    api: Literal["chat", "responses", "messages"] | None = None
    """OpenAI surface to use (Chat Completions or Responses); Anthropic is always messages."""
    max_output_tokens: int = Field(default=1024, ge=1, le=MAX_OUTPUT_TOKENS_LIMIT)
    deadline: datetime | None = None
    max_delay_s: float | None = Field(default=None, gt=0)
    feature: str = "default"
    tenant: str | None = None
    json_schema: dict[str, Any] | None = None
    """When set, the answer must be JSON matching this schema (checked by the cascade)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise TaskValidationError(_problems_from(exc)) from None
        problems = self._cross_field_problems()
        if problems:
            raise TaskValidationError(problems)

    @field_validator("feature", "tenant")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _TAG.match(value):
            raise ValueError("must be 1-64 chars of letters, digits and _.:/- ")
        return value

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must be timezone-aware (e.g. datetime.now(UTC) + timedelta(...))")
        return value

    @field_validator("metadata")
    @classmethod
    def _json_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serializable ({exc})") from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
        return value

    @field_validator("json_schema")
    @classmethod
    def _schema_is_object(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "type" not in value:
            raise ValueError("must be a JSON schema with a 'type'")
        return value

    def _cross_field_problems(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if self.lane is Lane.INTERACTIVE and (self.deadline or self.max_delay_s):
            field = "deadline" if self.deadline else "max_delay_s"
            problems.append(FieldProblem(field, "only deferrable tasks take a deadline"))
        if self.deadline is not None and self.max_delay_s is not None:
            problems.append(FieldProblem("max_delay_s", "give deadline or max_delay_s, not both"))
        if self.deadline is not None and self.deadline <= datetime.now(UTC):
            problems.append(FieldProblem("deadline", "is in the past"))
        if self.messages and self.messages[-1].role != "user":
            problems.append(FieldProblem("messages", "the last message must be from the user"))
        names = [seg.name for seg in self.segments]
        if len(names) != len(set(names)):
            problems.append(FieldProblem("segments", "segment names must be unique"))
        if self.provider == "anthropic" and self.api in ("chat", "responses"):
            problems.append(FieldProblem("api", "Anthropic only serves the messages API"))
        if self.provider in ("openai", "azure", "openai_compatible") and self.api == "messages":
            problems.append(FieldProblem("api", "OpenAI-style providers serve chat or responses"))
        return problems

    def resolve_deadline(self, *, now: datetime, default_max_delay_s: float) -> datetime | None:
        """Absolute deadline of a deferrable task (interactive ones have none)."""
        if self.lane is Lane.INTERACTIVE:
            return None
        if self.deadline is not None:
            return self.deadline.astimezone(UTC)
        return now + timedelta(seconds=self.max_delay_s or default_max_delay_s)

    def prompt_text(self) -> str:
        """Everything the model reads, for routing and token estimates."""
        parts = [seg.text for seg in self.segments]
        parts.append(self.system or "")
        parts.extend(m.content for m in self.messages)
        return "\n".join(p for p in parts if p)


def _problems_from(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "task"
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(loc, msg))
    return problems


def validate_task(data: LLMTask | dict[str, Any]) -> LLMTask:
    """Accept a task or a plain dict (e.g. decoded JSON from another service)."""
    if isinstance(data, LLMTask):
        return data
    if not isinstance(data, dict):
        raise TaskValidationError([FieldProblem("task", "must be an LLMTask or a dict")])
    return LLMTask(**data)
