"""Penalty detectors: repetition loops, refusals, truncation, error text, AI boilerplate,
generic filler, empty answers.

Each detector returns ``(severity in [0, 1], short explanation)``; the evaluator scales
the severity by the penalty's size in ``routing.evaluation.evaluator.PENALTIES``.
"""

from __future__ import annotations

import re
from collections import Counter

from .text import clamp, nonempty_lines, sentences, split_code, words

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


# Stock phrases of padding: hedges, sign-offs and generic advice that fit any answer.
_STOCK_RE = re.compile(
    r"\b(?:it is (?:important|worth|crucial|essential|always a good idea) to (?:note|remember|consider|mention|"
    r"keep in mind|understand)|(?:always|generally) a good idea|keep in mind|"
    r"there are (?:many|several|various|a number of) (?:different )?(?:factors|aspects|things|ways|considerations)|"
    r"(?:can|may|will) vary depending on|depending on (?:the|your) (?:situation|specific|needs|circumstances)|"
    r"(?:a|this is a) (?:complex|complicated|nuanced|multifaceted) (?:topic|issue|question|subject)|"
    r"i hope (?:this|that) (?:helps|answers|was helpful)|let me know if you have any (?:other|more|further) questions|"
    r"feel free to ask|(?:overall|in general|in conclusion|in summary|ultimately), (?:there are|it is|things)|"
    r"consider all of them|think about)\b", re.I)
_SPECIFIC_RE = re.compile(r"\b[A-Za-z]{6,}\b")
_GENERIC_WORDS = frozenset(
    "important consider considering factors aspects different general generally situation situations "
    "things always complex complicated nuanced multifaceted understand remember mention questions "
    "question helps helpful overall ultimately conclusion summary depending specific various several "
    "number subject issue further think thinking circumstances vary varies idea should everything "
    "anything something someone certain really actually matter matters".split())


def filler_sentences(answer: str) -> list[str]:
    """Sentences of padding: built on a stock phrase and saying nothing specific - no number and
    no longer word that the rest of the answer (or anything but stock vocabulary) uses."""
    _, prose = split_code(answer)
    found = sentences(prose)
    stock = [bool(_STOCK_RE.search(s)) for s in found]
    if not any(stock):
        return []
    rest_words = {w.lower() for s, is_stock in zip(found, stock) if not is_stock for w in _SPECIFIC_RE.findall(s)}
    out = []
    for sentence, is_stock in zip(found, stock):
        if not is_stock or re.search(r"\d", sentence):
            continue
        specific = {w.lower() for w in _SPECIFIC_RE.findall(sentence)} - _GENERIC_WORDS
        if not (specific & rest_words) and len(specific) <= 3:
            out.append(sentence)
    return out


def filler(answer: str) -> tuple[float, str]:
    """Padding: generic sentences that fit any answer (stock hedges, advice and sign-offs) making
    up a noticeable share of the words. A single sign-off is not penalised."""
    padding = filler_sentences(answer)
    if len(padding) < 2:
        return 0.0, ""
    pad_words = sum(len(words(s)) for s in padding)
    share = pad_words / max(1, len(words(answer)))
    severity = clamp((share - 0.08) / 0.25)
    if severity <= 0:
        return 0.0, ""
    return severity, f"{share:.0%} generic filler ({len(padding)} sentences)"


def strip_filler(answer: str) -> str:
    """``answer`` without its padding sentences (when :func:`filler` counts them: two or more)."""
    padding = filler_sentences(answer)
    if len(padding) < 2:
        return answer
    for sentence in padding:
        pattern = r"\s+".join(re.escape(part) for part in sentence.split())
        answer = re.sub(pattern, " ", answer, count=1)
    return re.sub(r"[ \t]{2,}", " ", answer).strip()
