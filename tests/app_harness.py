"""The whole app launched in-process for API and browser tests (``with launch_app(service) as url``)."""

from __future__ import annotations

import contextlib
import os
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
