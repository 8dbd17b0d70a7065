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
    from routing.batch.rows import route_rows
    from routing.batch.io import InputRow

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
    from routing.learning.outcome_log import OutcomeLog

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


def test_streamed_answers_log_their_time_to_first_token_and_a_restart_weighs_it(make_service):
    import openai

    from tests.app_harness import serve_app

    first = make_service()
    with serve_app(first) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=20)
        plain = client.chat.completions.create(model="router", messages=[{"role": "user", "content": CODE}])
        chunks = list(client.chat.completions.create(model="router", stream=True,
                                                     messages=[{"role": "user", "content": CODE}]))
    first.learning.flush()
    rows = {r["id"]: r for r in first.outcome_log.comparisons()}
    (whole,) = rows[plain.id[len("chatcmpl-"):]]["results"].values()
    ((model, streamed),) = rows[chunks[0].id[len("chatcmpl-"):]]["results"].items()
    assert whole["first_token_ms"] is None                  # a whole answer has no first token of its own
    assert streamed["first_token_ms"] is not None and 0 <= streamed["first_token_ms"] <= streamed["latency_ms"]
    again = make_service()                                  # a restart: no live call yet
    assert again.router.latencies(first_token=True)[model] == pytest.approx(streamed["first_token_ms"])
    assert again.router.latencies()[model] is not None
    snapshot = again.router.health.snapshot(model)          # the Status tab shows both medians
    assert snapshot["median_first_token_ms"] == pytest.approx(streamed["first_token_ms"], abs=0.1)
    assert again.router.health.snapshot(next(m for m in again.pool.ids if m != model))["median_first_token_ms"] is None


def test_a_log_from_before_the_first_token_column_is_read_and_extended(tmp_path):
    import sqlite3
    import time

    from routing.learning import outcome_log as O
    path = tmp_path / "outcomes.sqlite3"
    old_schema = O._SCHEMA.replace("    first_token_ms REAL,\n", "")
    assert "first_token_ms" not in old_schema
    conn = sqlite3.connect(path)
    conn.executescript(old_schema)
    conn.execute("INSERT INTO comparisons (id, created_at, prompt) VALUES ('old', ?, 'p')", (time.time(),))
    conn.execute("INSERT INTO results (comparison_id, model, position, response, latency_ms) "
                 "VALUES ('old', 'qwen2.5', 0, 'ok', 700)")
    conn.commit()
    conn.close()
    log = O.OutcomeLog(path)
    assert log.recent_latencies(10, 3600, first_token=True) == {}      # read before any write: nothing, no error
    assert log.get("old")["results"]["qwen2.5"]["first_token_ms"] is None
    log.record({"prompt": "q", "results": {"qwen2.5": {"response": "ok", "latency_ms": 900, "first_token_ms": 120}}})
    assert log.recent_latencies(10, 3600) == {"qwen2.5": [700.0, 900.0]}
    assert log.recent_latencies(10, 3600, first_token=True) == {"qwen2.5": [120.0]}
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the guards still hold on the old file
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE results SET latency_ms = 1")
