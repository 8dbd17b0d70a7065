"""The Ask tab's chat (routing/chat/turns.py): one conversation, routed as a whole, staying on one model."""

import pytest

from routing.chat.turns import ChatState, chat_turn, local_loading_text
from routing.errors import UserError

LIMERICK = "Write a limerick about a sleepy cat"
DEBUG = ("Debug this Python code: def f(x): return x[::-1] # why does it fail on linked lists? "
         "Write the fixed function and tests.")


def turn(router, state, text, **kwargs):
    events = list(chat_turn(router, state, text, **kwargs))
    return next(e for e in events if e.kind == "selection").selection, events[-1].result


def test_the_conversation_is_sent_whole_and_stays_on_its_model(make_service, protocol_server):
    router = make_service().router
    state = ChatState()
    _, first = turn(router, state, LIMERICK)
    assert first.answered_by == "llama-3.3" and state.model == "llama-3.3"
    assert router.route(DEBUG).selected_model != "llama-3.3"  # asked alone, the next turn goes elsewhere
    sel, second = turn(router, state, DEBUG)
    assert second.answered_by == "llama-3.3" and sel.reasoning.startswith("Kept on")
    sent = protocol_server.chat_requests()[-1].json["messages"]
    assert sent == [{"role": "user", "content": LIMERICK}, {"role": "assistant", "content": first.response},
                    {"role": "user", "content": DEBUG}]
    assert state.answers == 2 and state.tokens > 0 and state.cost_usd > 0
    assert "2 answers" in state.totals_markdown() and "llama" in state.totals_markdown()


def test_a_named_model_or_a_failure_moves_the_chat(make_service, protocol_server):
    service = make_service(cooldown_failures=1000)
    state = ChatState()
    turn(service.router, state, LIMERICK)
    _, named = turn(service.router, state, "And another one", model="qwen2.5")
    assert named.answered_by == "qwen2.5" and state.model == "qwen2.5"
    protocol_server.set_model(service.pool.get("qwen2.5").model_name, status=500)
    _, moved = turn(service.router, state, "One more")
    assert moved.answered_by != "qwen2.5" and state.model == moved.answered_by


def test_a_turn_that_gets_no_answer_leaves_the_chat_as_it_was(make_service, protocol_server):
    router = make_service().router
    state = ChatState()
    turn(router, state, LIMERICK)
    before = (list(state.messages), state.model, state.answers)
    protocol_server.set_model("*", status=500)
    with pytest.raises(UserError, match="No model could answer"):
        turn(router, state, "again")
    assert (state.messages, state.model, state.answers) == before


def test_a_local_answer_does_not_make_the_chat_stick_to_the_local_model(make_service):
    from routing.router import LOCAL_ANSWERER, QueryResult
    from routing.chat.turns import _record

    state = ChatState(model="llama-3.3")
    result = QueryResult(prompt="p", selected_model="llama-3.3", response="local words", selection_confidence=0.5,
                         reasoning="", answered_by=LOCAL_ANSWERER, fallbacks=[], usage={"total_tokens": 3},
                         cost_usd=None, latency_ms=1.0, scores={})
    _record(state, [{"role": "user", "content": "p"}], result)
    assert state.model == "llama-3.3" and state.unpriced == 1 and "unpriced" in state.totals_markdown()


def test_own_key_answers_with_that_key_outside_the_owners_budget(make_service, protocol_server):
    protocol_server.require_key = True
    protocol_server.valid_keys = {"visitor-key-123456"}
    service = make_service(openrouter_api_key="owner-key-wrong", daily_budget_usd=0.01)
    own = service.router_for_key("visitor-key-123456")
    assert own.ask(LIMERICK).answered_by == "llama-3.3"
    assert protocol_server.chat_requests()[-1].authorization == "Bearer visitor-key-123456"
    assert service.ledger.summary()["paid_calls"] == 0  # not the owner's money
    assert service.router_for_key("  ") is service.router
    with pytest.raises(UserError, match="does not look like an API key"):
        service.router_for_key("two words")
    with pytest.raises(UserError) as info:  # the owner's (wrong) key: refused, and the error never shows a key
        service.router_for_key("").ask(LIMERICK)
    assert "owner-key-wrong" not in str(info.value)


def test_local_loading_text_says_why_and_how_long():
    assert "first start only" in local_loading_text({"state": "loading", "elapsed_s": 12.4})
    assert "12 s" in local_loading_text({"state": "loading", "elapsed_s": 12.4})
    assert local_loading_text({"state": "ready"}) == ""
    assert "could not load" in local_loading_text({"state": "failed", "error": "<b>disk</b>"})
    assert "<b>" not in local_loading_text({"state": "failed", "error": "<b>disk</b>"})


def test_a_kept_conversation_says_what_decided_not_that_the_turn_was_picked(make_service):
    """After two code turns, "write me a sonnet instead" stayed on the code model and the reason
    claimed the router picked it "for this turn" at 93%. It says the conversation stays put and
    where the last turn alone would go."""
    from routing.chat.turns import ChatState, chat_turn

    service = make_service()                       # the keyword rules: code -> R1, a sonnet -> Llama 3.3
    state = ChatState()
    for text in ("Write a Python function that parses a CSV file", "Now add unit tests for it with pytest"):
        list(chat_turn(service.router, state, text))
    events = list(chat_turn(service.router, state, "Write me a sonnet about the sea instead"))
    sel = next(e.selection for e in events if e.kind == "selection")
    alone = service.router.route("Write me a sonnet about the sea instead").selected_model
    assert sel.selected_model == state.model and alone != state.model
    assert "for this turn" not in sel.reasoning
    assert f"the last turn alone would go to {service.pool.get(alone).display_name}" in sel.reasoning
    assert "the conversation stays put" in sel.reasoning and "Routing the whole conversation:" in sel.reasoning
