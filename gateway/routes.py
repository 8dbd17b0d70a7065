"""The gateway's routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``POST /v1/route``.

Answers come from :meth:`routing.router.Router.stream` (which falls back down the ranking);
every text sent back goes through :func:`routing.safety.redact.redact` / ``redact_data``. A stream
falls back to the next model while no answer text has been sent; after that a failure ends the
stream with an ``{"error"}`` event instead of splicing in another model's text. A conversation
stays on the model that started it (:mod:`gateway.sessions`, scoped by the gateway key, hashed);
spending limits answer 402 (:mod:`routing.budget`).

What goes out is checked too: a provider's ``tool_calls`` reach the client only in the OpenAI
shape (:func:`clean_tool_calls`, :func:`clean_tool_delta`; anything else is dropped with a
warning in the log, and a ``"tool_calls"`` finish without calls becomes ``"stop"``), JSON
bodies and SSE events never hold NaN / Infinity (they become ``null``: :class:`SafeJSONResponse`),
and no exception reaches the client as a stack trace (:func:`install_error_handlers`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import uuid
from typing import Any, Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
import anyio

from gateway.chat_request import ROUTER_MODEL, ChatRequest, GatewayError, parse_body, parse_chat_request
from gateway.sessions import SessionMatch, SessionStore
from routing.safety.access import (PaidAccessError, VisitorLimitError, bearer_token, effective_mode, identify,
                                   matching_key)
from routing.budget import estimate_cost, input_chars, input_token_bound
from routing.errors import ProviderKeyError, SpendLimitError, UnknownModelError, UserError
from routing.learning.outcome_log import gateway_scope
from routing.safety.redact import redact, redact_data, stream_safe
from routing.router import RouterEvent
from routing.selectors.base import evidence_of
from routing.settings import Settings
from routing.safety.validation import show

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def exposure_warning(settings: Settings, host: str) -> str | None:
    """A warning when the app listens on ``host``, beyond this machine, with the owner's key and no gateway keys."""
    if host in LOCAL_HOSTS or not settings.openrouter_api_key or settings.api_keys:
        return None
    if effective_mode(dataclasses.replace(settings, server_name=host)) == "signed-in":
        return (f"The app listens on {host} with an OPENROUTER_API_KEY, no ROUTER_API_KEYS and no "
                "ROUTER_DAILY_BUDGET_USD: paid models answer signed-in callers only (ROUTER_PAID_ACCESS), so "
                "/v1/chat/completions refuses every caller. Set ROUTER_API_KEYS to give apps keys.")
    limit = ("" if settings.daily_budget_usd else
             " Nothing limits the day's spend either: set ROUTER_DAILY_BUDGET_USD.")
    return (f"The app listens on {host} with an OPENROUTER_API_KEY and no ROUTER_API_KEYS: anyone who can "
            f"reach it can spend the key through /v1/chat/completions. Set ROUTER_API_KEYS.{limit}")


def finite(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples) with every NaN / Infinity replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(data: Any, **kwargs: Any) -> str:
    """Standard JSON (``allow_nan=False``); a non-finite number anywhere becomes ``null``."""
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(finite(data), ensure_ascii=False, allow_nan=False, **kwargs)



def _last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The last user message's text (its text parts joined), for "where would this turn alone go"."""
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
            return None
    return None

class SafeJSONResponse(JSONResponse):
    """Starlette's JSONResponse refuses NaN (a 500); this one sends it as ``null``."""

    def render(self, content: Any) -> bytes:
        return dumps(content, indent=None, separators=(",", ":")).encode("utf-8")


def error_response(exc: GatewayError) -> JSONResponse:
    body = {"error": {"message": redact(exc.message), "type": exc.type, "param": exc.param, "code": exc.code}}
    return SafeJSONResponse(body, status_code=exc.status, headers=exc.headers)


# ---------------------------------------------------------------------- provider tool calls


