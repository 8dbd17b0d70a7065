"""Training in a browser: the run shows its progress, the button is off meanwhile, the result says what next."""

import threading

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


def test_a_run_shows_progress_and_blocks_a_second_click(tmp_path, monkeypatch):
    from playwright.sync_api import expect

    import training.pipeline.run
    from routing.service import RouterService
    from tests.ui.test_training_tab import tiny_training_inputs

    # The real run, held after its first progress step until the page has been checked: a tiny run
    # can end (and the button come back) between two checks on a loaded machine.
    real_run, release = training.pipeline.run.run_pipeline, threading.Event()

    def held_run(*args, progress, **kwargs):
        progress(0.0, "held by the test")
        release.wait(120)
        return real_run(*args, progress=progress, **kwargs)

    monkeypatch.setattr(training.pipeline.run, "run_pipeline", held_run)

    prompts, base = tiny_training_inputs(tmp_path)
    settings = router_settings(None, tmp_path, allow_training=True, selector="auto",
                               selector_dir=tmp_path / "selector_model", label_encoder_file=tmp_path / "le.json")
    service = RouterService(settings, background=False)
    try:
        with launch_app(service) as url, open_page(url, timeout_ms=120000) as page:
            page.get_by_role("tab", name="Training").click()
            expect(page.locator("#train-rollback")).to_be_disabled()   # nothing to roll back to
            page.get_by_label("Uploaded prompt file, rule labels").check()
            page.locator("#train-file input[type=file]").set_input_files(str(prompts))
            page.locator("#train-base textarea").fill(str(base))
            button = page.locator("#train-button")
            button.click()
            expect(page.locator("#train-summary")).to_contain_text("Training…", timeout=60000)
            expect(page.locator("#train-summary")).to_contain_text("held by the test")
            expect(button).to_be_disabled()
            release.set()
            expect(page.locator("#train-summary")).to_contain_text("promoted", timeout=120000)
            expect(button).to_be_enabled()
            expect(page.locator("#train-summary")).to_contain_text("a new split")
            # The versions table quotes the gate's measurement of the new live model, dated by the run.
            gate = page.locator("#train-summary").inner_text()
            live = page.locator("#train-versions tbody tr").first
            expect(live).to_contain_text("macro_f1")
            cell = live.locator("td").nth(2).text_content()
            score = float(cell.split("macro_f1")[1].split()[0])
            shown = float(gate.split("macro-F1")[1].split()[0].strip(","))
            assert abs(score - shown) < 0.0005, (score, shown)   # one measurement, not two
            assert live.locator("td").nth(1).text_content().strip().startswith("20")   # the run's date, not "not recorded"
            expect(page.locator("#train-rollback")).to_be_disabled()   # the first promotion has no previous one
    finally:
        release.set()   # a failed check must not leave the run parked
    assert service.selector.name == "learned"
