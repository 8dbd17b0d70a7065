"""Deadlines that hold: the per-attempt time limit, each model's share of the query deadline, the
response size cap.

Each test plays a misbehaving provider with ``tests/protocol_server.py`` (hangs, trickles its
answer a byte at a time, sends megabytes) and checks that the client gives up in time, with a
message naming the setting to change, and that the router then answers from the next model.
Limits are set small (about a second) so the suite stays fast; ``SLACK`` covers a busy machine.
"""

from __future__ import annotations

import time

import pytest

from routing.errors import ProviderError
from routing.providers.openai_compat import OpenAICompatibleClient
from routing.settings import Settings
from tests.protocol_server import ProtocolServer, default_reply

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
CODE_PROMPT = "Write a Python function that merges two sorted lists."
FIRST, FIRST_NAME = "deepseek-r1", "deepseek/deepseek-r1"   # the rules' pick for CODE_PROMPT
LONG_REPLY = "word " * 400            # ~2 kB: at 20 ms a byte it would take ~45 s to arrive
SLACK = 1.0                           # seconds allowed past a limit (thread hand-over, busy CPUs)


def client(server: ProtocolServer, **kwargs) -> OpenAICompatibleClient:
    options = dict(connect_timeout=0.5, read_timeout=5.0, max_retries=0, backoff_base=0.01,
                   backoff_max=0.05)
    options.update(kwargs)
    return OpenAICompatibleClient(server.base_url, "sk-test", **options)


def failure(call, *args, **kwargs) -> tuple[ProviderError, float, list[str]]:
    """The ProviderError ``call`` raises (iterating it if it is a stream), the seconds it took,
    and the text deltas that came before it."""
    deltas: list[str] = []
    start = time.monotonic()
    with pytest.raises(ProviderError) as info:
        result = call(*args, **kwargs)
        if not hasattr(result, "text"):
            for chunk in result:
                deltas.append(chunk.delta)
    return info.value, time.monotonic() - start, deltas


# ---------------------------------------------------------------- the per-attempt time limit

def test_trickling_answer_is_cut_at_the_attempt_limit(protocol_server):
    protocol_server.set_model("m", reply=LONG_REPLY, trickle=0.02)
    error, elapsed, _ = failure(client(protocol_server, attempt_timeout=1.0, max_retries=2).chat,
                                "m", MESSAGES)
    assert 1.0 <= elapsed < 1.0 + SLACK
    assert "ROUTER_ATTEMPT_TIMEOUT" in error.message and "within 1 s" in error.message
    assert "still sending" in error.message
    assert error.retryable and error.status is None
    assert len(protocol_server.chat_requests("m")) == 1   # it had its full attempt: next model


def test_trickling_stream_is_cut_at_the_attempt_limit(protocol_server):
    protocol_server.set_model("m", reply=LONG_REPLY, trickle=0.02)
    error, elapsed, _ = failure(client(protocol_server, attempt_timeout=1.0).stream_chat,
                                "m", MESSAGES)
    assert 1.0 <= elapsed < 1.0 + SLACK
    assert "ROUTER_ATTEMPT_TIMEOUT" in error.message and error.retryable


def test_slow_stream_is_cut_mid_answer_at_the_attempt_limit(protocol_server):
    protocol_server.set_model("m", reply=" ".join(["word"] * 30), chunk_delay=0.2)  # 6 s in all
    error, elapsed, deltas = failure(client(protocol_server, attempt_timeout=1.0).stream_chat,
                                     "m", MESSAGES)
    assert 1.0 <= elapsed < 1.0 + SLACK
    assert 2 <= len(deltas) < 30                 # part of the answer came, then the limit
    assert "ROUTER_ATTEMPT_TIMEOUT" in error.message


def test_a_hanging_model_stops_at_the_call_deadline_not_after_its_retries(protocol_server):
    protocol_server.set_model("m", hang=True)
    c = client(protocol_server, attempt_timeout=10.0, read_timeout=5.0, max_retries=3)
    error, elapsed, _ = failure(c.chat, "m", MESSAGES, deadline=time.monotonic() + 1.0)
    assert 1.0 <= elapsed < 1.0 + SLACK          # not 4 attempts x 5 s
    assert "ROUTER_DEADLINE" in error.message and error.retryable
    assert len(protocol_server.chat_requests("m")) == 1


def test_retries_go_on_while_the_call_deadline_leaves_time(protocol_server):
    protocol_server.set_model("m", hang=True)
    c = client(protocol_server, read_timeout=0.3, max_retries=9)
    error, elapsed, _ = failure(c.chat, "m", MESSAGES, deadline=time.monotonic() + 2.0)
    assert elapsed < 2.0 + SLACK
    assert 2 <= len(protocol_server.chat_requests("m")) < 10   # retried, but stopped in time
    assert "no time was left for another attempt" in error.message


# ---------------------------------------------------------------- the response size cap

def test_oversize_answer_is_refused_with_the_setting_named(protocol_server):
    protocol_server.set_model("m", reply="x" * 3_000_000)
    error, elapsed, _ = failure(client(protocol_server, max_response_bytes=1_000_000, max_retries=2)
                                .chat, "m", MESSAGES)
    assert "too large" in error.message and "1 MB" in error.message
    assert "ROUTER_MAX_RESPONSE_BYTES" in error.message and error.retryable
    assert len(protocol_server.chat_requests("m")) == 1   # the same model would send it again
    assert elapsed < SLACK


