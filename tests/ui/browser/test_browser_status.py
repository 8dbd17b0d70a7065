"""Status in a browser: filled as soon as the tab opens, with the day's spend and the local model."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


def test_status_fills_itself_when_opened(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path, daily_budget_usd=2.5), background=False)
    service.query("Write a limerick about a sleepy cat")  # one paid answer
    with launch_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Status").click()
        table = page.locator("#status-table")
        expect(table).to_contain_text("llama-3.3", timeout=20000)  # no click on "Check models" needed
        expect(table).to_contain_text("gemma-3-270m")
        expect(table).to_contain_text("answered")
        assert "." not in table.locator("tbody tr").first.locator("td").nth(4).inner_text()  # whole ms
        spend = page.locator("#status-spend")
        expect(spend).to_contain_text("1 paid call ")
        expect(spend).to_contain_text("$2.50 daily limit")
