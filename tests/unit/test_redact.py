"""Secrets never reach error messages, the job row or logs."""

from __future__ import annotations

from workers.redact import redact


def test_known_secret_values_are_replaced() -> None:
    msg = "auth failed for key azure-secret-1234 at endpoint"
    assert redact(msg, ["azure-secret-1234"]) == "auth failed for key [redacted] at endpoint"


def test_key_shaped_strings_are_replaced_even_when_unknown() -> None:
    msg = "Incorrect API key provided: sk-proj-abcdef123456; header Bearer abc.def-ghi_jkl"
    out = redact(msg)
    assert "sk-proj-abcdef123456" not in out and "abc.def-ghi_jkl" not in out
    assert out.count("[redacted]") == 2


def test_ordinary_text_is_untouched() -> None:
    msg = "openai 500 server: upstream timed out after 3 attempts"
    assert redact(msg, [None, "", "xyz"]) == msg
