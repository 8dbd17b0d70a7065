"""The Traffic view: what the router did over a range of UTC days, from the app's own records.

- ``report``: the date range (validated) and the aggregation of the outcome log (answers, fallbacks
  and their causes, latencies, ratings, shadows), the spend ledgers and the retrainer's promotions
  into one JSON-safe dict (counts, costs and times only: never a prompt, answer or error text);
- ``display``: that dict as the one-line totals, the per-model table and the promotions list.

The figures are drawn by ``routing.charts.traffic``; the tab and the ``/traffic`` API are in
``ui/traffic_tab.py``.
"""

from routing.traffic.report import DEFAULT_DAYS, MAX_DAYS, DateRange, build_report, parse_range, service_report

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "DateRange", "build_report", "parse_range", "service_report"]
