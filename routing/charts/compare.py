"""Plotly figures for a comparison: points per dimension per model, and score against cost.

Both take a :class:`routing.compare.run.Comparison`; dimension names and maxima come from
:data:`routing.evaluation.evaluator.DIMENSIONS` (one source of truth).
"""

from __future__ import annotations

import plotly.graph_objects as go

from routing.charts.base import TEMPLATE, usd_per_1000
from routing.compare.run import Comparison
from routing.evaluation.evaluator import DIMENSIONS

PENALTY_LABEL = "penalties"


def _label(name: str) -> str:
    return name.replace("_", " ")


def dimension_bars_figure(comparison: Comparison) -> go.Figure:
    """Grouped bars: x = applied dimension (plus the penalty sum), one bar per answered model."""
    answered = [r for r in comparison.results.values() if r.ok and r.scores]
    applied: list[str] = [d for d in DIMENSIONS if any(d in r.max_points for r in answered)]
    show_penalties = any(sum(r.penalties.values()) < 0 for r in answered)
    categories = [_label(d) for d in applied] + ([PENALTY_LABEL] if show_penalties else [])
    fig = go.Figure()
    for r in answered:
        values = [r.scores.get(d, 0.0) for d in applied] + ([sum(r.penalties.values())] if show_penalties else [])
        hover = [f"{r.explanations.get(d, '')}" for d in applied] + (
            [", ".join(f"{k} {v:g}" for k, v in r.penalties.items() if v)] if show_penalties else [])
        fig.add_trace(go.Bar(name=r.model, x=categories, y=values, customdata=hover,
                             hovertemplate="%{x}: %{y:.2f} points<br>%{customdata}<extra>" + r.model + "</extra>"))
    top = max([DIMENSIONS[d] for d in applied] or [1.0])
    bottom = min([0.0] + [sum(r.penalties.values()) for r in answered])
    fig.update_layout(barmode="group", title="Evaluator points per dimension",
                      yaxis=dict(title="points", range=[bottom - 0.2 if bottom < 0 else 0, top * 1.05]),
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=40, r=10, t=50, b=40), height=380,
                      template=TEMPLATE)
    if not answered:
        fig.add_annotation(text="No model answered", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def score_cost_figure(comparison: Comparison) -> go.Figure:
    """Scatter: x = cost per 1,000 such prompts, y = evaluator score (normalised); winner and pick marked.

    Every model is a legend entry; only the winner and the router's pick carry a label on the
    chart (five labels at nearly the same point overlapped), and labels may pass the plot's edge.
    """
    answered = [r for r in comparison.results.values() if r.ok and r.normalized is not None]
    fig = go.Figure()
    for r in answered:
        tags = []
        if r.model == comparison.best_model:
            tags.append("winner")
        if r.model == comparison.selected_model:
            tags.append("router's pick")
        symbol = "star" if r.model == comparison.best_model else (
            "diamond" if r.model == comparison.selected_model else "circle")
        cost = "n/a" if r.cost_usd is None else f"${usd_per_1000(r.cost_usd):.4f} per 1,000 prompts"
        fig.add_trace(go.Scatter(
            x=[usd_per_1000(r.cost_usd)], y=[r.normalized], mode="markers+text" if tags else "markers",
            name=r.model, text=[" + ".join(tags)] if tags else None, textposition="top center", cliponaxis=False,
            marker=dict(size=16 if tags else 11, symbol=symbol),
            hovertemplate=(f"{r.model}<br>score %{{y:.2f}}<br>{cost}<br>"
                           f"{(r.latency_ms or 0) / 1000:.1f} s<extra></extra>")))
    top_cost = max([usd_per_1000(r.cost_usd) for r in answered] or [0.0]) or 1e-3
    fig.update_layout(title="Score against cost",
                      xaxis=dict(title="$ per 1,000 such prompts", range=[-top_cost * 0.05, top_cost * 1.15],
                                 tickformat="$.3~f"),
                      yaxis=dict(title="evaluator score (0-1)", range=[-0.05, 1.15]),
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=40, r=10, t=50, b=40), height=400,
                      template=TEMPLATE)
    if not answered:
        fig.add_annotation(text="No model answered", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


__all__ = ["dimension_bars_figure", "score_cost_figure"]
