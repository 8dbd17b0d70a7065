"""A multi-turn chat with the router, as the Ask tab holds it (importable without Gradio).

The conversation is routed as a whole and stays on the model that started it, by the same rules
as the OpenAI-compatible gateway (:mod:`routing.chat.conversation`, ``Router.stream(prefer=...)``):
the model that answered keeps the conversation unless it fails (the one that answered instead
takes it over) or the person picks another model. An answer from the local fallback model does
not make the conversation stick to it.

:func:`chat_turn` runs one turn and updates a :class:`ChatState`; the badge and notice helpers
write the per-message text the tab shows (untrusted parts escaped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from routing.chat.conversation import routing_text
from routing.router import LOCAL_ANSWERER, QueryResult, Router, RouterEvent
from routing.selectors.base import Selection
from routing.safety.untrusted import md_answer_text, md_code, md_text

LOCAL_NOTICE = ("answered by Gemma 3 270M, a tiny offline model that runs on this machine and is often wrong; "
                "set OPENROUTER_API_KEY (or paste your own key below) for the real pool")


@dataclass
class ChatState:
    """One browser tab's conversation: what the models are sent, the model it is on, running totals."""

    messages: list[dict[str, str]] = field(default_factory=list)
    model: str | None = None
    answers: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0                # answers whose cost is unknown
    answer_ids: dict[int, str] = field(default_factory=dict)  # chat message index -> outcome log id
    last_answer_id: str | None = None
    #: chat message index of each answered user turn -> its turn number (messages[2 * turn]); a stopped
    #: or failed turn stays on screen without one
    user_rows: dict[int, int] = field(default_factory=dict)

    def totals_markdown(self) -> str:
        if not self.answers:
            return ""
        cost = f"${self.cost_usd:.6f}" + (f" (+{self.unpriced} unpriced)" if self.unpriced else "")
        on = f" · on {md_code(self.model)}" if self.model else ""
        return (f"**This chat:** {self.answers} answer{'s' if self.answers != 1 else ''} · "
                f"{self.tokens:,} tokens · {cost}{on}")


def chat_turn(router: Router, state: ChatState, text: str, *, cost_weight: float = 0.0,
              exclude: Sequence[str] = (), model: str | None = None, learning: Any = None,
              latency_weight: float = 0.0, system: str | None = None, temperature: float | None = None,
              max_tokens: int | None = None, row: int | None = None) -> Iterator[RouterEvent]:
    """Ask the next turn; yields the router's events; on "done" ``state`` holds the new turn.

    ``model`` (a pool id) asks that model, and the conversation moves to it. Nothing in
    ``state`` changes unless the turn is answered (a failed or stopped turn can be asked again).
    ``learning`` (:class:`routing.learning.Learning`) logs the answer; its id is
    ``state.last_answer_id`` (and ``result.answer_id``).

    The playground's settings apply to this turn: ``system`` (a system prompt sent first; routing
    still reads the user's turns), ``temperature`` and ``max_tokens`` (None: the model's and the
    app's defaults). ``row`` is the chat message index of the user's turn (see :func:`rewind`).
    """
    messages = [*state.messages, {"role": "user", "content": text}]
    routing = routing_text([(m["role"], m["content"]) for m in messages])
    prefer = None if model else state.model
    sent = [{"role": "system", "content": system}, *messages] if system and system.strip() else messages
    for event in router.stream(routing, cost_weight=cost_weight, exclude=exclude, model=model,
                               messages=sent, prefer=prefer, prefer_why="this chat started there",
                               latency_weight=latency_weight, last_turn=text, temperature=temperature,
                               max_tokens=max_tokens):
        if event.kind == "done" and event.result is not None:
            _record(state, messages, event.result)
            if row is not None:
                state.user_rows[row] = len(state.messages) // 2 - 1
            state.last_answer_id = (learning.after_answer(routing, event.result, source="ask",
                                                          single_turn=len(messages) == 1)
                                    if learning is not None else None)
        yield event


