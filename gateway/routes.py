"""The gateway's routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``POST /v1/route``.

Answers come from :meth:`routing.router.Router.stream` (which falls back down the ranking);
every text sent back goes through :func:`routing.redact.redact` / ``redact_data``. A stream
falls back to the next model while no answer text has been sent; after that a failure ends the
stream with an ``{"error"}`` event instead of splicing in another model's text.
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
from starlette.concurrency import run_in_threadpool

from gateway.chat_request import ROUTER_MODEL, ChatRequest, GatewayError, parse_body, parse_chat_request
from routing.errors import UnknownModelError, UserError
from routing.redact import redact, redact_data, stream_safe
from routing.router import RouterEvent
from routing.settings import Settings

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def exposure_warning(settings: Settings, host: str) -> str | None:
    """A warning when the gateway spends the OpenRouter key for anyone who can reach ``host``."""
    if host in LOCAL_HOSTS or not settings.openrouter_api_key or settings.api_keys:
        return None
    return (f"The app listens on {host} with an OPENROUTER_API_KEY and no ROUTER_API_KEYS: anyone who can "
            "reach it can spend the key through /v1/chat/completions. Set ROUTER_API_KEYS.")


def error_response(exc: GatewayError) -> JSONResponse:
    body = {"error": {"message": redact(exc.message), "type": exc.type, "param": exc.param, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _failure_error(exc: UserError, failures: list[RouterEvent]) -> GatewayError:
    """No model answered: 429 when every attempt was rate limited, else 503."""
    if failures and all(f.status == 429 for f in failures):
        return GatewayError(429, f"Every model tried was rate limited: {exc}", type_="rate_limit_error",
                            code="rate_limit_exceeded", headers={"Retry-After": "5"})
    return GatewayError(503, str(exc), type_="server_error", code="no_model_available")


def _router_info(result, selection=None) -> dict[str, Any]:
    return redact_data({
        "selected_model": result.selected_model, "answered_by": result.answered_by,
        "confidence": result.selection_confidence, "scores": result.scores, "ranking": result.ranking,
        "reasoning": result.reasoning, "selector": result.selector, "fallbacks": result.fallbacks,
        "cost_usd": result.cost_usd, "latency_ms": result.latency_ms, "notice": result.notice,
    })


def _headers(selected: str, answered: str | None, confidence: float, fallbacks: int,
             cost: float | None = None) -> dict[str, str]:
    headers = {"x-router-selected-model": selected, "x-router-confidence": f"{confidence:.4f}",
               "x-router-fallbacks": str(fallbacks)}
    if answered:
        headers["x-router-answered-by"] = answered
    if cost is not None:
        headers["x-router-cost-usd"] = f"{cost:.8f}"
    return headers


def _usage(usage: dict[str, int]) -> dict[str, int]:
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": int(usage.get("total_tokens", prompt + completion))}


def _estimated_cost(service, model_id: str, text: str, max_tokens: int) -> float | None:
    """Dollars for ``text`` in and ``max_tokens`` out at ``model_id``'s prices (about 4 characters a token)."""
    if model_id not in service.pool:
        return None
    spec = service.pool.get(model_id)
    return round((len(text) / 4 * spec.input_price_per_m + max_tokens * spec.output_price_per_m) / 1e6, 8)


