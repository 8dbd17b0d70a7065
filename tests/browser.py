"""Browser-test harness: the app launched in-process, driven by headless Debian Chromium.

Other tabs' tests reuse ``launch_app`` and ``open_page``:

    with launch_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Batch").click()
"""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

from tests.app_harness import launch_app  # noqa: F401 - re-exported for browser tests

try:  # Playwright comes with `bash setup.sh --dev` (requirements-dev.txt), not with requirements.txt
    import playwright  # noqa: F401
except ImportError:
    if os.environ.get("CI"):   # CI runs setup.sh --dev: a missing Playwright there is a failure
        raise
    pytest.skip("the browser tests need Playwright and Chromium: run `bash setup.sh --dev`",
                allow_module_level=True)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("CI"):   # CI installs it (setup.sh --dev): a missing browser there is a failure
            pytest.fail("Debian chromium is not installed, though setup.sh --dev installs it")
        pytest.skip("Debian chromium is not installed (bash setup.sh --dev installs it)")
    return path


@contextlib.contextmanager
def open_page(url: str, *, timeout_ms: int = 30000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
            yield page
        finally:
            browser.close()
