"""Compare all: every pool model at once, scored; the winner, the router's pick, the outcome log.

The local protocol server answers as the five pool models with different delays, one failing.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

import pandas as pd
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from routing.compare.run import NO_KEY_NOTICE, compare_all, compare_stream  # noqa: E402
from routing.learning.outcome_log import OutcomeLog  # noqa: E402
from routing.providers.base import ChatResult  # noqa: E402
from tests.conftest import router_settings  # noqa: E402
from tests.protocol_server import ProtocolServer  # noqa: E402

PROMPT = "Write a Python function that reverses a string"
GOOD = ("Here is a function:\n\n```python\ndef reverse_string(s: str) -> str:\n    \"\"\"Return s reversed.\"\"\"\n"
        "    return s[::-1]\n\nprint(reverse_string('hello'))  # olleh\n```\n\n"
        "Slicing with a step of -1 walks the string backwards.")
BROKEN = "```python\ndef reverse_string(s):\n    return s[::-1\n```"
REFUSAL = "I'm sorry, but I can't help with that."

# model name -> (delay s, reply or None for the default, HTTP status for a failure)
MODELS = {
    "deepseek/deepseek-r1": (1.2, BROKEN, None),
    "mistralai/mistral-small-3.1-24b-instruct": (0.5, None, 500),
    "qwen/qwen-2.5-72b-instruct": (0.3, REFUSAL, None),
    "google/gemini-2.0-flash-001": (0.7, None, None),
    "meta-llama/llama-3.3-70b-instruct": (0.9, GOOD, None),
}


def script_five_models(server: ProtocolServer) -> None:
    for name, (delay, reply, status) in MODELS.items():
        server.set_model(name, reply=reply, delay=delay, status=status)


@contextlib.contextmanager
def compare_app(service) -> Iterator[str]:
    """The Compare tab and /query-compare in a small Blocks app, launched in-process."""
    import gradio as gr

    from ui.compare_tab import add_compare_api, build_compare_tab

    with gr.Blocks() as demo:
        with gr.Tabs():
            build_compare_tab(service)
        add_compare_api(service)
    demo.queue(default_concurrency_limit=service.settings.queue_concurrency)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    from routing.service import RouterService

    service = RouterService(router_settings(server, tmp_path_factory.mktemp("compare")), background=False)
    with compare_app(service) as url:
        yield service, Client(url, verbose=False)


@pytest.fixture(autouse=True)
def fresh_server(server):
    server.reset()
    yield


@pytest.fixture
def make_service(server, tmp_path):
    """A RouterService against this module's server; keyword arguments override settings."""
    from routing.service import RouterService

    return lambda **overrides: RouterService(router_settings(server, tmp_path, **overrides), background=False)


def test_compare_all_through_the_api_runs_in_parallel(app, server):
    service, client = app
    script_five_models(server)
    start = time.monotonic()
    result = client.predict(prompt=PROMPT, api_name="/query-compare")
    wall = time.monotonic() - start

    assert set(result["results"]) == {"deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"}
    # Concurrent: every model was asked before the first answer (the slowest, 1.2 s, asked first in pool
    # order) could have come back; one after another, the second request would wait for it. Arrival
    # times, not the wall clock: scoring (the sandbox runs answer code) takes longer on a loaded machine.
    arrivals = sorted(r.time for r in server.chat_requests()[-5:])
    assert len(arrivals) == 5 and arrivals[-1] - arrivals[0] < 1.0, f"asked over {arrivals[-1] - arrivals[0]:.2f} s"
    assert wall >= 1.2  # it did wait for the slowest model
    failed = result["results"]["mistral-small"]
    assert "500" in failed["error"] and failed["response"] == "" and failed["total"] is None
    for model in ("deepseek-r1", "qwen2.5", "gemini-flash", "llama-3.3"):
        r = result["results"][model]
        assert r["error"] is None and r["response"] and r["latency_ms"] > 0 and r["cost_usd"] > 0
        assert set(r["scores"]) >= {"code_quality", "structure"} and r["total"] is not None
    assert result["results"]["llama-3.3"]["response"] == GOOD
    assert result["best_model"] == "llama-3.3"  # working code beats broken code, a refusal and a stub
    assert result["selected_model"] == "deepseek-r1" and result["router_correct"] is False
    assert result["prompt"] == PROMPT and result["comparison_id"]


