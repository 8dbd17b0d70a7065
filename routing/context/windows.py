"""Which pool models' context windows a request fits (issue 30, item 3).

A provider refuses (HTTP 400) a request whose prompt plus ``max_tokens`` exceeds the model's
context window, after the router has chosen it. So the router counts first: the messages' text
with a real tokenizer (the bundled MiniLM's WordPiece, which needs no download), plus
:data:`MESSAGE_OVERHEAD` per message for the chat template and the request's other fields (tools)
as JSON, times :data:`MARGIN` (different tokenizers split the same text differently: the 15% is a
stated allowance, not a measured bound; the providers' own tokenizers are not available offline).
A model fits when that estimate plus the answer's ``max_tokens`` is within its
``context_length`` (the pool file's). Counting is skipped when even the byte bound of
:func:`routing.budget.input_token_bound` fits the smallest window.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, Iterable, Mapping

from routing.budget import input_token_bound

MARGIN = 1.15
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3
#: How the estimate is made, for the messages that quote it.
METHOD = "counted with the bundled MiniLM WordPiece tokenizer, plus 15%"


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from transformers import AutoTokenizer

    from routing.selectors.encoder import bundled_encoder_path

    return AutoTokenizer.from_pretrained(bundled_encoder_path())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):   # content parts: their text; other parts (images) as their JSON
        return "\n".join(p["text"] if isinstance(p, dict) and isinstance(p.get("text"), str)
                         else json.dumps(p, ensure_ascii=False) for p in content)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def count_tokens(messages: Iterable[Any] | str, extra: Mapping[str, Any] | None = None) -> int:
    """The estimated input tokens of a chat request (see the module's docstring)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    pieces, count = [], REQUEST_OVERHEAD
    for message in messages:
        count += MESSAGE_OVERHEAD
        if isinstance(message, Mapping):
            pieces.append(_text(message.get("content")))
            if message.get("tool_calls"):
                pieces.append(json.dumps(message["tool_calls"], ensure_ascii=False))
        else:
            pieces.append(_text(message))
    for name, value in (extra or {}).items():
        pieces.append(json.dumps({name: value}, ensure_ascii=False))
    tokenizer = _tokenizer()
    for text in pieces:
        if text:
            count += len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    return math.ceil(count * MARGIN)


def too_long(pool: Any, messages: Iterable[Any] | str, max_tokens: int,
             extra: Mapping[str, Any] | None = None) -> tuple[dict[str, int], int | None]:
    """``({model id: its window} for the models this request does not fit, estimated input tokens)``;
    the estimate is None when it was not needed (the byte bound fits every window)."""
    messages = list(messages) if not isinstance(messages, str) else messages
    smallest = min((spec.context_length for spec in pool), default=0)
    if input_token_bound(messages, extra) + max_tokens <= smallest:
        return {}, None
    tokens = count_tokens(messages, extra)
    return {spec.id: spec.context_length for spec in pool if tokens + max_tokens > spec.context_length}, tokens


def overflow_reason(model_id: str, window: int, tokens: int, max_tokens: int) -> str:
    return (f"{model_id}'s context window ({window:,} tokens) cannot hold this request (about {tokens:,} tokens, "
            f"{METHOD}) plus {max_tokens:,} for the answer")


__all__ = ["count_tokens", "too_long", "overflow_reason", "METHOD", "MARGIN"]
