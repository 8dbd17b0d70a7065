"""A conversation as the router reads it: which text routing looks at, one rule for every entry point.

The gateway (``/v1/chat/completions``) and the Ask tab's chat both route a conversation on its
last user turn with up to :data:`CONTEXT_CHARS` characters of the turns before it, and send the
whole conversation to the chosen model.
"""

from __future__ import annotations

from typing import Any, Sequence

from routing.errors import UserError

#: Characters of earlier turns that routing reads besides the last user turn.
CONTEXT_CHARS = 1000


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def routing_text(turns: Sequence[tuple[str, str]], context_chars: int = CONTEXT_CHARS) -> str:
    """What the selector reads: the last user turn, after up to ``context_chars`` of earlier turns.

    ``turns`` are ``(role, text)`` pairs; UserError when no user turn has text.
    """
    last = max((i for i, (role, text) in enumerate(turns) if role == "user" and text.strip()), default=None)
    if last is None:
        raise UserError("The conversation has no user message with text: the router needs one to choose a model.")
    earlier, budget = [], context_chars
    for role, text in reversed(turns[:last]):
        if budget <= 0:
            break
        if role in ("user", "assistant") and text.strip():
            earlier.insert(0, text[-budget:])
            budget -= len(text)
    return "\n\n".join([*earlier, turns[last][1]])
