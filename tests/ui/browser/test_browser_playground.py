"""The Ask tab as a playground (issue 29): a system prompt, temperature and answer length that reach
the model; ↻ asks the last turn again; ✎ edits a sent message and asks again from there; one
button row per answer, and no 👍 / 👎 where a rating cannot be recorded."""

import pytest

from tests.browser import launch_app, open_page
from tests.conftest import router_settings

pytestmark = pytest.mark.browser


def test_settings_reach_the_model_and_turns_can_be_retried_and_edited(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.set_model("*", reply="first answer")
    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url, open_page(url) as page:
        chat = page.locator("#ask-chat")
        page.get_by_text("Playground: system prompt").click()
        page.locator("#ask-system textarea").fill("Answer in French.")
        page.locator("#ask-temperature input").fill("0.3")
        page.locator("#ask-max-tokens input").fill("64")
        page.locator("#ask-prompt textarea").fill("Say hi to <Bob> & Alice")
        page.locator("#ask-button").click()
        expect(page.locator("#ask-decision")).to_contain_text("Answered by", timeout=20000)
        sent = protocol_server.chat_requests()[-1].json
        assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
        assert sent["messages"][1] == {"role": "user", "content": "Say hi to <Bob> & Alice"}
        assert sent["temperature"] == 0.3 and sent["max_tokens"] == 64
        # One button row per turn: the routing note above the answer has none of its own.
        bot = chat.locator(".bot.message")
        expect(bot.locator("button[aria-label='Like']:visible")).to_have_count(1)

        # ↻ asks the same turn again: one user message on screen, a fresh answer, the same text sent.
        protocol_server.set_model("*", reply="second answer")
        bot.locator("button[aria-label='Retry']:visible").last.click()
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("second answer", timeout=20000)
        expect(chat.locator("[data-testid=user]")).to_have_count(1)
        assert protocol_server.chat_requests()[-1].json["messages"][1]["content"] == "Say hi to <Bob> & Alice"
        expect(page.locator("#ask-totals")).to_contain_text("2 answers", timeout=20000)   # both were paid for

        # A second turn, then ✎ on the first message: the chat goes back to it and asks the edited text.
        protocol_server.set_model("*", reply="third answer")
        page.locator("#ask-prompt textarea").fill("And to Carol")
        page.locator("#ask-button").click()
        expect(chat.locator("[data-testid=user]")).to_have_count(2, timeout=20000)
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("third answer", timeout=20000)
        protocol_server.set_model("*", reply="edited answer")
        chat.locator(".user-row").first.hover()
        chat.locator(".user-row").first.locator("button[aria-label='Edit']").click()
        box = chat.locator("textarea").first
        expect(box).to_have_value("Say hi to &lt;Bob> &amp; Alice")   # the chat's Markdown-safe form of it
        box.fill("Say hi to <Dave> & Alice")
        chat.locator("button[aria-label='Submit']").click()
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("edited answer", timeout=20000)
        expect(chat.locator("[data-testid=user]")).to_have_count(1)
        expect(chat.locator("[data-testid=user]")).to_contain_text("Say hi to <Dave> & Alice")
        sent = protocol_server.chat_requests()[-1].json
        assert [m["content"] for m in sent["messages"]] == ["Answer in French.", "Say hi to <Dave> & Alice"]

        page.locator("#ask-temperature input").fill("7")       # out of range: said (by Gradio), nothing sent
        before = len(protocol_server.chat_requests())
        page.locator("#ask-prompt textarea").fill("again")
        page.locator("#ask-button").click()
        expect(page.locator(".toast-body").first).to_contain_text("maximum value 2", timeout=15000)
        assert len(protocol_server.chat_requests()) == before


class ServedLocally:
    """The local answerer's place taken by an HTTP endpoint (the protocol server): the router treats
    its answers as the local model's (not logged, not rateable). Loading the real Gemma takes a minute."""

    def __init__(self, base_url):
        from routing.providers.openai_compat import OpenAICompatibleClient

        self.client = OpenAICompatibleClient(base_url, None, max_retries=0)

    def status(self):
        return {"state": "ready"}

    def start_loading(self):
        pass

    def chat(self, model, messages, **kwargs):
        return self.client.chat(model, messages, **{k: v for k, v in kwargs.items() if k in ("max_tokens",)})

    def stream_chat(self, model, messages, **kwargs):
        return self.client.stream_chat(model, messages, **{k: v for k, v in kwargs.items() if k in ("max_tokens",)})


def test_a_local_answer_offers_no_rating(protocol_server, tmp_path):
    from playwright.sync_api import expect

    from routing.service import RouterService

    protocol_server.set_model("*", reply="a small local answer")
    service = RouterService(router_settings(protocol_server, tmp_path, openrouter_api_key=None), background=False)
    service.local = service.hub.local = ServedLocally(protocol_server.base_url)
    with launch_app(service) as url, open_page(url) as page:
        page.locator("#ask-prompt textarea").fill("hello")
        page.locator("#ask-button").click()
        chat = page.locator("#ask-chat")
        expect(chat.locator("[data-testid=bot]").last).to_contain_text("a small local answer", timeout=20000)
        expect(chat).to_contain_text("tiny offline model")      # the notice under the answer
        bot = chat.locator(".bot.message")
        expect(bot.locator("button[aria-label='Copy message']:visible")).to_have_count(1)  # one row
        assert bot.locator("button[aria-label='Like']:visible").count() == 0
        assert bot.locator("button[aria-label='Dislike']:visible").count() == 0
