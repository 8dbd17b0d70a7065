"""Training in a browser: the run shows its progress, the button is off meanwhile, the result says what next."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


def test_a_run_shows_progress_and_blocks_a_second_click(tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService
    from tests.test_training_tab import tiny_training_inputs

    prompts, base = tiny_training_inputs(tmp_path)
    settings = router_settings(None, tmp_path, allow_training=True, selector="auto",
                               selector_dir=tmp_path / "selector_model", label_encoder_file=tmp_path / "le.json")
    service = RouterService(settings, background=False)
    with launch_app(service) as url, open_page(url, timeout_ms=120000) as page:
        page.get_by_role("tab", name="Training").click()
        page.get_by_label("Uploaded prompt file, rule labels").check()
        page.locator("#train-file input[type=file]").set_input_files(str(prompts))
        page.locator("#train-base textarea").fill(str(base))
        button = page.locator("#train-button")
        button.click()
        expect(page.locator("#train-summary")).to_contain_text("Training…", timeout=60000)
        expect(button).to_be_disabled()
        expect(page.locator("#train-summary")).to_contain_text("promoted", timeout=120000)
        expect(button).to_be_enabled()
        expect(page.locator("#train-summary")).to_contain_text("a new split")
    assert service.selector.name == "learned"
