"""The OpenAI-compatible gateway (/v1/*) through the official openai SDK and raw HTTP.

The app (gateway + Gradio, one port) runs in-process (tests/app_harness.serve_app); the local
protocol server plays OpenRouter.
"""

import json
import os

import httpx
import openai
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tests.app_harness import serve_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402
from tests.protocol_server import default_reply  # noqa: E402

LIMERICK = "Write a limerick about a sleepy cat"
CODE = "Write a Python function that reverses a linked list and explain the algorithm"
GATEWAY_KEY = "gw-test-key-0123456789"
# A coding turn that the router sends to DeepSeek R1 even after a limerick turn.
DEBUG = ("Debug this Python code: def f(x): return x[::-1] # why does it fail on linked lists? "
         "Write the fixed function and tests.")


@pytest.fixture(scope="module")
def app_url(server, tmp_path_factory):
    from routing.service import RouterService

    settings = router_settings(server, tmp_path_factory.mktemp("gw"), cooldown_failures=1000)
    service = RouterService(settings, background=False)
    with serve_app(service) as url:
        yield url, service


@pytest.fixture
def client(app_url, server):
    server.reset()
    return openai.OpenAI(base_url=app_url[0] + "/v1", api_key="unused", max_retries=0, timeout=20)


def model_name(service, model_id):
    return service.pool.get(model_id).model_name


def test_plain_completion_names_who_answered_and_sends_the_headers(client, app_url):
    raw = client.chat.completions.with_raw_response.create(
        model="router", messages=[{"role": "user", "content": LIMERICK}])
    completion = raw.parse()
    assert completion.model == "llama-3.3"
    assert completion.choices[0].message.content == default_reply(model_name(app_url[1], "llama-3.3"),
                                                                   [{"role": "user", "content": LIMERICK}])
    assert completion.choices[0].finish_reason == "stop" and completion.usage.total_tokens > 0
    assert raw.headers["x-router-selected-model"] == "llama-3.3"
    assert raw.headers["x-router-answered-by"] == "llama-3.3"
    assert float(raw.headers["x-router-confidence"]) > 0
    assert raw.headers["x-router-fallbacks"] == "0"
    assert float(raw.headers["x-router-cost-usd"]) > 0
    router = completion.model_extra["router"]
    assert set(router["scores"]) == set(app_url[1].pool.ids) and router["ranking"][0] == "llama-3.3"
    assert router["reasoning"]


def test_system_and_earlier_turns_are_sent_as_they_are(client, server):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": LIMERICK}]
    client.chat.completions.create(model="router", messages=messages, temperature=0.2, top_p=0.9,
                                   stop=["\n\n"], max_tokens=5000, user="u-1")
    body = server.chat_requests()[-1].json
    assert body["messages"] == messages
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["stop"] == ["\n\n"]
    assert body["user"] == "u-1" and body["max_tokens"] == 1024  # clipped to ROUTER_MAX_TOKENS


def test_streamed_completion_matches_the_servers_reply(client, app_url):
    stream = client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == default_reply(model_name(app_url[1], "llama-3.3"), [{"role": "user", "content": LIMERICK}])
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())
    assert {c.model for c in chunks} == {"llama-3.3"}


def test_stream_falls_back_before_the_first_token(client, server, app_url):
    service = app_url[1]
    server.set_model(model_name(service, "llama-3.3"), status=500)
    with client.chat.completions.with_streaming_response.create(
            model="router", messages=[{"role": "user", "content": LIMERICK}], stream=True) as response:
        assert response.headers["x-router-selected-model"] == "llama-3.3"
        answered = response.headers["x-router-answered-by"]
        assert answered != "llama-3.3" and response.headers["x-router-fallbacks"] == "1"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == default_reply(model_name(service, answered), [{"role": "user", "content": LIMERICK}])