def _tool_call_ok(call: Any) -> bool:
    """One whole tool call in the OpenAI shape: id, type "function", function name and arguments (strings)."""
    if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
        return False
    function = call.get("function")
    return (call.get("type", "function") == "function" and isinstance(function, dict)
            and isinstance(function.get("name"), str) and bool(function["name"])
            and isinstance(function.get("arguments", ""), str))


def clean_tool_calls(calls: Any, model: str | None) -> list[dict[str, Any]] | None:
    """A provider's ``message.tool_calls`` in the OpenAI shape (other keys left out), or None.

    Anything else (not a list, or any call malformed) is dropped whole, with a warning: a client
    must not run half of what the model asked for, nor receive a shape its SDK cannot parse.
    """
    if calls is None or calls == []:
        return None
    if not isinstance(calls, list) or not all(_tool_call_ok(c) for c in calls):
        log.warning("model %s answered with malformed tool_calls, dropped: %s", model, show(calls, 200))
        return None
    return [{"id": c["id"], "type": "function",
             "function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments", "")}}
            for c in calls]


def clean_tool_delta(piece: Any, bad: set[int], model: str | None) -> dict[str, Any] | None:
    """One streamed tool-call delta in the OpenAI shape, or None to drop it.

    A malformed delta marks its call (``index``) bad: the rest of that call is dropped too, so a
    client never assembles a call whose id or name was dropped.
    """
    index = piece.get("index") if isinstance(piece, dict) else None
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        log.warning("model %s streamed a tool_calls delta without a call index, dropped: %s", model, show(piece, 200))
        return None
    if index in bad:
        return None
    function = piece.get("function")
    ok = (piece.get("id") is None or isinstance(piece["id"], str)) \
        and piece.get("type") in (None, "function") \
        and (function is None or (isinstance(function, dict)
                                  and all(function.get(k) is None or isinstance(function[k], str)
                                          for k in ("name", "arguments"))))
    if not ok:
        bad.add(index)
        log.warning("model %s streamed a malformed tool_calls delta, call %d dropped: %s", model, index,
                    show(piece, 200))
        return None
    delta: dict[str, Any] = {"index": index}
    if piece.get("id") is not None:
        delta["id"] = piece["id"]
    if piece.get("type") is not None:
        delta["type"] = piece["type"]
    if function is not None:
        delta["function"] = {k: function[k] for k in ("name", "arguments") if function.get(k) is not None}
    return delta


def _failure_error(exc: UserError, failures: list[RouterEvent]) -> GatewayError:
    """No model answered: the provider refused the key (502, or 402 without credits), 429 when
    every attempt was rate limited, else 503."""
    if isinstance(exc, ProviderKeyError):
        if exc.status == 402:
            return GatewayError(402, str(exc), type_="insufficient_quota", code="upstream_payment_required")
        return GatewayError(502, str(exc), type_="server_error", code="upstream_key_rejected")
    if failures and all(f.status == 429 for f in failures):
        return GatewayError(429, f"Every model tried was rate limited: {exc}", type_="rate_limit_error",
                            code="rate_limit_exceeded", headers={"Retry-After": "5"})
    return GatewayError(503, str(exc), type_="server_error", code="no_model_available")


def _spend_error(exc: SpendLimitError) -> GatewayError:
    return GatewayError(402, str(exc), type_="insufficient_quota", code=exc.code,
                        param="max_cost_usd" if exc.code == "max_cost_exceeded" else None)


def _session_info(match: SessionMatch) -> dict[str, Any]:
    return {"continued": match.source is not None, "key": match.source, "model": match.model}


def _single_turn(chat: ChatRequest) -> bool:
    return sum(1 for m in chat.messages if m.get("role") in ("user", "assistant")) == 1