def _record(state: ChatState, messages: list[dict[str, str]], result: QueryResult) -> None:
    state.messages = [*messages, {"role": "assistant", "content": result.response}]
    if result.answered_by != LOCAL_ANSWERER:
        state.model = result.answered_by
    state.answers += 1
    state.tokens += int(result.usage.get("total_tokens") or 0)
    if result.cost_usd is None:
        state.unpriced += 1
    else:
        state.cost_usd += float(result.cost_usd)


def new_state() -> ChatState:
    return ChatState()


def copy_state(state: ChatState | None) -> ChatState:
    return (dataclasses.replace(state, messages=list(state.messages), answer_ids=dict(state.answer_ids),
                                user_rows=dict(state.user_rows))
            if state else ChatState())


def rewind(state: ChatState | None, row: int) -> ChatState:
    """The conversation as it was before the user's message at chat index ``row``: what a retried or
    edited turn is asked on (that turn and every later one are dropped; the totals keep what they
    cost). Back at the first turn, the chat is no longer on any model."""
    new = copy_state(state)
    turns = sum(1 for r in new.user_rows if r < row)
    new.messages = new.messages[:2 * turns]
    new.user_rows = {r: t for r, t in new.user_rows.items() if r < row}
    new.answer_ids = {i: a for i, a in new.answer_ids.items() if i < row}
    new.last_answer_id = new.answer_ids[max(new.answer_ids)] if new.answer_ids else None
    if not turns:
        new.model = None
    return new


def turn_text(state: ChatState | None, row: int, shown: str) -> str:
    """The text the person sent at chat index ``row``: as it was sent when the turn was answered, else
    what the chat shows (``shown``, the Markdown-safe form the chat was given) read back as text."""
    if state is not None and row in state.user_rows and 2 * state.user_rows[row] < len(state.messages):
        return state.messages[2 * state.user_rows[row]]["content"]
    return md_answer_text(shown)


def routing_title(sel: Selection, pool: Any, explicit: bool) -> str:
    """The one-line head of a turn's routing note (Markdown: the chat renders titles as Markdown)."""
    name = md_text(pool.get(sel.selected_model).display_name)
    if explicit:
        return f"🧭 You chose {name}"
    if sel.reasoning.startswith("Kept on"):
        return f"🧭 Stayed on {name} (this chat started there)"
    return f"🧭 Routed to {name} · confidence {sel.confidence:.0%}"


def answer_badge(result: QueryResult, *, who: bool = True) -> str:
    """Who answered (when not the routed model), latency, tokens, cost: one line of plain text."""
    parts = []
    if who and result.answered_by != result.selected_model:
        parts.append(f"answered by {result.answered_by} instead")
    parts.append(f"{result.latency_ms / 1000:.1f} s")
    tokens = result.usage.get("total_tokens")
    parts.append(f"{tokens:,} tokens" if isinstance(tokens, int) else "tokens n/a")
    parts.append("cost n/a" if result.cost_usd is None else f"${result.cost_usd:.6f}")
    return " · ".join(parts)


def failure_line(model: str, error: str) -> str:
    """One failed attempt: the provider's error text is shown as text, never as Markdown or HTML."""
    return f"⚠️ {md_code(model)} failed: {md_text(error)}"


def fallback_line(f: dict[str, Any]) -> str:
    if f.get("skipped"):
        return f"skipped {md_code(f['model'])}: {md_text(f['error'])}"
    return failure_line(f["model"], f["error"])


def notice_lines(result: QueryResult) -> list[str]:
    """Markdown lines about an answer: warnings, then the models that failed or were skipped."""
    return [f"⚠️ {md_text(w)}" for w in result.warnings] + [fallback_line(f) for f in result.fallbacks]


def local_loading_text(status: dict[str, Any]) -> str:
    """The local model's load, for a person waiting on it (Markdown; empty once it is ready)."""
    state = status.get("state")
    if state == "loading":
        elapsed = status.get("elapsed_s") or 0.0
        return (f"⏳ Loading the local model (Gemma 3 270M, first start only, about a minute): {elapsed:.0f} s. "
                "Answers come from it because there is no OPENROUTER_API_KEY.")
    if state == "failed":
        return f"⚠️ The local model could not load: {md_text(status.get('error'))}"
    return ""
