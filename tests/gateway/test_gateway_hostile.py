"""Hostile requests and hostile provider answers against the gateway (/v1/*).

Each test is an attack found by a security audit: the gateway must answer a clear 400 (or a clean
error) where it used to answer 500 or pass something malformed through. The real app runs
in-process (tests/app_harness.serve_app) with gateway keys set; the local protocol server plays
OpenRouter and is scripted to answer badly.
"""

import json
import logging
import os
import time

import pytest
import requests

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tests.app_harness import serve_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402

#: The provider key (long enough to be redacted) and two gateway keys.
SECRET = "sk-or-v1-" + "0123456789abcdef" * 4
GATEWAY_KEY = "gw-hostile-key-0123456789"
OTHER_KEY = "gw-other-key-9876543210"
AUTH = {"Authorization": f"Bearer {GATEWAY_KEY}"}
LIMERICK = "Write a limerick about a sleepy cat"
MAX_PROMPT_CHARS = 20_000


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    from routing.service import RouterService

    settings = router_settings(server, tmp_path_factory.mktemp("hostile"), openrouter_api_key=SECRET,
                               api_keys=(GATEWAY_KEY, OTHER_KEY), cooldown_failures=1000,
                               max_prompt_chars=MAX_PROMPT_CHARS)
    service = RouterService(settings, background=False)
    with serve_app(service) as url:
        yield url, service


@pytest.fixture
def url(app, server):
    server.reset()
    return app[0]


def model_name(app, model_id):
    return app[1].pool.get(model_id).model_name


def post(url, path, body, headers=None):
    """POST ``body`` (a str is sent as it is: hostile JSON; anything else as JSON) with the gateway key."""
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(url + path, data=data.encode("utf-8", "surrogatepass"), timeout=30,
                         headers={"Content-Type": "application/json", **AUTH, **(headers or {})})


def strict_json(text: str):
    """``text`` parsed as standard JSON: NaN / Infinity (which Python's json accepts) fail the test."""
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant} in {text[:300]!r}")
    return json.loads(text, parse_constant=refuse)


def error_of(response, status=400):
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = strict_json(response.text)
    assert "Traceback" not in response.text
    return body["error"]