class _Gateway:
    def __init__(self, service):
        self.service = service

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

    # ------------------------------------------------------------------ requests
    async def parse(self, request: Request) -> ChatRequest:
        settings = self.service.settings
        return parse_chat_request(parse_body(await request.body()), self.service.pool,
                                  max_tokens_limit=settings.max_tokens, max_prompt_chars=settings.max_prompt_chars)

    def _events(self, chat: ChatRequest, *, stream: bool) -> Iterator[RouterEvent]:
        return self.router.stream(chat.routing_text, cost_weight=chat.cost_weight, model=chat.pool_model,
                                  max_tokens=chat.max_tokens, stream=stream, messages=chat.messages,
                                  temperature=chat.temperature, extra=chat.extra or None)

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
    def route(self, chat: ChatRequest) -> dict[str, Any]:
        if chat.pool_model:
            selection = self.router._explicit_selection(self.router.validate_prompt(chat.routing_text),
                                                        chat.pool_model, chat.cost_weight)
        else:
            selection = self.router.route(chat.routing_text, cost_weight=chat.cost_weight)
        max_tokens = chat.max_tokens or self.service.settings.max_tokens
        costs = {m: _estimated_cost(self.service, m, chat.routing_text, max_tokens) for m in selection.ranking}
        return redact_data({
            "object": "router.decision", "model": chat.model, "selected_model": selection.selected_model,
            "ranking": selection.ranking, "runner_up": selection.runner_up,
            "scores": {k: round(v, 4) for k, v in selection.scores.items()},
            "confidence": round(selection.confidence, 4), "reasoning": selection.reasoning,
            "selector": selection.selector, "cost_weight": selection.cost_weight,
            "estimated_cost_usd": costs.get(selection.selected_model), "estimated_cost_by_model": costs,
            "routing_text_chars": len(chat.routing_text),
        })

    # ------------------------------------------------------------------ /v1/chat/completions
    def complete(self, chat: ChatRequest) -> JSONResponse:
        failures: list[RouterEvent] = []
        done: RouterEvent | None = None
        started = False
        try:
            for event in self._events(chat, stream=False):
                started = started or event.kind == "selection"
                if event.kind == "failed":
                    failures.append(event)
                elif event.kind == "done":
                    done = event
        except UnknownModelError as exc:
            raise GatewayError(404, str(exc), code="model_not_found", param="model") from None
        except UserError as exc:
            if not started:
                raise GatewayError(400, str(exc), param="messages") from None
            raise _failure_error(exc, failures) from None
        assert done is not None and done.result is not None
        result, raw = done.result, (done.chat.raw if done.chat else None) or {}
        choice = (raw.get("choices") or [{}])[0]
        message: dict[str, Any] = {"role": "assistant", "content": result.response}
        tool_calls = (choice.get("message") or {}).get("tool_calls")
        if tool_calls:
            message["tool_calls"] = redact_data(tool_calls)
            message["content"] = result.response or None
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": result.answered_by,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": (done.chat.finish_reason if done.chat else None) or "stop"}],
            "usage": _usage(result.usage), "router": _router_info(result),
        }
        headers = _headers(result.selected_model, result.answered_by, result.selection_confidence,
                           len(result.fallbacks), result.cost_usd)
        return JSONResponse(body, headers=headers)

    def open_stream(self, chat: ChatRequest) -> StreamingResponse:
        """Run the router until the first answer text (or the end), then stream the rest."""
        events = self._events(chat, stream=True)
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
                elif event.kind == "delta" and not event.text:
                    continue
                if event.kind in ("delta", "done"):
                    first.append(event)
                    break
        except UnknownModelError as exc:
            events.close()
            raise GatewayError(404, str(exc), code="model_not_found", param="model") from None
        except UserError as exc:
            events.close()
            if selection is None:
                raise GatewayError(400, str(exc), param="messages") from None
            raise _failure_error(exc, failures) from None
        assert selection is not None
        # x-router-fallbacks counts the models that failed before this one (the final "router"
        # object of the stream also lists those skipped for a missing key or a cooldown).
        headers = _headers(selection.selected_model, answering, selection.confidence, len(failures))
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        body = _stream_body(chat, events, first, answering or selection.selected_model)
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _stream_body(chat: ChatRequest, events: Iterator[RouterEvent], first: list[RouterEvent],
                 answering: str) -> Iterator[str]:
    """The SSE body: role chunk, content chunks, finish chunk, usage chunk (if asked), ``[DONE]``."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

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
                yield chunk({}, finish, router=_router_info(result))
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


def gateway_router(service) -> APIRouter:
    """The ``/v1`` routes for ``service`` (a :class:`routing.service.RouterService`)."""
    gw = _Gateway(service)

    async def guarded(request: Request) -> None:
        gw.check_key(request)

    api = APIRouter(prefix="/v1", dependencies=[Depends(guarded)])

    @api.get("/models")
    async def list_models():
        return JSONResponse(gw.models())

    @api.post("/route")
    async def route(request: Request):
        chat = await gw.parse(request)
        return JSONResponse(await run_in_threadpool(gw.route, chat))

    @api.post("/chat/completions")
    async def chat_completions(request: Request):
        chat = await gw.parse(request)
        if chat.stream:
            return await run_in_threadpool(gw.open_stream, chat)
        return await run_in_threadpool(gw.complete, chat)

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
