"""Escalation when unsure (issue 30, item 2): with ROUTER_ESCALATE on, a weak first answer or an
unsure decision asks the next model up by predicted quality, within the budget, and the better
answer is kept; a good answer from a sure decision sends no second request."""

import pytest

from tests.routing.compare.test_compare import GOOD, REFUSAL

CODING = "Write a Python function that reverses a string"
DEEPSEEK, MISTRAL = "deepseek/deepseek-r1", "mistralai/mistral-small-3.1-24b-instruct"


def models_asked(server):
    return [r.json["model"] for r in server.chat_requests()]


def test_a_good_answer_from_a_sure_decision_sends_no_second_request(make_service, protocol_server):
    protocol_server.set_model("*", reply=GOOD)
    service = make_service(escalate=True, escalate_margin=0.0, escalate_min_score=0.0)
    result = service.query(CODING, cost_weight=1.0)
    assert result["escalation"] is None and len(protocol_server.chat_requests()) == 1


def test_a_weak_answer_asks_the_next_model_up_and_keeps_the_better(make_service, protocol_server):
    protocol_server.set_model("*", reply=REFUSAL)
    protocol_server.set_model(DEEPSEEK, reply=GOOD)
    service = make_service(escalate=True, escalate_margin=0.0, escalate_min_score=0.5)
    result = service.query(CODING, cost_weight=1.0)       # the cost knob picks the cheapest: Mistral Small
    assert models_asked(protocol_server) == [MISTRAL, DEEPSEEK]
    esc = result["escalation"]
    assert esc["reason"].startswith("weak") and esc["from"] == "mistral-small" and esc["to"] == "deepseek-r1"
    assert esc["kept"] == "deepseek-r1" and result["answered_by"] == "deepseek-r1"
    assert result["response"] == GOOD and esc["scores"]["deepseek-r1"] > esc["scores"]["mistral-small"]
    assert result["selected_model"] == "mistral-small"                      # what the router picked first
    spent = service.ledger.summary()["spent_usd"]            # both calls were paid for, and say so
    assert result["cost_usd"] == pytest.approx(spent) and 0 < esc["extra_cost_usd"] < spent
    assert any("Escalated (weak" in w for w in result["warnings"])


def test_when_the_stronger_answer_is_no_better_the_first_is_kept(make_service, protocol_server):
    protocol_server.set_model("*", reply=REFUSAL)
    service = make_service(escalate=True, escalate_margin=0.0, escalate_min_score=0.5)
    result = service.query(CODING, cost_weight=1.0)
    assert len(protocol_server.chat_requests()) == 2
    assert result["escalation"]["kept"] == "mistral-small" and result["answered_by"] == "mistral-small"


def test_escalation_never_spends_past_the_daily_cap(make_service, protocol_server):
    protocol_server.set_model("*", reply=REFUSAL)
    service = make_service(escalate=True, escalate_margin=0.0, escalate_min_score=0.5, daily_budget_usd=0.0005)
    result = service.query(CODING, cost_weight=1.0)
    esc = result["escalation"]
    assert esc["asked"] is False and "not asked" in esc["note"]
    assert models_asked(protocol_server) == [MISTRAL]
    assert service.ledger.summary()["spent_usd"] <= 0.0005


def test_an_unsure_stream_goes_up_before_its_first_token(make_service, protocol_server):
    protocol_server.set_model("*", reply=GOOD)
    service = make_service(escalate=True, escalate_margin=1.0, escalate_min_score=0.0)
    events = list(service.router.stream(CODING, cost_weight=1.0))
    result = events[-1].result
    assert models_asked(protocol_server) == [DEEPSEEK]                     # one call, to the model up
    assert result.escalation["streamed"] and result.escalation["from"] == "mistral-small"
    assert "Escalated before answering (unsure" in result.reasoning


def test_off_by_default_and_never_for_a_named_model(make_service, protocol_server):
    protocol_server.set_model("*", reply=REFUSAL)
    service = make_service()
    assert service.query(CODING, cost_weight=1.0)["escalation"] is None
    service = make_service(escalate=True, escalate_margin=1.0, escalate_min_score=1.0)
    protocol_server.reset()
    protocol_server.set_model("*", reply=REFUSAL)
    assert service.query_specific(CODING, "mistral-small")["escalation"] is None
    assert len(protocol_server.chat_requests()) == 1


def test_both_answers_go_to_the_outcome_log_as_a_comparison(make_service, protocol_server):
    protocol_server.set_model("*", reply=REFUSAL)
    protocol_server.set_model(DEEPSEEK, reply=GOOD)
    service = make_service(escalate=True, escalate_margin=0.0, escalate_min_score=0.5)
    service.query(CODING, cost_weight=1.0)
    service.learning.flush()
    logged = [c for c in service.outcome_log.comparisons() if c.get("kind") == "escalation"]
    assert len(logged) == 1
    assert set(logged[0]["results"]) == {"mistral-small", "deepseek-r1"}
    assert logged[0]["best_model"] == "deepseek-r1"              # scored: a label for free