def test_mid_stream_failure_ends_with_an_error_event_and_no_splicing(app_url, server):
    url, service = app_url
    server.reset()
    name = model_name(service, "llama-3.3")
    server.set_model(name, stream_error="upstream broke", stream_error_after=2)
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=20,
                      json={"model": "router", "stream": True,
                            "messages": [{"role": "user", "content": LIMERICK}]}) as response:
        assert response.status_code == 200
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    assert "error" in payloads[-1] and "upstream broke" in payloads[-1]["error"]["message"]
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads[:-1])
    assert default_reply(name, [{"role": "user", "content": LIMERICK}]).startswith(text) and text
    assert [r.model for r in server.chat_requests()] == [name]  # no other model was asked
    with pytest.raises(openai.APIError):
        list(openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0).chat.completions.create(
            model="router", stream=True, messages=[{"role": "user", "content": LIMERICK}]))


def test_cost_weight_one_picks_a_cheaper_model(client, app_url):
    pool = app_url[1].pool
    best = client.chat.completions.create(model="router:0", messages=[{"role": "user", "content": CODE}])
    cheap = client.chat.completions.create(model="router:1.0", messages=[{"role": "user", "content": CODE}])
    assert best.model != cheap.model
    assert pool.get(cheap.model).blended_price_per_m < pool.get(best.model).blended_price_per_m


def test_a_pool_id_answers_without_routing(client, server, app_url):
    completion = client.chat.completions.create(model="qwen2.5", messages=[{"role": "user", "content": LIMERICK}])
    assert completion.model == "qwen2.5"
    assert [r.model for r in server.chat_requests()] == [model_name(app_url[1], "qwen2.5")]


def test_unknown_model_and_bad_weight_and_bad_messages(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="router:2", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="router", messages=[{"role": "wizard", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="router", messages=[])


def test_no_model_can_answer_is_503_and_all_rate_limited_is_429(client, server):
    server.set_model("*", status=500)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}])
    assert info.value.status_code == 503 and "Traceback" not in str(info.value.body)
    server.set_model("*", status=429)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}])


def test_a_refused_provider_key_is_502_and_no_credits_is_402(client, server):
    for status, expected, code in ((401, 502, "upstream_key_rejected"), (402, 402, "upstream_payment_required")):
        server.reset()
        server.set_model("*", status=status)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}])
        assert info.value.status_code == expected and info.value.body["code"] == code
        assert len(server.chat_requests()) == 1


def test_tools_are_passed_through_untouched(client, server):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}],
                                   tools=tools, tool_choice=choice)
    body = server.chat_requests()[-1].json
    assert body["tools"] == tools and body["tool_choice"] == choice


def test_route_decides_without_spending(client, server, app_url):
    response = client.post("/route", cast_to=httpx.Response,
                           body={"model": "router", "messages": [{"role": "user", "content": LIMERICK}]})
    decision = response.json()
    assert decision["selected_model"] == "llama-3.3" and decision["ranking"][0] == "llama-3.3"
    assert set(decision["scores"]) == set(app_url[1].pool.ids)
    assert decision["confidence"] > 0 and decision["reasoning"] and decision["estimated_cost_usd"] > 0
    assert server.chat_requests() == []


def test_models_lists_router_and_the_pool(client, app_url):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["router", *app_url[1].pool.ids]
    entry = models.data[1].model_extra
    assert entry["context_length"] > 0 and "input_per_m" in entry["pricing"]


