"""Parse and check an OpenAI Chat Completions request body (``/v1/chat/completions``, ``/v1/route``).

Every check raises :class:`GatewayError` with an OpenAI-style status, type and code; messages
name the field and say what to send instead (parameter checks reuse ``routing/validation.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from routing.conversation import routing_text
from routing.errors import UserError
from routing.pool import ModelPool
from routing.validation import InvalidInput, check_cost_weight, check_float, show

ROUTER_MODEL = "router"
ROLES = ("system", "developer", "user", "assistant", "tool")
#: Fields passed through to the chosen model as they are (see openai_compat.EXTRA_FIELDS).
PASS_THROUGH = ("tools", "tool_choice", "parallel_tool_calls", "top_p", "stop", "user", "seed",
                "presence_penalty", "frequency_penalty", "response_format")


class GatewayError(Exception):
    """An error answered as ``{"error": {"message", "type", "code"}}`` with ``status``."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, code=code, param=param)


@dataclass
class ChatRequest:
    """A checked chat request: what the router needs, and what goes to the model unchanged."""

    messages: list[dict[str, Any]]
    routing_text: str                      # what the selector reads
    model: str                             # as sent: "router", "router:0.3" or a pool id
    pool_model: str | None = None          # the pool id when the caller named one (no routing)
    cost_weight: float = 0.0
    max_tokens: int | None = None          # clipped to ROUTER_MAX_TOKENS
    temperature: float | None = None
    stream: bool = False
    include_usage: bool = False
    max_cost_usd: float | None = None      # extension: models estimated above it are not chosen
    latency_weight: float = 0.0            # extension: 0-1, weighs each model's recent median latency
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"")
    except ValueError:
        raise bad_request("The request body is not valid JSON: send a JSON object with \"model\" and "
                          "\"messages\".", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with \"model\" and \"messages\".",
                          code="invalid_json")
    return body


def parse_model(value: Any, pool: ModelPool) -> tuple[str | None, float]:
    """``(pool id or None, cost weight)`` for ``model``; 400 for a bad weight, 404 for an unknown model."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"\"model\" is required: \"{ROUTER_MODEL}\", \"{ROUTER_MODEL}:0.3\" (cost weight 0-1) "
                          f"or a pool id ({', '.join(pool.ids)}).", "model", code="missing_model")
    model = value.strip()
    if model == ROUTER_MODEL:
        return None, 0.0
    if model.startswith(ROUTER_MODEL + ":"):
        try:
            return None, check_cost_weight(model[len(ROUTER_MODEL) + 1:], "model")
        except InvalidInput:
            raise bad_request(f"\"model\" {show(model)}: the cost weight after \"{ROUTER_MODEL}:\" must be a number "
                              "from 0 (best quality) to 1 (cheapest), e.g. \"router:0.3\".", "model") from None
    if model in pool:
        return model, 0.0
    raise GatewayError(404, f"The model {show(model)} does not exist here. Use \"{ROUTER_MODEL}\", "
                            f"\"{ROUTER_MODEL}:<cost weight 0-1>\" or a pool id: {', '.join(pool.ids)} "
                            "(GET /v1/models lists them).", code="model_not_found", param="model")


def _text_of(content: Any, where: str) -> str:
    """The text of a message's content (a string, or a list of parts); checks the parts' shape."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of content parts (got {show(content)}).",
                          f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad_request(f"{where}.content[{j}] must be an object with a \"type\" (e.g. "
                              "{\"type\": \"text\", \"text\": \"...\"}).", f"{where}.content[{j}]")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise bad_request(f"{where}.content[{j}].text must be a string.", f"{where}.content[{j}].text")
            texts.append(part["text"])
    return "\n".join(texts)