def test_the_comparison_is_logged_and_exported(app, server, tmp_path):
    service, client = app
    server.set_model("*", reply=GOOD)
    result = client.predict(prompt="Write a Python function to reverse a list", api_name="/query-compare")
    log = OutcomeLog.for_settings(service.settings)
    logged = log.get(result["comparison_id"])
    assert logged["best_model"] == result["best_model"] and logged["selected_model"] == result["selected_model"]
    assert set(logged["results"]) == set(result["results"])
    df = pd.read_csv(log.export_routerbench_csv(tmp_path / "out.csv")).set_index("sample_id")
    row = df.loc[result["comparison_id"]]
    assert row["prompt"] == "Write a Python function to reverse a list"
    for model, r in result["results"].items():
        assert row[model] == pytest.approx(r["normalized"])
        assert row[f"{model}|total_cost"] == pytest.approx(r["cost_usd"])


def test_only_the_requested_models_are_asked(app, server):
    _, client = app
    result = client.predict(prompt="hello there", models=["qwen2.5", "llama-3.3"], api_name="/query-compare")
    assert list(result["results"]) == ["qwen2.5", "llama-3.3"]
    assert {r.model for r in server.chat_requests()} == {"qwen/qwen-2.5-72b-instruct",
                                                         "meta-llama/llama-3.3-70b-instruct"}


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt=""), "empty"),
    (dict(prompt="   "), "empty"),
    (dict(prompt="hi", models=["gpt-17"]), "Valid model ids: deepseek-r1, mistral-small"),
    (dict(prompt="hi", judge=True, judge_model="gpt-17"), "Valid model ids"),
])
def test_bad_input_is_a_clear_error_and_nothing_is_sent(app, server, kwargs, message):
    _, client = app
    with pytest.raises(AppError, match=message):
        client.predict(api_name="/query-compare", **kwargs)
    assert server.chat_requests() == []


def test_judge_winner_with_both_orders(app, server):
    _, client = app
    judge_name = "google/gemini-2.0-flash-001"

    def judge_or_answer(model, messages):
        text = messages[-1]["content"]
        if "[Answer A]" in text:  # pairwise: prefer the answer with code, in whichever position
            a = text.split("[Answer A]")[1].split("[End of answer A]")[0]
            return "[[A]]" if "def reverse_string" in a else "[[B]]"
        if "Grade the answer" in text:
            return "Grade: 9" if "return s[::-1]\n" in text else "Grade: 3"
        return GOOD if model == "meta-llama/llama-3.3-70b-instruct" else f"[{model}] short reply"

    server.set_model("*", reply=judge_or_answer)
    server.set_model(judge_name, reply=judge_or_answer)
    result = client.predict(prompt=PROMPT, judge=True, api_name="/query-compare")
    assert result["judge_model"] == "gemini-flash"
    assert result["results"]["llama-3.3"]["judge_grade"] == 9.0
    assert result["results"]["qwen2.5"]["judge_grade"] == 3.0
    assert result["judge_best_model"] == "llama-3.3" and result["router_correct_by_judge"] is False
    # 5 answers + 5 grades + 2 pairwise orders (grades tie below the top, so the top two meet)
    assert len(server.chat_requests(judge_name)) == 1 + 5 + 2


def test_events_stream_in_order_of_arrival(server, make_service):
    script_five_models(server)
    service = make_service()
    arrivals = [e.model for e in compare_stream(service.router, PROMPT) if e.kind == "result"]
    assert arrivals == ["qwen2.5", "mistral-small", "gemini-flash", "llama-3.3", "deepseek-r1"]


def test_concurrency_is_bounded_by_the_setting(server, make_service):
    server.set_model("*", delay=0.25)
    start = time.monotonic()
    comparison = compare_all(make_service(compare_concurrency=1).router, "hello")
    assert time.monotonic() - start >= 5 * 0.25 * 0.95  # one at a time
    assert all(r.ok for r in comparison.results.values())


def test_an_unexpected_exception_in_one_model_is_contained(server, make_service, monkeypatch):
    service = make_service()
    real = service.router.ask_model

    def flaky(model_id, prompt, **kw):
        if model_id == "gemini-flash":
            raise RuntimeError("socket exploded")
        return real(model_id, prompt, **kw)

    monkeypatch.setattr(service.router, "ask_model", flaky)
    comparison = compare_all(service.router, "hello")
    assert "socket exploded" in comparison.results["gemini-flash"].error
    assert sum(r.ok for r in comparison.results.values()) == 4 and comparison.best_model != "gemini-flash"


