"""Acceptance checks: each one fails the answer it exists to catch and passes a good one."""

from __future__ import annotations

import json

import pytest

from lanes.checks import (
    ACCEPTED,
    Attempt,
    CheckReason,
    LowConfidence,
    answer_format_check,
    arithmetic_slips,
    check_empty,
    check_error,
    check_refusal,
    check_schema,
    check_truncated,
    default_checks,
    evaluate,
    extract_choice,
    extract_code,
    extract_final_number,
    moderation_check,
    user_hook_check,
    validate_json,
    verifier_check,
)

GOOD = Attempt(text="Paris is the capital of France.")


def reason(attempt: Attempt, **kw: object) -> str | None:
    result = evaluate(attempt, default_checks(**kw))  # type: ignore[arg-type]
    return None if result.ok else str(result.reason)


def test_good_answer_passes_every_default_check() -> None:
    assert evaluate(GOOD, default_checks(min_mean_logprob=-1.0)) == ACCEPTED


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        (Attempt(text="", finish_reason="error", error_kind="timeout"), "error"),
        (Attempt(text="partial", error_kind="rate_limit"), "error"),
        (Attempt(text="The list goes on and", finish_reason="length"), "truncated"),
        (Attempt(text="", finish_reason="refusal"), "refusal"),
        (Attempt(text="x", finish_reason="content_filter"), "refusal"),
        (Attempt(text="I'm sorry, but I can't help with that."), "refusal"),
        (Attempt(text="As an AI language model, I cannot browse."), "refusal"),
        (Attempt(text="   \n"), "empty"),
        (Attempt(text="not json", json_schema={"type": "object"}), "schema"),
    ],
)
def test_each_default_check_catches_its_failure(attempt: Attempt, expected: str) -> None:
    assert reason(attempt) == expected


def test_error_wins_over_later_checks() -> None:
    attempt = Attempt(text="", finish_reason="error", error_kind="timeout")
    result = evaluate(attempt, default_checks())
    assert (result.reason, result.detail) == (CheckReason.ERROR, "timeout")


def test_single_checks_pass_clean_attempts() -> None:
    for check in (check_error, check_truncated, check_refusal, check_empty, check_schema):
        assert check(GOOD) is None


def test_refusal_phrase_later_in_a_long_answer_is_not_a_refusal() -> None:
    text = "Here is the plan. " * 20 + "I can't help noticing the loop is quadratic."
    assert check_refusal(Attempt(text=text)) is None


def test_schema_check_accepts_valid_json_and_fenced_json() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert check_schema(Attempt(text='{"n": 3}', json_schema=schema)) is None
    assert check_schema(Attempt(text='```json\n{"n": 3}\n```', json_schema=schema)) is None
    failed = check_schema(Attempt(text='{"n": "3"}', json_schema=schema))
    assert failed is not None and failed.reason == CheckReason.SCHEMA
    assert "$.n: expected integer, got string" in (failed.detail or "")


def test_low_confidence_mean_and_min_and_skip_without_logprobs() -> None:
    sure = Attempt(text="ok", logprobs=[-0.01, -0.02])
    unsure = Attempt(text="ok", logprobs=[-2.0, -3.0])
    one_bad = Attempt(text="ok", logprobs=[-0.01, -6.0, -0.01])
    assert LowConfidence(min_mean_logprob=-1.0)(sure) is None
    low = LowConfidence(min_mean_logprob=-1.0)(unsure)
    assert low is not None and low.reason == CheckReason.LOW_CONFIDENCE
    assert LowConfidence(min_token_logprob=-5.0)(one_bad) is not None
    assert LowConfidence(min_mean_logprob=-1.0)(Attempt(text="ok", logprobs=None)) is None
    assert reason(unsure, min_mean_logprob=-1.0) == "low_confidence"


def test_hooks_turn_a_reason_into_their_failure_and_none_into_a_pass() -> None:
    says_no = user_hook_check(lambda a: "too short" if len(a.text) < 50 else None)
    result = says_no(GOOD)
    assert result is not None and (result.reason, result.detail) == ("user_hook", "too short")
    assert user_hook_check(lambda a: None)(GOOD) is None
    verifier = verifier_check(lambda a: "NO")
    assert verifier(GOOD) == verifier(GOOD) and verifier(GOOD).reason == "verifier"  # type: ignore[union-attr]
    blocked = moderation_check(lambda text: "pii" if "France" in text else None)(GOOD)
    assert blocked is not None and blocked.reason == CheckReason.MODERATION


