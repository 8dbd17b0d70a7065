"""Plotly figures for a comparison: points per dimension per model, and score against cost.

Both take a :class:`routing.compare.Comparison`; dimension names and maxima come from
:data:`routing.evaluator.DIMENSIONS` (one source of truth).
"""

from __future__ import annotations

import plotly.graph_objects as go

from routing.compare import Comparison
from routing.evaluator import DIMENSIONS

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
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=40, r=10, t=50, b=40), height=380)
    if not answered:
        fig.add_annotation(text="No model answered", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def score_cost_figure(comparison: Comparison) -> go.Figure:
    """Scatter: x = cost in USD, y = evaluator score (normalised); winner and router's pick marked."""
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
        text = r.model + (f" ({', '.join(tags)})" if tags else "")
        fig.add_trace(go.Scatter(
            x=[r.cost_usd if r.cost_usd is not None else 0.0], y=[r.normalized], mode="markers+text", name=r.model,
            text=[text], textposition="top center", marker=dict(size=16 if tags else 11, symbol=symbol),
            hovertemplate=(f"{r.model}<br>score %{{y:.2f}}<br>cost $%{{x:.6f}}<br>"
                           f"{(r.latency_ms or 0) / 1000:.1f} s<extra></extra>")))
    top_cost = max([r.cost_usd or 0.0 for r in answered] or [0.0]) or 1e-6
    fig.update_layout(title="Score against cost", xaxis=dict(title="cost (USD)", range=[0, top_cost * 1.35]),
                      yaxis=dict(title="evaluator score (0-1)", range=[-0.05, 1.1]), showlegend=False,
                      margin=dict(l=40, r=10, t=50, b=40), height=380)
    if not answered:
        fig.add_annotation(text="No model answered", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


__all__ = ["dimension_bars_figure", "score_cost_figure"]
