"""Parse and check an OpenAI Chat Completions request body (``/v1/chat/completions``, ``/v1/route``).

Every check raises :class:`GatewayError` with an OpenAI-style status, type and code; messages
name the field and say what to send instead (parameter checks reuse ``routing/safety/validation.py``).

Before any field is read, :func:`parse_body` refuses (400) what recursive or text-handling code
downstream cannot take: JSON nested deeper than :data:`MAX_JSON_DEPTH` (also when ``json.loads``
itself gives up with RecursionError), NaN / Infinity (not JSON, and not sendable onwards), and
lone surrogates (``"\\ud800"``: valid JSON escapes that are no Unicode character, so they cannot
be encoded for the model). ROUTER_MAX_PROMPT_CHARS counts everything sent to the model: every
message (text, non-text parts, tool calls, other fields) and the passed-through fields (``tools``,
``response_format``, ...).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from routing.chat.conversation import routing_text
from routing.errors import UserError
from routing.pool import ModelPool
from routing.safety.validation import InvalidInput, check_cost_weight, check_float, show

ROUTER_MODEL = "router"
ROLES = ("system", "developer", "user", "assistant", "tool")
#: Fields passed through to the chosen model as they are (see openai_compat.EXTRA_FIELDS).
PASS_THROUGH = ("tools", "tool_choice", "parallel_tool_calls", "top_p", "stop", "user", "seed",
                "presence_penalty", "frequency_penalty", "response_format")
#: Deepest nesting of objects and lists accepted in a request body (the body itself is level 1).
MAX_JSON_DEPTH = 64
#: A cost weight after "router:": ASCII digits only (float() would take "١", "1_0", " 1", "1e-1", "nan").
_WEIGHT_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)", re.ASCII)


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


class _NotJSONConstant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJSONConstant(name)


def _path(keys: tuple) -> str | None:
    """``messages[0].content`` for ``("messages", 0, "content")``; None for the body itself."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out or None


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_json_tree(body: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """400 for nesting deeper than ``max_depth``, a non-finite number or a lone surrogate anywhere.

    Walks the parsed body with an explicit stack (no recursion), so any depth is safe to check.
    """
    stack: list[tuple[Any, int, tuple]] = [(body, 1, ())]
    while stack:
        value, depth, keys = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                where = _path(keys) or "The request body"
                raise bad_request(f"{where} contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which "
                                  "is not a Unicode character: send valid UTF-8 text.", _path(keys))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise bad_request(f"{_path(keys)} must be a finite number (got {value!r}).", _path(keys))
        elif isinstance(value, (dict, list)):
            if depth > max_depth:
                top = keys[0] if keys and isinstance(keys[0], str) else None
                raise bad_request(f"{json.dumps(top) if top else 'The request body'} is nested more than "
                                  f"{max_depth} levels deep; the gateway accepts at most {max_depth}.", top)
            if isinstance(value, dict):
                for key, item in value.items():
                    if _has_surrogate(key):
                        where = _path(keys) or "The request body"
                        raise bad_request(f"{where} has a key with a lone surrogate (an unpaired \\ud800-\\udfff "
                                          "escape), which is not a Unicode character: send valid UTF-8 text.",
                                          _path(keys))
                    stack.append((item, depth + 1, (*keys, key)))
            else:
                stack.extend((item, depth + 1, (*keys, i)) for i, item in enumerate(value))


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, checked by :func:`check_json_tree`; 400 otherwise."""
    try:
        body = json.loads(raw or b"", parse_constant=_refuse_constant)
    except RecursionError:
        raise bad_request(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep; the gateway "
                          f"accepts at most {MAX_JSON_DEPTH}.", code="invalid_json") from None
    except _NotJSONConstant as exc:
        raise bad_request(f"The request body holds {exc}, which is not JSON: send numbers as finite decimals.",
                          code="invalid_json") from None
    except ValueError:
        raise bad_request("The request body is not valid JSON: send a JSON object with \"model\" and "
                          "\"messages\".", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with \"model\" and \"messages\".",
                          code="invalid_json")
    check_json_tree(body)
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
        weight = model[len(ROUTER_MODEL) + 1:]
        if _WEIGHT_RE.fullmatch(weight) and 0.0 <= float(weight) <= 1.0:
            return None, check_cost_weight(float(weight), "model")
        raise bad_request(f"\"model\" {show(model)}: the cost weight after \"{ROUTER_MODEL}:\" must be a decimal "
                          "number from 0 (best quality) to 1 (cheapest) in ASCII digits, e.g. \"router:0.3\".",
                          "model")
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


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


def message_chars(message: dict[str, Any]) -> int:
    """Characters of one message sent to the model: its text (as characters), non-text parts, tool
    calls and any other field (as compact JSON); the role is not counted."""
    content = message.get("content")
    if isinstance(content, str):
        total = len(content)
    elif isinstance(content, list):
        total = sum(len(p["text"]) if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                    else _json_chars(p) for p in content)
    else:
        total = 0 if content is None else _json_chars(content)
    rest = {k: v for k, v in message.items() if k not in ("role", "content")}
    return total + (_json_chars(rest) if rest else 0)


def request_chars(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, int]:
    """Characters sent to the model, by request field: ``messages`` and each passed-through field."""
    sizes = {"messages": sum(message_chars(m) for m in messages)}
    for name in PASS_THROUGH:
        if body.get(name) is not None:
            sizes[name] = len(body[name]) if isinstance(body[name], str) else _json_chars(body[name])
    return sizes


def check_size(body: dict[str, Any], messages: list[dict[str, Any]], max_prompt_chars: int) -> None:
    """400 (context_length_exceeded) when all that goes to the model is over ROUTER_MAX_PROMPT_CHARS;
    ``param`` names the field that holds the most of it."""
    if not max_prompt_chars:
        return
    sizes = request_chars(body, messages)
    total = sum(sizes.values())
    if total <= max_prompt_chars:
        return
    largest = max(sizes, key=sizes.get)
    parts = ", ".join(f"{name} {size:,}" for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]) if size)
    raise bad_request(f"The request sends {total:,} characters to the model ({parts}); the limit is "
                      f"{max_prompt_chars:,} (ROUTER_MAX_PROMPT_CHARS), counting message text, non-text parts, "
                      f"tool calls and tool definitions. Shorten \"{largest}\".", largest,
                      code="context_length_exceeded")


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
    check_size(body, messages, max_prompt_chars)
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