def test_sse_framing(app_url):
    url = app_url[0]
    response = httpx.post(url + "/v1/chat/completions", timeout=20,
                          json={"model": "router", "stream": True, "stream_options": {"include_usage": True},
                                "messages": [{"role": "user", "content": LIMERICK}]})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-router-selected-model"] == "llama-3.3"
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""  # the body ends with a blank line
    events = blocks[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    assert events[-1] == "data: [DONE]"
    assert all(json.loads(e[6:])["object"] == "chat.completion.chunk" for e in events[:-1])


def test_page_is_served_beside_the_gateway(app_url):
    response = httpx.get(app_url[0] + "/", timeout=20)
    assert response.status_code == 200 and "gradio" in response.text.lower()


def test_gateway_key_is_required_when_set(server, tmp_path):
    from routing.service import RouterService

    server.reset()
    service = RouterService(router_settings(server, tmp_path, api_keys=(GATEWAY_KEY, "another-key-987654321")),
                            background=False)
    messages = [{"role": "user", "content": LIMERICK}]
    with serve_app(service) as url:
        bad = openai.OpenAI(base_url=url + "/v1", api_key="wrong-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="router", messages=messages)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        missing = httpx.post(url + "/v1/chat/completions", json={"model": "router", "messages": messages})
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/", timeout=20).status_code == 200  # the page needs no gateway key
        good = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        assert good.chat.completions.create(model="router", messages=messages).model == "llama-3.3"
    assert len(server.chat_requests()) == 1


def test_exposure_warning():
    from gateway import exposure_warning
    from routing.settings import Settings

    assert exposure_warning(Settings(openrouter_api_key="k"), "127.0.0.1") is None
    assert exposure_warning(Settings(openrouter_api_key="k", api_keys=("a",)), "0.0.0.0") is None
    assert "ROUTER_API_KEYS" in exposure_warning(Settings(openrouter_api_key="k"), "0.0.0.0")
    assert "ROUTER_DAILY_BUDGET_USD" in exposure_warning(Settings(openrouter_api_key="k"), "0.0.0.0")
    assert "ROUTER_DAILY_BUDGET_USD" not in exposure_warning(Settings(openrouter_api_key="k", daily_budget_usd=5),
                                                             "0.0.0.0")
    assert Settings.from_env({"ROUTER_API_KEYS": " a , b,"}).api_keys == ("a", "b")


# ---------------------------------------------------------------------- multi-turn stickiness

def _turn(client, messages, **kwargs):
    raw = client.chat.completions.with_raw_response.create(model="router", messages=messages, **kwargs)
    return raw, raw.parse()


def test_a_conversation_stays_on_the_model_that_started_it(client):
    first_raw, first = _turn(client, [{"role": "user", "content": LIMERICK}])
    assert first.model == "llama-3.3" and first_raw.headers["x-router-session"] == "new"
    history = [{"role": "user", "content": LIMERICK},
               {"role": "assistant", "content": first.choices[0].message.content},
               {"role": "user", "content": DEBUG}]
    unknown = [*history[:1], {"role": "assistant", "content": "an answer the router never gave"}, history[2]]
    alone = client.chat.completions.create(model="router", messages=unknown)
    assert alone.model != "llama-3.3"  # routed on its own, this conversation goes elsewhere
    raw, second = _turn(client, history)
    assert second.model == "llama-3.3" and raw.headers["x-router-session"] == "history"
    router = second.model_extra["router"]
    assert router["session"] == {"continued": True, "key": "history", "model": "llama-3.3"}
    assert router["reasoning"].startswith("Kept on") and alone.model in router["reasoning"]
    # A third turn (streamed) continues the same conversation.
    history += [{"role": "assistant", "content": second.choices[0].message.content},
                {"role": "user", "content": "Now make it recursive"}]
    chunks = list(client.chat.completions.create(model="router", messages=history, stream=True))
    assert {c.model for c in chunks} == {"llama-3.3"}


def test_an_edited_history_is_a_new_conversation(client):
    _, first = _turn(client, [{"role": "user", "content": LIMERICK}])
    edited = [{"role": "user", "content": LIMERICK},
              {"role": "assistant", "content": "Some other answer the router never gave"},
              {"role": "user", "content": DEBUG}]
    raw, second = _turn(client, edited)
    assert raw.headers["x-router-session"] == "new" and second.model != first.model


def test_session_header_and_user_field_keep_the_model(client):
    one = client.chat.completions.with_raw_response.create(
        model="router", messages=[{"role": "user", "content": LIMERICK}], extra_headers={"x-session-id": "s-42"})
    assert one.parse().model == "llama-3.3"
    two = client.chat.completions.with_raw_response.create(
        model="router", messages=[{"role": "user", "content": CODE}], extra_headers={"x-session-id": "s-42"})
    assert two.parse().model == "llama-3.3" and two.headers["x-router-session"] == "x-session-id"
    other = client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}],
                                           extra_headers={"x-session-id": "s-43"})
    assert other.model != "llama-3.3"
    # user: a continuation (with an earlier answer, here not echoed exactly) stays; a first turn does not.
    _turn(client, [{"role": "user", "content": LIMERICK}], user="alice")
    raw, kept = _turn(client, [{"role": "user", "content": LIMERICK}, {"role": "assistant", "content": "(edited)"},
                               {"role": "user", "content": DEBUG}], user="alice")
    assert kept.model == "llama-3.3" and raw.headers["x-router-session"] == "user"
    _, fresh = _turn(client, [{"role": "user", "content": CODE}], user="alice")
    assert fresh.model != "llama-3.3"


