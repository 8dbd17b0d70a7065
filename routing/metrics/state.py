"""Gauges read when ``/metrics`` is scraped, from what the service already keeps.

- the spend ledgers' figures for the UTC day (:meth:`routing.budget.SpendLedger.summary`):
  ``ledger="app"`` is every paid call (``ROUTER_DAILY_BUDGET_USD``), ``ledger="shadow"`` the
  shadow comparisons' own ledger (``ROUTER_SHADOW_BUDGET_USD``, :mod:`routing.learning.shadow`);
- the retrainer's history (:meth:`routing.learning.retrain.Retrainer.state`, its last 50 runs):
  runs by outcome and the time of the last promotion; whether a run is in progress;
- the live selector's name.

Nothing is counted twice or kept here: every scrape reads the sources again, so the figures are
those of the files (the spend of every process sharing the data folder), not of this process.
A source that fails is left out of that scrape (and logged); the others still come.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

log = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class StateCollector:
    """A prometheus_client collector over a :class:`routing.service.RouterService` (read at each scrape)."""

    def __init__(self, service: Any):
        self.service = service

    def describe(self) -> list[Metric]:
        return []   # nothing to check for clashes at registration; collect() reads the service

    def ledgers(self) -> list[tuple[str, Any]]:
        s = self.service
        found = [("app", getattr(s, "ledger", None))]
        shadow = getattr(getattr(s, "learning", None), "shadow", None)
        found.append(("shadow", getattr(shadow, "ledger", None)))
        return [(name, ledger) for name, ledger in found if ledger is not None]

    def collect(self) -> Iterator[Metric]:
        yield from self._spend()
        yield from self._retraining()
        yield from self._selector()

    def _spend(self) -> Iterator[Metric]:
        spent = GaugeMetricFamily("router_spend_usd", "Dollars spent on paid models this UTC day, by ledger: app "
                                  "(every paid call) and shadow (shadow comparisons)", labels=["ledger"])
        cap = GaugeMetricFamily("router_spend_limit_usd", "The ledger's daily cap in dollars "
                                "(ROUTER_DAILY_BUDGET_USD, ROUTER_SHADOW_BUDGET_USD); absent when none is set",
                                labels=["ledger"])
        calls = GaugeMetricFamily("router_spend_paid_calls", "Paid calls recorded this UTC day, by ledger",
                                  labels=["ledger"])
        held = GaugeMetricFamily("router_spend_in_flight_usd", "Dollars held by this process's paid calls in "
                                 "progress (their cost bounds), by ledger", labels=["ledger"])
        known = GaugeMetricFamily("router_spend_known", "1 when the day's spend could be read from the ledger's "
                                  "file (0: unknown, paid calls under a cap are refused)", labels=["ledger"])
        for name, ledger in self.ledgers():
            try:
                summary = ledger.summary()
            except Exception:  # noqa: BLE001 - one failing source must not fail the scrape
                log.exception("metrics: the %s spend ledger could not be read", name)
                continue
            for family, key in ((spent, "spent_usd"), (cap, "daily_limit_usd"), (calls, "paid_calls"),
                                (held, "in_flight_usd")):
                value = _number(summary.get(key))
                if value is not None:
                    family.add_metric([name], value)
            known.add_metric([name], 1.0 if summary.get("spend_known", True) else 0.0)
        yield from (spent, cap, calls, held, known)

    def _retraining(self) -> Iterator[Metric]:
        retrainer = getattr(getattr(self.service, "learning", None), "retrainer", None)
        if retrainer is None:
            return
        try:
            runs = [r for r in (retrainer.state().get("runs") or []) if isinstance(r, dict)]
            running = bool(retrainer.running)
        except Exception:  # noqa: BLE001
            log.exception("metrics: the retrainer's history could not be read")
            return
        by_outcome = GaugeMetricFamily("router_retrain_runs", "Automatic retraining runs in the retrainer's "
                                       "history (its last 50), by outcome: promoted (a new selector went live) "
                                       "or kept (the live selector stayed)", labels=["outcome"])
        promoted = [r for r in runs if r.get("promoted")]
        by_outcome.add_metric(["promoted"], float(len(promoted)))
        by_outcome.add_metric(["kept"], float(len(runs) - len(promoted)))
        yield by_outcome
        times = [t for t in (_number(r.get("finished")) for r in promoted) if t is not None]
        if times:
            yield GaugeMetricFamily("router_retrain_last_promotion_timestamp_seconds",
                                    "Unix time the last promoted selector finished its run", value=max(times))
        yield GaugeMetricFamily("router_retrain_running", "1 while an automatic retraining run is in progress",
                                value=1.0 if running else 0.0)

    def _selector(self) -> Iterator[Metric]:
        selector = getattr(self.service, "selector", None)
        if selector is None:
            return
        info = InfoMetricFamily("router_selector", "The live selector")
        info.add_metric([], {"selector": str(getattr(selector, "name", type(selector).__name__))[:120]})
        yield info
