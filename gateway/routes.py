"""The gateway's routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``POST /v1/route``.

Answers come from :meth:`routing.router.Router.stream` (which falls back down the ranking);
every text sent back goes through :func:`routing.redact.redact` / ``redact_data``. A stream
falls back to the next model while no answer text has been sent; after that a failure ends the
stream with an ``{"error"}`` event instead of splicing in another model's text. A conversation
stays on the model that started it (:mod:`gateway.sessions`); spending limits answer 402
(:mod:`routing.budget`).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from typing import Any, Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
import anyio

from gateway.chat_request import ROUTER_MODEL, ChatRequest, GatewayError, parse_body, parse_chat_request
from gateway.sessions import SessionMatch, SessionStore
from routing.budget import estimate_cost, input_chars
from routing.errors import ProviderKeyError, SpendLimitError, UnknownModelError, UserError
from routing.redact import redact, redact_data, stream_safe
from routing.router import RouterEvent
from routing.settings import Settings

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def exposure_warning(settings: Settings, host: str) -> str | None:
    """A warning when the gateway spends the OpenRouter key for anyone who can reach ``host``."""
    if host in LOCAL_HOSTS or not settings.openrouter_api_key or settings.api_keys:
        return None
    limit = ("" if settings.daily_budget_usd else
             " Nothing limits the day's spend either: set ROUTER_DAILY_BUDGET_USD.")
    return (f"The app listens on {host} with an OPENROUTER_API_KEY and no ROUTER_API_KEYS: anyone who can "
            f"reach it can spend the key through /v1/chat/completions. Set ROUTER_API_KEYS.{limit}")


def error_response(exc: GatewayError) -> JSONResponse:
    body = {"error": {"message": redact(exc.message), "type": exc.type, "param": exc.param, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


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
        "cost_usd": result.cost_usd, "latency_ms": result.latency_ms, "route_ms": result.route_ms,
        "notice": result.notice, "session": _session_info(match),
    })


def _headers(selected: str, answered: str | None, confidence: float, fallbacks: int, match: SessionMatch,
             cost: float | None = None, estimate: float | None = None) -> dict[str, str]:
    headers = {"x-router-selected-model": selected, "x-router-confidence": f"{confidence:.4f}",
               "x-router-fallbacks": str(fallbacks), "x-router-session": match.source or "new"}
    if answered:
        headers["x-router-answered-by"] = answered
    if cost is not None:
        headers["x-router-cost-usd"] = f"{cost:.8f}"
    if estimate is not None:
        headers["x-router-estimated-cost-usd"] = f"{estimate:.8f}"
    return headers


def _usage(usage: dict[str, int]) -> dict[str, int]:
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": int(usage.get("total_tokens", prompt + completion))}


def _estimated_cost(service, model_id: str | None, chat: ChatRequest) -> float | None:
    """Dollars at most for this request at ``model_id``'s prices (what the budget holds for it)."""
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
    def check_key(self, request: Request) -> None:
        keys = self.service.settings.api_keys
        if not keys:
            return
        auth = request.headers.get("authorization") or ""
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        ok = False
        for key in keys:  # every key compared, in constant time
            ok |= hmac.compare_digest(given.encode(), key.encode())
        if not given or not ok:
            raise GatewayError(401, "Missing or wrong gateway key: send \"Authorization: Bearer <key>\" with one "
                                    "of the keys in ROUTER_API_KEYS.", code="invalid_api_key")

    def match(self, request: Request, chat: ChatRequest) -> tuple[SessionMatch, str]:
        """The conversation this request continues (if any), and the scope its keys live in."""
        auth = (request.headers.get("authorization") or "") if self.service.settings.api_keys else ""
        session_id = (request.headers.get("x-session-id") or "").strip() or None
        return self.sessions.match(chat.messages, session_id=session_id, user=chat.user, scope=auth), auth

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
                                  latency_weight=chat.latency_weight)

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
                                           max_cost_usd=chat.max_cost_usd, prefer=match.model,
                                           prefer_why=match.describe(), latency_weight=chat.latency_weight,
                                           stream=chat.stream)
        except SpendLimitError as exc:
            raise _spend_error(exc) from None
        costs = {m: _estimated_cost(self.service, m, chat) for m in selection.ranking}
        return redact_data({
            "object": "router.decision", "model": chat.model, "selected_model": selection.selected_model,
            "ranking": selection.ranking, "runner_up": selection.runner_up,
            "scores": {k: round(v, 4) for k, v in selection.scores.items()},
            "confidence": round(selection.confidence, 4), "reasoning": selection.reasoning,
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
                                           single_turn=_single_turn(chat), answer_id=answer_id)
        choice = (raw.get("choices") or [{}])[0]
        message: dict[str, Any] = {"role": "assistant", "content": result.response}
        tool_calls = (choice.get("message") or {}).get("tool_calls")
        if tool_calls:
            message["tool_calls"] = redact_data(tool_calls)
            message["content"] = result.response or None
        body = {
            "id": f"chatcmpl-{answer_id}", "object": "chat.completion", "created": int(time.time()),
            "model": result.answered_by,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": (done.chat.finish_reason if done.chat else None) or "stop"}],
            "usage": _usage(result.usage), "router": _router_info(result, match),
        }
        self.sessions.remember(match, chat.messages, message, result.answered_by, scope=scope)
        failed = sum(1 for f in result.fallbacks if not f.get("skipped"))
        headers = _headers(result.selected_model, result.answered_by, result.selection_confidence,
                           failed, match, result.cost_usd)
        return JSONResponse(body, headers=headers)

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
                                               single_turn=_single_turn(chat), answer_id=answer_id)

        return headers, _stream_body(chat, events, first, answering or selection.selected_model, match, remember,
                                     answer_id)


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _stream_body(chat: ChatRequest, events: Iterator[RouterEvent], first: list[RouterEvent],
                 answering: str, match: SessionMatch, remember, answer_id: str) -> Iterator[str]:
    """The SSE body: role chunk, content chunks, finish chunk, usage chunk (if asked), ``[DONE]``."""
    ident, created = f"chatcmpl-{answer_id}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        return _sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": answering,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **more})

    raw, sent = "", ""
    yield chunk({"role": "assistant", "content": ""})

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
                yield chunk({"tool_calls": redact_data(event.tool_calls)})
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
                tool_calls = (((event.chat.raw or {}).get("choices") or [{}])[0].get("message") or {}).get(
                    "tool_calls") if event.chat else None
                if tool_calls:
                    answer["tool_calls"] = redact_data(tool_calls)
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
        return JSONResponse(gw.models())

    @api.post("/route")
    async def route(request: Request):
        chat = await gw.parse(request)
        match, _ = gw.match(request, chat)
        return JSONResponse(await in_thread(gw.route, chat, match))

    @api.post("/feedback")
    async def feedback(request: Request):
        body = parse_body(await request.body())
        try:
            recorded = await in_thread(service.learning.rate, body.get("id"), body.get("rating", ""),
                                       body.get("better_model") or "", body.get("note") or "")
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
