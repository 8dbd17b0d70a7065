"""The router's metrics: one registry per service, recorded from one hook per answer.

:meth:`RouterMetrics.observe_answer` is called by :meth:`routing.learning.Learning.after_answer`,
which every answered request goes through (the Ask chat, ``/query``, ``/query-specific``, the
gateway, streamed or not). What does not go through it is not seen here: requests that end
without an answer (every model failed, a spending limit, a stream cut off mid-answer or
abandoned by its client), compare-all, batch rows, the judge and shadow calls (their spend is in
the ledgers, which :mod:`routing.metrics.state` reads). :meth:`RouterMetrics.observe_request`
is called by the ASGI middleware of ``gateway/ops.py`` for every HTTP request.

Labels stay bounded: ``endpoint`` is a route template (``/v1/chat/completions``,
``/gradio_api/call/{api_name}``; ``other`` for a path no route matched), never a raw path;
``model`` a pool id (or the local model's); ``cause`` one of
:data:`routing.learning.recorder.FALLBACK_CAUSES`; ``source`` the entry point.

Multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set before the process starts (several
workers behind one port), prometheus_client writes every counter and histogram to files in that
folder, and :meth:`RouterMetrics.exposition` sums every worker's files
(``MultiProcessCollector``); the scrape-time gauges are read from the shared ledger files by
whichever worker answers the scrape. One RouterMetrics per process in that mode: two in one
process would write the same files.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

if TYPE_CHECKING:  # the answer's type only; importing routing.router here would load it for nothing
    from routing.router import QueryResult

log = logging.getLogger(__name__)

#: The media type of ``GET /metrics`` (Prometheus text format).
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds: the routing decision (the selector; milliseconds with the prior, more for a fine-tuned model).
ROUTING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Seconds: a whole answer, and the time to its first token.
ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)

#: HTTP methods counted under their own name; any other is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The longest label value taken from outside (a model id); longer ones are cut.
MAX_LABEL_CHARS = 120


def multiprocess_dir() -> str | None:
    """The folder of prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), or None."""
    folder = (os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or "").strip()
    return folder or None


def _seconds(ms: Any) -> float | None:
    """Milliseconds as seconds when they are a finite, non-negative number; else None."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
        return None
    return float(ms) / 1000.0


def _label(value: Any, default: str = "unknown") -> str:
    text = str(value) if value not in (None, "") else default
    return text[:MAX_LABEL_CHARS]


class RouterMetrics:
    """The metrics of one service, in a registry of its own (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "router_http_requests", "HTTP requests by endpoint (route template), method, status and the model "
            "that answered (gateway answers; empty where not known), counted when the response starts",
            ("endpoint", "method", "status", "model"), registry=r)
        self.answers = Counter(
            "router_answers", "Answers given, by entry point (ask, query, query-specific, gateway) and the model "
            "that answered", ("source", "model"), registry=r)
        self.routing_seconds = Histogram(
            "router_routing_decision_seconds", "Time the routing decision took (the selector and the checks "
            "around it), by entry point", ("source",), buckets=ROUTING_BUCKETS, registry=r)
        self.answer_seconds = Histogram(
            "router_answer_seconds", "Time from the request reaching the router to the answer's last token, "
            "routing and failed attempts included, by the model that answered", ("model",),
            buckets=ANSWER_BUCKETS, registry=r)
        self.upstream_seconds = Histogram(
            "router_upstream_seconds", "The answering model's own call, as its client measured it (no routing, no "
            "failed attempts), by the model that answered", ("model",), buckets=ANSWER_BUCKETS, registry=r)
        self.first_token_seconds = Histogram(
            "router_time_to_first_token_seconds", "Streamed answers: the answering model's time to its first "
            "token, as its client measured it", ("model",), buckets=FIRST_TOKEN_BUCKETS, registry=r)
        self.fallbacks = Counter(
            "router_fallbacks", "Models passed over or failed before an answer, by model and cause "
            "(routing.learning.recorder.fallback_cause)", ("model", "cause"), registry=r)
        self._state: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ recording
    def observe_request(self, endpoint: str, method: str, status: int, model: str | None = None) -> None:
        """One HTTP request, counted when its response starts. Never raises."""
        try:
            method = method.upper() if isinstance(method, str) and method.upper() in METHODS else "other"
            self.requests.labels(_label(endpoint, "other"), method, str(int(status)),
                                 _label(model, "")).inc()
        except Exception:  # noqa: BLE001 - counting must never break a request
            log.exception("metrics: could not count a request")

    def observe_answer(self, result: "QueryResult", *, source: str) -> None:
        """One answered request (``Learning.after_answer``). Never raises."""
        from routing.learning.recorder import fallback_cause  # here: routing.learning imports this module

        try:
            model = _label(result.answered_by)
            source = _label(source)
            self.answers.labels(source, model).inc()
            routing = _seconds(result.route_ms)
            if routing is not None:
                self.routing_seconds.labels(source).observe(routing)
            whole = _seconds(result.latency_ms)
            if whole is not None:
                self.answer_seconds.labels(model).observe(whole)
            upstream = _seconds(getattr(result, "upstream_ms", None))
            if upstream is not None:
                self.upstream_seconds.labels(model).observe(upstream)
            first = _seconds(result.first_token_ms)
            if first is not None:
                self.first_token_seconds.labels(model).observe(first)
            for entry in result.fallbacks or []:
                if isinstance(entry, dict):
                    self.fallbacks.labels(_label(entry.get("model")), fallback_cause(entry)).inc()
        except Exception:  # noqa: BLE001 - metrics must never break an answer
            log.exception("metrics: could not record an answer")

    # ------------------------------------------------------------------ scraping
    def watch(self, service: Any) -> None:
        """Add the scrape-time gauges read from ``service`` (:class:`routing.metrics.state.StateCollector`); once."""
        from routing.metrics.state import StateCollector

        with self._lock:
            if self._state is None:
                self._state = StateCollector(service)
                self.registry.register(self._state)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (:data:`CONTENT_TYPE`).

        In multiprocess mode (:func:`multiprocess_dir`): every worker's counters and histograms,
        summed from the folder's files, plus this process's scrape-time gauges."""
        folder = multiprocess_dir()
        if not folder:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        if self._state is not None:
            registry.register(self._state)
        return generate_latest(registry)
