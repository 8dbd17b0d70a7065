"""Latency-aware routing: each model's recent median latency, weighed against its score with a
knob of its own beside the cost knob, in the selector, the router, /query and batch."""

import pytest

from routing.errors import UserError
from routing.pool import load_pool
from routing.selectors.rules import RuleSelector
from routing.settings import DEFAULT_MODELS_FILE

CODE = "Write a Python function that reverses a linked list and explain the algorithm"


@pytest.fixture(scope="module")
def rules():
    return RuleSelector(load_pool(DEFAULT_MODELS_FILE))


def test_the_latency_knob_trades_score_for_speed_and_says_so(rules):
    usual = rules.select(CODE)
    latencies = {m: 300.0 for m in rules.pool.ids} | {usual.selected_model: 9000.0}
    assert rules.select(CODE, latency_weight=0.0, latencies=latencies).selected_model == usual.selected_model
    fast = rules.select(CODE, latency_weight=1.0, latencies=latencies)
    assert fast.selected_model != usual.selected_model
    assert "changed the pick" in fast.reasoning and "9.0 s" in fast.reasoning
    assert fast.details["latency_changed_pick"] and fast.details["latency_ms"][usual.selected_model] == 9000.0
    small = rules.select(CODE, latency_weight=0.05, latencies=latencies)
    assert small.selected_model == usual.selected_model and "did not change the pick" in small.reasoning
    unseen = rules.select(CODE, latency_weight=1.0, latencies={m: None for m in rules.pool.ids})
    assert unseen.selected_model == usual.selected_model and "nothing to weigh" in unseen.reasoning
    # A model not yet observed counts as the median of the observed ones, not as the fastest.
    partly = {m: None for m in rules.pool.ids} | {usual.selected_model: 9000.0, "gemini-flash": 100.0}
    assert rules.select(CODE, latency_weight=1.0, latencies=partly).selected_model != usual.selected_model
    for bad in (-0.5, 1.01):
        with pytest.raises(UserError, match="latency_weight"):
            rules.select(CODE, latency_weight=bad, latencies=latencies)


def test_the_router_measures_latency_and_query_and_batch_weigh_it(make_service, protocol_server, tmp_path):
    from routing.batch import route_rows
    from routing.batch_io import InputRow

    service = make_service(cooldown_failures=1000)
    usual = service.router.route(CODE).selected_model
    protocol_server.set_model(service.pool.get(usual).model_name, delay=0.4)
    for model_id in service.pool.ids:             # one real call each: the slow one is measured slow
        service.router.ask_model(model_id, "Say hi.")
    latencies = service.router.latencies()
    assert latencies[usual] >= 400 and all(v is not None and v < 400 for m, v in latencies.items() if m != usual)
    assert service.router.health.snapshot(usual)["median_latency_ms"] >= 400
    answer = service.query(CODE, latency_weight=1.0)
    assert answer["answered_by"] != usual and "latency slider" in answer["reasoning"]
    assert service.query(CODE)["answered_by"] == usual
    rows = route_rows(service.router, [InputRow(0, CODE, {})], latency_weight=1.0)
    assert rows[0]["selected_model"] != usual
    with pytest.raises(UserError):
        service.query(CODE, latency_weight=2)
