"""Gradio UI of the LLM router. UI only: each tab is built in ui/, its logic lives in routing/.

Run ``python app.py``; host and port follow GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, so the
same file runs as a Hugging Face Space. API endpoints (``gradio_client``) are listed in README.md.
"""

from __future__ import annotations

import logging

import gradio as gr

from routing.service import RouterService
from routing.settings import Settings
from routing.validation import max_file_size_bytes
from ui.ask_tab import add_ask_api, build_ask_tab
from ui.batch_tab import add_batch_api, build_batch_tab
from ui.common import Blocks
from ui.compare_tab import add_compare_api, build_compare_tab
from ui.selection_tab import add_selection_api, build_selection_tab
from ui.status_tab import add_status_api, build_status_tab
from ui.training_tab import build_training_tab


def build_demo(service: RouterService | None = None) -> gr.Blocks:
    service = service or RouterService()
    with Blocks(title="LLM Router") as demo:  # gr.Blocks that names the parameter of a refused request
        gr.Markdown("# LLM Router\nEach prompt goes to the model predicted to answer it best for the money — "
                    "and you see why.")
        for warning in service.warnings:
            gr.Markdown(f"⚠️ {warning}")
        if not service.settings.openrouter_api_key:
            gr.Markdown("ℹ️ No `OPENROUTER_API_KEY`: routing decisions are real; answers come from the local "
                        "Gemma 3 270M model, labelled as such.")
        with gr.Tabs():
            build_ask_tab(service)
            build_compare_tab(service)
            build_batch_tab(service)
            build_selection_tab(service)
            build_training_tab(service)
            build_status_tab(service)
        add_ask_api(service)
        add_compare_api(service)
        add_batch_api(service)
        add_selection_api(service)
        add_status_api(service)
    demo.queue(default_concurrency_limit=service.settings.queue_concurrency)
    return demo


def launch_options(settings: Settings) -> dict:
    """Keyword arguments for ``demo.launch`` that follow the settings (app.py and the test harness).

    ``max_file_size`` (ROUTER_BATCH_MAX_MB) makes Gradio refuse a larger upload before it is
    stored, and gradio_client refuse it before sending.
    """
    return {"ssr_mode": False, "max_file_size": max_file_size_bytes(settings.batch_max_mb)}


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    service = RouterService(background=False)
    demo = build_demo(service)
    demo.launch(prevent_thread_lock=True, **launch_options(service.settings))
    service.start_background_work()  # live prices and the local model load once the page is up
    demo.block_thread()


if __name__ == "__main__":
    main()