def sse_payloads(response):
    events = [line[len("data: "):] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", response.text[-300:]
    return [strict_json(e) for e in events[:-1]]


def chat_body(content=LIMERICK, **more):
    return {"model": "router", "messages": [{"role": "user", "content": content}], **more}


# ---------------------------------------------------------------------- 1. lone surrogates

@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/route"])
def test_a_lone_surrogate_is_a_400_naming_the_field(url, server, path):
    # "\ud800" as a JSON escape: valid JSON, but no Unicode character (it cannot be encoded).
    raw = '{"model": "router", "messages": [{"role": "user", "content": "hello \\ud800 world"}]}'
    error = error_of(post(url, path, raw))
    assert error["param"] == "messages[0].content" and "surrogate" in error["message"]
    parts = ('{"model": "router", "messages": [{"role": "user", "content": '
             '[{"type": "text", "text": "hi"}, {"type": "text", "text": "\\udfff"}]}]}')
    assert error_of(post(url, path, parts))["param"] == "messages[0].content[1].text"
    tools = ('{"model": "router", "messages": [{"role": "user", "content": "hi"}], "tools": '
             '[{"type": "function", "function": {"name": "f", "description": "a \\udc80 b"}}]}')
    assert error_of(post(url, path, tools))["param"] == "tools[0].function.description"
    key = '{"model": "router", "messages": [{"role": "user", "content": "hi", "\\ud83d": 1}]}'
    assert error_of(post(url, path, key))["param"] == "messages[0]"
    assert server.chat_requests() == []
    # A proper surrogate pair (an emoji) is a character like any other.
    pair = '{"model": "router", "messages": [{"role": "user", "content": "a cat \\ud83d\\ude3a limerick"}]}'
    assert post(url, "/v1/route", pair).status_code == 200


# ---------------------------------------------------------------------- 2. deep nesting

def test_a_body_nested_too_deep_is_a_400(url, server):
    deep = "[" * 100_000 + "]" * 100_000
    raw = '{"model": "router", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + deep + "}"
    error = error_of(post(url, "/v1/chat/completions", raw))
    assert error["code"] == "invalid_json" and "nested" in error["message"]
    schema = "{}"
    for _ in range(5_000):
        schema = '{"type": "object", "properties": {"x": ' + schema + "}}"
    tools = ('{"model": "router", "messages": [{"role": "user", "content": "hi"}], "tools": '
             '[{"type": "function", "function": {"name": "f", "parameters": ' + schema + "}}]}")
    error = error_of(post(url, "/v1/chat/completions", tools))
    assert "nested" in error["message"]
    # Deep enough to trouble recursive code, shallow enough for json.loads: refused by the depth check.
    nested = {"x": 1}
    for _ in range(200):
        nested = {"x": nested}
    body = chat_body(tools=[{"type": "function", "function": {"name": "f", "parameters": nested}}])
    error = error_of(post(url, "/v1/route", body))
    assert error["param"] == "tools" and "64" in error["message"]
    assert server.chat_requests() == []
    # An ordinary (20 deep) tool schema is fine.
    ordinary = {"type": "string"}
    for _ in range(9):
        ordinary = {"type": "object", "properties": {"x": ordinary}}
    body = chat_body(tools=[{"type": "function", "function": {"name": "f", "parameters": ordinary}}])
    assert post(url, "/v1/route", body).status_code == 200


def test_nan_and_infinity_in_the_body_are_a_400_not_forwarded(url, server):
    # Python's json reads NaN, Infinity and 1e999 (inf); standard JSON has none of them.
    for raw in ('{"model": "router", "messages": [{"role": "user", "content": "hi"}], "tools": '
                '[{"type": "function", "function": {"name": "f", "parameters": {"minimum": NaN}}}]}',
                '{"model": "router", "messages": [{"role": "user", "content": "hi"}], "seed": -Infinity}'):
        assert error_of(post(url, "/v1/chat/completions", raw))["code"] == "invalid_json"
    raw = ('{"model": "router", "messages": [{"role": "user", "content": "hi"}], "tools": '
           '[{"type": "function", "function": {"name": "f", "parameters": {"maximum": 1e999}}}]}')
    assert error_of(post(url, "/v1/chat/completions", raw))["param"] == "tools[0].function.parameters.maximum"
    assert server.chat_requests() == []


# ---------------------------------------------------------------------- 3. size limit counts everything sent

def test_everything_sent_to_the_model_counts_against_max_prompt_chars(url, server):
    big = "x" * (MAX_PROMPT_CHARS + 1)
    cases = {
        "tools": chat_body(tools=[{"type": "function", "function": {"name": "f", "description": "d" * 1_000_000}}]),
        "messages": {"model": "router", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": big}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "user", "content": LIMERICK}]},
        "response_format": chat_body(response_format={"type": "json_schema",
                                                      "json_schema": {"name": "s", "description": big}}),
    }
    image = chat_body([{"type": "text", "text": LIMERICK},
                       {"type": "image_url", "image_url": {"url": "data:image/png;base64," + big}}])
    for param, body in [*cases.items(), ("messages", image)]:
        for path in ("/v1/chat/completions", "/v1/route"):
            error = error_of(post(url, path, body))
            assert error["param"] == param and error["code"] == "context_length_exceeded", error
            assert "ROUTER_MAX_PROMPT_CHARS" in error["message"]
    assert server.chat_requests() == []
    # Together over the limit, each alone under it: still refused.
    half = "y" * (MAX_PROMPT_CHARS // 2 + 10)
    both = chat_body(half, tools=[{"type": "function", "function": {"name": "f", "description": half}}])
    assert error_of(post(url, "/v1/route", both))["code"] == "context_length_exceeded"
    small = chat_body(tools=[{"type": "function", "function": {"name": "f", "description": "Weather"}}])
    assert post(url, "/v1/route", small).status_code == 200


# ---------------------------------------------------------------------- 4. secrets in logged URLs

class _Capture(logging.Handler):
    """Formats each record as a handler would; a formatting failure is recorded, not printed."""

    def __init__(self, formatter):
        super().__init__(logging.INFO)
        self.setFormatter(formatter)
        self.lines, self.errors = [], []

    def emit(self, record):
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # noqa: BLE001 - what logging would print as "--- Logging error ---"
            self.errors.append(repr(exc))


def _access_formatter():
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.logging import AccessFormatter

    return AccessFormatter(fmt=LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)


def test_uvicorn_access_records_keep_their_shape_and_lose_the_secret():
    from routing.safety.redact import register_secret

    register_secret(SECRET, "OPENROUTER_API_KEY")
    capture = _Capture(_access_formatter())
    logger = logging.getLogger("tests.hostile.access")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        # What uvicorn's h11/httptools protocols log for each request.
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/v1/models?key={SECRET}", "1.1", 200)
    finally:
        logger.removeHandler(capture)
        logger.propagate = True
    assert capture.errors == []
    assert capture.lines == ['INFO:     127.0.0.1:5000 - "GET /v1/models?key=[redacted OPENROUTER_API_KEY] '
                             'HTTP/1.1" 200 OK']


def test_records_of_every_shape_lose_the_secret():
    from routing.safety.redact import register_secret

    register_secret(SECRET, "OPENROUTER_API_KEY")
    logger = logging.getLogger("tests.hostile.shapes")

    def record(msg, *args):
        made = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None)
        return made, made.getMessage()

    made, text = record("%s", RuntimeError(f"provider echoed {SECRET}"))        # an object argument
    assert SECRET not in text and "[redacted OPENROUTER_API_KEY]" in text and isinstance(made.args, tuple)
    made, text = record("%(key)s and %(n)d", {"key": SECRET, "n": 3})          # a mapping argument
    assert text == "[redacted OPENROUTER_API_KEY] and 3" and isinstance(made.args, dict)
    made, text = record(f"key {SECRET[:20]}%s", SECRET[20:])                   # split over msg and args
    assert SECRET not in text and "[redacted OPENROUTER_API_KEY]" in text
    made, text = record(RuntimeError(SECRET))                                  # a non-str msg
    assert SECRET not in text


def test_a_secret_in_a_request_url_is_redacted_in_the_real_access_log(url):
    capture = _Capture(_access_formatter())
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.addHandler(capture)
    access.setLevel(logging.INFO)
    try:
        response = requests.get(url + f"/v1/models?key={SECRET}", headers=AUTH, timeout=30)
        deadline = time.monotonic() + 5
        while not (capture.lines or capture.errors) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        access.removeHandler(capture)
        access.setLevel(level)
    assert response.status_code == 200
    assert capture.errors == []
    assert len(capture.lines) == 1 and SECRET not in capture.lines[0]
    assert "/v1/models?key=[redacted OPENROUTER_API_KEY]" in capture.lines[0] and capture.lines[0].endswith(" 200 OK")


# ---------------------------------------------------------------------- 5. cost weights

@pytest.mark.parametrize("model", ["router:", "router:\u0661", "router:\uff11", "router:0_5", "router: 0.5",
                                   "router:1e-1", "router:nan", "router:-0", "router:+0.5", "router:0x1",
                                   "router:2", "router:1.5", "router:0.5.1"])
def test_the_cost_weight_is_an_ascii_decimal_from_0_to_1(url, model):
    error = error_of(post(url, "/v1/route", {"model": model, "messages": [{"role": "user", "content": "hi"}]}))
    assert error["param"] == "model" and "cost weight" in error["message"]


@pytest.mark.parametrize("model, weight", [("router", 0.0), ("router:0", 0.0), ("router:1", 1.0),
                                           ("router:0.3", 0.3), ("router:.5", 0.5), ("router:1.000", 1.0)])
def test_good_cost_weights_still_route(url, model, weight):
    response = post(url, "/v1/route", {"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["cost_weight"] == weight


# ---------------------------------------------------------------------- 6. one key, one session scope

def test_the_bearer_scheme_is_case_insensitive_and_one_key_is_one_scope(url, app):
    messages = [{"role": "user", "content": LIMERICK}]

    def ask(authorization, model="router"):
        return post(url, "/v1/chat/completions", {"model": model, "messages": messages},
                    headers={"Authorization": authorization, "x-session-id": "hostile-session-1"})

    first = ask(f"Bearer {GATEWAY_KEY}", model="qwen2.5")
    assert first.status_code == 200 and first.json()["model"] == "qwen2.5"
    for scheme in ("bearer", "BEARER", "bEaReR"):
        again = ask(f"{scheme} {GATEWAY_KEY}")
        assert again.status_code == 200, again.text
        assert (again.headers["x-router-session"], again.json()["model"]) == ("x-session-id", "qwen2.5"), scheme
    spaced = ask(f"Bearer   {GATEWAY_KEY}  ")
    assert (spaced.headers["x-router-session"], spaced.json()["model"]) == ("x-session-id", "qwen2.5")
    other = ask(f"Bearer {OTHER_KEY}")  # another key: another scope, routed afresh
    assert (other.headers["x-router-session"], other.json()["model"]) == ("new", "llama-3.3")
    for bad in (f"Basic {GATEWAY_KEY}", f"Bearer{GATEWAY_KEY}", f"Bearer {GATEWAY_KEY[:-1]}",
                f"Bearer {GATEWAY_KEY}x", f"Bearer {GATEWAY_KEY.upper()}", "Bearer", ""):
        assert error_of(ask(bad), 401)["code"] == "invalid_api_key", bad


# ---------------------------------------------------------------------- 7. malformed provider tool calls

BAD_TOOL_CALLS = [
    "call me",
    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
    [1, 2],
    [{"id": 5, "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    [{"id": "c1", "type": "function", "function": "f"}],
    [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
    [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}, None],
]


def _valid_call(call):
    return (isinstance(call, dict) and isinstance(call.get("id"), str) and call.get("type") == "function"
            and isinstance(call.get("function"), dict) and isinstance(call["function"].get("name"), str)
            and isinstance(call["function"].get("arguments"), str))


@pytest.mark.parametrize("tool_calls", BAD_TOOL_CALLS, ids=range(len(BAD_TOOL_CALLS)))
def test_malformed_provider_tool_calls_are_not_passed_through(url, server, app, tool_calls):
    server.set_model(model_name(app, "qwen2.5"), tool_calls=tool_calls)
    response = post(url, "/v1/chat/completions", {"model": "qwen2.5", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    choice = strict_json(response.text)["choices"][0]
    calls = choice["message"].get("tool_calls")
    assert calls is None or (isinstance(calls, list) and all(_valid_call(c) for c in calls)), calls
    assert calls is None and choice["finish_reason"] != "tool_calls"


def test_malformed_streamed_tool_call_deltas_are_not_passed_through(url, server, app):
    good = {"id": "call_ok", "type": "function", "function": {"name": "get_weather", "arguments": "{\"a\": 1}"}}
    bad = {"id": 5, "type": "function", "function": {"name": 7, "arguments": "{\"b\": 2}"}}
    server.set_model(model_name(app, "qwen2.5"), tool_calls=[good, bad])
    response = post(url, "/v1/chat/completions",
                    {"model": "qwen2.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    deltas = [tc for p in sse_payloads(response) if p.get("choices")
              for tc in (p["choices"][0]["delta"].get("tool_calls") or [])]
    for delta in deltas:
        assert isinstance(delta, dict) and isinstance(delta.get("index"), int), delta
        assert isinstance(delta.get("id", ""), str) and isinstance(delta.get("function", {}), dict), delta
        assert all(isinstance(v, str) for v in delta.get("function", {}).values()), delta
    assert {d["index"] for d in deltas} == {0}  # the good call comes through whole, the bad one not at all
    assert "".join(d.get("function", {}).get("arguments", "") for d in deltas) == good["function"]["arguments"]
    server.set_model(model_name(app, "qwen2.5"), tool_calls=[bad])
    response = post(url, "/v1/chat/completions",
                    {"model": "qwen2.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    payloads = sse_payloads(response)
    assert not [p for p in payloads if p.get("choices") and p["choices"][0]["delta"].get("tool_calls")]
    assert [p["choices"][0]["finish_reason"] for p in payloads
            if p.get("choices") and p["choices"][0]["finish_reason"]] == ["stop"]


# ---------------------------------------------------------------------- 8. never NaN, never a stack trace

def test_a_nan_cost_never_reaches_the_wire_as_invalid_json(url, server, monkeypatch):
    import tests.protocol_server as protocol

    monkeypatch.setattr(protocol, "cost_for", lambda usage: float("nan"))  # the provider reports "cost": NaN
    for stream in (False, True):
        response = post(url, "/v1/chat/completions", chat_body(stream=stream))
        assert "Traceback" not in response.text
        assert all(v.lower() not in ("nan", "inf", "-inf") for k, v in response.headers.items()
                   if k.startswith("x-router-")), dict(response.headers)
        if response.status_code != 200:
            assert strict_json(response.text)["error"]["type"] == "server_error"
        elif stream:
            assert sse_payloads(response)[-1]["router"]["cost_usd"] is None
        else:
            assert strict_json(response.text)["router"]["cost_usd"] is None
    route = post(url, "/v1/route", chat_body())
    assert route.status_code == 200, route.text[:300]
    strict_json(route.text)


def test_internal_errors_are_a_clean_500_without_the_secret(url, app, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError(f"boom with {SECRET}")

    monkeypatch.setattr(app[1].router, "decide", boom)
    error = error_of(post(url, "/v1/route", chat_body()), 500)
    assert error["code"] == "internal_error" and SECRET not in json.dumps(error)


def test_json_responses_with_non_finite_numbers_are_standard_json(url, app, monkeypatch):
    """Whatever number goes wrong inside (a ledger, a score), the body stays standard JSON."""
    summary = app[1].ledger.summary
    monkeypatch.setattr(app[1].ledger, "summary",
                        lambda: {**summary(), "spent_usd": float("nan"), "left_usd": float("inf")})
    route = post(url, "/v1/route", chat_body())
    assert route.status_code == 200, route.text[:300]
    spend = strict_json(route.text)["spend"]
    assert spend["spent_usd"] is None and spend["left_usd"] is None
