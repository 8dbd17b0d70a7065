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


#: Label anchors of the score-against-cost chart keep at least this far from each other and from every
#: point, in units of the axes' ranges (each normalised to 0..1).
LABEL_GAP = 0.09
#: Where a label may go from its point, in :data:`LABEL_GAP` steps (x, y), tried in this order: above,
#: below, twice as far above or below, then to the sides (a label is wider than it is tall).
_LABEL_OFFSETS = ((0.0, 1.2), (0.0, -1.2), (0.0, 2.4), (0.0, -2.4), (1.8, 1.2), (-1.8, 1.2), (1.8, -1.2),
                  (-1.8, -1.2), (0.0, 3.6), (0.0, -3.6))


def place_labels(points: list[tuple[float, float]], labelled: list[int]) -> dict[int, tuple[float, float]]:
    """Where each labelled point's label goes (normalised 0..1 coordinates), deterministically.

    Each label takes the first offset of :data:`_LABEL_OFFSETS` that keeps it on the chart and at
    least :data:`LABEL_GAP` from every point and every label placed before it; when none does
    (a crowd), the one farthest from them. Points that coincide get labels on different sides.
    """
    placed: dict[int, tuple[float, float]] = {}
    for index in labelled:
        x, y = points[index]
        others = list(points) + list(placed.values())
        best, best_room = None, -1.0
        for dx, dy in _LABEL_OFFSETS:
            spot = (x + dx * LABEL_GAP, y + dy * LABEL_GAP)
            if not (0.0 <= spot[0] <= 1.0 and 0.0 <= spot[1] <= 1.0):
                continue
            room = min(((spot[0] - a) ** 2 + (spot[1] - b) ** 2) ** 0.5 for a, b in others)
            if room >= LABEL_GAP:
                best = spot
                break
            if room > best_room:
                best, best_room = spot, room
        placed[index] = best if best is not None else (x, min(1.0, y + LABEL_GAP))
    return placed


def score_cost_figure(comparison: Comparison) -> go.Figure:
    """Scatter: x = cost per 1,000 such prompts, y = evaluator score (normalised); winner and pick marked.

    Every model is a legend entry (and its name is in the hover); only the winner and the router's
    pick carry a label, an annotation with an arrow to its point placed by :func:`place_labels`, so
    labels never sit on each other, nor on a point, when points are close or coincide.
    """
    answered = [r for r in comparison.results.values() if r.ok and r.normalized is not None]
    top_cost = max([usd_per_1000(r.cost_usd) for r in answered] or [0.0]) or 1e-3
    x_range, y_range = (-top_cost * 0.05, top_cost * 1.15), (-0.05, 1.15)
    fig = go.Figure()
    points: list[tuple[float, float]] = []
    labels: dict[int, str] = {}
    for r in answered:
        tags = []
        if r.model == comparison.best_model:
            tags.append("winner")
        if r.model == comparison.selected_model:
            tags.append("router's pick")
        symbol = "star" if r.model == comparison.best_model else (
            "diamond" if r.model == comparison.selected_model else "circle")
        cost = "n/a" if r.cost_usd is None else f"${usd_per_1000(r.cost_usd):.4f} per 1,000 prompts"
        x = usd_per_1000(r.cost_usd)
        if tags:
            labels[len(points)] = " + ".join(tags)
        points.append(((x - x_range[0]) / (x_range[1] - x_range[0]),
                       (r.normalized - y_range[0]) / (y_range[1] - y_range[0])))
        fig.add_trace(go.Scatter(
            x=[x], y=[r.normalized], mode="markers", name=r.model, cliponaxis=False,
            marker=dict(size=16 if tags else 11, symbol=symbol),
            hovertemplate=(f"{r.model}<br>score %{{y:.2f}}<br>{cost}<br>"
                           f"{(r.latency_ms or 0) / 1000:.1f} s<extra></extra>")))
    for index, (nx, ny) in place_labels(points, list(labels)).items():
        trace = fig.data[index]
        fig.add_annotation(x=trace.x[0], y=trace.y[0], text=labels[index], showarrow=True, arrowhead=0,
                           arrowwidth=1, standoff=9, axref="x", ayref="y",
                           ax=x_range[0] + nx * (x_range[1] - x_range[0]),
                           ay=y_range[0] + ny * (y_range[1] - y_range[0]))
    fig.update_layout(title="Score against cost",
                      xaxis=dict(title="$ per 1,000 such prompts", range=list(x_range), tickformat="$.3~f"),
                      yaxis=dict(title="evaluator score (0-1)", range=list(y_range)),
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=40, r=10, t=50, b=40), height=400,
                      template=TEMPLATE)
    if not answered:
        fig.add_annotation(text="No model answered", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


__all__ = ["dimension_bars_figure", "score_cost_figure", "place_labels", "LABEL_GAP"]
