"""The router learns from use: answers logged and scored, ratings, shadow comparisons within a budget."""

import concurrent.futures
import threading
import time

import httpx
import openai
import pytest

from routing.budget import estimate_cost
from routing.errors import UserError
from routing.learning.outcome_log import OutcomeLog
from tests.app_harness import serve_app

LIMERICK = "Write a limerick about a sleepy cat"


def logged(service):
    service.learning.flush()
    return OutcomeLog.for_settings(service.settings).comparisons()


def test_every_answer_is_logged_scored_and_ratings_override_the_evaluator(make_service):
    service = make_service()
    result = service.query(LIMERICK)
    assert result["answer_id"] and len(result["answer_id"]) == 32
    (row,) = logged(service)
    assert row["id"] == result["answer_id"] and row["kind"] == "answer" and row["source"] == "query"
    evaluator = row["results"]["llama-3.3"]["normalized"]
    assert 0 <= evaluator <= 1 and row["effective_best_model"] == "llama-3.3"
    log = OutcomeLog.for_settings(service.settings)

    service.learning.rate(result["answer_id"], "down")
    frame = log.to_frame()
    assert frame.loc[0, "llama-3.3"] == 0.0 and frame.loc[0, "oracle_model_to_route_to"] != "llama-3.3"
    service.learning.rate("chatcmpl-" + result["answer_id"], "up")  # the gateway's form of the id works too
    assert log.to_frame().loc[0, "llama-3.3"] == 1.0
    service.learning.rate(result["answer_id"], "", "qwen2.5")
    frame = log.to_frame()
    assert frame.loc[0, "qwen2.5"] == 1.0 and frame.loc[0, "llama-3.3"] <= 0.99
    assert frame.loc[0, "oracle_model_to_route_to"] == "qwen2.5"

    with pytest.raises(UserError, match="No answer"):
        service.learning.rate("0" * 32, "up")
    with pytest.raises(UserError, match="rating must be"):
        service.learning.rate(result["answer_id"], "sideways")
    with pytest.raises(UserError, match="Valid model ids"):
        service.learning.rate(result["answer_id"], "", "gpt-9")
    with pytest.raises(UserError, match="not an answer id"):
        service.learning.rate("'; DROP TABLE ratings; --", "up")


def test_logging_can_be_turned_off(make_service):
    service = make_service(log_answers=False)
    assert service.query(LIMERICK)["answer_id"] is None
    assert logged(service) == []


def test_gateway_answers_can_be_rated_by_their_id(make_service):
    service = make_service()
    with serve_app(service) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=20)
        plain = client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}])
        assert plain.model_extra["router"]["answer_id"] == plain.id[len("chatcmpl-"):]
        chunks = list(client.chat.completions.create(model="router", stream=True,
                                                     messages=[{"role": "user", "content": LIMERICK}]))
        streamed = chunks[0].id
        for ident in (plain.id, streamed):
            response = httpx.post(url + "/v1/feedback", json={"id": ident, "rating": "up"}, timeout=20)
            assert response.status_code == 200 and response.json()["recorded"] is True
        assert httpx.post(url + "/v1/feedback", json={"id": "chatcmpl-" + "a" * 32, "rating": "up"}).status_code == 404
        bad = httpx.post(url + "/v1/feedback", json={"id": plain.id, "rating": 7})
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("rating must be")
        wrong_model = httpx.post(url + "/v1/feedback", json={"id": plain.id, "better_model": "gpt-9"})
        assert wrong_model.status_code == 400
    rows = logged(service)
    assert {r["source"] for r in rows} == {"gateway"} and all(r["rating"]["rating"] == 1 for r in rows)


def test_the_gradio_api_takes_feedback(make_service):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.app_harness import launch_app

    service = make_service()
    with launch_app(service) as url:
        client = Client(url, verbose=False)
        answer = client.predict(prompt=LIMERICK, api_name="/query")
        recorded = client.predict(answer_id=answer["answer_id"], rating="down", better_model="qwen2.5",
                                  api_name="/feedback")
        assert recorded == {"recorded": True, "answer_id": answer["answer_id"], "rating": "down",
                            "better_model": "qwen2.5"}
        with pytest.raises(AppError, match="Valid model ids"):
            client.predict(answer_id=answer["answer_id"], better_model="nope", api_name="/feedback")


# ---------------------------------------------------------------------- shadows

def test_a_shadow_comparison_never_delays_the_answer(make_service, protocol_server):
    service = make_service(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.0)
    protocol_server.set_model(service.pool.get("deepseek-r1").model_name, delay=1.5)  # the slow shadow model
    protocol_server.set_model(service.pool.get("gemini-flash").model_name, delay=1.5)
    protocol_server.set_model(service.pool.get("mistral-small").model_name, delay=1.5)
    started = time.monotonic()
    result = service.query(LIMERICK)
    assert time.monotonic() - started < 1.2 and result["answered_by"] == "llama-3.3"
    rows = logged(service)
    shadow = [r for r in rows if r["kind"] == "shadow"]
    assert len(shadow) == 1 and set(shadow[0]["results"]) >= {"llama-3.3"} and len(shadow[0]["results"]) == 2
    other = next(m for m in shadow[0]["results"] if m != "llama-3.3")
    assert other == result["ranking"][1]   # nothing logged yet: the runner-up
    assert all(r["normalized"] is not None for r in shadow[0]["results"].values())
    assert service.learning.shadow.ledger.summary()["paid_calls"] == 1
    assert service.ledger.summary()["paid_calls"] == 2  # the app's daily ledger counts the shadow too