def test_a_failing_model_moves_the_conversation_and_a_named_model_wins(client, server, app_url):
    service = app_url[1]
    headers = {"x-session-id": "move-me"}
    assert client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}],
                                          extra_headers=headers).model == "llama-3.3"
    server.set_model(model_name(service, "llama-3.3"), status=500)
    moved = client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}],
                                           extra_headers=headers)
    assert moved.model != "llama-3.3"
    server.reset()
    after = client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}],
                                           extra_headers=headers)
    assert after.model == moved.model  # the conversation now lives where it was answered
    named = client.chat.completions.create(model="qwen2.5", messages=[{"role": "user", "content": LIMERICK}],
                                           extra_headers=headers)
    assert named.model == "qwen2.5"
    assert client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}],
                                          extra_headers=headers).model == "qwen2.5"


def test_session_keys_are_scoped_and_bounded():
    from gateway.sessions import SessionStore

    store = SessionStore(max_entries=2, ttl_s=10, clock=lambda: now[0])
    now = [0.0]
    messages = [{"role": "user", "content": "hi"}]
    match = store.match(messages, session_id="s", user=None, scope="key-a")
    store.remember(match, messages, {"role": "assistant", "content": "hello"}, "m1", scope="key-a")
    assert store.match(messages, session_id="s", user=None, scope="key-a").model == "m1"
    assert store.match(messages, session_id="s", user=None, scope="key-b").model is None  # another key's
    assert len(store) == 2  # the session id and the answer's hash; new entries evict the least recently used
    store.put("x", "m2")
    assert store.match(messages, session_id="s", user=None, scope="key-a").model == "m1"  # used just now: kept
    store.put("y", "m3")
    store.put("z", "m4")
    assert len(store) == 2 and store.match(messages, session_id="s", user=None, scope="key-a").model is None
    now[0] = 11.0
    assert store.get("x") is None  # expired


# ---------------------------------------------------------------------- spending limits

def test_max_cost_usd_keeps_expensive_models_out(client, app_url):
    pool = app_url[1].pool
    messages = [{"role": "user", "content": CODE}]
    free = client.post("/route", cast_to=httpx.Response, body={"model": "router", "messages": messages}).json()
    dearest = max(free["estimated_cost_by_model"], key=free["estimated_cost_by_model"].get)
    assert free["selected_model"] == dearest  # the coding prompt goes to the priciest model
    costs = sorted(free["estimated_cost_by_model"].values())
    cap = (costs[-1] + costs[-2]) / 2  # only the priciest is above the cap
    capped = client.chat.completions.create(model="router", messages=messages, extra_body={"max_cost_usd": cap})
    assert capped.model != dearest and capped.model_extra["router"]["ranking"][0] != dearest
    assert dearest not in capped.model_extra["router"]["ranking"]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="router", messages=messages, extra_body={"max_cost_usd": costs[0] / 2})
    assert info.value.status_code == 402 and info.value.body["code"] == "max_cost_exceeded"
    assert "cheapest" in info.value.body["message"]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=dearest, messages=messages, extra_body={"max_cost_usd": cap})
    assert info.value.status_code == 402
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="router", messages=messages, extra_body={"max_cost_usd": -1})
    assert pool.get(capped.model).blended_price_per_m < pool.get(dearest).blended_price_per_m


