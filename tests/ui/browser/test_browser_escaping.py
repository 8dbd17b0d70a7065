"""Provider text in the browser: HTML in errors, answers and pool display names is shown as text.

The protocol server stands in for OpenRouter and also records every request it gets, so an
``<img src="http://127.0.0.1:PORT/....png">`` that the page rendered as HTML would show up there
(and in the browser's own request log) as a GET of the image.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[3]
KEY = "sk-or-v1-" + "feedfacecafebeef" * 4
PROMPT = "Write a Python function that reverses a string"


def _pool_file(tmp_path: Path, display_name: str) -> Path:
    data = json.loads((REPO / "assets" / "models.json").read_text(encoding="utf-8"))
    for m in data["models"]:
        if m["id"] == "deepseek-r1":
            m["display_name"] = display_name
    path = tmp_path / "models.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_provider_html_is_shown_as_text_and_never_fetched(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    base = f"http://127.0.0.1:{protocol_server.port}"
    error_img = f'<img src="{base}/pixel.png">'
    name_img = f'<img src="{base}/name.png">'
    answer_img = f'<img src="{base}/answer.png">'
    batch_img = f'<img src="{base}/batch.png">'
    header_img = f'<img src="{base}/header.png">'
    display_name = f"DeepSeek {name_img} R1"
    protocol_server.set_model("deepseek/deepseek-r1", status=400,
                              error_message=f"bad request {error_img} (Authorization: Bearer {KEY})")
    reply = f"Here: {answer_img} and **bold**"
    protocol_server.set_model("*", reply=reply)
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=KEY,
                               models_file=_pool_file(tmp_path, display_name))
    service = RouterService(settings, background=False)
    ids = service.pool.ids
    browser_requests: list[str] = []

    def fetched_images() -> list[str]:
        served = [r.path for r in protocol_server.requests if r.method == "GET" and r.path.endswith(".png")]
        return served + [u for u in browser_requests if u.endswith(".png") and u.startswith(base)]

    with launch_app(service) as url, open_page(url) as page:
        page.on("request", lambda request: browser_requests.append(request.url))
        # Ask: the routed model fails with HTML (and the key) in its error; the next one answers with HTML.
        page.locator("#ask-prompt textarea").fill(PROMPT)
        page.locator("#ask-button").click()
        decision = page.locator("#ask-decision")
        expect(decision).to_contain_text("Answered by", timeout=30000)
        expect(decision).to_contain_text(error_img)            # the error's text, literally
        expect(decision).to_contain_text(f"Routed to {display_name}")
        chat = page.locator("#ask-chat")
        expect(chat.locator("[data-testid=bot]").last).to_contain_text(f"Here: {answer_img} and bold")
        expect(chat.locator("strong", has_text="bold")).to_be_visible()  # the answer's Markdown renders...
        assert decision.locator("img").count() == 0 and chat.locator("img").count() == 0  # ...its HTML does not
        chat.get_by_text("Routed to DeepSeek").click()  # open the turn's routing note
        expect(chat).to_contain_text(error_img)  # the failed model's error, as text
        expect(chat).to_contain_text(f"Routed to {display_name}")  # the note's title shows the name as text
        assert "[redacted OPENROUTER_API_KEY]" in decision.inner_text()

        # Compare all: the display name heads a column; deepseek-r1's error fills its answer box.
        page.get_by_role("tab", name="Compare all").click()
        page.locator("#compare-prompt textarea").fill(PROMPT)
        page.locator("#compare-button").click()
        expect(page.locator("#compare-summary")).to_contain_text("models answered", timeout=30000)   # done: a winner or a tie
        column = page.locator(f"#compare-col-{ids.index('deepseek-r1')}")
        expect(column).to_contain_text(display_name)
        expect(page.locator(f"#compare-answer-{ids.index('deepseek-r1')}")).to_contain_text(
            f"⚠️ Error: 400 Bad Request from 127.0.0.1:{protocol_server.port}: the request was rejected - "
            f"provider says: bad request {error_img} (Authorization: Bearer [redacted OPENROUTER_API_KEY])")
        expect(page.locator("#compare-summary")).to_contain_text("failed")

        # Batch, route and answer: every model fails, with HTML in its error.
        protocol_server.set_model("*", status=500, error_message=f"server down {batch_img}")
        src = tmp_path / "prompts.csv"
        with src.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([["prompt", f"note {header_img}"], [PROMPT, f"cell {header_img}"]])
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-file input[type=file]").set_input_files(str(src))
        expect(page.locator("#batch-note")).to_contain_text("Prompt column found", timeout=20000)
        page.locator("#batch-mode").get_by_label("Route and answer").check()
        page.locator("#batch-run").click()
        expect(page.locator("#batch-status")).to_contain_text("1 failed", timeout=60000)
        expect(page.locator("#batch-status")).to_contain_text(batch_img)
        expect(page.locator("#batch-preview")).to_contain_text(batch_img, timeout=20000)
        expect(page.locator("#batch-preview")).to_contain_text(f"cell {header_img}")
        expect(page.locator("#batch-preview")).to_contain_text(f"note {header_img}")

        page.wait_for_timeout(1000)  # time for any image the page did render to be requested
        page.screenshot(path=str(tmp_path / "escaping.png"), full_page=True)
        assert page.locator(f'img[src^="{base}"]').count() == 0
        assert KEY not in page.content()
    assert fetched_images() == []
