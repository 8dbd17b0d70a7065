"""The whole app launched in-process for API and browser tests.

``with launch_app(service) as url`` launches the Gradio demo alone (``demo.launch``);
``with serve_app(service) as url`` serves what ``python app.py`` serves (the gateway's ``/v1``
routes and the Gradio app at ``/``, one port) with uvicorn on a free port in a thread.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Iterator


@contextlib.contextmanager
def launch_app(service) -> Iterator[str]:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app import build_demo, launch_options

    demo = build_demo(service)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(service.settings))
    try:
        yield url
    finally:
        demo.close()


@contextlib.contextmanager
def serve_app(service, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of the gateway + Gradio app, shut down on exit."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import uvicorn

    from app import build_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A client that keeps a stream open (gradio_client's heartbeat) would hold a graceful shutdown
    # for the whole 10 s join below: after 1 s uvicorn cancels what is still open.
    server = uvicorn.Server(uvicorn.Config(build_app(service), log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="app-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
