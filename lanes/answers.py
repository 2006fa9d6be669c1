"""Well-formed-answer extraction, shared by the format check, the verifier and the replay."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable

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