def test_default_chain_order_runs_verifier_last() -> None:
    calls: list[str] = []

    def verifier(attempt: Attempt) -> str | None:
        calls.append("verifier")
        return None

    evaluate(Attempt(text=""), default_checks(verifier=verifier))
    assert calls == []  # the empty answer failed first: no paid verifier call
    assert reason(GOOD, user_hooks=[lambda a: "nope"], verifier=verifier) == "user_hook"
    assert reason(GOOD, moderation=lambda t: "blocked") == "moderation"


def test_reasons_are_the_audit_log_strings() -> None:
    assert {r.value for r in CheckReason} >= {
        "error",
        "truncated",
        "refusal",
        "empty",
        "schema",
        "low_confidence",
        "verifier",
        "user_hook",
        "moderation",
    }
    assert json.dumps(CheckReason.SCHEMA) == '"schema"'


# -- the JSON-schema subset -----------------------------------------------------------------


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "kind": {"type": ["string", "null"]},
    },
    "required": ["name", "score"],
    "additionalProperties": False,
}


def test_validator_accepts_a_valid_document() -> None:
    assert validate_json({"name": "x", "tags": ["a"], "score": 0.5, "kind": None}, SCHEMA) == []


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"score": 0.5}, "missing required 'name'"),
        ({"name": "x", "score": "high"}, "$.score: expected number, got string"),
        ({"name": "x", "score": 2}, "$.score: 2 > maximum 1"),
        ({"name": "x", "score": 0.1, "tags": ["c"]}, "$.tags[0]: 'c' not in enum"),
        ({"name": "x", "score": 0.1, "tags": ["a", "a", "b"]}, "maxItems"),
        ({"name": "", "score": 0.1}, "minLength"),
        ({"name": "x", "score": 0.1, "extra": 1}, "unexpected property 'extra'"),
        ({"name": "x", "score": True}, "expected number, got boolean"),
        ([], "expected object, got array"),
    ],
)
def test_validator_names_the_problem(doc: object, fragment: str) -> None:
    problems = validate_json(doc, SCHEMA)
    assert any(fragment in p for p in problems), problems


def test_integer_type_accepts_whole_floats_only() -> None:
    assert validate_json(3.0, {"type": "integer"}) == []
    assert validate_json(3.5, {"type": "integer"}) != []
    assert validate_json(True, {"type": "integer"}) != []


# -- answer formats -------------------------------------------------------------------------


def test_choice_extraction() -> None:
    assert extract_choice("B") == "B"
    assert extract_choice(" (c).\n") == "C"
    assert extract_choice("Answer: D") == "D"
    assert extract_choice("Rachel") is None
    assert extract_choice("B because the sugar") is None


def test_final_number_and_arithmetic_slips() -> None:
    assert extract_final_number("16 - 7 = 9\n#### 1,018") == "1018"
    assert extract_final_number("So the final answer is $18.50") == "18.5"
    assert extract_final_number("no final line here") is None
    assert arithmetic_slips("3 * 12 = 36 and <<36*68/12=204>>204, 10 / 3 = 3.33") == []
    assert arithmetic_slips("<<36*68/12=205>>205") == ["36*68/12 = 205"]
    check = answer_format_check("final_number")
    assert check(Attempt(text="2 + 2 = 4\n#### 4")) is None
    slipped = check(Attempt(text="2 + 2 = 5\n#### 5"))
    assert slipped is not None and slipped.reason == CheckReason.FORMAT


def test_code_must_parse() -> None:
    assert extract_code("Here:\n```python\ndef f(x):\n    return x\n```") is not None
    assert extract_code("[PYTHON]\ndef f(x): return x\n[/PYTHON]") is not None
    assert extract_code("```python\ndef f(x)\n    return x\n```") is None
    assert extract_code("no code at all") is None
    assert reason(Attempt(text="just words"), answer_format="python") == "format"
