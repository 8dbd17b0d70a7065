"""Traffic tab: what the router did over a range of UTC days (requests per model, spend against the
cap, latency, fallbacks and their causes, ratings, shadows, promotions).

The logic is ``routing.traffic`` (the report) and ``routing.charts.traffic`` (the figures).
Aggregates only: counts, dollars and milliseconds, never a prompt or an answer; the same for
every visitor, like the Status tab's spend line. API: /traffic.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from routing.charts.traffic import cost_figure, fallbacks_figure, latency_figure, requests_figure
from routing.service import RouterService
from routing.traffic import DEFAULT_DAYS, MAX_DAYS, service_report
from routing.traffic.display import TABLE_COLUMNS, promotions_markdown, table_rows, totals_markdown
from ui.common import user_errors


def _shown(value: Any) -> dict:
    return gr.update(value=value, visible=value is not None)


def build_traffic_tab(service: RouterService) -> None:
    @user_errors  # bad dates become a message naming the field; keys redacted
    def show(start: str, end: str) -> tuple:
        report = service_report(service, start, end)
        rows = table_rows(report)
        table = (gr.update(value=pd.DataFrame(rows, columns=TABLE_COLUMNS), visible=True) if rows
                 else gr.update(value=None, visible=False))
        return (totals_markdown(report), table, _shown(requests_figure(report)), _shown(cost_figure(report)),
                _shown(latency_figure(report)), _shown(fallbacks_figure(report)), promotions_markdown(report))

    with gr.Tab("Traffic", id="traffic") as tab:
        gr.Markdown(f"What the router did, day by day (UTC): requests and each model's share, spend against the "
                    f"daily cap, latency, fallbacks and why, ratings, shadow comparisons and selector promotions. "
                    f"Counts, costs and times only, never prompts. Empty dates: the last {DEFAULT_DAYS} days; at "
                    f"most {MAX_DAYS} days at once.")
        with gr.Row():
            start = gr.Textbox(label="From (UTC day)", placeholder=f"YYYY-MM-DD (empty: {DEFAULT_DAYS - 1} days "
                               "before the end)", elem_id="traffic-start", max_lines=1)
            end = gr.Textbox(label="To (UTC day, included)", placeholder="YYYY-MM-DD (empty: today)",
                             elem_id="traffic-end", max_lines=1)
            button = gr.Button("Show", elem_id="traffic-button", scale=0)
        totals = gr.Markdown(elem_id="traffic-totals")
        table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, visible=False, wrap=True,
                             elem_id="traffic-table")
        with gr.Row():
            requests = gr.Plot(label="Requests per day", visible=False, elem_id="traffic-requests")
            cost = gr.Plot(label="Spend per day", visible=False, elem_id="traffic-cost")
        with gr.Row():
            latency = gr.Plot(label="Latency", visible=False, elem_id="traffic-latency")
            fallbacks = gr.Plot(label="Fallbacks", visible=False, elem_id="traffic-fallbacks")
        promotions = gr.Markdown(elem_id="traffic-promotions")
        outputs = [totals, table, requests, cost, latency, fallbacks, promotions]
        for trigger in (button.click, start.submit, end.submit):
            trigger(show, [start, end], outputs, api_visibility="private")
        tab.select(show, [start, end], outputs, api_visibility="private")  # filled when the tab opens


def add_traffic_api(service: RouterService) -> None:
    @user_errors  # also redacts keys in what it returns
    def traffic(start: str = "", end: str = "") -> dict:
        """What the router did from `start` to `end` (UTC days, YYYY-MM-DD, both included; empty: the last 7
        days, ending today): totals, per model (requests, share, cost, latency and time to first token median
        and p90, fallbacks, ratings), per day (requests and cost by model, over the daily cap or not), fallbacks
        by cause and model, shadows and selector promotions. Counts, costs and times only, never prompts."""
        return service_report(service, start, end)

    gr.api(traffic, api_name="traffic")
