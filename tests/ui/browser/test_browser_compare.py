"""A person compares every model in the browser: columns fill, charts render, they mark the best answer."""

from __future__ import annotations

import re

import pytest

from routing.learning.outcome_log import OutcomeLog
from tests.browser import open_page
from tests.conftest import router_settings
from tests.routing.compare.test_compare import GOOD, PROMPT, REFUSAL, compare_app

pytestmark = pytest.mark.browser


def test_compare_tab_fills_columns_charts_and_takes_feedback(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.set_model("deepseek/deepseek-r1", delay=0.6)
    protocol_server.set_model("mistralai/mistral-small-3.1-24b-instruct", status=500, delay=0.1)
    protocol_server.set_model("qwen/qwen-2.5-72b-instruct", reply=REFUSAL, delay=0.2)
    protocol_server.set_model("meta-llama/llama-3.3-70b-instruct", reply=GOOD, delay=0.3)
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    ids = service.pool.ids
    with compare_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Compare all").click()
        page.locator("#compare-prompt textarea").fill(PROMPT)
        page.locator("#compare-button").click()
        llama = ids.index("llama-3.3")
        # Answers render as Markdown, as in the Ask tab: a highlighted code block, not ``` marks.
        answer = page.locator(f"#compare-answer-{llama}")
        expect(answer.locator("pre code")).to_contain_text("return s[::-1]", timeout=20000)
        expect(answer).to_contain_text("Slicing with a step of -1")
        assert "```" not in answer.inner_text()
        expect(page.locator(f"#compare-answer-{ids.index('deepseek-r1')}")).to_contain_text(
            f"[deepseek/deepseek-r1] answer to: {PROMPT}", timeout=20000)
        expect(page.locator(f"#compare-answer-{ids.index('mistral-small')}")).to_contain_text(
            re.compile(r"⚠️ Error: 500 Internal Server Error"))
        expect(page.locator(f"#compare-stats-{ids.index('mistral-small')}")).to_contain_text("failed")
        expect(page.locator("#compare-summary")).to_contain_text("Winner by the evaluator", timeout=20000)
        expect(page.locator("#compare-summary")).to_contain_text("Llama")
        expect(page.locator("#compare-summary")).to_contain_text("differs from the evaluator")
        expect(page.locator(f"#compare-stats-{llama}")).to_contain_text("evaluator's winner")
        expect(page.locator("#compare-bars .js-plotly-plot")).to_be_visible(timeout=15000)
        expect(page.locator("#compare-scatter .js-plotly-plot")).to_be_visible()
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

        page.locator("#compare-best").get_by_label("gemini-flash").check()
        page.locator("#compare-mark").click()
        expect(page.locator("#compare-feedback")).to_contain_text("Recorded", timeout=15000)
        expect(page.locator("#compare-feedback")).to_contain_text("overrides the evaluator's pick (llama-3.3)")
        # Charts read on a dark page too: no white boxes.
        svg = page.locator("#compare-scatter .main-svg").first
        assert svg.evaluate("e => e.style.background").replace(" ", "") in ("rgba(0,0,0,0)", "transparent")

        # The next comparison starts clean: no earlier "Recorded" message or choice, no earlier charts.
        protocol_server.reset()
        protocol_server.set_model("*", status=500)
        page.locator("#compare-prompt textarea").fill("hello again")
        page.locator("#compare-button").click()
        expect(page.locator("#compare-feedback")).to_have_text("", timeout=15000)
        expect(page.locator("#compare-summary")).to_contain_text("0 of 5 models answered", timeout=20000)
        expect(page.locator("#compare-bars")).to_be_hidden()  # nothing answered: nothing drawn
        expect(page.locator("#compare-scatter")).to_be_hidden()
        assert page.locator("#compare-best input:checked").count() == 0

        page.locator("#compare-download").click()
        expect(page.locator("#compare-download-file")).to_contain_text("outcomes-routerbench", timeout=15000)
        with page.expect_download() as info:
            page.locator("#compare-download-file a").first.click()
        csv = info.value.path().read_text()
        assert csv.startswith("sample_id,prompt,eval_name,deepseek-r1")

    comparison = OutcomeLog.for_settings(service.settings).comparisons()[0]  # the second was not logged
    assert comparison["best_model"] == "llama-3.3" and comparison["user_best_model"] == "gemini-flash"


def test_compare_tab_without_a_key_says_it_needs_one(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path, openrouter_api_key=None), background=False)
    with compare_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Compare all").click()
        expect(page.locator("#compare-no-key")).to_contain_text("needs an OpenRouter key")
        page.locator("#compare-prompt textarea").fill("hello")
        page.locator("#compare-button").click()
        expect(page.locator("#compare-answer-0")).to_contain_text(
            "⚠️ Error: no OpenRouter key (set OPENROUTER_API_KEY)", timeout=20000)
        expect(page.locator("#compare-summary")).to_contain_text("OPENROUTER_API_KEY", timeout=20000)
    assert protocol_server.chat_requests() == []


def test_compare_asks_the_chosen_models_and_streams_their_columns(protocol_server, tmp_path):
    """Choose which models to ask; each column fills as its answer is written, not only at the end."""
    from playwright.sync_api import expect

    from routing.service import RouterService

    slow = " ".join(f"piece{i}" for i in range(60))
    protocol_server.set_model("*", reply=slow, chunk_delay=0.1)
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    ids = service.pool.ids
    with compare_app(service) as url, open_page(url) as page:
        page.get_by_role("tab", name="Compare all").click()
        for model in ("mistral-small", "qwen2.5", "gemini-flash"):
            page.locator("#compare-models").get_by_label(model).uncheck()
        page.locator("#compare-prompt textarea").fill("Tell me about rivers")
        page.locator("#compare-button").click()
        first = page.locator(f"#compare-answer-{ids.index('deepseek-r1')}")
        expect(first).to_contain_text("piece3", timeout=20000)
        assert "piece59" not in first.inner_text()            # shown while it is still being written
        expect(first).to_contain_text("piece59", timeout=30000)
        expect(page.locator("#compare-summary")).to_contain_text("2 of 2 models answered", timeout=30000)
        expect(page.locator(f"#compare-answer-{ids.index('qwen2.5')}")).to_contain_text("not asked")
        page.locator("#compare-models").get_by_label("llama-3.3").uncheck()
        page.locator("#compare-button").click()                # one model is not a comparison
        expect(page.locator(".toast-body")).to_contain_text("at least two models", timeout=15000)
    asked = {r.json["model"] for r in protocol_server.chat_requests()}
    assert asked == {"deepseek/deepseek-r1", "meta-llama/llama-3.3-70b-instruct"}