def test_a_shadowed_answer_counts_once_in_the_latency_a_restart_starts_from(make_service, protocol_server):
    service = make_service(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.0)
    result = service.query(LIMERICK)
    rows = logged(service)
    assert sorted(r["kind"] for r in rows) == ["answer", "shadow"]
    shadow = next(r for r in rows if r["kind"] == "shadow")
    routed, other = result["answered_by"], next(m for m in shadow["results"] if m != result["answered_by"])
    assert shadow["results"][routed]["response"] == result["response"]   # still compared
    times = OutcomeLog.for_settings(service.settings).recent_latencies(50, 3600)
    assert len(times[routed]) == 1 and len(times[other]) == 1   # the routed call was made once, so it counts once
    service = make_service(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.0, log_answers=False)
    result = service.query(LIMERICK + " and a dog")            # not logged as an answer: the shadow row holds its time
    rows = [r for r in logged(service) if r["prompt"].endswith("a dog")]
    assert [r["kind"] for r in rows] == ["shadow"]
    assert rows[0]["results"][result["answered_by"]]["latency_ms"] is not None


def test_no_shadows_at_rate_zero_or_without_a_budget(make_service, protocol_server):
    for overrides in ({"shadow_rate": 0.0, "shadow_budget_usd": 1.0}, {"shadow_rate": 1.0}):
        protocol_server.reset()
        service = make_service(**overrides)
        service.query(LIMERICK)
        service.learning.flush()
        assert len(protocol_server.chat_requests()) == 1
    assert "no shadow comparisons run without a budget" in service.learning.shadow.describe()


def test_the_shadow_budget_is_never_passed_even_at_once(make_service, protocol_server):
    service = make_service(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.0)
    pool = service.pool
    # Shadows held in flight all go to the runner-up (none is logged yet to change "least observed");
    # a budget of two and a half of its estimates holds exactly two of them at once.
    estimate = estimate_cost(pool.get("mistral-small"), len(LIMERICK + " #00"), service.settings.max_tokens)
    service.learning.shadow.ledger.daily_limit = 2.5 * estimate
    release = threading.Event()

    def held_answer(model, messages):  # shadow models answer only once every request is in
        release.wait(30)
        return f"[{model}] a shadow answer"

    for model_id in pool.ids:
        if model_id != "llama-3.3":
            protocol_server.set_model(pool.get(model_id).model_name, reply=held_answer)
    with concurrent.futures.ThreadPoolExecutor(8) as workers:
        answers = list(workers.map(lambda i: service.query(f"{LIMERICK} #{i:02d}"), range(12)))
    assert all(a["answered_by"] == "llama-3.3" for a in answers)  # no one waited for a shadow
    release.set()
    service.learning.flush()
    shadow = service.learning.shadow
    assert shadow.counts["sampled"] == 2 and shadow.counts["over_budget"] == 10  # two holds fill the cap
    assert shadow.ledger.summary()["spent_usd"] <= 2.5 * estimate
    assert shadow.counts["logged"] == 2
    assert all("mistral-small" in r["results"] for r in logged(service) if r["kind"] == "shadow")


def test_held_out_prompts_are_asked_of_every_model_and_others_of_the_least_seen_on_their_kind(
        make_service, protocol_server):
    from routing.learning.slices import in_test_slice

    service = make_service(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.5)
    held = next(f"{LIMERICK} #{i}" for i in range(100) if in_test_slice(f"{LIMERICK} #{i}", 0.5))
    kept = [f"{LIMERICK} #{i}" for i in range(100) if not in_test_slice(f"{LIMERICK} #{i}", 0.5)][:4]
    service.query(held)
    service.learning.flush()
    full = [r for r in logged(service) if r["kind"] == "shadow"]
    assert len(full) == 1 and set(full[0]["results"]) == set(service.pool.ids)   # the gate's complete rows
    assert all(r["normalized"] is not None for r in full[0]["results"].values())
    for prompt in kept:   # one shadow each, spread over the models least seen on creative prompts
        service.query(prompt)
        service.learning.flush()
    shadows = [r for r in logged(service) if r["kind"] == "shadow"][1:]
    others = [next(m for m in r["results"] if m != "llama-3.3") for r in shadows]
    assert len(shadows) == 4 and len(set(others)) == 4 and "llama-3.3" not in others
    # A coding prompt counts its own kind: every model is as unseen there, so the runner-up goes.
    code_prompt = next(q for q in (f"Write a Python function that reverses a linked list #{i}." for i in range(50))
                       if not in_test_slice(q, 0.5))
    coding = service.query(code_prompt)
    service.learning.flush()
    last = [r for r in logged(service) if r["kind"] == "shadow"][-1]
    assert set(last["results"]) == {coding["answered_by"], coding["ranking"][1]}


def test_logged_answers_and_ratings_become_labels(make_service):
    from routing.learning.outcome_log import export_routerbench_csv
    from training.pipeline.label import label

    service = make_service()
    good = service.query("Write a limerick about a sleepy cat")
    bad = service.query("Write a haiku about the sea")
    better = service.query("Tell me a joke about penguins")
    service.learning.flush()
    service.learning.rate(good["answer_id"], "up")
    service.learning.rate(bad["answer_id"], "down")
    service.learning.rate(better["answer_id"], "down", "qwen2.5")
    table = export_routerbench_csv(service.settings.data_dir, service.settings.data_dir / "export.csv")
    result = label("outcomes", [table], service.pool)
    rows = {r["text"]: r for r in result.records}
    assert rows["Write a limerick about a sleepy cat"]["label"] == good["answered_by"]
    assert rows["Tell me a joke about penguins"]["label"] == "qwen2.5"
    # Outcome sources train one success score per model (multi_label), so the 👎 is a real "failed here":
    scores = rows["Write a haiku about the sea"]["scores"]
    assert scores == {bad["answered_by"]: 0.0}
