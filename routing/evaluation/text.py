"""Text helpers shared by the answer scorers: code/prose split, words, sentences, lines.

Everything here is pure string work (no model, no I/O) so that scoring one answer stays
in the millisecond range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# ``` or ~~~ fences (optionally indented), with an optional language tag on the opening line.
_FENCE_RE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w.+#-]*)[^\n]*$", re.MULTILINE)
# Tag-style blocks some models emit: [PYTHON] ... [/PYTHON], [TESTS] ... [/TESTS].
_TAG_BLOCK_RE = re.compile(r"\[([A-Z][A-Z+#]*)\]\n?(.*?)(?:\[/\1\]|\Z)", re.DOTALL)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:[.,]\d+)*")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# Reasoning blocks of "thinking" models (DeepSeek R1 and its distills, QwQ, ...).
_REASONING_BLOCK_RE = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_REASONING_CLOSE_RE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)


def strip_reasoning(text: str) -> tuple[str, int]:
    """The visible answer without a thinking model's reasoning, and how many characters went.

    Removes ``<think>...</think>`` (also ``thinking``/``reasoning``) blocks, an unclosed block
    (the answer was cut off while still thinking: nothing visible is left), and everything before
    a lone closing tag (chat templates that open the block in the prompt, so the reply starts
    inside it).
    """
    if not text or "<" not in text:
        return text, 0
    visible = _REASONING_BLOCK_RE.sub("", text)
    closes = list(_REASONING_CLOSE_RE.finditer(visible))
    if closes:
        visible = visible[closes[-1].end():]
    visible = visible.strip() if visible != text else visible
    return visible, len(text) - len(visible)


@dataclass(frozen=True)
class CodeBlock:
    """A block of code found in an answer.

    ``lang`` is the tag the answer gave (lower case, "" when none), ``closed`` is False when
    the answer ended inside the block (a sign of truncation), ``fenced`` is False for code
    found without any fence.
    """

    lang: str
    code: str
    closed: bool = True
    fenced: bool = True


def split_code(answer: str) -> tuple[list[CodeBlock], str]:
    """Split an answer into its fenced/tagged code blocks and the remaining prose.

    One pass over the text (each fence is searched for once, from where the last block ended);
    the result for the last few answers is kept, since every scorer of an answer asks for it.
    """
    blocks, prose = _split_code(answer)
    return list(blocks), prose


@lru_cache(maxsize=8)
def _closing_fence(char: str, length: int) -> re.Pattern[str]:
    return re.compile(r"^[ \t]*" + re.escape(char) + "{" + str(length) + r",}[ \t]*$", re.MULTILINE)


@lru_cache(maxsize=8)
def _split_code(answer: str) -> tuple[tuple[CodeBlock, ...], str]:
    blocks: list[CodeBlock] = []
    prose_parts: list[str] = []
    pos = 0
    text = answer
    while True:
        opening = _FENCE_RE.search(text, pos)
        if opening is None:
            prose_parts.append(text[pos:])
            break
        prose_parts.append(text[pos:opening.start()])
        fence = opening.group(1)
        closing = _closing_fence(fence[0], len(fence)).search(text, opening.end())
        body_start = opening.end() + 1
        if closing is None:
            blocks.append(CodeBlock(opening.group(2).lower(), text[body_start:], closed=False))
            break
        blocks.append(CodeBlock(opening.group(2).lower(), text[body_start:closing.start()]))
        pos = closing.end()
    prose = "\n".join(prose_parts)
    if not blocks:
        tagged = list(_TAG_BLOCK_RE.finditer(answer))
        if tagged:
            for match in tagged:
                closed = match.group(0).rstrip().endswith(f"[/{match.group(1)}]")
                blocks.append(CodeBlock(match.group(1).lower(), match.group(2), closed=closed))
            prose = _TAG_BLOCK_RE.sub("\n", answer)
    return tuple(blocks), prose


def words(text: str) -> list[str]:
    """Word tokens (letters or numbers), original case."""
    return _WORD_RE.findall(text)


def sentences(text: str) -> list[str]:
    """Rough sentence split on terminal punctuation followed by a capital or digit."""
    flat = re.sub(r"\s+", " ", text).strip()
    if not flat:
        return []
    return [s for s in _SENTENCE_SPLIT_RE.split(flat) if s.strip()]


def nonempty_lines(text: str) -> list[str]:
    """Lines with something other than whitespace, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines."""
    return [p.strip() for p in re.split(r"\n(?:[ \t]*\n)+", text) if p.strip()]


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` limited to [low, high]."""
    return max(low, min(high, value))


def count_matches(pattern: re.Pattern[str], text: str) -> int:
    """How many non-overlapping matches ``pattern`` has in ``text``."""
    return sum(1 for _ in pattern.finditer(text))
