"""OpenAICompatibleClient against the local protocol server: answers, streams, faults, retries."""

from __future__ import annotations

import email.utils
import socket
import threading
import time

import pytest
import requests

from routing.errors import ProviderError
from routing.providers.base import ChatResult, StreamChunk
from routing.providers.openai_compat import OpenAICompatibleClient, estimate_cost, parse_retry_after
from tests.protocol_server import ProtocolServer, cost_for, default_reply, usage_for

MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"}]


def make_client(server: ProtocolServer | str, api_key: str | None = "sk-test", **kwargs) -> OpenAICompatibleClient:
    """A client with tiny timeouts and backoff so fault tests stay fast."""
    base_url = server if isinstance(server, str) else server.base_url
    options = dict(connect_timeout=0.5, read_timeout=0.5, max_retries=1, backoff_base=0.01,
                   backoff_max=0.05)
    options.update(kwargs)
    return OpenAICompatibleClient(base_url, api_key, **options)


def collect(stream) -> tuple[list[str], ChatResult]:
    """Deltas in arrival order and the final result; checks the final chunk is last and alone."""
    chunks: list[StreamChunk] = list(stream)
    assert chunks and chunks[-1].done and chunks[-1].result is not None
    assert not any(c.done for c in chunks[:-1])
    return [c.delta for c in chunks[:-1]], chunks[-1].result


def raises_provider_error(fn, *args, **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        result = fn(*args, **kwargs)
        if not isinstance(result, ChatResult):   # a generator: errors come while iterating
            list(result)
    return info.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- normal answers and what is sent

def test_chat_returns_answer_usage_and_provider_cost(protocol_server):
    result = make_client(protocol_server).chat("vendor/model-x", MESSAGES)

    expected_text = default_reply("vendor/model-x", MESSAGES)
    expected_usage = usage_for(MESSAGES, expected_text)
    assert result.text == expected_text
    assert result.model == "vendor/model-x"
    assert result.provider == "openai_compatible"
    assert result.usage == expected_usage
    assert result.cost_usd == pytest.approx(cost_for(expected_usage))
    assert result.finish_reason == "stop"
    assert result.latency_ms > 0
    assert result.raw["choices"][0]["message"]["content"] == expected_text


def test_chat_sends_openai_request_with_bearer_key(protocol_server):
    make_client(protocol_server, extra_headers={"X-Title": "router-tests"}).chat(
        "vendor/model-x", MESSAGES, max_tokens=50, temperature=0.2)

    [request] = protocol_server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.authorization == "Bearer sk-test"
    assert request.headers.get("X-Title") == "router-tests"
    assert request.json["model"] == "vendor/model-x"
    assert request.json["messages"] == MESSAGES
    assert request.json["max_tokens"] == 50
    assert request.json["temperature"] == 0.2
    assert request.json["usage"] == {"include": True}
    assert "stream" not in request.json


def test_no_key_sends_no_authorization_header_and_omits_unset_options(protocol_server):
    make_client(protocol_server, api_key=None).chat("local-model", MESSAGES)

    [request] = protocol_server.requests
    assert request.authorization is None
    assert "max_tokens" not in request.json and "temperature" not in request.json


def test_reasoning_stays_out_of_text_but_is_kept_in_raw(protocol_server):
    protocol_server.set_model("deepseek/deepseek-r1", reply="Paris.", reasoning="Let me think...")
    client = make_client(protocol_server)

    result = client.chat("deepseek/deepseek-r1", MESSAGES)
    assert result.text == "Paris."
    assert result.raw["choices"][0]["message"]["reasoning"] == "Let me think..."

    deltas, streamed = collect(client.stream_chat("deepseek/deepseek-r1", MESSAGES))
    assert "".join(deltas) == streamed.text == "Paris."
    assert streamed.raw["choices"][0]["message"]["reasoning"] == "Let me think..."


def test_cost_is_estimated_from_prices_when_provider_sends_none(protocol_server):
    protocol_server.set_model("m", include_cost=False)
    prices = {"m": (1.0, 4.0)}
    result = make_client(protocol_server, prices=prices.get).chat("m", MESSAGES)
    assert result.cost_usd == pytest.approx(estimate_cost(result.usage, 1.0, 4.0))
    assert result.cost_usd == pytest.approx(
        (result.usage["prompt_tokens"] * 1.0 + result.usage["completion_tokens"] * 4.0) / 1e6)

    assert make_client(protocol_server).chat("m", MESSAGES).cost_usd is None   # no price known
    assert make_client(protocol_server, prices=prices.get).chat("unpriced", MESSAGES).cost_usd \
        == pytest.approx(cost_for(usage_for(MESSAGES, default_reply("unpriced", MESSAGES))))


def test_estimate_cost_uses_dollars_per_million_tokens():
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 500_000}
    assert estimate_cost(usage, 0.4, 1.6) == pytest.approx(0.4 + 0.8)
    assert estimate_cost({}, 0.4, 1.6) == 0.0


