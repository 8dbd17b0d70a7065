"""The Routes tab in a browser: the owner adds a route in the editor, tests a prompt and sees it matched with
its similarity, then asks in the Ask tab and sees the decision name the route. Names are shown as text."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings
from tests.routing.routes.example_routes import HELD_OUT, LEGAL

pytestmark = pytest.mark.browser

NAME = "legal <b>advice</b>"


def test_add_a_route_test_a_prompt_and_ask(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path, allow_route_edit=True), background=False)
    prompt = HELD_OUT["legal"][1]
    with launch_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Routes").click()
        expect(page.locator("#routes-file")).to_contain_text("none yet")
        expect(page.locator("#routes-lock")).to_have_count(0)
        page.locator("#routes-name").get_by_role("textbox").fill(NAME)
        page.locator("#routes-examples textarea").fill("\n".join(LEGAL["examples"]))
        page.locator("#routes-negatives textarea").fill("\n".join(LEGAL["negatives"]))
        page.locator("#routes-description").get_by_role("textbox").fill("Questions about the law")
        page.get_by_label("Target", exact=True).click()
        page.get_by_role("option", name="deepseek-r1").click()
        page.locator("#routes-save").click()
        note = page.locator("#routes-result")
        expect(note).to_contain_text(f"Added route '{NAME}'", timeout=60000)
        expect(note).to_contain_text("leave-one-out accuracy")
        table = page.locator("#routes-table")
        expect(table).to_contain_text(NAME)                       # shown as text, not markup
        threshold = service.routes.thresholds[NAME]
        expect(table).to_contain_text(f"{threshold:.3f}")
        expect(page.locator("#routes-file")).to_contain_text("1 route")

        page.locator("#routes-test-prompt textarea").fill(prompt)
        page.locator("#routes-test-button").click()
        verdict = page.locator("#routes-test-verdict")
        similarity = service.routes.match(prompt).similarity
        expect(verdict).to_contain_text(f"Route {NAME} matches: similarity {similarity:.3f} against its threshold "
                                        f"{threshold:.3f}", timeout=30000)
        expect(verdict).to_contain_text("DeepSeek R1")
        expect(page.locator("#routes-test-table")).to_contain_text("yes")
        assert protocol_server.chat_requests() == []               # testing spends nothing

        page.get_by_role("tab", name="Ask").click()
        page.locator("#ask-prompt textarea").fill(prompt)
        page.locator("#ask-button").click()
        decision = page.locator("#ask-decision")
        expect(decision).to_contain_text(f"Route \u201c{NAME}\u201d matched: similarity {similarity:.2f} against its "
                                         f"threshold {threshold:.2f}", timeout=30000)
        expect(decision).to_contain_text("Answered by deepseek-r1")
    assert protocol_server.chat_requests(service.pool.get("deepseek-r1").model_name)
