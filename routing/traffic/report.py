"""What the router did over a range of UTC days, from its own records, as one JSON-safe dict.

Sources (all read, nothing written):

* the outcome log (``routing.learning.outcome_log.OutcomeLog.activity``): every answer the app
  gave (``kind = "answer"``: the Ask chat, ``/query``, ``/query-specific``, the gateway) with
  the model that answered and the router's fallbacks (the models tried or passed over first,
  each with its cause), every model call's latency and time to first token (answers, shadow
  and compare-all comparisons), ratings, shadow comparisons;
* the spend ledger (``routing.budget.SpendLedger.spend_by_day``): what was spent per day and
  model (every paid call: answers, compare-all, batch, the judge, shadows), against the daily
  cap (``ROUTER_DAILY_BUDGET_USD``); the shadow ledger for the shadows' own spend;
* the retrainer's history (``routing.learning.retrain.Retrainer.state``): selectors promoted.

"Requests" are answers; a compare-all run is counted on its own line. A request that fell back
is an answer whose fallbacks list is not empty (answers logged before fallbacks were recorded
count as none). An answer given by the local model, or no answer at all, is not in the log, so
neither are its fallbacks.

Privacy: the report holds counts, dollars and milliseconds per model, day and cause; never a
prompt, an answer, an error message, a note, an answer id or an owner. The view shows every
caller's aggregate (as the Status tab's spend line does), so it is the same for everyone.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from routing.errors import UserError

DEFAULT_DAYS = 7
MAX_DAYS = 366

#: What each stored fallback cause (``routing.learning.recorder.fallback_cause``) is called on the page.
CAUSE_LABELS = {
    "rate_limited": "rate limited (429)",
    "timeout": "timed out",
    "server_error": "server error (5xx)",
    "client_error": "request refused (4xx)",
    "key_refused": "key refused (401/402/403)",
    "connection": "connection failed",
    "malformed": "malformed answer",
    "too_large": "answer too large",
    "budget": "daily budget reached",
    "cooldown": "cooling down after failures",
    "deadline": "query deadline reached",
    "no_key": "no key for the model",
    "error": "other error",
}

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DateRange:
    """UTC days ``first`` to ``last``, both included."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> list[str]:
        return [(self.first + dt.timedelta(days=i)).isoformat() for i in range((self.last - self.first).days + 1)]

    @property
    def since(self) -> float:
        """The first day's 00:00 UTC, as a Unix time."""
        return dt.datetime.combine(self.first, dt.time(), dt.timezone.utc).timestamp()

    @property
    def until(self) -> float:
        """The day after the last one, 00:00 UTC (not included)."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), dt.timezone.utc).timestamp()


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def parse_day(value: Any, name: str) -> dt.date | None:
    """A UTC day from ``YYYY-MM-DD`` text (or a ``date``); None when empty. UserError otherwise."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise UserError(f"`{name}` must be a date written YYYY-MM-DD (a UTC day), or empty; "
                        f"got {type(value).__name__}.")
    text = value.strip()
    if not text:
        return None
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    if not _DAY.fullmatch(text):
        raise UserError(f"`{name}` {shown} is not a date: write it as YYYY-MM-DD (a UTC day), e.g. 2026-05-28.")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"`{name}` {shown} is not a day of the calendar: write a real date as YYYY-MM-DD, "
                        "e.g. 2026-05-28.") from None


def parse_range(start: Any = "", end: Any = "", *, today: dt.date | None = None) -> DateRange:
    """The range of UTC days to report. ``end`` defaults to today (UTC), ``start`` to the
    :data:`DEFAULT_DAYS` days ending at ``end``. UserError when a date cannot be read, ``end``
    is before ``start``, or the range is longer than :data:`MAX_DAYS` days."""
    first, last = parse_day(start, "start"), parse_day(end, "end")
    last_default = last is None
    last = last or today or _today()
    first = first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        which = "today (UTC), the default" if last_default else "the `end` given"
        raise UserError(f"`end` ({last.isoformat()}, {which}) is before `start` ({first.isoformat()}): give an end "
                        "on or after the start.")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise UserError(f"The range {first.isoformat()} to {last.isoformat()} is {days} days; at most {MAX_DAYS} "
                        "days can be shown at once. Choose a shorter range.")
    return DateRange(first, last)


# --------------------------------------------------------------------------- aggregation

