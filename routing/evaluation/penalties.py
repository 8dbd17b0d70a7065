"""Penalty detectors: repetition loops, refusals, truncation, error text, AI boilerplate,
empty answers.

Each detector returns ``(severity in [0, 1], short explanation)``; the evaluator scales
the severity by the penalty's size in ``routing.evaluator.PENALTIES``.
"""

from __future__ import annotations

import re
from collections import Counter

from .text import clamp, nonempty_lines, split_code, words

_REFUSAL_RE = re.compile(
    r"\b(i(?:'m| am)? (?:sorry,? )?(?:but )?(?:i )?(?:can(?:'|no)t|cannot|won'?t|will not|am unable to|"
    r"am not able to|'m unable to|'m not able to) (?:help|assist|provide|do that|comply|fulfil+|answer|"
    r"create|write|generate|support|engage|complete|share|give)|"
    r"i (?:must|have to) (?:decline|refuse)|i(?:'m| am) not (?:comfortable|able to) |"
    r"(?:this|that) (?:request )?(?:goes against|violates) (?:my|the) |"
    r"i apologi[sz]e,? but i (?:can(?:'|no)t|cannot|won'?t|do not|don'?t)|"
    r"unfortunately,? i (?:can(?:'|no)t|cannot|am unable|won'?t|do not have|don'?t have)|"
    r"i (?:do not|don'?t) (?:feel comfortable|have (?:enough )?(?:information|context|access)))",
    re.I)
_BOILERPLATE_RE = re.compile(
    r"\bas an ai(?: language model| assistant| model)?\b|\bas a (?:large )?language model\b|"
    r"\bi(?:'m| am) (?:just )?an ai\b|\bmy (?:knowledge|training) (?:cutoff|cut-off|data)\b|"
    r"\bi (?:do not|don'?t) have (?:personal )?(?:opinions|feelings|emotions|beliefs)\b", re.I)
_ERROR_RE = re.compile(
    r"Traceback \(most recent call last\)|^[ \t]*(?:Error|ERROR|Exception|Fatal error)\s*:|"
    r"\{\s*\"error\"\s*:|\brate limit (?:exceeded|reached)\b|\binternal server error\b|"
    r"\b(?:HTTP|status)\s*(?:code\s*)?(?:429|500|502|503|504)\b|\[object Object\]|"
    r"\bcontext length exceeded\b|\bmaximum context length\b", re.M | re.I)
_FUNCTION_WORDS = frozenset("the a an and or of to in with for that is are was be by as on at from this "
                            "which who their its his her our your but if than then so".split())


def empty(answer: str) -> tuple[float, str]:
    """Severity 1 for an empty or whitespace-only answer."""
    return (1.0, "empty answer") if not answer.strip() else (0.0, "")


def repetition(answer: str) -> tuple[float, str]:
    """Repeated lines and repeated 6-word sequences (generation loops)."""
    lines = [ln for ln in nonempty_lines(answer) if len(ln.split()) >= 4 and len(ln) >= 15]
    counts = Counter(lines)
    repeated_lines = sum(c - 1 for c in counts.values() if c >= 3)
    line_ratio = repeated_lines / max(1, len(lines))
    _, prose = split_code(answer)
    tokens = [w.lower() for w in words(prose)]
    grams = [tuple(tokens[i:i + 6]) for i in range(len(tokens) - 5)]
    gram_ratio = 0.0
    if len(grams) >= 12:
        gram_counts = Counter(grams)
        gram_ratio = sum(c - 1 for c in gram_counts.values() if c > 1) / len(grams)
    ratio = max(line_ratio, gram_ratio)
    severity = clamp((ratio - 0.15) / 0.35)
    if severity <= 0:
        return 0.0, ""
    return severity, f"{ratio:.0%} repeated text"


def refusal(answer: str) -> tuple[float, str]:
    """A refusal: full severity when it is most of the answer, partial inside a longer one."""
    match = _REFUSAL_RE.search(answer)
    if not match:
        return 0.0, ""
    n_words = len(words(answer))
    if match.start() < 300 and n_words < 80:
        return 1.0, "refuses to answer"
    return 0.35, "partly refuses"


def truncation(answer: str) -> tuple[float, str]:
    """Cut off: an unclosed code fence or a last line that stops mid-sentence."""
    blocks, _ = split_code(answer)
    if any(not b.closed for b in blocks):
        return 1.0, "ends inside a code block"
    stripped = answer.rstrip()
    if not stripped or len(words(stripped)) < 8:
        return 0.0, ""
    last_line = stripped.splitlines()[-1].strip()
    last_word = (words(last_line) or [""])[-1].lower()
    is_list = bool(re.match(r"^(?:[-*+•]|\d+[.)])\s", last_line))
    if stripped.endswith((",", ";", "(", "[", "{", " -", "—")) or (stripped.endswith(":") and len(last_line) > 3):
        return 0.8, "ends mid-sentence"
    if re.search(r"[A-Za-z]$", stripped) and last_word in _FUNCTION_WORDS:
        return 0.8, "ends mid-sentence"
    last_token = last_line.split()[-1]
    if (re.search(r"[A-Za-z]$", stripped) and not is_list and len(last_line.split()) >= 6
            and not re.match(r"^[#*|>]", last_line) and len(words(stripped)) >= 25
            and not re.search(r"[/.@]", last_token)):
        return 0.4, "ends without finishing the sentence"
    return 0.0, ""


def error_text(answer: str) -> tuple[float, str]:
    """Error messages or stack traces in the prose (code blocks are left out)."""
    _, prose = split_code(answer)
    match = _ERROR_RE.search(prose)
    if not match:
        return 0.0, ""
    severity = 1.0 if len(words(prose)) < 60 else 0.5
    return severity, f"error text: {match.group(0).strip()[:40]!r}"


def boilerplate(answer: str) -> tuple[float, str]:
    """'As an AI language model' style disclaimers."""
    found = len(_BOILERPLATE_RE.findall(answer))
    if not found:
        return 0.0, ""
    return clamp(0.6 + 0.4 * (found - 1)), "AI boilerplate"
