"""Operations endpoints beside the gateway: ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

HTTP only; what they report comes from :mod:`routing.metrics`.

- ``/healthz``: the process answers (200, ``{"status": "ok"}``). Public.
- ``/readyz``: 200 when every readiness check passes (the selector is loaded, the outcome log and
  the spend ledgers can be opened: :func:`routing.metrics.readiness`), else 503; the body names
  each check and says which failed. Public: it holds no secret (a failure's details go to the log).
- ``/metrics``: the Prometheus text format. Public unless ``ROUTER_METRICS_TOKEN`` is set; then it
  needs ``Authorization: Bearer <token>`` (compared in constant time), else 401.

:class:`RequestMetrics` is the ASGI middleware ``app.py`` installs on the whole app (gateway and
Gradio): it counts each HTTP request once, by route template, method, status and the model that
answered (the gateway's ``x-router-answered-by`` header), when the response starts, so a streamed
answer is counted as it opens and its body passes through untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from routing.metrics import CONTENT_TYPE, RouterMetrics, readiness
from routing.safety.access import bearer_token, matching_key
from routing.safety.redact import register_secret

log = logging.getLogger(__name__)

#: The response header naming the model that answered (set by the gateway's routes).
ANSWERED_BY = b"x-router-answered-by"


def metrics_of(service: Any) -> RouterMetrics:
    """The service's metrics (``service.learning.metrics``), with the scrape-time gauges read from it."""
    metrics: RouterMetrics = service.learning.metrics
    metrics.watch(service)
    return metrics


def endpoint_of(scope: dict[str, Any]) -> str:
    """The route template the request matched (``/gradio_api/call/{api_name}``), or ``other``.

    Starlette puts the matched route in ``scope["route"]`` (also inside the mounted Gradio app,
    which shares the scope); a path no route matched (a 404) has none, or the mount itself."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path.startswith("/") and not hasattr(route, "routes"):  # a Mount has routes
        return path
    return "other"


class RequestMetrics:
    """ASGI middleware: counts every HTTP request in ``metrics`` when its response starts.

    A request that raises before any response is counted as a 500 (the error handler outside
    answers it so); one cancelled before its response (the client left) is not counted."""

    def __init__(self, app: Any, metrics: RouterMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def counting_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message.get("type") == "http.response.start" and not started:
                started = True
                model = next((v.decode("latin-1") for k, v in message.get("headers") or []
                              if k.lower() == ANSWERED_BY), "")
                self.metrics.observe_request(endpoint_of(scope), scope.get("method", ""),
                                             message.get("status", 0), model)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not started:
                self.metrics.observe_request(endpoint_of(scope), scope.get("method", ""), 500, "")
            raise


def install_request_metrics(app: Any, service: Any) -> None:
    """Count every HTTP request of ``app`` (call before the app starts)."""
    app.add_middleware(RequestMetrics, metrics=metrics_of(service))


def ops_router(service: Any) -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics`` for ``service`` (a :class:`routing.service.RouterService`)."""
    metrics = metrics_of(service)
    token = service.settings.metrics_token
    register_secret(token, "ROUTER_METRICS_TOKEN")
    api = APIRouter()

    @api.get("/healthz")
    async def healthz():
        return JSONResponse({"status": "ok"})

    @api.get("/readyz")
    async def readyz():
        ready, results = await anyio.to_thread.run_sync(readiness, service)  # SQLite: not on the event loop
        failed = [r.name for r in results if not r.ok]
        body = {"status": "ready" if ready else "not ready", "failed": failed,
                "checks": [r.to_dict() for r in results]}
        return JSONResponse(body, status_code=200 if ready else 503)

    @api.get("/metrics")
    async def prometheus_metrics(request: Request):
        if token and matching_key(bearer_token(request.headers.get("authorization")), (token,)) is None:
            return JSONResponse({"error": {"message": "Missing or wrong metrics token: send \"Authorization: "
                                           "Bearer <ROUTER_METRICS_TOKEN>\".", "type": "invalid_request_error",
                                           "param": None, "code": "invalid_api_key"}},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await anyio.to_thread.run_sync(metrics.exposition)  # the ledgers are read from their files
        return Response(body, media_type=CONTENT_TYPE)

    return api
