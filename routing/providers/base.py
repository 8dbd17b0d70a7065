"""What every provider returns, so the router and UI never care who answered."""

from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any, Iterator, Protocol


@dataclass
class ChatResult:
    """One finished answer."""

    text: str
    model: str                      # provider model name that answered
    provider: str                   # "openai_compatible" | "local"
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, completion_tokens, total_tokens
    cost_usd: float | None = None   # as reported by the provider, else estimated from prices
    latency_ms: float = 0.0
    finish_reason: str | None = None
    raw: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw", None)
        return d


@dataclass
class StreamChunk:
    """A piece of a streamed answer. The last chunk has ``done=True`` and carries ``result``."""

    delta: str = ""
    done: bool = False
    result: ChatResult | None = None
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI tool-call deltas, as the provider sent them


Messages = list[dict[str, str]]


class ChatProvider(Protocol):
    """Anything that can answer a chat request for one provider model name."""

    def chat(self, model: str, messages: Messages, *, max_tokens: int | None = None,
             temperature: float | None = None) -> ChatResult: ...

    def stream_chat(self, model: str, messages: Messages, *, max_tokens: int | None = None,
                    temperature: float | None = None) -> Iterator[StreamChunk]: ...
