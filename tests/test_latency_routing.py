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


def test_a_new_process_starts_from_the_answer_times_in_the_outcome_log(make_service, tmp_path):
    import time

    from routing.health import RECENT_CALLS
    from routing.outcome_log import OutcomeLog

    first = make_service()
    usual = first.router.route(CODE).selected_model
    assert first.router.latencies()[usual] is None          # nothing measured, nothing logged yet
    others = [m for m in first.pool.ids if m != usual]
    log = OutcomeLog.for_settings(first.settings)
    now = time.time()

    def answered(model: str, ms: float, *, error: str | None = None, at: float = now) -> None:
        log.record({"prompt": f"p{ms}", "created_at": at,
                    "results": {model: {"response": "ok", "error": error, "latency_ms": ms}}})

    answered(usual, 60_000.0, at=now - 30 * 24 * 3600)    # a month old: too old to count
    for i in range(RECENT_CALLS + 5):                       # the newest RECENT_CALLS count
        answered(usual, 100.0 if i < 5 else 9000.0, at=now - 100 + i)
    answered(usual, 1.0, error="500 from provider")         # a failure says nothing of speed
    for model in others:
        answered(model, 300.0)

    again = make_service()                                  # a restart: same data folder, no live call yet
    latencies = again.router.latencies()
    assert latencies[usual] == 9000.0 and all(latencies[m] == 300.0 for m in others)
    assert again.query(CODE, latency_weight=1.0)["answered_by"] != usual
    assert again.query(CODE)["answered_by"] == usual


def test_an_unreadable_outcome_log_leaves_the_latency_knob_waiting_for_live_calls(make_service, tmp_path):
    first = make_service()
    first.outcome_log.path.parent.mkdir(parents=True, exist_ok=True)
    first.outcome_log.path.write_bytes(b"this is not a database" * 100)
    again = make_service()
    assert set(again.router.latencies().values()) == {None}
    assert again.router.route(CODE).selected_model
