"""Keep a conversation on the model that started it.

A conversation is recognised, in this order, by:

1. an ``x-session-id`` header (the caller says which requests belong together);
2. the request's ``user`` field, once the conversation has an earlier answer in it (a first
   turn from the same user starts a new conversation and is routed afresh);
3. a hash of the conversation up to its last assistant message: after each answer the gateway
   remembers the hash of the messages it was sent plus the answer it gave, so the next turn
   (which echoes both) finds the model again with no id at all.

Keys are scoped to the gateway key the caller used (the key itself, not the ``Authorization``
header: ``Bearer K`` and ``bearer K`` are one scope; it is hashed into every entry's key, never
stored), and the table is bounded (least recently used entries go first) and forgets entries
after ``ttl_s``. It lives in memory: a restart
starts every conversation afresh (routing it again is the worst that happens).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from routing.chat.conversation import message_text

def _calls(message: dict[str, Any]) -> list[tuple[str, str]]:
    calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append((str(function.get("name") or ""), str(function.get("arguments") or "")))
    return out


def conversation_hash(messages: list[dict[str, Any]]) -> str:
    """A digest of the conversation's turns (role, text, tool calls), blind to formatting details."""
    turns = [(m.get("role"), message_text(m.get("content")).strip(), _calls(m)) for m in messages
             if isinstance(m, dict)]
    return hashlib.sha256(json.dumps(turns, ensure_ascii=False).encode()).hexdigest()


def _last_assistant(messages: list[dict[str, Any]]) -> int | None:
    return max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
               default=None)


@dataclass
class SessionMatch:
    """How this request relates to an earlier conversation."""

    source: str | None = None      # "x-session-id" | "user" | "history" | None (a new conversation)
    model: str | None = None       # the model the conversation is on, if known
    store_keys: list[str] = field(default_factory=list)  # keys (besides the answer's hash) to remember

    def describe(self) -> str:
        return {"x-session-id": "this x-session-id's conversation started there",
                "user": "this user's conversation started there",
                "history": "this conversation started there"}.get(self.source or "", "")


class SessionStore:
    """A bounded, expiring map from conversation keys to the model that answered."""

    def __init__(self, max_entries: int = 20_000, ttl_s: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.ttl_s, self._clock = max_entries, ttl_s, clock
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            model, at = item
            if self._clock() - at > self.ttl_s:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return model

    def put(self, key: str, model: str) -> None:
        with self._lock:
            self._items[key] = (model, self._clock())
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    # ------------------------------------------------------------------ the gateway's use
    @staticmethod
    def _scoped(scope: str, kind: str, value: str) -> str:
        return hashlib.sha256(f"{scope}\0{kind}\0{value}".encode()).hexdigest()

    def match(self, messages: list[dict[str, Any]], *, session_id: str | None, user: str | None,
              scope: str = "") -> SessionMatch:
        """Which conversation this request continues, and the model it is on."""
        found = SessionMatch()
        if session_id:
            key = self._scoped(scope, "sid", session_id)
            found.store_keys.append(key)
            if (model := self.get(key)) is not None:
                found.source, found.model = "x-session-id", model
        last = _last_assistant(messages)
        if user:
            key = self._scoped(scope, "user", user)
            found.store_keys.append(key)
            if found.model is None and last is not None and (model := self.get(key)) is not None:
                found.source, found.model = "user", model
        if found.model is None and last is not None:
            key = self._scoped(scope, "history", conversation_hash(messages[:last + 1]))
            if (model := self.get(key)) is not None:
                found.source, found.model = "history", model
        return found

    def remember(self, match: SessionMatch, messages: list[dict[str, Any]], answer: dict[str, Any],
                 model: str, *, scope: str = "") -> None:
        """After ``model`` answered ``messages`` with ``answer`` (the assistant message sent back)."""
        for key in match.store_keys:
            self.put(key, model)
        self.put(self._scoped(scope, "history", conversation_hash([*messages, answer])), model)
