"""Acceptance checks: should the cascade keep this answer or escalate one rung?

Checks see a provider-neutral `Attempt`, so the realtime worker and the offline replay judge
answers with the same code. A check returns `None` (pass) or a failed `CheckResult`; the
reasons are a small closed set because they are written to the audit log and counted in
reports. Checks are cheap and local except the verifier, which may call another tier and so
runs last.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

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


# -- a small JSON-schema validator (the subset structured outputs use) ------------------------

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


def validate_json(value: Any, schema: Mapping[str, Any], *, path: str = "$") -> list[str]:
    """Problems of `value` against `schema` (empty list: valid).

    Covers type, properties, required, additionalProperties, items, enum, const and the
    length/size/range bounds; unknown keywords are ignored, as JSON Schema prescribes.
    """
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_JSON_TYPES.get(n, lambda v: False)(value) for n in names):
            return [f"{path}: expected {'/'.join(names)}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in enum {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must equal {schema['const']!r}")
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        problems += [
            f"{path}: missing required {k!r}" for k in schema.get("required", ()) if k not in value
        ]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                problems += validate_json(item, props[key], path=f"{path}.{key}")
            elif extra is False:
                problems.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, Mapping):
                problems += validate_json(item, extra, path=f"{path}.{key}")
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                problems += validate_json(item, items, path=f"{path}[{i}]")
        problems += _bounds(
            len(value), schema, low="minItems", high="maxItems", path=path, unit="items"
        )
    elif isinstance(value, str):
        problems += _bounds(
            len(value), schema, low="minLength", high="maxLength", path=path, unit="characters"
        )
    elif _JSON_TYPES["number"](value):
        problems += _bounds(value, schema, low="minimum", high="maximum", path=path, unit="")
    return problems


def _bounds(
    n: float, schema: Mapping[str, Any], *, low: str, high: str, path: str, unit: str
) -> list[str]:
    out = []
    if low in schema and n < schema[low]:
        out.append(f"{path}: {n} {unit} < {low} {schema[low]}".replace("  ", " "))
    if high in schema and n > schema[high]:
        out.append(f"{path}: {n} {unit} > {high} {schema[high]}".replace("  ", " "))
    return out


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _JSON_TYPES[name](value):
            return name
    return type(value).__name__


# -- answer formats: "is this a well-formed answer of the kind asked for?" ---------------------

_CHOICE = re.compile(r"^\W*(?:answer\s*[:is]*\s*)?\(?([A-J])\)?[.:)]?\s*$", re.IGNORECASE)
_FINAL_LINE = re.compile(
    r"(?:####|final answer\s*(?:is)?\s*:?|the answer is\s*:?)\s*\$?\s*(-?[\d,]*\.?\d+)",
    re.IGNORECASE,
)
_CODE_BLOCK = re.compile(
    r"```(?:python|py|python3)?[ \t]*\r?\n(.*?)```|\[PYTHON\](.*?)\[/PYTHON\]",
    re.DOTALL | re.IGNORECASE,
)


def extract_choice(text: str) -> str | None:
    """The option letter of a multiple-choice answer, or None if it is not just one letter."""
    m = _CHOICE.match(text)
    return m.group(1).upper() if m else None


def extract_final_number(text: str) -> str | None:
    """The number on a GSM8K-style final-answer line ("#### 18", "The answer is 18")."""
    found = _FINAL_LINE.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return None
    return str(int(number)) if number.is_integer() else str(number)


_NUM = r"\$?-?\d[\d,]*(?:\.\d+)?%?"
_EQUATION = re.compile(
    rf"((?:\(?\s*{_NUM}\s*\)?\s*[-+*/x\u00d7\u00f7]\s*)+\(?\s*{_NUM}\s*\)?)\s*=\s*({_NUM})"
)
_CALCULATOR = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _arith(node: ast.AST) -> float:
    """Evaluate + - * / over number literals only; anything else raises ValueError."""
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    raise ValueError("not plain arithmetic")


def arithmetic_slips(text: str) -> list[str]:
    """Stated calculations ("3 * 12 = 36", "<<3*12=36>>") whose result is wrong.

    A wrong intermediate step is the commonest way a cheap model gets a word problem wrong
    while still producing a well-formed final line; checking it costs microseconds.
    """
    slips = []
    for expr, result in dict.fromkeys(_CALCULATOR.findall(text) + _EQUATION.findall(text)):
        clean = expr.replace(",", "").replace("$", "").replace("%", "")
        clean = clean.replace("x", "*").replace("\u00d7", "*").replace("\u00f7", "/")
        try:
            value = _arith(ast.parse(clean.strip(), mode="eval"))
            digits = result.replace(",", "").replace("$", "").replace("%", "").strip().rstrip(".")
            stated = float(digits)
        except (ValueError, SyntaxError, ZeroDivisionError, OverflowError):
            continue
        decimals = len(digits.partition(".")[2])
        if abs(value - stated) > 0.5 * 10**-decimals + 1e-9 * abs(value):  # allows rounding
            slips.append(f"{expr.strip()} = {result.strip()}")
    return slips


def extract_worked_answer(text: str) -> str | None:
    """A final number whose worked steps contain no arithmetic slip (else None)."""
    number = extract_final_number(text)
    return number if number is not None and not arithmetic_slips(text) else None


def extract_code(text: str) -> str | None:
    """The Python code in an answer if every fenced block parses, else None."""
    blocks = [a or b for a, b in _CODE_BLOCK.findall(text)]
    if not blocks:
        return None
    try:
        with warnings.catch_warnings():  # model code is full of invalid escapes
            warnings.simplefilter("ignore")
            for block in blocks:
                ast.parse(block.replace("\r\n", "\n"))
    except (SyntaxError, ValueError):
        return None
    return "\n".join(blocks)


EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "choice": extract_choice,
    "final_number": extract_worked_answer,
    "python": extract_code,
}


def extract_answer(kind: str, text: str) -> str | None:
    return EXTRACTORS[kind](text)


def answer_format_check(kind: str) -> Check:
    """Fails answers that are not a well-formed `kind` ("choice", "final_number", "python")."""
    extractor = EXTRACTORS[kind]

    def check(attempt: Attempt) -> CheckResult | None:
        if extractor(attempt.text) is None:
            return CheckResult.fail(CheckReason.FORMAT, f"not a well-formed {kind} answer")
        return None

    return check