def test_max_tokens_truncation_is_reported_as_length(protocol_server):
    protocol_server.set_model("m", reply="one two three four five")
    result = make_client(protocol_server).chat("m", MESSAGES, max_tokens=2)
    assert result.text == "one two"
    assert result.finish_reason == "length"


# ---------------------------------------------------------------- streaming

def test_stream_yields_chunks_in_order_and_a_final_result(protocol_server):
    reply = "Paris is the capital of France."
    protocol_server.set_model("m", reply=reply)
    deltas, result = collect(make_client(protocol_server).stream_chat("m", MESSAGES))

    assert len(deltas) > 3 and all(deltas)
    assert "".join(deltas) == reply == result.text
    assert result.usage == usage_for(MESSAGES, reply)
    assert result.cost_usd == pytest.approx(cost_for(result.usage))
    assert result.finish_reason == "stop"
    [request] = protocol_server.requests
    assert request.json["stream"] is True and request.json["model"] == "m"


def test_stream_delivers_first_chunk_before_the_answer_is_finished(protocol_server):
    protocol_server.set_model("m", reply="a b c d", chunk_delay=0.3)
    stream = make_client(protocol_server, read_timeout=2).stream_chat("m", MESSAGES)
    first = next(stream)
    first_at = time.monotonic()
    deltas, result = collect(stream)
    assert first.delta == "a " and result.text == "a b c d"
    assert time.monotonic() - first_at >= 0.8    # the rest came 3 x 0.3 s later: not buffered


def test_stream_error_mid_answer_raises_without_retry(protocol_server):
    protocol_server.set_model("m", reply="one two three four", stream_error="Upstream died",
                              stream_error_after=2)
    received: list[str] = []
    with pytest.raises(ProviderError) as info:
        for chunk in make_client(protocol_server).stream_chat("m", MESSAGES):
            received.append(chunk.delta)
    assert received == ["one ", "two "]
    assert "Upstream died" in info.value.message
    assert info.value.status == 502 and info.value.retryable
    assert len(protocol_server.requests) == 1


def test_stream_error_before_any_text_is_retried(protocol_server):
    protocol_server.script("m", [dict(stream_error="overloaded", stream_error_after=0), {}])
    deltas, result = collect(make_client(protocol_server).stream_chat("m", MESSAGES))
    assert result.text == default_reply("m", MESSAGES)
    assert len(protocol_server.chat_requests("m")) == 2


def test_stream_http_500_then_success_is_retried(protocol_server):
    protocol_server.set_model("m", status=500, fail_times=1)
    deltas, result = collect(make_client(protocol_server).stream_chat("m", MESSAGES))
    assert "".join(deltas) == result.text == default_reply("m", MESSAGES)
    assert len(protocol_server.requests) == 2


def test_stream_malformed_event_raises(protocol_server):
    protocol_server.set_model("m", malformed=True)
    error = raises_provider_error(make_client(protocol_server).stream_chat, "m", MESSAGES)
    assert "malformed JSON" in error.message


# ---------------------------------------------------------------- HTTP errors that are not retried