def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _stats(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(median, 90th percentile), rounded to 0.1 ms; (None, None) for no values."""
    if not values:
        return None, None
    median, p90 = np.percentile(np.asarray(values, dtype=float), [50, 90])
    return round(float(median), 1), round(float(p90), 1)


def _day_of(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).date().isoformat()


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def cause_label(cause: str) -> str:
    return CAUSE_LABELS.get(cause, cause)


def build_report(activity: Mapping[str, Sequence[Mapping[str, Any]]], spend: Iterable[Mapping[str, Any]],
                 days: DateRange, *, daily_cap_usd: float | None = None,
                 shadow_spend: Iterable[Mapping[str, Any]] | None = None,
                 retrain_runs: Iterable[Mapping[str, Any]] = (), notes: Sequence[str] = ()) -> dict[str, Any]:
    """The report for ``days`` from plain records: ``activity`` (``OutcomeLog.activity`` for the
    range), ``spend`` and ``shadow_spend`` (``SpendLedger.spend_by_day`` rows; None: no shadow
    ledger), ``retrain_runs`` (the retrainer's run records). Rows outside the range are ignored."""
    day_list = days.days
    in_range = set(day_list)
    since, until = days.since, days.until

    requests: Counter = Counter()
    requests_by_day: dict[str, Counter] = {d: Counter() for d in day_list}
    latency: dict[str, list[float]] = defaultdict(list)
    first_token: dict[str, list[float]] = defaultdict(list)
    failed_calls: Counter = Counter()
    fell_back = 0
    fell_back_by_day: Counter = Counter()
    rescued: Counter = Counter()           # answers a model gave after the router went past another
    fallback_pairs: Counter = Counter()    # (cause, model passed over)
    fallbacks_from: Counter = Counter()
    unknown_fallbacks = 0
    kinds: Counter = Counter()
    shadow_calls: Counter = Counter()
    shadow_log_cost = 0.0

    for c in activity.get("comparisons") or []:
        at = _finite(c.get("created_at"))
        if at is None or not since <= at < until:
            continue
        day, kind = _day_of(at), str(c.get("kind") or "compare")
        kinds[kind] += 1
        results = list(c.get("results") or [])
        for r in results:
            model = str(r.get("model"))
            if r.get("failed"):
                failed_calls[model] += 1
                continue
            ms = _finite(r.get("latency_ms"))
            if ms is not None:
                latency[model].append(ms)
            ms = _finite(r.get("first_token_ms"))
            if ms is not None:
                first_token[model].append(ms)
        if kind == "shadow":
            for r in results[1:]:            # the first is the routed answer being shadowed
                shadow_calls[str(r.get("model"))] += 1
                shadow_log_cost += _finite(r.get("cost_usd")) or 0.0
            continue
        if kind != "answer":
            continue
        answered = next((str(r.get("model")) for r in results if not r.get("failed")), None)
        if answered is None:
            continue
        requests[answered] += 1
        requests_by_day[day][answered] += 1
        fallbacks = c.get("fallbacks")
        if fallbacks is None:
            unknown_fallbacks += 1
        elif fallbacks:
            fell_back += 1
            fell_back_by_day[day] += 1
            rescued[answered] += 1
            for f in fallbacks:
                if isinstance(f, Mapping):
                    model, cause = str(f.get("model") or "?"), str(f.get("cause") or "error")
                    fallback_pairs[(cause, model)] += 1
                    fallbacks_from[model] += 1

    up: Counter = Counter()
    down: Counter = Counter()
    better: Counter = Counter()
    ratings_by_day: dict[str, dict[str, int]] = {d: {"up": 0, "down": 0} for d in day_list}
    for r in activity.get("ratings") or []:
        at = _finite(r.get("created_at"))
        if at is None or not since <= at < until:
            continue
        model, verdict = str(r.get("model")), int(r.get("rating") or 0)
        if verdict > 0:
            up[model] += 1
            ratings_by_day[_day_of(at)]["up"] += 1
        elif verdict < 0:
            down[model] += 1
            ratings_by_day[_day_of(at)]["down"] += 1
        if r.get("better_model"):
            better[str(r["better_model"])] += 1

    cost: Counter = Counter()
    paid_calls: Counter = Counter()
    cost_by_day: dict[str, Counter] = {d: Counter() for d in day_list}
    for row in spend:
        if row.get("day") not in in_range:
            continue
        model, amount = str(row.get("model")), _finite(row.get("usd")) or 0.0
        cost[model] += amount
        paid_calls[model] += int(row.get("calls") or 0)
        cost_by_day[row["day"]][model] += amount
    shadow_cost = None
    if shadow_spend is not None:
        shadow_cost = sum(_finite(r.get("usd")) or 0.0 for r in shadow_spend if r.get("day") in in_range)
    elif shadow_calls:
        shadow_cost = shadow_log_cost

    promotions, kept = [], 0
    for run in retrain_runs or []:
        at = _finite(run.get("finished")) or _finite(run.get("started"))
        if at is None or not since <= at < until:
            continue
        if run.get("promoted"):
            promotions.append({"at": _iso(at), "day": _day_of(at), "selector": run.get("selector") or None,
                               "strategy": run.get("strategy") or None, "reason": run.get("reason") or None,
                               "rows": run.get("rows")})
        else:
            kept += 1

    cap = _finite(daily_cap_usd) if daily_cap_usd is not None else None
    total_requests = sum(requests.values())
    models = set(requests) | set(cost) | set(latency) | set(first_token) | set(fallbacks_from) | set(up) | set(down)
    order = sorted(models, key=lambda m: (-requests[m], -cost[m], m))
    per_model = []
    for m in order:
        lat_median, lat_p90 = _stats(latency.get(m, []))
        ft_median, ft_p90 = _stats(first_token.get(m, []))
        per_model.append({
            "model": m, "requests": requests[m],
            "share": round(requests[m] / total_requests, 4) if total_requests else 0.0,
            "cost_usd": round(cost[m], 8), "paid_calls": paid_calls[m],
            "latency_ms_median": lat_median, "latency_ms_p90": lat_p90, "timed_calls": len(latency.get(m, [])),
            "first_token_ms_median": ft_median, "first_token_ms_p90": ft_p90,
            "failed_calls": failed_calls[m], "fallbacks_from": fallbacks_from[m],
            "answered_after_fallback": rescued[m], "ratings_up": up[m], "ratings_down": down[m],
            "named_better": better[m],
        })
    per_day = []
    for d in day_list:
        spent = float(sum(cost_by_day[d].values()))
        per_day.append({"day": d, "requests": dict(sorted(requests_by_day[d].items())),
                        "requests_total": sum(requests_by_day[d].values()),
                        "cost_usd": {m: round(v, 8) for m, v in sorted(cost_by_day[d].items())},
                        "cost_total_usd": round(spent, 8), "over_cap": cap is not None and spent > cap + 1e-12,
                        "fell_back": fell_back_by_day[d], "ratings_up": ratings_by_day[d]["up"],
                        "ratings_down": ratings_by_day[d]["down"]})
    fallback_rows = [{"cause": cause, "label": cause_label(cause), "model": model, "count": n}
                     for (cause, model), n in sorted(fallback_pairs.items(), key=lambda kv: (-kv[1], kv[0]))]
    by_cause: Counter = Counter()
    for (cause, _model), n in fallback_pairs.items():
        by_cause[cause] += n
    empty = not (kinds or any(cost.values()) or any(paid_calls.values()) or up or down or better)
    return {
        "range": {"start": days.first.isoformat(), "end": days.last.isoformat(), "days": len(day_list)},
        "empty": empty,
        "totals": {
            "requests": total_requests, "models": sum(1 for m in requests if requests[m]),
            "cost_usd": round(float(sum(cost.values())), 8), "paid_calls": sum(paid_calls.values()),
            "daily_cap_usd": cap, "days_over_cap": sum(1 for d in per_day if d["over_cap"]),
            "fell_back": fell_back, "fallback_share": round(fell_back / total_requests, 4) if total_requests else 0.0,
            "fallbacks": sum(fallback_pairs.values()),
            "fallbacks_by_cause": {c: n for c, n in sorted(by_cause.items(), key=lambda kv: (-kv[1], kv[0]))},
            "answers_without_fallback_record": unknown_fallbacks,
            "ratings_up": sum(up.values()), "ratings_down": sum(down.values()),
            "named_better": sum(better.values()),
            "shadows": kinds["shadow"], "shadow_calls": sum(shadow_calls.values()),
            "shadow_cost_usd": None if shadow_cost is None else round(shadow_cost, 8),
            "compare_runs": kinds["compare"], "promotions": len(promotions), "retrain_runs_kept": kept,
        },
        "per_model": per_model,
        "per_day": per_day,
        "fallbacks": fallback_rows,
        "shadows": {"runs": kinds["shadow"], "calls": dict(sorted(shadow_calls.items())),
                    "cost_usd": None if shadow_cost is None else round(shadow_cost, 8)},
        "promotions": promotions,
        "notes": list(notes),
    }


# --------------------------------------------------------------------------- from a running app

def service_report(service: Any, start: Any = "", end: Any = "", *, today: dt.date | None = None) -> dict[str, Any]:
    """The report for a :class:`routing.service.RouterService` (its outcome log, spend ledgers,
    retrainer and daily cap) over ``start`` to ``end`` (:func:`parse_range`)."""
    days = parse_range(start, end, today=today)
    notes: list[str] = []
    try:
        activity = service.outcome_log.activity(days.since, days.until)
    except sqlite3.Error as exc:
        notes.append(f"The outcome log could not be read ({type(exc).__name__}): requests, latencies, fallbacks "
                     "and ratings are missing.")
        activity = {"comparisons": [], "ratings": []}
    spend = _spend_rows(service.ledger, days, notes, "spend ledger")
    learning = getattr(service, "learning", None)
    shadow = getattr(learning, "shadow", None)
    shadow_spend = None
    shadow_ledger = getattr(shadow, "ledger", None)
    if shadow_ledger is not None and shadow_ledger.path is not None and shadow_ledger.path.exists():
        shadow_spend = _spend_rows(shadow_ledger, days, notes, "shadow spend ledger")
    retrainer = getattr(learning, "retrainer", None)
    runs = (retrainer.state().get("runs") or []) if retrainer is not None else []
    return build_report(activity, spend, days, daily_cap_usd=service.settings.daily_budget_usd,
                        shadow_spend=shadow_spend, retrain_runs=runs, notes=notes)


def _spend_rows(ledger: Any, days: DateRange, notes: list[str], what: str) -> list[dict[str, Any]]:
    try:
        return ledger.spend_by_day(days.first.isoformat(), days.last.isoformat())
    except (sqlite3.Error, OSError) as exc:
        notes.append(f"The {what} could not be read ({type(exc).__name__}): its costs are missing.")
        return []
