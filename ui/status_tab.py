"""Status tab: which models are reachable, last errors and latencies, the router's settings.

API: /health.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from routing.service import RouterService
from routing.untrusted import md_text
from ui.common import user_errors


def build_status_tab(service: RouterService) -> None:
    @user_errors  # also redacts keys in what it returns
    def check_models() -> tuple[list[list[Any]], dict, str]:
        rows = service.health()
        table = [[r["model"], r["provider"], "yes" if r["reachable"] else "no",
                  r.get("probe_latency_ms"), r.get("probe_error") or r.get("last_error") or "",
                  r.get("last_latency_ms"), r.get("consecutive_failures"), r.get("cooldown_left_s"),
                  f"{r['price_per_m_in']:.3f} / {r['price_per_m_out']:.3f} ({r['price_source']})"]
                 for r in rows]
        return table, service.status(), spend_line()

    def spend_line() -> str:
        return "💳 " + md_text(service.ledger.describe()) + "."

    with gr.Tab("Status", id="status") as tab:
        gr.Markdown("Which models are reachable now (no tokens spent: the provider's model listing and key "
                    "check), with each model's last error and latency as seen by the router.")
        sandbox = service.code_sandbox()
        gr.Markdown(("🔒 " if sandbox["available"] else "⚠️ ") + f"**Answer code:** {sandbox['summary']}.",
                    elem_id="status-sandbox")
        spend = gr.Markdown(spend_line(), elem_id="status-spend")
        button = gr.Button("Check models", elem_id="status-button")
        table = gr.Dataframe(headers=["model", "provider", "reachable", "probe ms", "error", "last answer ms",
                                      "failures in a row", "cooldown s", "price $/M in / out"],
                             interactive=False, elem_id="status-table")
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
