"""Operations: what the router did, as Prometheus metrics (``GET /metrics``), and whether it is ready.

- ``registry``: :class:`RouterMetrics`, one per :class:`routing.service.RouterService` (held by
  its :class:`routing.learning.Learning`), each with a registry of its own (never the process's
  global one, so two services in one process, as in the tests, do not collide): HTTP requests
  by endpoint, answers per model, routing and answer latencies, time to the first token,
  fallbacks and their causes; the text format, and prometheus_client's multiprocess mode when
  ``PROMETHEUS_MULTIPROC_DIR`` is set.
- ``state``: gauges read when ``/metrics`` is scraped: the day's spend, cap and paid calls of the
  spend ledger and of the shadow ledger, the retrainer's runs and promotions, the live selector.
- ``readiness``: the named checks ``/readyz`` runs (the selector, the outcome log, the ledgers).

Importable without Gradio or FastAPI; the HTTP side (the routes, the middleware that counts
requests) is ``gateway/ops.py``.
"""

from routing.metrics.readiness import CheckResult, readiness, readiness_checks
from routing.metrics.registry import CONTENT_TYPE, RouterMetrics, multiprocess_dir
from routing.metrics.state import StateCollector

__all__ = ["RouterMetrics", "StateCollector", "CONTENT_TYPE", "multiprocess_dir", "readiness",
           "readiness_checks", "CheckResult"]
