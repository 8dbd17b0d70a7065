"""Attacks on the owner's key: a public deployment lets only callers it can name spend it.

Before the paid-access rule (routing/safety/access.py), ROUTER_API_KEYS guarded ``/v1`` only: the Gradio
API's ``/query``, ``/query-specific``, ``/query-compare`` (five paid calls each) and
``/batch-query`` spent the owner's key for anyone. The settings come from environment variables,
as a deployment sets them.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PAID = [
    ("/query", dict(prompt="What is the capital of France?")),
    ("/query-specific", dict(prompt="What is the capital of France?", model="gemini-flash")),
    ("/query-compare", dict(prompt="What is the capital of France?")),
    ("/batch-query", dict(file=None, prompts=["What is 2 + 2?"], mode="answer", prompt_column=None)),
    ("/batch-query", dict(file=None, prompts=["What is 2 + 2?"], mode="compare", prompt_column=None)),
]


def deployment(server, tmp_path, **env):
    """Settings as a deployment's environment gives them (public host unless said otherwise), with the
    tests' protocol server as OpenRouter and the owner's key set."""
    from routing.settings import Settings

    settings = Settings.from_env({"GRADIO_SERVER_NAME": "0.0.0.0", **env})
    return dataclasses.replace(settings, openrouter_api_key="good", openrouter_base_url=server.base_url,
                               local_model_enabled=False, max_retries=0, read_timeout=3.0, connect_timeout=1.0,
                               live_prices=False, selector="rules", data_dir=tmp_path / "data",
                               cache_dir=tmp_path / "cache", log_answers=False)


@pytest.fixture
def serve(protocol_server, tmp_path):
    """``serve(**env)``: the app as ``python app.py`` serves it, with that environment; yields the URL."""
    import contextlib

    from routing.service import RouterService
    from tests.app_harness import serve_app

    stack = contextlib.ExitStack()

    def start(**env):
        service = RouterService(deployment(protocol_server, tmp_path, **env), background=False)
        return stack.enter_context(serve_app(service))

    with stack:
        yield start


def client(url, **kwargs):
    from gradio_client import Client

    return Client(url, verbose=False, **kwargs)


@pytest.mark.parametrize("api, args", PAID, ids=[f"{a}-{k.get('mode', '')}" for a, k in PAID])
def test_anonymous_callers_cannot_spend_the_key_of_a_public_deployment(serve, protocol_server, api, args):
    from gradio_client.exceptions import AppError

    url = serve(ROUTER_API_KEYS="k-one")
    with pytest.raises(AppError, match="signed-in callers only") as refused:
        client(url).predict(**args, api_name=api)
    assert "Authorization: Bearer" in refused.value.message     # says how to get access
    assert protocol_server.chat_requests() == []                # and nothing was asked of a paid model


def test_a_gateway_key_in_the_header_opens_the_paid_paths(serve, protocol_server):
    url = serve(ROUTER_API_KEYS="k-one,k-two")
    answer = client(url, headers={"Authorization": "Bearer k-two"}).predict(
        prompt="What is the capital of France?", api_name="/query")
    assert answer["answered_by"] in ("gemini-flash", "mistral-small", "qwen2.5", "llama-3.3", "deepseek-r1")
    assert len(protocol_server.chat_requests()) == 1


def test_a_wrong_gateway_key_is_refused(serve, protocol_server):
    from gradio_client.exceptions import AppError

    url = serve(ROUTER_API_KEYS="k-one", ROUTER_PAID_ACCESS="open")
    with pytest.raises(AppError, match="Wrong key"):
        client(url, headers={"Authorization": "Bearer k-on"}).predict(prompt="Hello there", api_name="/query")
    assert protocol_server.chat_requests() == []


def test_users_signed_in_with_the_login_may_spend_and_nobody_else_gets_in(serve, protocol_server):
    url = serve(ROUTER_UI_USERS="alice:correct horse")
    with pytest.raises(Exception):                              # the page and the API are behind the login
        client(url).predict(prompt="Hello there", api_name="/query")
    with pytest.raises(Exception):
        client(url, auth=("alice", "wrong")).predict(prompt="Hello there", api_name="/query")
    answer = client(url, auth=("alice", "correct horse")).predict(prompt="Hello there", api_name="/query")
    assert answer["response"] and len(protocol_server.chat_requests()) == 1


def test_each_caller_has_a_daily_number_of_paid_calls(serve, protocol_server):
    from gradio_client.exceptions import AppError

    url = serve(ROUTER_API_KEYS="k-one,k-two", ROUTER_VISITOR_DAILY_CALLS="3")
    one = client(url, headers={"Authorization": "Bearer k-one"})
    for _ in range(3):
        one.predict(prompt="What is the capital of France?", api_name="/query")
    with pytest.raises(AppError, match=r"used 3 of your 3 paid calls today"):
        one.predict(prompt="What is the capital of France?", api_name="/query")
    assert len(protocol_server.chat_requests()) == 3
    two = client(url, headers={"Authorization": "Bearer k-two"})   # another caller has their own calls...
    with pytest.raises(AppError, match="this request needs 5"):     # ...and a compare of five needs five
        two.predict(prompt="What is the capital of France?", api_name="/query-compare")
    assert len(protocol_server.chat_requests()) == 3
    two.predict(prompt="What is the capital of France?", api_name="/query")
    assert len(protocol_server.chat_requests()) == 4


def test_the_limit_is_kept_across_a_restart(protocol_server, tmp_path):
    from routing.safety.access import VisitorLimitError, identify
    from routing.service import RouterService

    settings = deployment(protocol_server, tmp_path, ROUTER_API_KEYS="key-of-a-caller",
                          ROUTER_VISITOR_DAILY_CALLS="2")
    caller = identify(authorization="Bearer key-of-a-caller", api_keys=settings.api_keys)
    RouterService(settings, background=False).router_for(caller, calls=2)
    with pytest.raises(VisitorLimitError):
        RouterService(settings, background=False).router_for(caller, calls=1)
    assert b"key-of-a-caller" not in (settings.data_dir / "visitors.sqlite3").read_bytes()  # kept hashed


@pytest.mark.parametrize("env", [
    {"ROUTER_DAILY_BUDGET_USD": "5"},                       # the owner capped the day: anyone may spend up to it
    {"GRADIO_SERVER_NAME": "127.0.0.1"},                    # only this machine can reach the app
    {"ROUTER_PAID_ACCESS": "open"},                         # the owner chose to keep it open
], ids=["daily-cap", "localhost", "open"])
def test_paid_paths_stay_open_where_the_owner_allows_it(serve, protocol_server, env):
    url = serve(**env)
    assert client(url).predict(prompt="What is the capital of France?", api_name="/query")["response"]
    assert len(protocol_server.chat_requests()) == 1


def test_signed_in_is_the_rule_even_on_localhost_when_asked_for(serve, protocol_server):
    from gradio_client.exceptions import AppError

    url = serve(GRADIO_SERVER_NAME="127.0.0.1", ROUTER_PAID_ACCESS="signed-in")
    with pytest.raises(AppError, match="signed-in callers only"):
        client(url).predict(prompt="Hello there", api_name="/query")


def test_an_anonymous_visitor_in_the_ask_tab_gets_the_local_model_and_is_told_why(protocol_server, tmp_path):
    from routing.safety.access import PaidAccessError, identify
    from routing.service import RouterService

    settings = deployment(protocol_server, tmp_path)
    anonymous = identify(authorization=None, api_keys=(), client_host="203.0.113.9")
    with pytest.raises(PaidAccessError):             # no local model here: refused, with the ways in
        RouterService(settings, background=False).router_for(anonymous, local_instead=True)
    service = RouterService(dataclasses.replace(settings, local_model_enabled=True), background=False)
    router, notice = service.router_for(anonymous, local_instead=True)
    assert router is not service.router and router.settings.openrouter_api_key is None
    assert "signed-in callers only" in notice
    mine, none = service.router_for(anonymous, own_key="sk-or-v1-visitors-own-key", local_instead=True)
    assert mine.settings.openrouter_api_key == "sk-or-v1-visitors-own-key" and none is None


def _openai(url, key="unused"):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_the_gateway_without_keys_refuses_paid_calls_on_a_public_deployment(serve, protocol_server):
    import openai
    import requests

    url = serve()                                                   # public, owner's key, no cap, no gateway keys
    with pytest.raises(openai.AuthenticationError, match="signed-in callers only"):
        _openai(url).chat.completions.create(model="router", messages=MESSAGES)
    assert protocol_server.chat_requests() == []
    decision = requests.post(f"{url}/v1/route", json={"model": "router", "messages": MESSAGES}, timeout=10)
    assert decision.status_code == 200                               # deciding spends nothing: still open


def test_each_gateway_key_has_its_daily_paid_calls(serve, protocol_server):
    import openai

    url = serve(ROUTER_API_KEYS="k-one,k-two", ROUTER_VISITOR_DAILY_CALLS="1")
    assert _openai(url, "k-one").chat.completions.create(model="router", messages=MESSAGES).choices
    with pytest.raises(openai.RateLimitError, match="paid calls today") as limited:
        _openai(url, "k-one").chat.completions.create(model="router", messages=MESSAGES, stream=True)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert _openai(url, "k-two").chat.completions.create(model="router", messages=MESSAGES).choices
    assert len(protocol_server.chat_requests()) == 2