def test_daily_budget_stops_paid_calls_with_402(server, tmp_path):
    from routing.service import RouterService

    server.reset()
    messages = [{"role": "user", "content": LIMERICK}]
    service = RouterService(router_settings(server, tmp_path, daily_budget_usd=0.01), background=False)
    with serve_app(service) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=20)
        first = client.chat.completions.with_raw_response.create(model="router", messages=messages)
        spent = float(first.headers["x-router-cost-usd"])
        assert spent > 0 and service.ledger.summary()["spent_usd"] == pytest.approx(spent)
        # Spend the rest of the day's budget (as other requests would), then the next call is refused.
        hold = service.ledger.reserve("llama-3.3", 0.01 - spent - 1e-9)
        service.ledger.settle(hold, 0.01 - spent - 1e-9)
        asked = len(server.chat_requests())
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as info:
                result = client.chat.completions.create(model="router", messages=messages, stream=stream)
                list(result) if stream else None
            assert info.value.status_code == 402 and info.value.body["code"] == "daily_budget_exhausted"
            assert "ROUTER_DAILY_BUDGET_USD" in info.value.body["message"]
        assert len(server.chat_requests()) == asked  # no model was called
        decision = client.post("/route", cast_to=httpx.Response, body={"model": "router", "messages": messages})
        assert decision.status_code == 200 and decision.json()["spend"]["left_usd"] == 0


def test_streams_carry_the_estimate_in_headers_and_the_cost_at_the_end(app_url, server):
    server.reset()
    response = httpx.post(app_url[0] + "/v1/chat/completions", timeout=20,
                          json={"model": "router", "stream": True, "messages": [{"role": "user", "content": LIMERICK}]})
    assert float(response.headers["x-router-estimated-cost-usd"]) > 0
    last = json.loads([b for b in response.text.split("\n\n") if b.startswith("data: {")][-1][6:])
    assert last["router"]["cost_usd"] > 0


# ---------------------------------------------------------------------- tool calls

WEATHER_CALL = [{"id": "call_7", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]


def test_tool_calls_come_back_in_plain_and_streamed_answers(client, server, app_url):
    server.set_model(model_name(app_url[1], "llama-3.3"), tool_calls=WEATHER_CALL)
    messages = [{"role": "user", "content": LIMERICK}]
    plain = client.chat.completions.create(model="router", messages=messages)
    call = plain.choices[0].message.tool_calls[0]
    assert plain.choices[0].finish_reason == "tool_calls" and plain.choices[0].message.content is None
    assert (call.id, call.function.name, call.function.arguments) == ("call_7", "get_weather",
                                                                      WEATHER_CALL[0]["function"]["arguments"])
    chunks = list(client.chat.completions.create(model="router", messages=messages, stream=True))
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(pieces) == 3 and pieces[0].id == "call_7" and pieces[0].function.name == "get_weather"
    assert "".join(p.function.arguments or "" for p in pieces) == WEATHER_CALL[0]["function"]["arguments"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    # The tool's result continues the conversation on the same model.
    server.reset()
    follow = messages + [{"role": "assistant", "content": None, "tool_calls": WEATHER_CALL},
                         {"role": "tool", "tool_call_id": "call_7", "content": "18 C, sunny"},
                         {"role": "user", "content": CODE}]
    raw = client.chat.completions.with_raw_response.create(model="router", messages=follow)
    assert raw.parse().model == "llama-3.3" and raw.headers["x-router-session"] == "history"


def test_latency_weight_moves_the_request_off_a_slow_model(client, app_url):
    service = app_url[1]
    messages = [{"role": "user", "content": CODE}]
    plain = client.post("/route", cast_to=httpx.Response, body={"model": "router", "messages": messages}).json()
    slow = plain["selected_model"]
    for model_id in service.pool.ids:   # the last 50 calls: the usual pick is slow, the others quick
        for _ in range(50):
            service.router.health.record_success(model_id, 9000.0 if model_id == slow else 300.0)
    weighed = client.post("/route", cast_to=httpx.Response,
                          body={"model": "router", "messages": messages, "latency_weight": 1.0}).json()
    assert weighed["selected_model"] != slow and weighed["latency_ms"][slow] == 9000.0
    assert "latency slider (1.00) changed the pick" in weighed["reasoning"]
    answer = client.chat.completions.create(model="router", messages=messages, extra_body={"latency_weight": 1.0})
    assert answer.model != slow
    same = client.chat.completions.create(model="router", messages=messages, extra_body={"latency_weight": 0})
    assert same.model == slow
    for bad in (-0.1, 1.5, "fast", True):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="router", messages=messages, extra_body={"latency_weight": bad})
        assert "latency_weight" in info.value.body["message"]
