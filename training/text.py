"""Prompt text helpers shared by training, the benchmark and the learned selector.

* :func:`prompt_text` turns the prompt cell of an outcome table into plain text (RouterBench
  stores a Python-literal list of turns as a string).
* :func:`encode` (defined with the learned selector, re-exported here) tokenizes with *head + tail* truncation: a long few-shot prompt keeps its first
  few tokens (the instruction) and its end (the actual question), which is what decides which
  model can answer it.
"""

from __future__ import annotations

import ast
import hashlib
import re
from typing import Any

from routing.selectors.learned import DEFAULT_HEAD_TOKENS, DEFAULT_MAX_LENGTH, encode, head_tail_ids  # noqa: F401


def prompt_text(raw: Any) -> str:
    """Plain text of a prompt cell: a string, a list of turns, or a string holding such a list."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw != raw:  # NaN from pandas
        return ""
    if isinstance(raw, (list, tuple)):
        parts = []
        for turn in raw:
            if isinstance(turn, dict):
                turn = turn.get("content", "")
            parts.append(prompt_text(turn))
        return "\n".join(p for p in parts if p)
    text = str(raw)
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text.strip()
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, dict)) for v in value):
            return prompt_text(list(value))
    return text.strip()


_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace-collapsed, lower-cased text: the key for deduplication."""
    return _SPACES.sub(" ", text).strip().lower()


def text_hash(text: str) -> str:
    """Stable short hash of a prompt (after :func:`normalise`), used to freeze the test split."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]