def test_401_is_not_retried_and_names_the_key_setting(protocol_server):
    protocol_server.set_model("m", status=401, error_message="User not found.")
    error = raises_provider_error(make_client(protocol_server, key_env="OPENROUTER_API_KEY").chat,
                                  "m", MESSAGES)
    assert error.status == 401 and not error.retryable
    assert "401 Unauthorized" in error.message and "OPENROUTER_API_KEY" in error.message
    assert "User not found." in error.message
    assert len(protocol_server.requests) == 1


def test_401_without_a_key_says_none_was_sent(protocol_server):
    protocol_server.require_key = True
    error = raises_provider_error(make_client(protocol_server, api_key=None,
                                              key_env="OPENROUTER_API_KEY").chat, "m", MESSAGES)
    assert error.status == 401 and "no API key was sent" in error.message


def test_402_is_not_retried_and_says_no_credits(protocol_server):
    protocol_server.set_model("m", status=402, error_message="Insufficient credits")
    error = raises_provider_error(make_client(protocol_server, max_retries=3).chat, "m", MESSAGES)
    assert error.status == 402 and not error.retryable
    assert "402 Payment Required" in error.message and "no credits" in error.message
    assert len(protocol_server.requests) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried(protocol_server, status):
    protocol_server.set_model("m", status=status, error_message="provider detail")
    error = raises_provider_error(make_client(protocol_server, max_retries=3).chat, "m", MESSAGES)
    assert error.status == status and not error.retryable
    assert error.message.startswith(str(status)) and "provider detail" in error.message
    assert len(protocol_server.requests) == 1


def test_error_object_with_http_200_raises(protocol_server):
    # OpenRouter can answer HTTP 200 with an {"error": ...} body instead of choices.
    protocol_server.script("m", [dict(status=200, error_message="model overloaded")])
    error = raises_provider_error(make_client(protocol_server, max_retries=0).chat, "m", MESSAGES)
    assert "model overloaded" in error.message and error.retryable
    assert len(protocol_server.requests) == 1


# ---------------------------------------------------------------- retried faults

def test_429_honours_retry_after_then_succeeds(protocol_server):
    protocol_server.set_model("m", status=429, retry_after=1, fail_times=1)
    start = time.monotonic()
    result = make_client(protocol_server).chat("m", MESSAGES)
    elapsed = time.monotonic() - start

    assert result.text == default_reply("m", MESSAGES)
    first, second = protocol_server.requests
    assert second.time - first.time >= 0.95 and elapsed >= 0.95
    assert result.raw["_client"]["attempts"] == 2


def test_retry_after_beyond_the_cap_fails_fast(protocol_server):
    protocol_server.set_model("m", status=429, retry_after=120)
    start = time.monotonic()
    error = raises_provider_error(make_client(protocol_server, max_retries=3).chat, "m", MESSAGES)
    assert time.monotonic() - start < 2
    assert error.status == 429 and error.retryable and error.retry_after == 120
    assert "429 rate limited" in error.message and "120 s" in error.message
    assert len(protocol_server.requests) == 1


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now=now) \
        == pytest.approx(10)
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now=now) == 0.0


def test_500_then_success(protocol_server):
    protocol_server.set_model("m", status=500, fail_times=1)
    result = make_client(protocol_server).chat("m", MESSAGES)
    assert result.text == default_reply("m", MESSAGES)
    assert len(protocol_server.requests) == 2


def test_persistent_503_gives_up_with_a_retryable_error(protocol_server):
    protocol_server.set_model("m", status=503, error_message="No endpoints available")
    error = raises_provider_error(make_client(protocol_server, max_retries=2).chat, "m", MESSAGES)
    assert error.status == 503 and error.retryable
    assert "No endpoints available" in error.message and "3 attempts" in error.message
    assert len(protocol_server.requests) == 3


def test_server_that_never_answers_times_out(protocol_server):
    protocol_server.set_model("m", hang=True)
    start = time.monotonic()
    error = raises_provider_error(make_client(protocol_server, read_timeout=0.5).chat, "m", MESSAGES)
    elapsed = time.monotonic() - start
    assert "timed out after 0.5 s" in error.message
    assert error.retryable and error.status is None
    assert 0.9 <= elapsed < 3          # two attempts of 0.5 s each, plus a tiny backoff
    assert len(protocol_server.requests) == 2


