"""The Batch tab's "Collect outcomes" section: estimate first, refuse over budget, collect, download the table.

Also: where the owner has not allowed it (ROUTER_ALLOW_TRAINING unset), the section says so and is off.
"""

import csv
import os

import pytest

from tests.browser import open_page
from tests.ui.browser.test_browser_batch import launch_tabs  # the Batch tab (and its APIs) as app.py mounts it
from tests.conftest import router_settings

pytestmark = pytest.mark.browser

PROMPTS = ["What is 2 + 2?", "Write a haiku about rain.", "Explain TCP, briefly.", "Name three prime numbers."]


def write_prompts(path):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt"])
        writer.writerows([[p] for p in PROMPTS])
    return path


def open_section(page):
    page.get_by_role("tab", name="Batch").click()
    page.get_by_text("Collect outcomes (training data from your prompts)").click()


def set_budget(page, value: str):
    box = page.locator("#collect-budget input")
    box.fill(value)
    box.press("Enter")


def test_estimate_refuse_then_collect_and_download(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    src = write_prompts(tmp_path / "prompts.csv")
    service = RouterService(router_settings(protocol_server, tmp_path, allow_training=True), background=False)
    with launch_tabs(service) as url, open_page(url) as page:
        open_section(page)
        page.locator("#collect-file input[type=file]").set_input_files(str(src))
        models = page.locator("#collect-models")
        for name in ("DeepSeek R1 (deepseek-r1)", "Gemini 2.0 Flash (gemini-flash)"):
            models.get_by_label(name).uncheck()                  # three models stay chosen
        run = page.locator("#collect-run")
        expect(run).to_be_disabled()

        set_budget(page, "0.00001")
        page.locator("#collect-estimate").click()
        plan = page.locator("#collect-plan")
        expect(plan).to_contain_text("Estimate: 12 calls", timeout=20000)
        expect(plan).to_contain_text("Above the budget of $0.000010")
        expect(run).to_be_disabled()                            # over budget: Collect stays off

        set_budget(page, "1")
        page.locator("#collect-estimate").click()
        expect(plan).to_contain_text("Within the budget of $1.00", timeout=20000)
        expect(run).to_be_enabled()
        assert protocol_server.chat_requests() == []             # estimating sends nothing

        run.click()
        status = page.locator("#collect-status")
        expect(status).to_contain_text("Done: 12 calls this run", timeout=60000)
        expect(status).to_contain_text("4 prompts × 3 models")
        link = page.locator('#collect-download a[download="prompts-outcomes.csv"]')
        with page.expect_download() as info:
            link.click()
        saved = tmp_path / "downloaded.csv"
        info.value.save_as(saved)
        page.screenshot(path=str(tmp_path / "collect.png"), full_page=True)

        # The same file again: everything is already answered, nothing is asked twice.
        page.locator("#collect-estimate").click()
        expect(plan).to_contain_text("12 pairs already answered", timeout=20000)
        expect(plan).to_contain_text("Estimate: 0 calls")
    with saved.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["prompt"] for r in rows] == PROMPTS
    assert all(r[m] for r in rows for m in ("mistral-small", "qwen2.5", "llama-3.3"))
    assert "deepseek-r1" not in rows[0]
    assert len(protocol_server.chat_requests()) == 12


def test_off_unless_the_owner_allows_it(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)   # allow_training off
    with launch_tabs(service) as url, open_page(url) as page:
        open_section(page)
        expect(page.locator("#collect-off")).to_contain_text("ROUTER_ALLOW_TRAINING=1")
        expect(page.locator("#collect-estimate")).to_be_disabled()
        expect(page.locator("#collect-run")).to_be_disabled()
        expect(page.locator("#batch-run")).to_be_enabled()       # the batch itself is unaffected


def test_handlers_refuse_when_off_and_over_budget(protocol_server, tmp_path):
    """The server checks too (a crafted request cannot skip the estimate or the switch)."""
    from gradio.utils import get_upload_folder

    from routing.errors import UserError
    from routing.service import RouterService
    from ui.batch_tab import collect_job

    upload = get_upload_folder()
    os.makedirs(upload, exist_ok=True)
    src = write_prompts(tmp_path / "prompts.csv")
    import shutil
    import tempfile

    import gradio as gr
    from gradio.context import LocalContext

    path = shutil.copyfile(src, os.path.join(tempfile.mkdtemp(dir=upload), "prompts.csv"))
    demo = gr.Blocks()                        # as Gradio's upload route records a file it received
    demo.upload_file_set.add(path)
    LocalContext.blocks.set(demo)             # the handlers run in a Gradio event's context
    off = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with pytest.raises(UserError, match="ROUTER_ALLOW_TRAINING=1"):
        collect_job(off, path, ["mistral-small"], 1, None)
    on = RouterService(router_settings(protocol_server, tmp_path, allow_training=True), background=False)
    with pytest.raises(UserError, match="above the budget"):
        collect_job(on, path, ["mistral-small"], 0.0000001, None)
    with pytest.raises(UserError, match="must be an upload"):
        collect_job(on, str(src), ["mistral-small"], 1, None)
    assert protocol_server.chat_requests() == []