def check_messages(value: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The messages as sent, and ``(role, text)`` per message; 400 on a bad shape."""
    if not isinstance(value, list) or not value:
        raise bad_request("\"messages\" must be a non-empty list of {\"role\", \"content\"} objects.", "messages")
    texts = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object with \"role\" and \"content\" (got {show(message)}).", where)
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(f"{where}.role must be one of {', '.join(ROLES)} (got {show(role)}).", f"{where}.role")
        content = message.get("content")
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            raise bad_request(f"{where}.content is required (null only for an assistant message with "
                              "tool_calls).", f"{where}.content")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise bad_request(f"{where} has role \"tool\" and needs a \"tool_call_id\" string.",
                              f"{where}.tool_call_id")
        if "tool_calls" in message and not isinstance(message["tool_calls"], list):
            raise bad_request(f"{where}.tool_calls must be a list.", f"{where}.tool_calls")
        texts.append((role, _text_of(content, where)))
    return list(value), texts


def _max_tokens(body: dict[str, Any], limit: int) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad_request(f"\"{name}\" must be a whole number of at least 1 (got {show(value)}).", name)
        return min(value, limit)
    return None


def _optional_number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"\"{name}\" must be a number from {low:g} to {high:g} (got {show(value)}).", name)
    try:
        return check_float(value, name, low, high)
    except InvalidInput as exc:
        raise bad_request(str(exc), name) from None


def parse_chat_request(body: dict[str, Any], pool: ModelPool, *, max_tokens_limit: int,
                       max_prompt_chars: int) -> ChatRequest:
    pool_model, cost_weight = parse_model(body.get("model"), pool)
    messages, texts = check_messages(body.get("messages"))
    total = sum(len(text) for _, text in texts)
    if max_prompt_chars and total > max_prompt_chars:
        raise bad_request(f"The messages have {total:,} characters; the limit is {max_prompt_chars:,} "
                          "(ROUTER_MAX_PROMPT_CHARS). Shorten the conversation.", "messages",
                          code="context_length_exceeded")
    n = body.get("n")
    if n not in (None, 1):
        raise bad_request("Only \"n\": 1 is supported (one answer per request).", "n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise bad_request(f"\"stream\" must be true or false (got {show(stream)}).", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("\"stream_options\" must be an object, e.g. {\"include_usage\": true}.", "stream_options")
    include_usage = bool((options or {}).get("include_usage"))
    temperature = _optional_number(body, "temperature", 0.0, 2.0)
    _optional_number(body, "top_p", 0.0, 1.0)
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4
                                                            and all(isinstance(s, str) for s in stop))):
        raise bad_request("\"stop\" must be a string or a list of up to 4 strings.", "stop")
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise bad_request("\"tools\" must be a list of tool objects ({\"type\": \"function\", \"function\": {...}}).",
                          "tools")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise bad_request("\"user\" must be a string.", "user")
    max_cost = body.get("max_cost_usd")
    if max_cost is not None and (isinstance(max_cost, bool) or not isinstance(max_cost, (int, float))
                                 or not math.isfinite(max_cost) or max_cost <= 0):
        raise bad_request(f"\"max_cost_usd\" must be a positive number of dollars, e.g. 0.002 (got {show(max_cost)}).",
                          "max_cost_usd")
    latency = body.get("latency_weight", 0.0)
    if latency is None:
        latency = 0.0
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not math.isfinite(latency) \
            or not 0.0 <= latency <= 1.0:
        raise bad_request(f"\"latency_weight\" must be a number from 0 (ignore latency) to 1 (fastest) "
                          f"(got {show(latency)}).", "latency_weight")
    extra = {name: body[name] for name in PASS_THROUGH if body.get(name) is not None}
    try:
        text = routing_text(texts)
    except UserError as exc:
        raise bad_request(str(exc), "messages") from None
    text = text[-max_prompt_chars:] if max_prompt_chars else text
    return ChatRequest(messages=messages, routing_text=text, model=body["model"].strip(),
                       pool_model=pool_model, cost_weight=cost_weight,
                       max_tokens=_max_tokens(body, max_tokens_limit), temperature=temperature,
                       stream=bool(stream), include_usage=include_usage,
                       max_cost_usd=None if max_cost is None else float(max_cost), user=body.get("user"),
                       extra=extra, latency_weight=float(latency))