def _router_info(result, match: SessionMatch) -> dict[str, Any]:
    return redact_data({
        "answer_id": result.answer_id,
        "selected_model": result.selected_model, "answered_by": result.answered_by,
        "confidence": result.selection_confidence, "scores": result.scores, "ranking": result.ranking,
        "reasoning": result.reasoning, "selector": result.selector, "fallbacks": result.fallbacks,
        "route": result.route, "route_similarity": result.route_similarity,
        # ROUTER_ESCALATE: why and where it went up, the scores and which answer was kept (not the texts)
        "escalation": ({k: v for k, v in result.escalation.items() if k != "answers"} if result.escalation else None),
        "cost_usd": result.cost_usd, "latency_ms": result.latency_ms, "route_ms": result.route_ms,
        "notice": result.notice, "session": _session_info(match),
    })


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _headers(selected: str, answered: str | None, confidence: float, fallbacks: int, match: SessionMatch,
             cost: float | None = None, estimate: float | None = None) -> dict[str, str]:
    """The x-router-* headers; a number that is not finite is left out rather than sent as "nan"."""
    headers = {"x-router-selected-model": selected, "x-router-fallbacks": str(fallbacks),
               "x-router-session": match.source or "new"}
    if _is_number(confidence):
        headers["x-router-confidence"] = f"{confidence:.4f}"
    if answered:
        headers["x-router-answered-by"] = answered
    if _is_number(cost):
        headers["x-router-cost-usd"] = f"{cost:.8f}"
    if _is_number(estimate):
        headers["x-router-estimated-cost-usd"] = f"{estimate:.8f}"
    return headers


def _count(value: Any, default: int = 0) -> int:
    return int(value) if _is_number(value) and value >= 0 else default


def _usage(usage: dict[str, int]) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": _count(usage.get("total_tokens"), prompt + completion)}


def _estimated_cost(service, model_id: str | None, chat: ChatRequest) -> float | None:
    """The ordinary estimate of this request's cost at ``model_id``'s prices (about 4 characters a
    token in, ``max_tokens`` out). Spending limits hold more: :func:`routing.budget.cost_bound`."""
    if model_id is None or model_id not in service.pool:
        return None
    max_tokens = chat.max_tokens or service.settings.max_tokens
    return round(estimate_cost(service.pool.get(model_id), input_chars(chat.messages), max_tokens), 8)


