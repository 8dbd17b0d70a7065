"""Status tab: which models are reachable, last errors and latencies, the router's settings.

API: /health.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from routing.service import RouterService
from routing.diagnostics.status_table import COLUMN_WIDTHS, COLUMNS, LEGEND, model_rows
from routing.safety.untrusted import md_text
from ui.common import user_errors


def build_status_tab(service: RouterService) -> None:
    @user_errors  # also redacts keys in what it returns
    def check_models() -> tuple[list[list[Any]], dict, str]:
        local = service.local.status() if service.local else None
        return model_rows(service.health(), local), service.status(), spend_line()

    def spend_line() -> str:
        answers = service.learning.summary()["answers"]
        logging_line = (f"🧠 Learning from use this run: {answers['logged']} answers logged, {answers.get('scored', 0)} "
                        f"scored ({answers['waiting']} waiting), {answers['ratings']} ratings." if answers["enabled"]
                        else "🧠 Answers are not logged (ROUTER_LOG_ANSWERS=0).")
        return ("💳 " + md_text(service.ledger.describe()) + ".\n\n🔒 " + md_text(service.access.describe())
                + "\n\n" + md_text(logging_line) + "\n\n🔁 "
                + md_text(service.learning.shadow.describe()) + "\n\n🏋️ "
                + md_text(service.learning.retrainer.describe()))

    with gr.Tab("Status", id="status") as tab:
        gr.Markdown("Which models can be called now (no tokens spent: the provider accepts the key and lists "
                    "the model), and how each last answered when the router asked it: its last error, latency, "
                    "failures in a row and cooldown.\n\n" + LEGEND, elem_id="status-intro")
        sandbox = service.code_sandbox()
        gr.Markdown(("🔒 " if sandbox["available"] else "⚠️ ") + f"**Answer code:** {sandbox['summary']}.",
                    elem_id="status-sandbox")
        spend = gr.Markdown(spend_line(), elem_id="status-spend")
        button = gr.Button("Check models", elem_id="status-button")
        # Columns sized to fit a 1280-px-wide page, tall enough that a pool's rows show without scrolling.
        table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="status-table", wrap=True, max_height=1200,
                             column_widths=[f"{w}px" for _, w in COLUMN_WIDTHS])
        status = gr.JSON(label="Router status")
        button.click(check_models, None, [table, status, spend], api_name="check-models", api_visibility="private")
        # Filled when the tab opens (the probes spend no tokens), not only on a click.
        tab.select(check_models, None, [table, status, spend], api_visibility="private")




def add_status_api(service: RouterService) -> None:
    @user_errors  # also redacts keys in what it returns
    def health() -> list[dict]:
        """Reachability, last error and latency of every pool model."""
        return service.health()

    gr.api(health, api_name="health")