def test_malformed_json_raises_without_client_retry(protocol_server):
    protocol_server.set_model("m", malformed=True)
    error = raises_provider_error(make_client(protocol_server, max_retries=3).chat, "m", MESSAGES)
    assert "malformed JSON" in error.message
    assert error.retryable            # another model may still work
    assert len(protocol_server.requests) == 1


def test_connection_refused_is_a_retryable_error():
    client = make_client(f"http://127.0.0.1:{free_port()}/v1")
    error = raises_provider_error(client.chat, "m", MESSAGES)
    assert error.retryable and error.status is None
    assert "could not connect" in error.message and "refused" in error.message
    error = raises_provider_error(client.stream_chat, "m", MESSAGES)
    assert error.retryable and "could not connect" in error.message


# ---------------------------------------------------------------- listing and probe

def test_list_models_returns_the_listing(protocol_server):
    protocol_server.models_listing = [{"id": "a/b", "pricing": {"prompt": "0.0000004",
                                                               "completion": "0.0000016"},
                                       "context_length": 4096}]
    assert make_client(protocol_server).list_models() == protocol_server.models_listing
    [request] = protocol_server.requests
    assert (request.method, request.path) == ("GET", "/v1/models")


def test_list_models_unreachable_raises():
    with pytest.raises(ProviderError, match="could not connect"):
        make_client(f"http://127.0.0.1:{free_port()}/v1").list_models(timeout=0.5)


def test_probe_checks_reachability_and_key(protocol_server):
    ok = make_client(protocol_server, api_key="good").probe()
    assert ok["ok"] is True and ok["error"] is None and ok["latency_ms"] > 0
    assert [r.path for r in protocol_server.requests] == ["/v1/models", "/v1/key"]
    assert not protocol_server.chat_requests()        # no tokens spent

    bad = make_client(protocol_server, api_key="bad", key_env="OPENROUTER_API_KEY").probe()
    assert bad["ok"] is False and "401" in bad["error"] and "OPENROUTER_API_KEY" in bad["error"]

    assert make_client(protocol_server, api_key=None).probe()["ok"] is True
    protocol_server.key_endpoint = False             # servers without /key (Ollama...) are fine
    assert make_client(protocol_server, api_key="anything").probe()["ok"] is True


def test_probe_of_unreachable_server_reports_the_error():
    result = make_client(f"http://127.0.0.1:{free_port()}/v1").probe(timeout=0.5)
    assert result["ok"] is False and "could not connect" in result["error"]


# ---------------------------------------------------------------- the protocol server itself

def test_server_stops_promptly_with_a_hanging_request():
    server = ProtocolServer().start()
    server.set_model("m", hang=True)
    url = server.base_url
    errors: list[BaseException] = []

    def call() -> None:
        try:
            requests.post(f"{url}/chat/completions", json={"model": "m", "messages": MESSAGES},
                          timeout=5)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    deadline = time.monotonic() + 2
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.5
    thread.join(timeout=5)
    assert not thread.is_alive() and errors      # the client saw the connection close


def test_server_script_and_fail_times(protocol_server):
    client = make_client(protocol_server, max_retries=0)
    protocol_server.script("m", [dict(status=503), dict(reply="scripted")])
    assert raises_provider_error(client.chat, "m", MESSAGES).status == 503
    assert client.chat("m", MESSAGES).text == "scripted"
    assert client.chat("m", MESSAGES).text == default_reply("m", MESSAGES)

    protocol_server.set_model("*", reply="everyone")
    assert client.chat("other", MESSAGES).text == "everyone"
    protocol_server.set_model("n", status=500, fail_times=2)
    assert [raises_provider_error(client.chat, "n", MESSAGES).status for _ in range(2)] == [500, 500]
    assert client.chat("n", MESSAGES).text == default_reply("n", MESSAGES)