def test_oversize_body_without_length_is_not_read_whole(protocol_server):
    protocol_server.set_model("m", reply="x" * 50_000_000, chunked=True)   # 50 MB, no length
    error, elapsed, _ = failure(client(protocol_server, max_response_bytes=1_000_000).chat,
                                "m", MESSAGES)
    assert "too large" in error.message and "ROUTER_MAX_RESPONSE_BYTES" in error.message
    assert elapsed < 2 * SLACK
    [request] = protocol_server.chat_requests("m")
    assert request.body_bytes_sent < 25_000_000   # reading stopped: the server could not send it all


def test_oversize_stream_is_refused(protocol_server):
    protocol_server.set_model("m", reply=" ".join(["x" * 100_000] * 30))   # 30 events of 100 kB
    error, _, deltas = failure(client(protocol_server, max_response_bytes=1_000_000).stream_chat,
                               "m", MESSAGES)
    assert "too large" in error.message and "ROUTER_MAX_RESPONSE_BYTES" in error.message
    assert sum(map(len, deltas)) <= 1_000_000


def test_answers_within_the_limits_are_untouched(protocol_server):
    c = client(protocol_server, attempt_timeout=5.0, max_response_bytes=100_000)
    assert c.chat("m", MESSAGES, deadline=time.monotonic() + 5).text == default_reply("m", MESSAGES)
    chunks = list(c.stream_chat("m", MESSAGES, deadline=time.monotonic() + 5))
    assert chunks[-1].result.text == default_reply("m", MESSAGES)


# ---------------------------------------------------------------- the router: fall back in time

@pytest.mark.parametrize("stream", [False, True])
def test_hanging_first_model_falls_back_within_the_deadline(make_service, protocol_server, stream):
    protocol_server.set_model(FIRST_NAME, hang=True)
    # Two models, 4 s for the query; alone, the first model's retries would take 3 x 3 s.
    service = make_service(deadline_s=4.0, read_timeout=3.0, max_retries=2, max_fallbacks=1)
    start = time.monotonic()
    result = [e for e in service.router.stream(CODE_PROMPT, stream=stream)][-1].result
    elapsed = time.monotonic() - start
    assert result.selected_model == FIRST and result.answered_by == result.ranking[1]
    assert elapsed < 4.0                          # answered inside the query deadline
    assert result.fallbacks[0]["model"] == FIRST and "ROUTER_DEADLINE" in result.fallbacks[0]["error"]
    assert len(protocol_server.chat_requests(FIRST_NAME)) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_trickling_first_model_falls_back(make_service, protocol_server, stream):
    protocol_server.set_model(FIRST_NAME, reply=LONG_REPLY, trickle=0.02)
    service = make_service(attempt_timeout=1.0)
    start = time.monotonic()
    result = [e for e in service.router.stream(CODE_PROMPT, stream=stream)][-1].result
    assert time.monotonic() - start < 1.0 + SLACK
    assert result.answered_by == result.ranking[1]
    assert "ROUTER_ATTEMPT_TIMEOUT" in result.fallbacks[0]["error"]


def test_oversize_first_model_falls_back(make_service, protocol_server):
    protocol_server.set_model(FIRST_NAME, reply="x" * 3_000_000)
    result = make_service(max_response_bytes=1_000_000).query(CODE_PROMPT)
    assert result["answered_by"] == result["ranking"][1]
    assert "ROUTER_MAX_RESPONSE_BYTES" in result["fallbacks"][0]["error"]


def test_one_model_call_is_bounded_by_the_deadline(make_service, protocol_server):
    protocol_server.set_model(FIRST_NAME, hang=True)           # compare-all and the judge use this
    service = make_service(deadline_s=1.0, read_timeout=3.0, max_retries=2)
    start = time.monotonic()
    with pytest.raises(ProviderError, match="ROUTER_DEADLINE"):
        service.router.ask_model(FIRST, CODE_PROMPT)
    assert time.monotonic() - start < 1.0 + SLACK


# ---------------------------------------------------------------- the budget arithmetic

def test_default_budget_leaves_half_the_deadline_for_fallbacks():
    from routing.router import model_budget

    s = Settings()
    models = 1 + s.max_fallbacks
    first = model_budget(s.deadline_s, models)
    assert first <= s.deadline_s / 2              # retries and all: the rest keep >= half
    assert s.attempt_timeout <= s.deadline_s / 2
    # Had the first model used all of its share, the second still gets a fair share of the rest.
    assert model_budget(s.deadline_s - first, models - 1) >= s.attempt_timeout / 2
    assert model_budget(30.0, 1) == 30.0          # the last model may use all that is left
    assert model_budget(0.5, 5) == 0.5            # too little for several: one model gets it all
    assert model_budget(0.0, 3) == 0.0


def test_the_new_limits_are_settings_and_reach_the_client(make_service):
    env = {"ROUTER_ATTEMPT_TIMEOUT": "12.5", "ROUTER_MAX_RESPONSE_BYTES": "500000"}
    s = Settings.from_env(env)
    assert (s.attempt_timeout, s.max_response_bytes) == (12.5, 500_000)
    assert (Settings().attempt_timeout, Settings().max_response_bytes) == (45.0, 2_000_000)
    c = make_service(attempt_timeout=7.0, max_response_bytes=123_456).hub.openrouter()
    assert (c.attempt_timeout, c.max_response_bytes) == (7.0, 123_456)
