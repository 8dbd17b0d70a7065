"""Plotly figures the app shows (built here so they are testable without Gradio)."""

from __future__ import annotations

import plotly.graph_objects as go

from routing.pool import ModelPool
from routing.selectors.base import Selection

PICK_COLOUR = "#2563eb"
OTHER_COLOUR = "#94a3b8"


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
        margin=dict(l=40, r=20, t=50, b=40), height=320, template="plotly_white",
    )
    return fig