def test_nothing_answered_is_not_logged(server, make_service):
    server.set_model("*", status=503)
    service = make_service()
    log = OutcomeLog.for_settings(service.settings)
    comparison = compare_all(service.router, "hello", outcome_log=log)
    assert comparison.best_model is None and comparison.router_correct is None and not comparison.logged
    assert len(log) == 0


class FakeLocal:
    """Stands in for the local Gemma provider."""

    def __init__(self):
        self.calls = 0

    def chat(self, model, messages, *, max_tokens=None, temperature=None):
        self.calls += 1
        return ChatResult(text="A local answer.", model=model, provider="local", usage={"total_tokens": 3},
                          cost_usd=0.0, latency_ms=5.0)


def test_without_a_key_it_says_so_and_offers_only_the_local_answer(server, tmp_path):
    from routing.service import RouterService

    service = RouterService(router_settings(server, tmp_path, openrouter_api_key=None), background=False)
    service.hub.local = FakeLocal()
    with compare_app(service) as url:
        result = Client(url, verbose=False).predict(prompt="hello", api_name="/query-compare")
    assert NO_KEY_NOTICE in result["notice"] and "OPENROUTER_API_KEY" in result["notice"]
    assert all("OPENROUTER_API_KEY" in r["error"] and r["response"] == "" for r in result["results"].values())
    assert result["best_model"] is None and result["router_correct"] is None
    assert result["local_answer"]["model"] == "gemma-3-270m" and result["local_answer"]["response"] == "A local answer."
    assert service.hub.local.calls == 1  # one local answer, not one per pool model
    assert server.chat_requests() == []


def test_without_a_key_or_local_model_it_still_explains(server, make_service):
    comparison = compare_all(make_service(openrouter_api_key=None).router, "hello")
    assert comparison.local_answer is None and "local model is off" in comparison.notice


def test_private_ui_events_stay_private(app):
    _, client = app
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named == {"/query-compare"}


def test_comparisons_and_user_marks_become_training_labels(app, server, tmp_path):
    label = pytest.importorskip("training.pipeline.label")
    service, client = app
    script_five_models(server)
    for name in MODELS:
        server.set_model(name, reply=MODELS[name][1], status=MODELS[name][2])  # same answers, no delays
    marked = client.predict(prompt=PROMPT, api_name="/query-compare")
    plain = client.predict(prompt=PROMPT + " in one line", api_name="/query-compare")
    log = OutcomeLog.for_settings(service.settings)
    log.record_feedback(marked["comparison_id"], "gemini-flash")  # the user disagrees with the evaluator
    csv = log.export_routerbench_csv(tmp_path / "outcome_log.csv")
    result = label.label("feedback", [csv], pool=service.pool)
    by_prompt = {r["text"]: r["label"] for r in result.records}
    assert by_prompt[PROMPT] == "gemini-flash"
    assert by_prompt[PROMPT + " in one line"] == plain["best_model"]


def test_a_judge_that_fails_says_why(server, make_service):
    judge = "google/gemini-2.0-flash-001"

    def answer_or_fail(model, messages):
        return f"[{model}] an answer"

    server.set_model("*", reply=answer_or_fail)
    server.script(judge, [{}] + [dict(status=404, error_message="No endpoints found for this model")] * 20)
    comparison = compare_all(make_service().router, PROMPT, judge=True, judge_model="gemini-flash")
    note = comparison.judge_details["note"]
    assert comparison.judge_best_model is None
    assert "failed on all 4 answers" in note or "failed on all 5 answers" in note
    assert "No endpoints found" in note  # the reason, not only "no usable grades"


