"""The router against a local OpenAI-compatible server: fallback, cooldown, deadline, explicit choice."""

import pytest

from routing.errors import UnknownModelError, UserError
from routing.health import HealthTracker

CODE_PROMPT = "Write a Python function that merges two sorted lists."


def test_routes_and_answers_with_the_picked_model(make_service, protocol_server):
    service = make_service()
    result = service.query(CODE_PROMPT)
    assert result["selected_model"] == "deepseek-r1" and result["answered_by"] == "deepseek-r1"
    assert result["response"].startswith("[deepseek/deepseek-r1] answer to: Write a Python")
    assert result["fallbacks"] == [] and result["notice"] is None
    assert result["usage"]["total_tokens"] > 0 and result["cost_usd"] > 0
    assert set(result["scores"]) == set(service.pool.ids)
    for key in ("prompt", "selection_confidence", "reasoning", "latency_ms"):
        assert key in result
    sent = protocol_server.chat_requests()
    assert len(sent) == 1 and sent[0].json["messages"] == [{"role": "user", "content": CODE_PROMPT}]
    assert sent[0].authorization == "Bearer good"


def test_falls_back_down_the_ranking_and_records_why(make_service, protocol_server):
    protocol_server.set_model("deepseek/deepseek-r1", status=500)
    service = make_service()
    result = service.query(CODE_PROMPT)
    ranking = result["ranking"]
    assert ranking[0] == "deepseek-r1"
    assert result["selected_model"] == "deepseek-r1" and result["answered_by"] == ranking[1]
    assert result["fallbacks"][0]["model"] == "deepseek-r1" and result["fallbacks"][0]["status"] == 500
    assert [r.model for r in protocol_server.chat_requests()] == [
        "deepseek/deepseek-r1", service.pool.get(ranking[1]).model_name]


def test_fallbacks_are_bounded(make_service, protocol_server):
    protocol_server.set_model("*", status=503)
    service = make_service(max_fallbacks=1)
    with pytest.raises(UserError, match="No model could answer"):
        service.query(CODE_PROMPT)
    assert len(protocol_server.chat_requests()) == 2


def test_a_model_that_keeps_failing_cools_down(make_service, protocol_server):
    now = [1000.0]
    service = make_service(cooldown_failures=2, cooldown_s=30)
    service.router.health = HealthTracker(2, 30, clock=lambda: now[0])
    protocol_server.set_model("deepseek/deepseek-r1", status=500)
    for _ in range(2):
        assert service.query(CODE_PROMPT)["answered_by"] != "deepseek-r1"
    before = len(protocol_server.chat_requests("deepseek/deepseek-r1"))
    result = service.query(CODE_PROMPT)
    assert len(protocol_server.chat_requests("deepseek/deepseek-r1")) == before  # not even tried
    assert "cooling down" in result["fallbacks"][0]["error"]
    now[0] += 31
    protocol_server.set_model("deepseek/deepseek-r1")  # healthy again
    assert service.query(CODE_PROMPT)["answered_by"] == "deepseek-r1"


def test_unauthorised_key_is_explained(make_service, protocol_server):
    protocol_server.require_key = True
    service = make_service(openrouter_api_key="wrong", max_fallbacks=0)
    with pytest.raises(UserError) as err:
        service.query("hello")
    assert "401" in str(err.value) and "OPENROUTER_API_KEY" in str(err.value)
    assert len(protocol_server.chat_requests()) == 1  # 401 is not retried


@pytest.mark.parametrize("status", [401, 402])
def test_a_refused_key_stops_at_the_first_model_and_says_how_to_fix_it(make_service, protocol_server, status):
    from routing.errors import ProviderKeyError

    protocol_server.set_model("*", status=status)
    service = make_service(max_fallbacks=3)
    service.hub.local = object()  # a local model would be there: it must not answer instead
    with pytest.raises(ProviderKeyError) as err:
        service.query("hello")
    message = str(err.value)
    assert len(protocol_server.chat_requests()) == 1  # one model asked; the other three share the key
    assert ("OPENROUTER_API_KEY" in message) if status == 401 else ("credits" in message)
    assert "same key" in message and "locally" in message
    assert all(service.router.health.snapshot(m)["consecutive_failures"] == 0 for m in service.pool.ids)


def test_deadline_stops_further_tries(make_service, protocol_server):
    protocol_server.set_model("*", hang=True)
    service = make_service(read_timeout=0.6, deadline_s=0.5, max_fallbacks=4)
    with pytest.raises(UserError) as err:
        service.query(CODE_PROMPT)
    assert "deadline" in str(err.value)
    assert len(protocol_server.chat_requests()) == 1


def test_streaming_yields_the_same_answer(make_service, protocol_server):
    service = make_service()
    events = list(service.router.stream("Tell me a joke about cats"))
    assert events[0].kind == "selection"
    text = "".join(e.text for e in events if e.kind == "delta")
    done = events[-1]
    assert done.kind == "done" and done.result.response == text and len(text) > 10
    assert protocol_server.chat_requests()[0].json.get("stream") is True