class _Gateway:
    def __init__(self, service):
        self.service = service
        self.sessions = SessionStore()

    @property
    def router(self):
        return self.service.router

    # ------------------------------------------------------------------ auth
    @staticmethod
    def bearer(request: Request) -> str:
        """The key of an ``Authorization: Bearer <key>`` header (the scheme in any case, RFC 7235), or ""."""
        return bearer_token(request.headers.get("authorization"))

    def check_key(self, request: Request) -> None:
        keys = self.service.settings.api_keys
        if keys and matching_key(self.bearer(request), keys) is None:  # every key compared in constant time
            raise GatewayError(401, "Missing or wrong gateway key: send \"Authorization: Bearer <key>\" with one "
                                    "of the keys in ROUTER_API_KEYS.", code="invalid_api_key")

    def admit(self, request: Request) -> None:
        """The paid-access rule (routing/safety/access.py) for one paid call: 401 where paid models are for
        signed-in callers and this one is anonymous (a gateway without ROUTER_API_KEYS), 429 with
        Retry-After when the key (or, without keys, the client address) has no paid calls left today."""
        settings = self.service.settings
        client = request.client.host if request.client else None
        caller = identify(authorization=request.headers.get("authorization") if settings.api_keys else None,
                          api_keys=settings.api_keys, client_host=client)
        try:
            self.service.admit(caller, 1)
        except PaidAccessError as exc:
            raise GatewayError(401, str(exc), code="sign_in_required") from None
        except VisitorLimitError as exc:
            raise GatewayError(429, str(exc), type_="rate_limit_error", code="daily_calls_exhausted",
                               headers={"Retry-After": str(max(1, int(exc.retry_after_s)))}) from None

    def scope(self, request: Request) -> str:
        """The caller's scope: the gateway key used, however the header spells the scheme (one key,
        one scope); "" when the gateway has no keys. It is only ever stored hashed: the session
        store hashes it into each entry's key, ``gateway_scope`` into the answer's owner."""
        return self.bearer(request) if self.service.settings.api_keys else ""

    def match(self, request: Request, chat: ChatRequest) -> tuple[SessionMatch, str]:
        """The conversation this request continues (if any), and the scope its keys live in."""
        scope = self.scope(request)
        session_id = (request.headers.get("x-session-id") or "").strip() or None
        return self.sessions.match(chat.messages, session_id=session_id, user=chat.user, scope=scope), scope

    # ------------------------------------------------------------------ requests
    async def parse(self, request: Request) -> ChatRequest:
        settings = self.service.settings
        return parse_chat_request(parse_body(await request.body()), self.service.pool,
                                  max_tokens_limit=settings.max_tokens, max_prompt_chars=settings.max_prompt_chars)

    def _events(self, chat: ChatRequest, match: SessionMatch, *, stream: bool) -> Iterator[RouterEvent]:
        return self.router.stream(chat.routing_text, cost_weight=chat.cost_weight, model=chat.pool_model,
                                  max_tokens=chat.max_tokens, stream=stream, messages=chat.messages,
                                  temperature=chat.temperature, extra=chat.extra or None,
                                  max_cost_usd=chat.max_cost_usd, prefer=match.model, prefer_why=match.describe(),
                                  latency_weight=chat.latency_weight, last_turn=_last_user_text(chat.messages))

    # ------------------------------------------------------------------ /v1/models
    def models(self) -> dict[str, Any]:
        created = int(time.time())
        data = [{"id": ROUTER_MODEL, "object": "model", "created": created, "owned_by": "llm-router",
                 "name": "LLM Router (routes each request; \"router:<cost weight 0-1>\" trades quality for price)",
                 "context_length": min((m.context_length for m in self.service.pool), default=None)}]
        for spec in self.service.pool:
            data.append({"id": spec.id, "object": "model", "created": created, "owned_by": spec.provider,
                         "name": spec.display_name, "model_name": spec.model_name,
                         "context_length": spec.context_length,
                         "pricing": {"input_per_m": spec.input_price_per_m, "output_per_m": spec.output_price_per_m,
                                     "source": spec.price_source}})
        return redact_data({"object": "list", "data": data})

    # ------------------------------------------------------------------ /v1/route
    def route(self, chat: ChatRequest, match: SessionMatch) -> dict[str, Any]:
        try:
            selection = self.router.decide(chat.routing_text, cost_weight=chat.cost_weight, model=chat.pool_model,
                                           max_tokens=chat.max_tokens, chars_in=input_chars(chat.messages),
                                           tokens_in=input_token_bound(chat.messages, chat.extra),
                                           max_cost_usd=chat.max_cost_usd, prefer=match.model,
                                           prefer_why=match.describe(), latency_weight=chat.latency_weight,
                                           stream=chat.stream, last_turn=_last_user_text(chat.messages),
                                           messages=chat.messages, extra=chat.extra)
        except SpendLimitError as exc:
            raise _spend_error(exc) from None
        costs = {m: _estimated_cost(self.service, m, chat) for m in selection.ranking}
        return redact_data({
            "object": "router.decision", "model": chat.model, "selected_model": selection.selected_model,
            "ranking": selection.ranking, "runner_up": selection.runner_up,
            "scores": {k: round(v, 4) for k, v in selection.scores.items()},
            "confidence": round(selection.confidence, 4), "reasoning": selection.reasoning,
            "evidence": evidence_of(selection),
            "route": selection.route, "route_similarity": selection.route_similarity,
            "selector": selection.selector, "cost_weight": selection.cost_weight,
            "latency_weight": chat.latency_weight,
            "latency_ms": (selection.details or {}).get("latency_ms"),
            "estimated_cost_usd": costs.get(selection.selected_model), "estimated_cost_by_model": costs,
            "routing_text_chars": len(chat.routing_text), "session": _session_info(match),
            "spend": self.service.ledger.summary(),
        })

    # ------------------------------------------------------------------ /v1/chat/completions
    def complete(self, chat: ChatRequest, match: SessionMatch, scope: str) -> JSONResponse:
        failures: list[RouterEvent] = []
        done: RouterEvent | None = None
        started = False
        try:
            for event in self._events(chat, match, stream=False):
                started = started or event.kind == "selection"
                if event.kind == "failed":
                    failures.append(event)
                elif event.kind == "done":
                    done = event
        except UnknownModelError as exc:
            raise GatewayError(404, str(exc), code="model_not_found", param="model") from None
        except SpendLimitError as exc:
            raise _spend_error(exc) from None
        except UserError as exc:
            if not started:
                raise GatewayError(400, str(exc), param="messages") from None
            raise _failure_error(exc, failures) from None
        assert done is not None and done.result is not None
        result, raw = done.result, (done.chat.raw if done.chat else None) or {}
        answer_id = uuid.uuid4().hex
        self.service.learning.after_answer(chat.routing_text, result, source="gateway",
                                           single_turn=_single_turn(chat), answer_id=answer_id,
                                           owner=gateway_scope(scope))
        choices = raw.get("choices") if isinstance(raw, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        provider_message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        message: dict[str, Any] = {"role": "assistant", "content": result.response}
        tool_calls = clean_tool_calls(provider_message.get("tool_calls"), result.answered_by)
        finish = (done.chat.finish_reason if done.chat else None) or "stop"
        if tool_calls:
            message["tool_calls"] = redact_data(tool_calls)
            message["content"] = result.response or None
        elif finish == "tool_calls":
            finish = "stop"  # the calls were dropped: nothing for the client to run
        body = {
            "id": f"chatcmpl-{answer_id}", "object": "chat.completion", "created": int(time.time()),
            "model": result.answered_by,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": _usage(result.usage), "router": _router_info(result, match),
        }
        self.sessions.remember(match, chat.messages, message, result.answered_by, scope=scope)
        failed = sum(1 for f in result.fallbacks if not f.get("skipped"))
        headers = _headers(result.selected_model, result.answered_by, result.selection_confidence,
                           failed, match, result.cost_usd)
        return SafeJSONResponse(body, headers=headers)

    def open_stream(self, chat: ChatRequest, match: SessionMatch, scope: str) -> tuple[dict[str, str], Iterator[str]]:
        """Run the router until the first answer text (or the end); the headers, and the SSE body to come."""
        events = self._events(chat, match, stream=True)
        failures: list[RouterEvent] = []
        selection = None
        answering: str | None = None
        first: list[RouterEvent] = []
        try:
            for event in events:
                if event.kind == "selection":
                    selection = event.selection
                elif event.kind == "attempt":
                    answering = event.model
                elif event.kind == "failed":
                    failures.append(event)
                elif event.kind == "delta" and not event.text and not event.tool_calls:
                    continue
                if event.kind in ("delta", "done"):
                    first.append(event)
                    break
        except UnknownModelError as exc:
            events.close()
            raise GatewayError(404, str(exc), code="model_not_found", param="model") from None
        except SpendLimitError as exc:
            events.close()
            raise _spend_error(exc) from None
        except UserError as exc:
            events.close()
            if selection is None:
                raise GatewayError(400, str(exc), param="messages") from None
            raise _failure_error(exc, failures) from None
        assert selection is not None
        # x-router-fallbacks counts the models that failed before this one (the final "router"
        # object of the stream also lists those skipped for a missing key or a cooldown).
        # The cost is known only at the end (the final chunk's "router" object and the usage chunk
        # carry it); the headers give what the budget holds for this answer.
        headers = _headers(selection.selected_model, answering, selection.confidence, len(failures), match,
                           estimate=_estimated_cost(self.service, answering, chat))
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

        answer_id = uuid.uuid4().hex

        def remember(answer: dict[str, Any], result) -> None:
            self.sessions.remember(match, chat.messages, answer, result.answered_by, scope=scope)
            self.service.learning.after_answer(chat.routing_text, result, source="gateway",
                                               single_turn=_single_turn(chat), answer_id=answer_id,
                                               owner=gateway_scope(scope))

        return headers, _stream_body(chat, events, first, answering or selection.selected_model, match, remember,
                                     answer_id)


def _sse(data: Any) -> str:
    return f"data: {dumps(data)}\n\n"


def _stream_body(chat: ChatRequest, events: Iterator[RouterEvent], first: list[RouterEvent],
                 answering: str, match: SessionMatch, remember, answer_id: str) -> Iterator[str]:
    """The SSE body: role chunk, content chunks, finish chunk, usage chunk (if asked), ``[DONE]``."""
    ident, created = f"chatcmpl-{answer_id}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        return _sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": answering,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **more})

    raw, sent = "", ""
    bad_calls: set[int] = set()             # tool calls (by index) with a malformed delta: dropped
    calls: dict[int, dict[str, Any]] = {}   # the tool calls as sent, assembled (for the session)
    yield chunk({"role": "assistant", "content": ""})

    def tool_deltas(pieces: Any) -> list[dict[str, Any]]:
        out = []
        for piece in pieces if isinstance(pieces, list) else []:
            delta = clean_tool_delta(piece, bad_calls, answering)
            if delta is None:
                continue
            delta = redact_data(delta)
            out.append(delta)
            call = calls.setdefault(delta["index"], {"id": "", "type": "function",
                                                     "function": {"name": "", "arguments": ""}})
            call["id"] = delta.get("id") or call["id"]
            for key, value in delta.get("function", {}).items():
                call["function"][key] += value
        return out

    def emit_safe(final: bool) -> Iterator[str]:
        nonlocal sent
        clean = redact(raw) if final else stream_safe(raw)
        if clean.startswith(sent) and len(clean) > len(sent):
            piece, sent = clean[len(sent):], clean
            yield chunk({"content": piece})

    def all_events() -> Iterator[RouterEvent]:
        yield from first
        yield from events

    try:
        for event in all_events():
            if event.kind == "delta" and event.tool_calls:
                deltas = tool_deltas(event.tool_calls)
                if deltas:
                    yield chunk({"tool_calls": deltas})
            if event.kind == "delta" and event.text:
                raw += event.text
                yield from emit_safe(False)
            elif event.kind == "failed":
                # Text of this model has been sent: end here rather than splice another model's in.
                message = redact(f"The model {answering} failed after it had started answering: {event.error}")
                yield _sse({"error": {"message": message, "type": "server_error", "code": "stream_interrupted",
                                      "param": None}})
                yield "data: [DONE]\n\n"
                return
            elif event.kind == "done":
                result = event.result
                yield from emit_safe(True)
                finish = (event.chat.finish_reason if event.chat else None) or "stop"
                answer: dict[str, Any] = {"role": "assistant", "content": sent}
                sent_calls = [calls[i] for i in sorted(calls)]  # what the client has (and echoes next turn)
                if sent_calls:
                    answer["tool_calls"] = sent_calls
                elif finish == "tool_calls":
                    finish = "stop"  # every call was dropped: nothing for the client to run
                remember(answer, result)
                yield chunk({}, finish, router=_router_info(result, match))
                if chat.include_usage:
                    yield _sse({"id": ident, "object": "chat.completion.chunk", "created": created,
                                "model": answering, "choices": [], "usage": _usage(result.usage)})
                yield "data: [DONE]\n\n"
                return
    except UserError as exc:  # e.g. the local model refused the conversation
        yield _sse({"error": {"message": redact(str(exc)), "type": "server_error", "code": "no_model_available",
                              "param": None}})
        yield "data: [DONE]\n\n"
    except Exception:  # noqa: BLE001 - never a stack trace on the wire
        log.exception("gateway stream failed")
        yield _sse({"error": {"message": "internal error while streaming the answer", "type": "server_error",
                              "code": "internal_error", "param": None}})
        yield "data: [DONE]\n\n"
    finally:
        close = getattr(events, "close", None)
        if close:
            close()


