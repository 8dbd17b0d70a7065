"""Prompt text helpers shared by training, the benchmark and the learned selector.

* :func:`prompt_text` turns the prompt cell of an outcome table into plain text (RouterBench
  stores a Python-literal list of turns as a string).
* :func:`encode` (defined with the learned selector, re-exported here) tokenizes with *head + tail* truncation: a long few-shot prompt keeps its first
  few tokens (the instruction) and its end (the actual question), which is what decides which
  model can answer it.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import numpy as np

from routing.learning.slices import normalise, prompt_hash as text_hash  # noqa: F401 - one rule for both
from routing.selectors.classifier import (DEFAULT_HEAD_TOKENS, DEFAULT_MAX_LENGTH, encode, head_tail_ids)  # noqa: F401


def prompt_text(raw: Any) -> str:
    """Plain text of a prompt cell: a string, a list of turns (strings, or chat messages with
    ``content`` that may itself be a list of ``{"type": "text", "text": ...}`` parts), or a string
    holding such a list as a Python literal (RouterBench) or JSON. Parquet list cells arrive as
    numpy arrays and are read the same way."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw != raw:  # NaN from pandas
        return ""
    if isinstance(raw, np.ndarray):
        raw = raw.tolist()
    if isinstance(raw, dict):
        return prompt_text(raw.get("content", raw.get("text", "")))
    if isinstance(raw, (list, tuple)):
        parts = [prompt_text(turn) for turn in raw]
        return "\n".join(p for p in parts if p)
    text = str(raw)
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        value = _literal_list(stripped)
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, dict)) for v in value):
            return prompt_text(list(value))
    return text.strip()


def _literal_list(text: str) -> Any:
    """A list written as a Python literal or as JSON; None when it is neither."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None