def test_a_tie_with_the_winner_is_called_a_tie(server, make_service):
    from routing.compare.run import Comparison, ModelOutcome
    from ui.compare_tab import summary_markdown

    service = make_service()
    a, b = ModelOutcome("llama-3.3", "Llama"), ModelOutcome("mistral-small", "Mistral")
    for outcome, total in ((a, 5.0), (b, 4.0)):
        outcome.response, outcome.normalized, outcome.total = "x", 0.78, total
    comparison = Comparison(id="c1", prompt="p", selection=None, selected_model="mistral-small",
                            results={"llama-3.3": a, "mistral-small": b}, best_model="llama-3.3")
    text = summary_markdown(comparison, service.pool)
    assert "ties with the evaluator's winner" in text and "differs" not in text
    b.normalized = 0.5
    assert "differs from the evaluator's winner" in summary_markdown(comparison, service.pool)


def test_a_runner_up_scoring_above_the_pick_is_explained():
    from routing.pool import ModelPool, ModelSpec
    from routing.selectors.base import Selector

    pool = ModelPool([ModelSpec(id=i, display_name=i.upper(), provider="openrouter", model_name=f"x/{i}",
                                input_price_per_m=p, output_price_per_m=p) for i, p in
                      (("dear", 10.0), ("mid", 5.0), ("cheap", 0.1))])

    class Fixed(Selector):
        def score(self, prompts):
            return [[0.9, 0.8, 0.6] for _ in prompts]

    sel = Fixed(pool).select("anything", cost_weight=0.5)
    assert sel.selected_model == "cheap" and sel.runner_up == "mid"
    assert "higher, but ranked second once price counts" in sel.reasoning


def test_each_column_says_how_its_score_came_from_the_points(app, server):
    # The score is the learned grade blended with the heuristics' points: the column says so, with
    # the grade, so a person can see why 6 points beat 7.
    from routing.compare.run import compare_all
    from ui.compare_tab import column_stats

    service, _ = app
    comparison = compare_all(service.router, PROMPT)
    shown = [column_stats(o, comparison) for o in comparison.results.values() if o.ok]
    assert shown and all("learned quality" in s and "/10" in s and "blended with the heuristics" in s
                         for s in shown)


SAME = ("Autumn leaves falling,\nthe quiet river carries\nthe year to the sea.")


def test_identical_answers_tie_and_no_winner_is_named_or_logged_as_a_label(server, make_service):
    """Five word-for-word identical answers scored 0.50-0.55, a winner was named and the router marked
    wrong. Identical answers score identically, and a tie names no winner and marks nobody wrong."""
    server.set_model("*", reply=SAME)
    service = make_service()
    log = OutcomeLog.for_settings(service.settings)
    comparison = compare_all(service.router, "Write a haiku about autumn", outcome_log=log)
    scores = {r.normalized for r in comparison.results.values()}
    assert len(scores) == 1                                           # identical answers, identical scores
    assert comparison.best_model is None and comparison.router_correct is None
    assert sorted(comparison.tied) == sorted(service.pool.ids) and "a tie" in comparison.no_winner
    assert comparison.logged                                          # a tie is an outcome (all answered alike)...
    frame = log.to_frame()
    assert frame["oracle_model_to_route_to"].isna().all() or (frame["oracle_model_to_route_to"] == "").all()
    from ui.compare_tab import summary_markdown

    text = summary_markdown(comparison, service.pool)
    assert "No winner" in text and "Winner" not in text and "differs" not in text


def test_a_comparison_where_only_one_model_answered_names_no_winner_and_logs_nothing(server, make_service):
    """Under a budget 4 of 5 models were refused, and the one that answered was named the winner
    and the router marked wrong, in the log as a label."""
    server.set_model("*", status=503)
    server.set_model("mistralai/mistral-small-3.1-24b-instruct", reply="Paris.")
    service = make_service()
    log = OutcomeLog.for_settings(service.settings)
    comparison = compare_all(service.router, "What is the capital of France?", outcome_log=log)
    assert [m for m, r in comparison.results.items() if r.ok] == ["mistral-small"]
    assert comparison.best_model is None and comparison.router_correct is None and not comparison.logged
    assert "only mistral-small answered" in comparison.no_winner and len(log) == 0


def test_a_clear_difference_still_names_a_winner(server, make_service):
    server.set_model("*", reply="I cannot help with that.")
    server.set_model("meta-llama/llama-3.3-70b-instruct",
                     reply="The capital of France is Paris, on the Seine; it has been the capital since 987.")
    service = make_service()
    comparison = compare_all(service.router, "What is the capital of France?")
    assert comparison.best_model == "llama-3.3" and comparison.tied == [] and comparison.no_winner is None
