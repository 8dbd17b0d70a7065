"""A person in a browser asks a question in the Ask tab and sees the decision and the answer."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


def test_ask_tab_shows_decision_chart_and_answer(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.set_model("*", chunk_delay=0.02)
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        page.locator("#ask-prompt textarea").fill("Write a Python function that reverses a string")
        page.locator("#ask-button").click()
        expect(page.locator("#ask-decision")).to_contain_text("Routed to", timeout=20000)
        expect(page.locator("#ask-decision")).to_contain_text("DeepSeek R1")
        expect(page.locator("#ask-answer textarea")).to_have_value(
            "[deepseek/deepseek-r1] answer to: Write a Python function that reverses a string", timeout=20000)
        expect(page.locator("#ask-decision")).to_contain_text("Answered by")
        expect(page.locator("#ask-chart .js-plotly-plot")).to_be_visible()
        page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)


def test_empty_prompt_shows_an_error_toast(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        page.locator("#ask-button").click()
        expect(page.get_by_test_id("toast-body").first).to_contain_text("empty", timeout=15000)
