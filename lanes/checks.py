"""Acceptance checks: should the cascade keep this answer or escalate one rung?

Checks see a provider-neutral `Attempt`, so the realtime worker and the offline replay judge
answers with the same code. A check returns `None` (pass) or a failed `CheckResult`; the
reasons are a small closed set because they are written to the audit log and counted in
reports. Checks are cheap and local except the verifier, which may call another tier and so
runs last.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from lanes.answers import EXTRACTORS as EXTRACTORS
from lanes.answers import arithmetic_slips as arithmetic_slips
from lanes.answers import extract_answer as extract_answer
from lanes.answers import extract_choice as extract_choice
from lanes.answers import extract_code as extract_code
from lanes.answers import extract_final_number as extract_final_number
from lanes.answers import extract_worked_answer as extract_worked_answer
from lanes.json_schema import validate_json as validate_json

FinishReason = Literal["stop", "length", "refusal", "content_filter", "error"]


class CheckReason(StrEnum):
    ERROR = "error"
    TRUNCATED = "truncated"
    REFUSAL = "refusal"
    EMPTY = "empty"
    SCHEMA = "schema"
    LOW_CONFIDENCE = "low_confidence"
    VERIFIER = "verifier"
    USER_HOOK = "user_hook"
    MODERATION = "moderation"
    FORMAT = "format"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One tier's answer, normalised across providers."""

    text: str
    finish_reason: FinishReason = "stop"
    error_kind: str | None = None
    """Set when the call failed after the SDK's retries ("timeout", "rate_limit", ...)."""
    logprobs: Sequence[float] | None = None
    json_schema: Mapping[str, Any] | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    reason: CheckReason | None = None
    detail: str | None = None

    @classmethod
    def fail(cls, reason: CheckReason, detail: str | None = None) -> CheckResult:
        return cls(ok=False, reason=reason, detail=detail)


ACCEPTED = CheckResult(ok=True)

Check = Callable[[Attempt], CheckResult | None]
"""Returns None when the attempt passes, else a failed result."""
UserHook = Callable[[Attempt], str | None]
"""Application's own acceptance rule: a rejection reason, or None to accept."""
VerifierHook = Callable[[Attempt], str | None]
"""Supplied by the worker; may ask another tier to confirm. A reason rejects the answer."""
ModerationHook = Callable[[str], str | None]
"""Policy check applied to every tier's text alike (top tier included)."""


def evaluate(attempt: Attempt, checks: Iterable[Check]) -> CheckResult:
    """First failing check wins; order puts cheap, decisive checks first."""
    for check in checks:
        result = check(attempt)
        if result is not None and not result.ok:
            return result
    return ACCEPTED


# -- the built-in checks ----------------------------------------------------------------------


def check_error(attempt: Attempt) -> CheckResult | None:
    if attempt.finish_reason == "error" or attempt.error_kind:
        return CheckResult.fail(CheckReason.ERROR, attempt.error_kind or "error")
    return None


def check_truncated(attempt: Attempt) -> CheckResult | None:
    if attempt.finish_reason == "length":
        return CheckResult.fail(CheckReason.TRUNCATED, "hit max_output_tokens")
    return None


_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry,? but i (?:can(?:'|no)?t|am unable|won'?t)"
    r"|i (?:can(?:'|no)?t|cannot|won'?t|am unable to|'m unable to|am not able to) "
    r"(?:help|assist|comply|provide|do that|fulfil|support|answer|engage)"
    r"|(?:sorry|unfortunately),? (?:but )?i (?:can(?:'|no)?t|cannot|won'?t|am unable)"
    r"|as an ai(?: language model)?,? i (?:can(?:'|no)?t|cannot|am unable|won'?t|don'?t))",
    re.IGNORECASE,
)
_REFUSAL_WINDOW = 200
"""Only the opening counts: a long answer that mentions "I can't" later is not a refusal."""