def test_explicit_model_bypasses_selection(make_service, protocol_server):
    service = make_service()
    result = service.query_specific(CODE_PROMPT, "llama-3.3")
    assert result["selected_model"] == "llama-3.3" and result["answered_by"] == "llama-3.3"
    assert "You chose" in result["reasoning"]
    protocol_server.set_model("meta-llama/llama-3.3-70b-instruct", status=500)
    with pytest.raises(UserError):
        service.query_specific(CODE_PROMPT, "llama-3.3")
    assert {r.model for r in protocol_server.chat_requests()} == {"meta-llama/llama-3.3-70b-instruct"}


@pytest.mark.parametrize("prompt, message", [("", "empty"), ("   \n\t", "empty"), ("x" * 101, "limit is 100")])
def test_bad_prompts(make_service, prompt, message):
    service = make_service(max_prompt_chars=100)
    with pytest.raises(UserError, match=message):
        service.query(prompt)


def test_unknown_model_is_a_clear_error(make_service):
    service = make_service()
    with pytest.raises(UnknownModelError, match="Valid model ids: deepseek-r1"):
        service.query_specific("hi", "gpt-17")
    with pytest.raises(UserError, match="Choose a model"):
        service.query_specific("hi", "")


def test_no_key_and_no_local_model_says_what_to_do(make_service, protocol_server):
    service = make_service(openrouter_api_key=None)
    with pytest.raises(UserError, match="OPENROUTER_API_KEY"):
        service.query("hello")
    assert protocol_server.chat_requests() == []


def test_health_report_spends_no_tokens(make_service, protocol_server):
    from tests.protocol_server import listing_entry

    service = make_service()
    protocol_server.models_listing = [listing_entry(m.model_name) for m in service.pool.models[:3]]
    rows = {r["model"]: r for r in service.health()}
    assert protocol_server.chat_requests() == []
    listed = [m.id for m in service.pool.models[:3]]
    assert all(rows[i]["reachable"] for i in listed)
    missing = service.pool.models[4]
    assert rows[missing.id]["reachable"] is False and "not in the provider's model list" in rows[missing.id]["probe_error"]


def test_health_report_without_key(make_service):
    service = make_service(openrouter_api_key=None)
    assert all(not r["reachable"] and "OPENROUTER_API_KEY" in r["probe_error"] for r in service.health())


def test_custom_endpoint_gets_no_openrouter_only_fields(protocol_server, tmp_path):
    import json

    from routing.service import RouterService
    from tests.conftest import router_settings

    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps({"models": [
        {"id": "local-llama", "provider": "openai_compatible", "model_name": "llama3.2",
         "base_url": protocol_server.base_url, "categories": ["chat"]}]}))
    service = RouterService(router_settings(protocol_server, tmp_path, models_file=pool_file,
                                            openrouter_api_key=None), background=False)
    result = service.query("hello there")
    assert result["answered_by"] == "local-llama" and result["response"].startswith("[llama3.2]")
    sent = protocol_server.chat_requests()[0]
    assert "usage" not in sent.json and sent.authorization is None


def test_an_answer_cut_at_max_tokens_says_so_in_the_result_and_the_chat(make_service):
    """Offline answers stopped mid-sentence at the token cap with no marker; any answer the provider
    cut (finish_reason "length") says so in /query's result (the Ask tab's mark: the browser test)."""
    from routing.router import TRUNCATED_WARNING

    service = make_service()
    cut = service.query("Write a long story about a lighthouse keeper", max_tokens=3)
    assert cut["finish_reason"] == "length" and cut["truncated"] is True
    assert TRUNCATED_WARNING in cut["warnings"]
    whole = service.query("Say hi")
    assert whole["finish_reason"] == "stop" and whole["truncated"] is False and TRUNCATED_WARNING not in whole["warnings"]


def test_the_daily_limit_routes_to_the_best_model_that_still_fits(make_service, protocol_server):
    """With $0.000168 left the cap refused a routed prompt although Mistral Small fitted: a model the
    limit cannot cover no longer uses up a fallback, and the answer says what happened."""
    # 100 answer tokens: DeepSeek R1 could cost $0.000215, Gemini Flash $0.00004, Llama 3.3 $0.000032,
    # Mistral Small $0.00001 (plus a few input tokens): only Mistral Small fits $0.00002.
    service = make_service(daily_budget_usd=0.00002, max_tokens=100, max_fallbacks=0)
    result = service.query("Write a Python function that reverses a linked list")
    ranking = result["ranking"]
    assert ranking.index("mistral-small") > 0                   # beyond what the settings allow (no fallback)
    assert result["answered_by"] == "mistral-small"
    assert "best-ranked model that fits" in result["notice"] and ranking[0] in result["notice"]
    skipped = [f["model"] for f in result["fallbacks"] if "daily spending limit" in f["error"]]
    assert skipped == ranking[:ranking.index("mistral-small")]
