"""Plotly figures the app shows (built here so they are testable without Gradio)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

from routing.pool import ModelPool
from routing.selectors.base import Selection

PICK_COLOUR = "#2563eb"
OTHER_COLOUR = "#94a3b8"

#: The one chart style of the app: transparent backgrounds and a mid-grey text that reads on the
#: light and the dark theme alike (plotly_white painted white boxes into the dark page).
TEMPLATE = "llm_router"
_GREY = "#8b93a1"
_GRID = "rgba(139, 147, 161, 0.25)"
_template = go.layout.Template(pio.templates["plotly_white"])
_template.layout.update(
    paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font=dict(color=_GREY),
    title=dict(font=dict(color=_GREY)), legend=dict(bgcolor="rgba(0,0,0,0)"),
    xaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, automargin=True),
    yaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, automargin=True))
pio.templates[TEMPLATE] = _template


def usd_per_1000(cost_usd: float | None) -> float:
    """A per-prompt cost as dollars per 1,000 such prompts (readable, where per-prompt costs are μ$)."""
    return (cost_usd or 0.0) * 1000


def selection_scores_figure(selection: Selection, pool: ModelPool) -> go.Figure:
    """Bar chart of every model's score for one prompt; the pick highlighted."""
    ids = pool.ids
    names = [pool.get(i).display_name for i in ids]
    values = [selection.scores.get(i, 0.0) for i in ids]
    colours = [PICK_COLOUR if i == selection.selected_model else OTHER_COLOUR for i in ids]
    prices = [pool.get(i).blended_price_per_m for i in ids]
    fig = go.Figure(go.Bar(
        x=names, y=values, marker_color=colours,
        text=[f"{v:.0%}" for v in values], textposition="outside",
        customdata=prices, hovertemplate="%{x}<br>score %{y:.1%}<br>$%{customdata:.3f} per M tokens<extra></extra>",
    ))
    fig.update_layout(
        title=f"Selector scores ({selection.selector}) — pick: {pool.get(selection.selected_model).display_name}",
        yaxis=dict(title="score", range=[0, 1.1], tickformat=".0%"),
        margin=dict(l=40, r=20, t=50, b=40), height=320, template=TEMPLATE,
    )
    return fig


def confusion_matrix_figure(labels: list[str], matrix: list[list[int]], *, title: str = "Confusion matrix",
                            x_title: str = "predicted", y_title: str = "expected") -> go.Figure:
    """Heatmap of counts: rows are the expected labels, columns the predicted ones."""
    fig = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=labels, colorscale="Blues", showscale=False,
        text=[[str(v) for v in row] for row in matrix], texttemplate="%{text}",
        hovertemplate=f"{y_title} %{{y}}<br>{x_title} %{{x}}<br>%{{z}} prompts<extra></extra>",
    ))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, yaxis_autorange="reversed",
                      height=380, margin=dict(l=60, r=20, t=50, b=60), template=TEMPLATE)
    return fig


def loss_curve_figure(history: list[dict]) -> go.Figure:
    """Training and validation loss by step (``[{"step", "train_loss", "val_loss"}, ...]``)."""
    fig = go.Figure()
    for key, name in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        points = [(h["step"], h[key]) for h in history if h.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
    fig.update_layout(title="Loss", xaxis_title="step", yaxis_title="loss", height=320,
                      margin=dict(l=50, r=20, t=50, b=40), template=TEMPLATE)
    return fig
