"""Plotly figures for the Traffic tab, drawn from the report dict of ``routing.traffic.report``.

Each function returns None where its part of the report is empty (no requests, no spend, no
timings, no fallbacks), so the page hides the chart instead of showing empty axes. Model ids
and causes come from log files: plotly reads a little HTML in every label (``<b>``, ``<a
href>``...), so they are HTML-escaped (plotly shows the entities as the characters).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from routing.charts.base import TEMPLATE
from routing.safety.untrusted import escape_html

_LAYOUT = dict(template=TEMPLATE, height=340, margin=dict(l=60, r=20, t=50, b=50),
               legend=dict(orientation="h", y=-0.2))
CAP_COLOUR = "#c0504d"
#: The daily cap is drawn as a line when the busiest day spent at least this share of it; below, the
#: title gives the share instead (a line far above the bars would flatten them to nothing).
CAP_LINE_FROM = 0.1


def _safe(text: Any) -> str:
    return escape_html(text)


def _days(report: dict[str, Any]) -> list[str]:
    return [d["day"] for d in report["per_day"]]


def requests_figure(report: dict[str, Any]) -> go.Figure | None:
    """Stacked bars: requests per day by the model that answered (hover: its share of the day)."""
    if not report["totals"]["requests"]:
        return None
    days = _days(report)
    totals = [d["requests_total"] for d in report["per_day"]]
    fig = go.Figure()
    for m in [m["model"] for m in report["per_model"] if m["requests"]]:
        counts = [d["requests"].get(m, 0) for d in report["per_day"]]
        shares = [c / t if t else 0.0 for c, t in zip(counts, totals)]
        fig.add_trace(go.Bar(name=_safe(m), x=days, y=counts, customdata=shares,
                             hovertemplate="%{x}: %{y} requests, %{customdata:.0%} of the day"))
    fig.update_layout(barmode="stack", title="Requests per day, by the model that answered",
                      xaxis=dict(type="category", title="UTC day"), yaxis=dict(title="requests", rangemode="tozero"),
                      **_LAYOUT)
    return fig


def cost_figure(report: dict[str, Any]) -> go.Figure | None:
    """Stacked bars: the spend ledger's dollars per day by model; the daily cap as a line when set."""
    if not report["totals"]["cost_usd"] and not report["totals"]["paid_calls"]:
        return None
    days = _days(report)
    models = [m["model"] for m in report["per_model"] if m["cost_usd"] or m["paid_calls"]]
    fig = go.Figure()
    for m in models:
        fig.add_trace(go.Bar(name=_safe(m), x=days, y=[d["cost_usd"].get(m, 0.0) for d in report["per_day"]],
                             hovertemplate="%{x}: $%{y:.6f}"))
    cap = report["totals"]["daily_cap_usd"]
    top = max((d["cost_total_usd"] for d in report["per_day"]), default=0.0)
    if cap is None:
        title = "Spend per day (no daily cap set)"
    elif cap > 0 and top < CAP_LINE_FROM * cap:   # the cap's line would flatten the bars to nothing
        title = f"Spend per day: the busiest day used {top / cap:.1%} of the ${cap:g} daily cap"
    else:
        title = "Spend per day against the daily cap"
        fig.add_trace(go.Scatter(name=f"daily cap (${cap:g})", x=days, y=[cap] * len(days), mode="lines",
                                 line=dict(color=CAP_COLOUR, dash="dash"), hovertemplate="cap $%{y:.4f}"))
    fig.update_layout(barmode="stack", title=title, xaxis=dict(type="category", title="UTC day"),
                      yaxis=dict(title="USD", rangemode="tozero", tickprefix="$",   # dollars, not "60µ"
                                 tickformat=".6f" if top < 0.01 else ".4f" if top < 1 else ",.2f"), **_LAYOUT)
    return fig


def latency_figure(report: dict[str, Any]) -> go.Figure | None:
    """Grouped bars per model: answer time and time to first token, median and 90th percentile."""
    rows = [m for m in report["per_model"] if m["latency_ms_median"] is not None
            or m["first_token_ms_median"] is not None]
    if not rows:
        return None
    names = [_safe(m["model"]) for m in rows]
    fig = go.Figure()
    for key, label, colour in (("latency_ms_median", "answer, median", "#2563eb"),
                               ("latency_ms_p90", "answer, p90", "#93c5fd"),
                               ("first_token_ms_median", "first token, median", "#16a34a"),
                               ("first_token_ms_p90", "first token, p90", "#86efac")):
        values = [m[key] for m in rows]
        if any(v is not None for v in values):
            fig.add_trace(go.Bar(name=label, x=names, y=values, marker_color=colour,
                                 hovertemplate="%{x}: %{y:,.0f} ms"))
    fig.update_layout(barmode="group", title="Latency per model (successful calls)",
                      xaxis=dict(type="category"), yaxis=dict(title="ms", rangemode="tozero"), **_LAYOUT)
    return fig


def fallbacks_figure(report: dict[str, Any]) -> go.Figure | None:
    """Stacked bars: how often the router went past a model, by cause, stacked by that model."""
    rows = report["fallbacks"]
    if not rows:
        return None
    causes: list[str] = []
    for r in rows:
        if r["label"] not in causes:
            causes.append(r["label"])
    fig = go.Figure()
    for m in dict.fromkeys(r["model"] for r in rows):
        counts = {r["label"]: r["count"] for r in rows if r["model"] == m}
        fig.add_trace(go.Bar(name=_safe(m), x=[_safe(c) for c in causes], y=[counts.get(c, 0) for c in causes],
                             hovertemplate="%{x}: %{y} times"))
    fig.update_layout(barmode="stack", title="Fallbacks: models the router went past, and why", showlegend=True,
                      xaxis=dict(type="category", title="cause"), yaxis=dict(title="times", rangemode="tozero"),
                      **_LAYOUT)
    return fig


__all__ = ["requests_figure", "cost_figure", "latency_figure", "fallbacks_figure"]
