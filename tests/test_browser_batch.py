"""A researcher uploads a CSV in the Batch tab, waits for the progress to finish, downloads results.

Also: the Selection testing tab runs the built-in set and draws a confusion matrix.
"""

import contextlib
import csv
import os

import pytest

from tests.browser import open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def launch_tabs(service):
    """The Batch and Selection testing tabs (and their APIs) in a small app, as app.py mounts them."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ui.batch_tab import add_batch_api, build_batch_tab
    from ui.selection_tab import add_selection_api, build_selection_tab

    with gr.Blocks() as demo:
        with gr.Tabs():
            build_batch_tab(service)
            build_selection_tab(service)
        add_batch_api(service)
        add_selection_api(service)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        yield url
    finally:
        demo.close()


def test_upload_csv_run_and_download_results(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    src = tmp_path / "prompts.csv"
    prompts = [f"Write a Python function number {i} that sorts a list" if i % 2 else f"Tell me a story about cat {i}"
               for i in range(300)]
    with src.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "Question"])
        writer.writerows([[i, p] for i, p in enumerate(prompts)])
    service = RouterService(router_settings(protocol_server, tmp_path, openrouter_api_key=None), background=False)
    with launch_tabs(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-file input[type=file]").set_input_files(str(src))
        expect(page.locator("#batch-note")).to_contain_text("Prompt column found: Question", timeout=20000)
        page.locator("#batch-run").click()
        expect(page.locator("#batch-status")).to_contain_text("Done: 300 rows", timeout=60000)
        expect(page.locator("#batch-traffic .js-plotly-plot")).to_be_visible(timeout=20000)
        expect(page.locator("#batch-cost .js-plotly-plot")).to_be_visible(timeout=20000)
        expect(page.locator("#batch-preview")).to_contain_text("deepseek-r1", timeout=20000)
        link = page.locator('#batch-downloads a[download="prompts-route-results.csv"]')
        with page.expect_download() as info:
            link.click()
        saved = tmp_path / "downloaded.csv"
        info.value.save_as(saved)
        page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)
    with saved.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Question"] for r in rows] == prompts
    assert rows[1]["selected_model"] == "deepseek-r1" and rows[0]["selected_model"] == "llama-3.3"
    assert protocol_server.chat_requests() == []


def test_bad_file_shows_an_error_toast(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    bad = tmp_path / "latin.csv"
    bad.write_bytes("prompt\ncaf\xe9\n".encode("latin-1"))
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_tabs(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-file input[type=file]").set_input_files(str(bad))
        expect(page.get_by_test_id("toast-body").first).to_contain_text("not UTF-8", timeout=20000)


def test_selection_tab_runs_the_builtin_set(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.selection_test import BUILTIN_SAMPLES
    from routing.service import RouterService

    if not BUILTIN_SAMPLES.is_file():
        pytest.skip(f"{BUILTIN_SAMPLES} is not written yet")
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_tabs(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Selection testing").click()
        page.locator("#selection-run").click()
        expect(page.locator("#selection-status")).to_contain_text("accuracy", timeout=30000)
        expect(page.locator("#selection-confusion .js-plotly-plot")).to_be_visible(timeout=20000)
        page.screenshot(path=str(tmp_path / "selection.png"), full_page=True)