async def _iterate(iterator: Iterator[str], limiter: anyio.CapacityLimiter):
    """A blocking iterator as an async one, each step in a worker thread of the gateway's own pool.

    Closed when the response ends or the client goes away, so the router's generator settles
    its spend and hangs up on the model (Starlette's own iteration leaves that to the GC).
    """
    done = object()
    try:
        while True:
            item = await anyio.to_thread.run_sync(next, iterator, done, limiter=limiter)
            if item is done:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close, limiter=limiter)


def gateway_router(service) -> APIRouter:
    """The ``/v1`` routes for ``service`` (a :class:`routing.service.RouterService`).

    Requests are worked on in a thread pool of their own (ROUTER_GATEWAY_CONCURRENCY threads),
    apart from AnyIO's default 40 that Gradio uses: a stream holds a thread while it waits for
    its model, and 50 slow streams must not make each other (or the page) wait.
    """
    gw = _Gateway(service)
    limiter = anyio.CapacityLimiter(service.settings.gateway_concurrency)

    async def in_thread(fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    async def guarded(request: Request) -> None:
        gw.check_key(request)

    api = APIRouter(prefix="/v1", dependencies=[Depends(guarded)])

    @api.get("/models")
    async def list_models():
        return SafeJSONResponse(gw.models())

    @api.post("/route")
    async def route(request: Request):
        chat = await gw.parse(request)
        match, _ = gw.match(request, chat)
        return SafeJSONResponse(await in_thread(gw.route, chat, match))

    @api.post("/feedback")
    async def feedback(request: Request):
        """Rate an answer this caller got. The rater is the caller's scope, as when the answer was
        given (the gateway key, hashed; with no ROUTER_API_KEYS every caller shares one scope, as
        the session store does): another key's answer is 404, like an unknown id. 429 with
        Retry-After past the per-rater limit; rating again replaces the earlier rating."""
        from routing.learning.recorder import RatingRateLimited

        body = parse_body(await request.body())
        auth = (request.headers.get("authorization") or "") if service.settings.api_keys else ""
        try:
            recorded = await in_thread(lambda: service.learning.rate(
                body.get("id"), body.get("rating", ""), body.get("better_model") or "", body.get("note") or "",
                rater=gateway_scope(auth)))
        except RatingRateLimited as exc:
            raise GatewayError(429, str(exc), type_="rate_limit_error", code="rate_limit_exceeded",
                               headers={"Retry-After": str(exc.retry_after_s)}) from None
        except UnknownModelError as exc:
            raise GatewayError(400, str(exc), param="better_model", code="model_not_found") from None
        except UserError as exc:
            message = str(exc)
            status = 404 if message.startswith("No answer") else 400
            raise GatewayError(status, message, code="answer_not_found" if status == 404 else "invalid_value") from None
        return JSONResponse({"object": "feedback", **recorded})

    @api.post("/chat/completions")
    async def chat_completions(request: Request):
        chat = await gw.parse(request)
        await in_thread(gw.admit, request)
        match, scope = gw.match(request, chat)
        if not chat.stream:
            return await in_thread(gw.complete, chat, match, scope)
        headers, body = await in_thread(gw.open_stream, chat, match, scope)
        return StreamingResponse(_iterate(body, limiter), media_type="text/event-stream", headers=headers)

    return api


def install_error_handlers(app) -> None:
    """OpenAI-shaped errors for the gateway's paths; never a stack trace."""
    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError):
        return error_response(exc)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        return error_response(GatewayError(400, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error_response(GatewayError(400, "The request is malformed."))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("gateway request %s failed: %s", request.url.path, type(exc).__name__, exc_info=exc)
        return error_response(GatewayError(500, "Internal error; the server log has the details.",
                                           type_="server_error", code="internal_error"))
