"""Traffic in a browser: real answers (one after a fallback) drawn as plotly charts and counted per model;
a range with nothing in it says so, with no chart and no table."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


def test_traffic_shows_charts_counts_and_an_empty_range(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path, daily_budget_usd=2.5), background=False)
    service.query("Write a limerick about a sleepy cat")
    service.query("Write a limerick about a sleepy dog")
    protocol_server.set_model(service.pool.get("llama-3.3").model_name, status=500)
    runner_up = service.query("Write a limerick about a sleepy fox")["answered_by"]
    assert runner_up != "llama-3.3"
    service.learning.flush()
    with launch_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Traffic").click()
        table = page.locator("#traffic-table")
        expect(table).to_contain_text("llama-3.3", timeout=20000)   # filled when the tab opens
        rows = table.locator('[role="gridcell"][data-col="0"]').count()
        counts = {table.get_by_test_id(f"cell-{r}-0").inner_text().strip():
                  table.get_by_test_id(f"cell-{r}-1").inner_text().strip() for r in range(rows)}
        assert counts == {"llama-3.3": "2", runner_up: "1"}
        totals = page.locator("#traffic-totals")
        expect(totals).to_contain_text("3 requests")
        expect(totals).to_contain_text("1 request fell back")
        expect(totals).to_contain_text("server error (5xx)")
        for chart in ("requests", "cost", "latency", "fallbacks"):
            expect(page.locator(f"#traffic-{chart} svg.main-svg").first).to_be_visible()
        expect(page.locator("#traffic-fallbacks")).to_contain_text("server error (5xx)")
        expect(page.locator("#traffic-cost")).to_contain_text("daily cap")

        page.get_by_label("From (UTC day)").fill("2020-01-01")
        page.get_by_label("To (UTC day, included)").fill("2020-01-07")
        page.locator("#traffic-button").click()
        expect(totals).to_contain_text("No traffic in this range yet")
        for chart in ("requests", "cost", "latency", "fallbacks"):
            expect(page.locator(f"#traffic-{chart}")).to_be_hidden()
        expect(table).to_be_hidden()

        page.get_by_label("To (UTC day, included)").fill("2019-12-01")
        page.locator("#traffic-button").click()
        expect(page.get_by_text("is before `start`").first).to_be_visible()
