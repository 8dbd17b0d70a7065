"""Context windows are enforced (issue 30, item 3): a request plus its answer never goes to a model
whose window it overflows; the reason says so; nothing fits, a clear error naming the sizes; a
conversation kept on a model moves when it outgrows it."""

import json

import pytest

from routing.context.windows import METHOD, count_tokens, too_long
from routing.errors import UserError
from routing.pool import load_pool

LONG = "Summarise the history of the printing press in Europe and its effects on literacy. " * 220  # ~3,500 tokens


@pytest.fixture
def small_qwen(tmp_path):
    """The shipped pool with Qwen2.5's window cut to 2,000 tokens and Mistral's to 3,000."""
    data = json.loads(open("assets/models.json", encoding="utf-8").read())
    for m in data["models"]:
        if m["id"] == "qwen2.5":
            m["context_length"] = 2000
        if m["id"] == "mistral-small":
            m["context_length"] = 3000
    path = tmp_path / "models.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_counting_uses_a_real_tokenizer_and_skips_when_every_window_is_far(small_qwen):
    pool = load_pool(small_qwen)
    assert 10 < count_tokens("How many words are in this short question?") < 25
    assert count_tokens([{"role": "user", "content": LONG}]) > 3000
    assert too_long(pool, "hello", 1024) == ({}, None)          # the byte bound fits: not even counted
    over, tokens = too_long(pool, LONG, 1024)
    assert set(over) == {"qwen2.5", "mistral-small"} and tokens > 3000


def test_the_router_leaves_out_a_model_the_request_overflows_and_says_why(make_service, small_qwen):
    service = make_service(models_file=small_qwen)
    others = ["deepseek-r1", "gemini-flash", "llama-3.3"]
    sel = service.router.decide("Integrate x^2 from 0 to 3", exclude=["deepseek-r1", "gemini-flash", "llama-3.3"])
    assert sel.selected_model in ("qwen2.5", "mistral-small")     # short: the small windows are fine
    sel = service.router.decide("Integrate x^2 from 0 to 3. " + LONG, exclude=others[:2])
    assert sel.selected_model == "llama-3.3"
    assert "qwen2.5's context window (2,000 tokens) cannot hold this request" in sel.reasoning
    assert METHOD in sel.reasoning


def test_nothing_fits_is_a_clear_error_naming_the_sizes(make_service, small_qwen):
    service = make_service(models_file=small_qwen)
    with pytest.raises(UserError, match=r"No pool model.*context window.*largest.*mistral-small.*3,000"):
        service.router.decide(LONG, exclude=["deepseek-r1", "gemini-flash", "llama-3.3"])
    with pytest.raises(UserError, match=r"qwen2.5's context window \(2,000 tokens\)"):
        service.router.decide(LONG, model="qwen2.5")               # you asked for it: said, not swapped


def test_a_kept_conversation_moves_when_it_outgrows_its_model(make_service, small_qwen, protocol_server):
    service = make_service(models_file=small_qwen)
    sel = service.router.decide(LONG, prefer="qwen2.5", prefer_why="this chat started there")
    assert sel.selected_model != "qwen2.5"
    assert "outgrew" in sel.reasoning and "qwen2.5" in sel.reasoning


def test_the_gateway_answers_400_when_nothing_fits(make_service, tmp_path, protocol_server):
    from openai import BadRequestError, OpenAI

    from tests.app_harness import serve_app

    data = json.loads(open("assets/models.json", encoding="utf-8").read())
    for m in data["models"]:
        m["context_length"] = 2000
    path = tmp_path / "small.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    service = make_service(models_file=path)
    with serve_app(service) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(BadRequestError, match="context window"):
            client.chat.completions.create(model="router", messages=[{"role": "user", "content": LONG}])
        with pytest.raises(BadRequestError, match="context window"):
            client.chat.completions.create(model="router", stream=True,
                                           messages=[{"role": "user", "content": LONG}]).close()
        assert protocol_server.chat_requests() == []
