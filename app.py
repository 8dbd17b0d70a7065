"""Gradio UI of the LLM router. UI only: each tab is built in ui/, its logic lives in routing/.

Run ``python app.py``; host and port follow GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, so the
same file runs as a Hugging Face Space. API endpoints (``gradio_client``) are listed in README.md.
The same process and port serve the OpenAI-compatible gateway (``/v1/*``, see ``gateway/``) and
the operations endpoints (``/healthz``, ``/readyz``, ``/metrics``, ``gateway/ops.py``): a FastAPI
app holds their routes and the Gradio demo is mounted at ``/``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import gradio as gr
from fastapi import FastAPI

from gateway import exposure_warning, gateway_router, install_error_handlers
from gateway.ops import install_request_metrics, ops_router

from routing.service import RouterService
from routing.settings import Settings
from routing.safety.validation import max_file_size_bytes
from ui.ask_tab import add_ask_api, build_ask_tab
from ui.batch_tab import add_batch_api, build_batch_tab
from ui.common import Blocks
from ui.compare_tab import add_compare_api, build_compare_tab
from ui.pool_tab import add_pool_api, build_pool_tab
from ui.routes_tab import add_routes_api, build_routes_tab
from ui.selection_tab import add_selection_api, build_selection_tab
from ui.status_tab import add_status_api, build_status_tab
from ui.traffic_tab import add_traffic_api, build_traffic_tab
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
        elif service.access.mode == "signed-in":
            gr.Markdown("🔒 Paid models answer signed-in callers here (`ROUTER_PAID_ACCESS`); anyone else gets "
                        "routing decisions and the local model's answers, or can paste their own OpenRouter key "
                        "in the Ask tab.")
        if service.settings.hf_oauth:  # a Space with `hf_oauth: true`: Hugging Face sign-in names the visitor
            gr.LoginButton()
        with gr.Tabs():
            loads = [build_ask_tab(service)]
            loads.append(build_compare_tab(service))
            build_batch_tab(service)
            build_selection_tab(service)
            build_training_tab(service)
            build_pool_tab(service)
            build_routes_tab(service)
            build_status_tab(service)
            build_traffic_tab(service)
        for load in loads:   # model lists follow the live pool (the Pool tab reloads it without a restart)
            demo.load(load.fn, None, load.outputs, api_visibility="private", queue=False, show_progress="hidden")
        add_ask_api(service)
        add_compare_api(service)
        add_batch_api(service)
        add_selection_api(service)
        add_pool_api(service)
        add_routes_api(service)
        add_status_api(service)
        add_traffic_api(service)
    demo.queue(default_concurrency_limit=service.settings.queue_concurrency)
    return demo


#: The page's own CSS (Gradio 6 takes it at launch / mount). A turn's routing note in the Ask chat
#: gets no button row of its own: the answer under it has the copy, retry and 👍 / 👎 buttons, once;
#: an answer that cannot be rated (ui.ask_tab.UNRATED_MARK, the local model's) shows no 👍 / 👎.
PAGE_CSS = """
#ask-chat .message:has(.thought-group) + .message-buttons { display: none; }
#ask-chat .placeholder-content { padding-top: 2.5rem; }
#ask-chat .message:has(.router-unrated) + .message-buttons button[aria-label="Like"],
#ask-chat .message:has(.router-unrated) + .message-buttons button[aria-label="Dislike"] { display: none; }
"""


def launch_options(settings: Settings) -> dict:
    """Keyword arguments for ``demo.launch`` that follow the settings (app.py and the test harness).

    ``max_file_size`` (ROUTER_BATCH_MAX_MB) makes Gradio refuse a larger upload before it is
    stored, and gradio_client refuse it before sending. ``auth`` (ROUTER_UI_USERS) puts the page
    and the Gradio API behind Gradio's login; the signed-in name is the caller the paid-access
    rule (routing/safety/access.py) knows.
    """
    options = {"ssr_mode": False, "max_file_size": max_file_size_bytes(settings.batch_max_mb), "css": PAGE_CSS}
    if settings.ui_users:
        options["auth"] = [tuple(pair) for pair in settings.ui_users]
        options["auth_message"] = "Sign in to use this LLM router."
    return options


def server_address() -> tuple[str, int]:
    """Host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860)."""
    host = (os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip()
    port = int((os.environ.get("GRADIO_SERVER_PORT") or "7860").strip())
    return host, port


def build_app(service: RouterService, demo: gr.Blocks | None = None) -> FastAPI:
    """One ASGI app: the gateway's ``/v1`` routes, ``/healthz``, ``/readyz`` and ``/metrics``
    (gateway/ops.py), and the Gradio demo mounted at ``/``; every request counted in the metrics."""
    api = FastAPI(title="LLM Router gateway", docs_url=None, redoc_url=None, openapi_url=None)
    api.include_router(gateway_router(service))
    api.include_router(ops_router(service))
    install_error_handlers(api)
    install_request_metrics(api, service)
    demo = demo or build_demo(service)  # build_demo has already called demo.queue(...)
    app = gr.mount_gradio_app(api, demo, path="/", **launch_options(service.settings))
    # Gradio checks that a file parameter names a file uploaded to its upload folder only once the
    # demo "has launched", which mount_gradio_app never says: without this, a raw API call naming
    # /etc/passwd (or /proc/self/environ) had Gradio copy that file into its upload cache, where
    # /gradio_api/file= serves it to anyone. Gradio's own reload path (swap_blocks) sets the same
    # flag. The handlers then accept only files this server received as uploads (ui.batch_tab.uploaded_path).
    demo.has_launched = True
    return app


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    host, port = server_address()
    service = RouterService(background=False)
    warning = exposure_warning(service.settings, host)
    if warning:
        logging.getLogger("app").warning(warning)
        service.add_warning(warning)  # before the page is built, so it shows there
    app = build_app(service)
    # Live prices and the local model load start once the server answers, so they do not slow
    # the first page down.
    threading.Thread(target=_after_serving, args=(host, port, service.start_background_work), daemon=True,
                     name="start-background-work").start()
    uvicorn.run(app, host=host, port=port)


def _after_serving(host: str, port: int, then, timeout_s: float = 120.0) -> None:
    """Call ``then()`` as soon as ``host:port`` accepts connections (or after ``timeout_s``)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((target, port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    then()


if __name__ == "__main__":
    main()