def check_refusal(attempt: Attempt) -> CheckResult | None:
    if attempt.finish_reason in ("refusal", "content_filter"):
        return CheckResult.fail(CheckReason.REFUSAL, attempt.finish_reason)
    if _REFUSAL.search(attempt.text[:_REFUSAL_WINDOW]):
        return CheckResult.fail(CheckReason.REFUSAL, "refusal phrasing")
    return None


def check_empty(attempt: Attempt) -> CheckResult | None:
    if not attempt.text.strip():
        return CheckResult.fail(CheckReason.EMPTY, "no text")
    return None


_FENCED_JSON = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def check_schema(attempt: Attempt) -> CheckResult | None:
    if attempt.json_schema is None:
        return None
    text = attempt.text
    fenced = _FENCED_JSON.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError as exc:
        return CheckResult.fail(CheckReason.SCHEMA, f"not JSON: {exc}")
    problems = validate_json(value, attempt.json_schema)
    if problems:
        return CheckResult.fail(CheckReason.SCHEMA, "; ".join(problems[:3]))
    return None


@dataclass(frozen=True, slots=True)
class LowConfidence:
    """Token log-probs say the model was unsure. Skipped where the provider gives none."""

    min_mean_logprob: float | None = None
    min_token_logprob: float | None = None

    def __call__(self, attempt: Attempt) -> CheckResult | None:
        lps = attempt.logprobs
        if not lps:
            return None
        if self.min_mean_logprob is not None:
            mean = math.fsum(lps) / len(lps)
            if mean < self.min_mean_logprob:
                return CheckResult.fail(
                    CheckReason.LOW_CONFIDENCE,
                    f"mean logprob {mean:.3f} < {self.min_mean_logprob}",
                )
        if self.min_token_logprob is not None:
            low = min(lps)
            if low < self.min_token_logprob:
                return CheckResult.fail(
                    CheckReason.LOW_CONFIDENCE,
                    f"min logprob {low:.3f} < {self.min_token_logprob}",
                )
        return None


def _hook_check(hook: Callable[[Attempt], str | None], reason: CheckReason) -> Check:
    def check(attempt: Attempt) -> CheckResult | None:
        verdict = hook(attempt)
        return CheckResult.fail(reason, str(verdict)) if verdict else None

    return check


def user_hook_check(hook: UserHook) -> Check:
    return _hook_check(hook, CheckReason.USER_HOOK)


def verifier_check(hook: VerifierHook) -> Check:
    return _hook_check(hook, CheckReason.VERIFIER)


def moderation_check(hook: ModerationHook) -> Check:
    return _hook_check(lambda a: hook(a.text), CheckReason.MODERATION)


def default_checks(
    *,
    min_mean_logprob: float | None = None,
    min_token_logprob: float | None = None,
    moderation: ModerationHook | None = None,
    user_hooks: Iterable[UserHook] = (),
    verifier: VerifierHook | None = None,
    answer_format: str | None = None,
) -> list[Check]:
    """The standard chain; the verifier goes last because it may cost another call."""
    checks: list[Check] = [check_error, check_truncated, check_refusal, check_empty, check_schema]
    if answer_format is not None:
        checks.append(answer_format_check(answer_format))
    if min_mean_logprob is not None or min_token_logprob is not None:
        checks.append(LowConfidence(min_mean_logprob, min_token_logprob))
    if moderation is not None:
        checks.append(moderation_check(moderation))
    checks.extend(user_hook_check(h) for h in user_hooks)
    if verifier is not None:
        checks.append(verifier_check(verifier))
    return checks


def answer_format_check(kind: str) -> Check:
    """Fails answers that are not a well-formed `kind` ("choice", "final_number", "python")."""
    extractor = EXTRACTORS[kind]

    def check(attempt: Attempt) -> CheckResult | None:
        if extractor(attempt.text) is None:
            return CheckResult.fail(CheckReason.FORMAT, f"not a well-formed {kind} answer")
        return None

    return check
