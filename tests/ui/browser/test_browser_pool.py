"""The Pool tab in a browser: the owner adds an endpoint through the form, tests it, saves and reloads;
with editing off the form is disabled, the lock line says how to turn it on, and the API refuses."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings
from tests.protocol_server import listing_entry

pytestmark = pytest.mark.browser


def test_the_owner_adds_an_endpoint_tests_it_and_saves_without_a_restart(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.models_listing.append(listing_entry("local/llama-3.2"))
    service = RouterService(router_settings(protocol_server, tmp_path, allow_pool_edit=True), background=False)
    with launch_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Pool").click()
        table = page.locator("#pool-table")
        expect(table).to_contain_text("llama-3.3")
        expect(page.locator("#pool-lock")).to_have_count(0)
        page.locator("#pool-id").get_by_role("textbox").fill("llama-local")
        page.locator("#pool-name").get_by_role("textbox").fill("Llama <b>local</b>")
        page.locator("#pool-base-url").get_by_role("textbox").fill(protocol_server.base_url)
        page.locator("#pool-model-name").get_by_role("textbox").fill("local/llama-3.2")
        page.locator("#pool-test").click()
        note = page.locator("#pool-result")
        expect(note).to_contain_text("lists local/llama-3.2", timeout=20000)
        expect(note).to_contain_text("nothing was spent")
        assert protocol_server.chat_requests() == []

        page.locator("#pool-save").click()
        expect(note).to_contain_text("Added llama-local", timeout=20000)
        expect(table).to_contain_text("llama-local")
        expect(table).to_contain_text("Llama <b>local</b>")          # shown as text, not markup
        expect(page.locator("#pool-files")).to_contain_text("the copy edited on this page")
        assert "llama-local" in service.pool

        page.get_by_role("tab", name="Status").click()                # the rest of the app sees the new pool
        expect(page.locator("#status-table")).to_contain_text("llama-local", timeout=20000)
        expect(note).to_contain_text("once the page is reloaded")

        # Reloaded, the page's model lists follow the live pool: the Ask tab can ask the new model.
        page.reload()
        page.get_by_role("tab", name="Ask").click()
        page.get_by_text("Routing options").click()
        page.get_by_label("Model", exact=True).click()
        page.get_by_role("option", name="llama-local").click()
        page.locator("#ask-prompt textarea").fill("Say hello")
        page.locator("#ask-button").click()
        expect(page.locator("#ask-decision")).to_contain_text("Answered by llama-local", timeout=20000)

        from gradio_client import Client
        from gradio_client.exceptions import AppError

        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="base_url must start with http"):
            client.predict(model_id="evil", base_url="file:///etc/passwd", model_name="x", api_name="/pool-save")
        changed = client.predict(model_id="llama-local", base_url=protocol_server.base_url, model_name="local/llama-3.2",
                                 input_price_per_m=0.5, categories=["coding"], edit_id="llama-local",
                                 api_name="/pool-save")
        assert changed["pool"]["models"][-1]["input_price_per_m"] == 0.5 and "evil" not in service.pool
    assert service.query("hi", exclude=[m for m in service.pool.ids if m != "llama-local"])["answered_by"] == "llama-local"


def test_with_editing_off_the_form_is_disabled_and_the_api_refuses(protocol_server, tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url:
        with open_page(url) as page:
            page.get_by_role("tab", name="Pool").click()
            expect(page.locator("#pool-lock")).to_contain_text("🔒")
            expect(page.locator("#pool-lock")).to_contain_text("ROUTER_ALLOW_POOL_EDIT=1")
            expect(page.locator("#pool-table")).to_contain_text("deepseek-r1")
            expect(page.locator("#pool-id").get_by_role("textbox")).to_be_disabled()
            for button in ("#pool-test", "#pool-save", "#pool-remove", "#pool-revert"):
                expect(page.locator(button)).to_be_disabled()
        client = Client(url, verbose=False)
        assert [m["id"] for m in client.predict(api_name="/pool")["models"]][0] == "deepseek-r1"
        with pytest.raises(AppError, match="ROUTER_ALLOW_POOL_EDIT=1"):
            client.predict(model_id="x", base_url=protocol_server.base_url, model_name="local/x",
                           api_name="/pool-save")
        with pytest.raises(AppError, match="ROUTER_ALLOW_POOL_EDIT=1"):
            client.predict(base_url=protocol_server.base_url, model_name="local/x", api_name="/pool-test")
    assert not (service.settings.data_dir / "models.json").exists()
    assert protocol_server.requests == []
