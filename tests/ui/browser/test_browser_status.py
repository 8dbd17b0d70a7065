"""Status in a browser: filled as soon as the tab opens, with the day's spend and the local model."""

import re

import pytest

from tests.browser import launch_app, open_page
from tests.ui.browser.test_browser_batch import table_headers
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
        answered = table.get_by_role("row").filter(has=page.get_by_text("llama-3.3", exact=True))
        last = answered.get_by_role("gridcell").nth(3)
        expect(last).to_have_text(re.compile(r"answered \d+ s ago in \d+ ms"))          # whole ms
        spend = page.locator("#status-spend")
        expect(spend).to_contain_text("1 paid call ")
        expect(spend).to_contain_text("$2.50 daily limit")


def test_status_table_fits_the_page_and_an_unlisted_model_that_answered_is_no_problem(protocol_server, tmp_path):
    """At 1280 px every column is on screen, no header wraps, and an endpoint whose model list lacks a model
    that answered seconds ago says just that, without calling the model unreachable or showing an error."""
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.models_listing = []          # GET /models lists nothing
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    answered = service.query("Write a limerick about a sleepy cat")["answered_by"]
    with launch_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Status").click()
        table = page.locator("#status-table")
        expect(table).to_contain_text("not in the provider's model list", timeout=20000)
        headers = table_headers(page, "status-table")
        assert [h["text"] for h in headers if h["lines"] != 1] == []                      # no header wraps
        box = table.bounding_box()
        assert all(h["right"] <= box["x"] + box["width"] for h in headers), (headers, box)  # none off-screen
        scroll, client = table.locator("table").first.evaluate("(t) => [t.parentElement.scrollWidth, "
                                                               "t.parentElement.clientWidth]")
        assert scroll <= client, (scroll, client)                                         # no horizontal scroll
        row = table.get_by_role("row").filter(has=page.get_by_text(answered, exact=True))
        expect(row.get_by_role("gridcell").nth(2)).to_have_text(re.compile(r"answered \d+ s ago; not in the provider's "
                                                                 r"model list"))
        expect(row.get_by_role("gridcell").nth(6)).to_have_text("")                               # no error
        page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
