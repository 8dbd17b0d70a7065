"""A person in a browser chats in the Ask tab: answers render as Markdown, the chat stays on one
model, every answer has its badge, Stop ends a slow answer."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser

CODE_PROMPT = "Write a Python function that reverses a string"
REPLY = "Here is **the function**:\n\n```python\ndef reverse(s):\n    return s[::-1]\n```\n\n- short\n- fast"


def test_chat_renders_answers_and_stays_on_one_model(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.set_model("*", reply=REPLY, chunk_delay=0.01)
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        chat = page.locator("#ask-chat")
        page.locator("#ask-prompt textarea").fill(CODE_PROMPT)
        page.locator("#ask-button").click()
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("short", timeout=20000)
        expect(chat).to_contain_text("Routed to DeepSeek R1 · confidence", timeout=20000)
        expect(chat).to_contain_text("tokens · $")        # the badge: latency, tokens, cost
        expect(chat.locator("strong", has_text="the function")).to_be_visible()  # Markdown, not ** marks
        expect(chat.locator("pre code")).to_contain_text("return s[::-1]")    # a highlighted code block
        assert "```" not in chat.inner_text()
        assert chat.locator("button[aria-label='Copy message']").count() >= 2
        expect(page.locator("#ask-decision")).to_contain_text("Answered by")
        expect(page.locator("#ask-chart .js-plotly-plot")).to_be_visible()
        # A second turn that alone would go elsewhere stays where the chat started (Enter sends).
        page.locator("#ask-prompt textarea").fill("Write a limerick about a sleepy cat")
        page.locator("#ask-prompt textarea").press("Enter")
        expect(chat).to_contain_text("Stayed on DeepSeek R1", timeout=20000)
        expect(page.locator("#ask-totals")).to_contain_text("2 answers", timeout=20000)
        sent = protocol_server.chat_requests()[-1].json
        assert sent["model"] == "deepseek/deepseek-r1" and [m["role"] for m in sent["messages"]] == [
            "user", "assistant", "user"]
        page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)
        page.locator("#ask-clear").click()
        expect(chat.locator("[data-testid=bot]")).to_have_count(0)


def test_stop_ends_a_slow_answer_and_the_chat_goes_on(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    slow = " ".join(f"word{i}" for i in range(200))
    protocol_server.set_model("*", reply=slow, chunk_delay=0.2)
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        chat = page.locator("#ask-chat")
        page.locator("#ask-prompt textarea").fill(CODE_PROMPT)
        page.locator("#ask-button").click()
        expect(chat).to_contain_text("word2", timeout=20000)
        page.locator("#ask-stop").click()
        expect(chat).to_contain_text("stopped", timeout=10000)
        answer = chat.locator("[data-testid=bot]").last
        shown = answer.inner_text()
        page.wait_for_timeout(1000)
        assert answer.inner_text() == shown and "word199" not in shown  # nothing more arrives
        # A stop is not a crash: no red Error badge anywhere, and the decision panel says it stopped.
        expect(page.locator("#ask-decision")).to_contain_text("Stopped", timeout=10000)
        assert "Asking" not in page.locator("#ask-decision").inner_text()
        page.screenshot(path=str(tmp_path / "stopped.png"), full_page=True)
        errors = [e.inner_text() for e in page.locator(".error, .toast-body.error").all() if e.is_visible()]
        assert not errors and "Error" not in page.locator("#ask-decision").inner_text(), errors
        protocol_server.set_model("*", reply="fine")
        page.locator("#ask-prompt textarea").fill("Try again")
        page.locator("#ask-button").click()
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("fine", timeout=20000)


def test_empty_prompt_shows_an_error_toast(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        page.locator("#ask-button").click()
        expect(page.get_by_test_id("toast-body").first).to_contain_text("empty", timeout=15000)


def test_answers_can_be_rated_in_the_chat(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.learning.outcome_log import OutcomeLog
    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        chat = page.locator("#ask-chat")
        page.locator("#ask-prompt textarea").fill(CODE_PROMPT)
        page.locator("#ask-button").click()
        expect(page.locator("#ask-totals")).to_contain_text("1 answer", timeout=20000)
        answer = chat.locator("[data-testid=bot]").last
        answer.hover()
        chat.get_by_role("button", name="Like").last.click()
        expect(page.locator("#ask-feedback")).to_contain_text("Recorded 👍", timeout=15000)
        page.locator("#ask-better input").click()
        page.get_by_role("option", name="qwen2.5").click()
        page.locator("#ask-better-button").click()
        expect(page.locator("#ask-feedback")).to_contain_text("would have been better", timeout=15000)
    service.learning.flush()
    (row,) = OutcomeLog.for_settings(service.settings).comparisons()
    assert row["rating"]["better_model"] == "qwen2.5" and row["effective_best_model"] == "qwen2.5"


def test_an_answer_cut_at_the_token_limit_is_marked_in_the_chat(protocol_server, tmp_path):
    """Answers stopped mid-sentence at the token cap with no marker."""
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.set_model("*", reply="One two three four five six seven eight nine ten.", chunk_delay=0.0)
    service = RouterService(router_settings(protocol_server, tmp_path, max_tokens=3), background=False)
    with launch_app(service) as url, open_page(url) as page:
        chat = page.locator("#ask-chat")
        page.locator("#ask-prompt textarea").fill("Count to ten")
        page.locator("#ask-button").click()
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("cut at the token limit", timeout=20000)
        expect(page.locator("#ask-decision")).to_contain_text("stopped at the token limit", timeout=20000)


def test_the_empty_chat_shows_its_whole_placeholder(protocol_server, tmp_path):
    """It was one long line, clipped at both ends and under the chat's label."""
    from routing.service import RouterService

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        placeholder = page.locator("#ask-chat .placeholder-content").first
        placeholder.wait_for(timeout=20000)
        assert "the conversation stays on the model that started it." in placeholder.inner_text()
        box, chat = placeholder.bounding_box(), page.locator("#ask-chat").bounding_box()
        label = page.locator("#ask-chat label").first.bounding_box()
        assert box["x"] >= chat["x"] and box["x"] + box["width"] <= chat["x"] + chat["width"]
        text = placeholder.locator("h3").bounding_box()
        assert text["y"] >= label["y"] + label["height"]           # not under the "Chat" label
        assert placeholder.evaluate("e => e.scrollWidth <= e.clientWidth")
