"""Plotly figures for batch results and selection testing, drawn from their summary dicts.

The figures only read the dicts :func:`routing.batch.rows.summarize` and
:func:`routing.diagnostics.selection_test.run_selection_test` return, so API users get the same numbers.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from routing.batch.money import dollars
from routing.charts.base import TEMPLATE
from routing.pool import ModelPool

_LAYOUT = dict(template=TEMPLATE, height=320, margin=dict(l=50, r=20, t=50, b=50))


def _name(pool: ModelPool | None, model_id: str) -> str:
    if pool is None:
        return model_id
    try:
        return pool.get(model_id).display_name
    except Exception:  # noqa: BLE001 - ids outside the pool (e.g. the local answerer) stay as they are
        return model_id


def traffic_share_figure(summary: dict[str, Any], pool: ModelPool | None = None) -> go.Figure:
    """Bars: share of the batch's rows routed to each model."""
    share = summary.get("traffic_share") or {}
    counts = summary.get("traffic") or {}
    ids = list(share)
    fig = go.Figure(go.Bar(
        x=[_name(pool, m) for m in ids], y=[share[m] * 100 for m in ids],
        text=[f"{share[m]:.0%} ({counts.get(m, 0)})" for m in ids], textposition="auto",
        hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
    ))
    fig.update_layout(title="Where the traffic went", yaxis_title="% of routed rows", yaxis_range=[0, 100],
                      **_LAYOUT)
    return fig


def confidence_histogram_figure(summary: dict[str, Any]) -> go.Figure:
    """Histogram of the selector's confidence over the batch (from the summary's bins)."""
    conf = summary.get("confidence") or {}
    edges = conf.get("bin_edges") or []
    counts = conf.get("counts") or []
    labels = [f"{edges[i]:.1f}–{edges[i + 1]:.1f}" for i in range(len(counts))]
    fig = go.Figure(go.Bar(x=labels, y=counts, hovertemplate="confidence %{x}: %{y} rows<extra></extra>"))
    mean = conf.get("mean")
    title = "Selector confidence" + (f" (mean {mean:.2f})" if mean is not None else "")
    fig.update_layout(title=title, xaxis_title="confidence", yaxis_title="rows", bargap=0.05, **_LAYOUT)
    return fig


def cost_comparison_figure(summary: dict[str, Any], pool: ModelPool | None = None) -> go.Figure:
    """Bars: estimated cost of the routed batch against all-to-priciest, all-to-cheapest and (where the
    pool carries public ratings) all-to-the-best-rated model."""
    c = summary.get("cost_estimate_usd") or {}
    labels = ["Routed", f"All to {_name(pool, c.get('priciest_model', '?'))}",
              f"All to {_name(pool, c.get('cheapest_model', '?'))}"]
    values = [c.get("routed", 0.0), c.get("all_priciest", 0.0), c.get("all_cheapest", 0.0)]
    colours = ["#2b7bba", "#c0504d", "#6aa84f"]
    if c.get("best_rated_model"):   # the pool's best-rated model (public ratings) for every prompt
        labels.append(f"All to {_name(pool, c['best_rated_model'])} (best rated)")
        values.append(c.get("all_best_rated", 0.0))
        colours.append("#8e6bbf")
    shown = [dollars(v) for v in values]          # $0.0000172, not $0.0000
    fig = go.Figure(go.Bar(x=labels, y=values, text=shown, textposition="auto", customdata=shown,
                           marker_color=colours,
                           hovertemplate="%{x}: %{customdata}<extra></extra>"))
    fig.update_layout(title="Estimated cost of this batch", yaxis_title="USD",
                      yaxis_range=[0, max(values + [1e-9]) * 1.15], **_LAYOUT)
    return fig


def confusion_matrix_figure(result: dict[str, Any], pool: ModelPool | None = None) -> go.Figure:
    """Heatmap of expected (rows) against selected (columns) models for one selector."""
    cm = result.get("confusion") or {}
    labels = [_name(pool, m) for m in cm.get("labels", [])]
    matrix = cm.get("matrix", [])
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}",
                               hovertemplate="expected %{y}, selected %{x}: %{z}<extra></extra>"))
    acc = result.get("accuracy")
    title = f"{result.get('selector', 'selector')}: confusion matrix" + (f" (accuracy {acc:.0%})" if acc is not None else "")
    fig.update_layout(title=title, xaxis_title="selected", yaxis_title="expected", yaxis_autorange="reversed",
                      template=TEMPLATE, height=380, margin=dict(l=110, r=20, t=50, b=90))
    return fig


__all__ = ["traffic_share_figure", "confidence_histogram_figure", "cost_comparison_figure",
           "confusion_matrix_figure"]


def calibration_figure(calibration: dict[str, Any]) -> go.Figure:
    """Estimated cost per 1,000 prompts against predicted quality over the cost knob; the pick marked."""
    curve = calibration.get("curve") or []
    fig = go.Figure()
    if not curve:
        return fig
    fig.add_trace(go.Scatter(x=[c["cost_per_1k"] for c in curve], y=[c["predicted_quality"] for c in curve],
                             mode="lines+markers", name="cost knob 0 → 1",
                             text=[f"weight {c['cost_weight']:.3f}, {c['priciest_share']:.0%} to the priciest"
                                   for c in curve], hovertemplate="$%{x:.4f} per 1k · quality %{y:.3f}<br>%{text}"))
    if calibration.get("target") == "cost_per_1k":
        fig.add_vline(x=calibration["limit"], line_dash="dot", line_color="grey",
                      annotation_text=f"budget ${calibration['limit']:g} per 1k")
    if calibration.get("cost_weight") is not None:
        point = next(c for c in curve if c["cost_weight"] == calibration["cost_weight"])
        fig.add_trace(go.Scatter(x=[point["cost_per_1k"]], y=[point["predicted_quality"]], mode="markers+text",
                                 name="chosen", text=[f"weight {point['cost_weight']:.3f}"],
                                 textposition="top center", marker={"size": 13, "symbol": "star"}))
    fig.update_layout(title="Calibrating the cost knob on your prompts", xaxis_title="estimated $ per 1,000 prompts",
                      yaxis_title="predicted quality (selector score)", **_LAYOUT)
    return fig
