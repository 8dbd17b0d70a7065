"""Math accuracy: extract the final answer, check the arithmetic shown, compare to a reference.

The final answer is taken, in order of trust, from ``\\boxed{}``, ``#### x``, "the (final)
answer is x", "Answer: x", a last line "... = x", else the last number in the answer.
Arithmetic lines such as ``12*3 = 36`` are re-computed with a small safe evaluator
(numbers and + - * / ** % // only, bounded exponents, no names, no calls).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from fractions import Fraction

from .text import clamp

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?|-?\$?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_HASH_RE = re.compile(r"^[ \t]*####\s*(.+?)\s*$", re.M)
_ANSWER_IS_RE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*(?:\*\*)?\s*(?:approximately\s*|about\s*)?"
    r"([^\n]+?)(?:\*\*)?\s*(?:\.\s|\.?$|\n)", re.I | re.M)
_THEREFORE_RE = re.compile(r"(?:therefore|thus|so|hence)[^.\n]{0,80}?\b(?:is|=|are|equals)\s*(" + _NUMBER + ")",
                           re.I)
_ARITH_RE = re.compile(r"[\d.() \t+\-*/×÷x^%]+=[ \t]*-?[\d.,]+(?:[ \t]*[\d.()+\-*/×÷x^%]+[ \t]*=[ \t]*-?[\d.,]+)*")
_MAX_ARITH_LINE = 400
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def safe_eval(expression: str) -> float | None:
    """Value of a pure arithmetic expression, None when it is not one (or too big)."""
    expr = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace(",", "")
    expr = re.sub(r"(?<=\d)\s*x\s*(?=\d)", "*", expr)
    if not re.fullmatch(r"[\d.\s()+\-*/%]+", expr) or not re.search(r"\d", expr):
        return None
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ValueError("exponent too large")
            return float(_OPS[type(node.op)](left, right))
        raise ValueError("not arithmetic")

    try:
        value = walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None
    return value if math.isfinite(value) else None


def parse_number(text: str) -> float | None:
    """A number written in ``text`` (commas, $, %, fractions, \\frac{a}{b}); None if none."""
    if text is None:
        return None
    cleaned = text.strip().replace("−", "-")
    frac = re.search(r"\\d?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}", cleaned)
    if frac:
        try:
            return float(Fraction(frac.group(1)) / Fraction(frac.group(2)))
        except (ValueError, ZeroDivisionError):
            return None
    match = _NUMBER_RE.search(cleaned)
    if not match:
        return None
    raw = match.group(0).replace("$", "").replace(",", "").rstrip("%")
    try:
        if "/" in raw:
            num, den = raw.split("/", 1)
            return float(Fraction(num) / Fraction(den))
        return float(raw)
    except (ValueError, ZeroDivisionError):
        return None


def final_answer(answer: str) -> tuple[str | None, str]:
    """(final answer text, how it was found) — (None, "none") when there is no number."""
    for rx, how in ((_BOXED_RE, "boxed"), (_HASH_RE, "####")):
        found = rx.findall(answer)
        if found:
            return found[-1].strip(), how
    found = [m for m in _ANSWER_IS_RE.findall(answer) if _NUMBER_RE.search(m) or len(m) < 40]
    if found:
        return found[-1].strip(), "answer statement"
    found = _THEREFORE_RE.findall(answer)
    if found:
        return found[-1], "conclusion"
    lines = [ln for ln in answer.strip().splitlines() if ln.strip()]
    if lines and "=" in lines[-1]:
        tail = lines[-1].rsplit("=", 1)[1]
        if _NUMBER_RE.search(tail):
            return tail.strip(), "last equation"
    numbers = _NUMBER_RE.findall(answer)
    if numbers:
        return numbers[-1], "last number"
    return None, "none"


def _stated_finals(answer: str) -> list[float]:
    values = []
    for text in _BOXED_RE.findall(answer) + _HASH_RE.findall(answer) + _ANSWER_IS_RE.findall(answer):
        value = parse_number(text)
        if value is not None:
            values.append(value)
    return values


def close(a: float, b: float) -> bool:
    """Numbers equal up to rounding of the shown digits."""
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) or abs(a - b) <= 0.005 * max(1.0, abs(b)) and \
        round(a, 2) == round(b, 2)


def arithmetic_checks(answer: str) -> tuple[int, int]:
    """(checked, correct) over the ``expr = value`` lines of the answer."""
    checked = correct = 0
    lines = [line for line in answer.splitlines() if "=" in line and len(line) <= _MAX_ARITH_LINE]
    for match in (m for line in lines for m in _ARITH_RE.finditer(line)):
        segments = [s.strip() for s in match.group(0).split("=")]
        values = [safe_eval(s) for s in segments]
        for i in range(len(segments) - 1):
            left, right = values[i], values[i + 1]
            if left is None or right is None:
                continue
            if not re.search(r"[+\-*/×÷x^%]", segments[i].lstrip("-")):
                continue
            checked += 1
            first = parse_number(segments[i + 1])
            if close(left, right) or (first is not None and close(left, first)):
                correct += 1
    return checked, correct


def _reference_value(reference: str) -> tuple[float | None, str]:
    text = reference.strip()
    hashed = _HASH_RE.findall(text)
    if hashed:
        text = hashed[-1]
    boxed = _BOXED_RE.findall(text)
    if boxed:
        text = boxed[-1]
    return parse_number(text), text


def _same_text(a: str, b: str) -> bool:
    norm = lambda s: re.sub(r"[\s$\\{}().,]|\\text|\\left|\\right", "", s.lower())  # noqa: E731
    return bool(norm(a)) and norm(a) == norm(b)


def _right_fraction(arith: float | None, consistent: bool) -> float:
    """Math accuracy of an answer whose final value is right."""
    fraction = 0.85 + 0.15 * (arith if arith is not None else 1.0)
    return fraction - (0.0 if consistent else 0.15)


def _wrong_fraction(arith: float | None) -> float:
    """Math accuracy of an answer whose final value is wrong (credit for correct arithmetic)."""
    return 0.1 + 0.1 * (arith if arith is not None else 0.5)


def score_math(answer: str, reference: str | None = None,
               agreement: float | None = None) -> tuple[float, str]:
    """Math accuracy as a fraction of its maximum, with a short explanation.

    With a reference the final value decides. Without one, ``agreement`` (the estimated
    probability that the final value is right, from the other models' answers) gives the
    expected score: ``agreement`` times the right-answer score plus the rest times the
    wrong-answer score. Without either, the score rests on the work shown.
    """
    final, how = final_answer(answer)
    if final is None:
        return 0.0, "no final answer found"
    value = parse_number(final)
    notes = [f"final answer {final[:40]!r} ({how})"]
    checked, correct = arithmetic_checks(answer)
    arith = correct / checked if checked else None
    if checked:
        notes.append(f"arithmetic {correct}/{checked} correct")
    finals = _stated_finals(answer)
    consistent = len({round(v, 6) for v in finals}) <= 1
    if not consistent:
        notes.append("states different final values")
    if reference is not None and reference.strip():
        ref_value, ref_text = _reference_value(reference)
        if value is not None and ref_value is not None:
            right = close(value, ref_value)
        else:
            right = _same_text(final, ref_text)
        notes.append("matches the reference" if right else f"reference is {ref_text[:30]!r}")
        fraction = _right_fraction(arith, consistent) if right else _wrong_fraction(arith)
        return clamp(fraction), "; ".join(notes)
    if agreement is not None:
        fraction = agreement * _right_fraction(arith, consistent) + (1.0 - agreement) * _wrong_fraction(arith)
        return clamp(fraction), "; ".join(notes)
    fraction = 0.25 if how in ("boxed", "####", "answer statement") else 0.15 if value is not None else 0.1
    fraction += 0.25 if consistent else 0.0
    fraction += 0.35 * arith if arith is not None else 0.2
    steps = len(re.findall(r"=|\n\s*(?:\d+[.)]|[-*])\s", answer))
    fraction += 0.15 * clamp(steps / 3)
    return clamp(fraction), "; ".join(notes)
