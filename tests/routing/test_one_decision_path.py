"""One router in every path: the same prompts get the same pick and confidence whether they are
routed one at a time (the Ask tab, /query, /v1/route), in a route-only batch (chunks of several
prompts in one pass) or in an answer batch, with the int8 fast path the shipped selector runs.

Dynamic int8 quantisation scales each forward pass by that pass's activations, so a prompt
encoded beside others (padded to the longest) came out different from the same prompt alone:
route-only batches picked another model on 12 of 200 prompts at cost weight 0.5.
"""

from __future__ import annotations

import csv
import json

import pytest

from routing.batch.local import run_file
from routing.settings import ASSETS_DIR

COST_WEIGHT = 0.5          # where near-ties between the cheaper models are common


def _prompts() -> list[str]:
    corpus = [json.loads(line)["text"] for line in (ASSETS_DIR / "prompt_corpus.jsonl").open(encoding="utf-8")]
    picked = corpus[::12][:44]
    # Lengths far apart in one chunk: padding is what made a batched prompt differ from itself alone.
    picked += ["Explain, step by step, " + "how a compiler turns source code into machine code, " * 30,
               "hi", "Summarise: " + "The committee met on Tuesday and agreed the budget. " * 25, "2+2?"]
    return picked


def _csv(path, prompts):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt"])
        writer.writerows([f"r{i}", p] for i, p in enumerate(prompts))
    return path


def _read(path) -> list[tuple[str, float]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [(r["selected_model"], round(float(r["confidence"]), 4)) for r in csv.DictReader(fh)]


def test_every_entry_point_makes_the_same_decision(make_service, tmp_path):
    service = make_service(selector="auto")
    if service.selector.name != "prior" or service.selector.precision != "int8-dynamic":
        pytest.skip(f"the shipped selector is {service.selector.name} in {service.selector.precision}")
    prompts = _prompts()
    src = _csv(tmp_path / "in.csv", prompts)
    one_by_one = [(s.selected_model, round(s.confidence, 4))
                  for s in (service.router.route(p, cost_weight=COST_WEIGHT) for p in prompts)]
    run_file(service.router, src, tmp_path / "route.csv", mode="route", chunk_size=16, cost_weight=COST_WEIGHT)
    run_file(service.router, src, tmp_path / "answer.csv", mode="answer", chunk_size=16, cost_weight=COST_WEIGHT)
    route_batch, answer_batch = _read(tmp_path / "route.csv"), _read(tmp_path / "answer.csv")
    differ = [(prompts[i][:40], a, b, c) for i, (a, b, c) in enumerate(zip(one_by_one, route_batch, answer_batch))
              if not a == b == c]
    assert differ == [], differ
    assert len({m for m, _ in one_by_one}) > 1          # the knob made real choices, not one model for all
    queried = service.query(prompts[3], cost_weight=COST_WEIGHT)   # the Ask tab's and /query's path
    assert (queried["selected_model"], round(queried["selection_confidence"], 4)) == one_by_one[3]


def test_a_route_from_examples_decides_in_a_batch_as_it_does_for_one_request(make_service, tmp_path):
    """Routes were consulted by /query and the gateway but not by batch routing or compare-all's pick."""
    from tests.routing.routes.example_routes import HELD_OUT, UNRELATED, routes_json

    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(routes_json(legal_target="gemini-flash")), encoding="utf-8")
    service = make_service(routes_file=routes)
    prompts = HELD_OUT["legal"] + HELD_OUT["cooking"] + UNRELATED[:4]
    single = [service.router.decide(p) for p in prompts]
    assert {s.route for s in single} >= {"legal", "cooking", None}
    src = _csv(tmp_path / "in.csv", prompts)
    run_file(service.router, src, tmp_path / "route.csv", mode="route", chunk_size=16)
    assert _read(tmp_path / "route.csv") == [(s.selected_model, round(s.confidence, 4)) for s in single]
    assert [s.route for s in service.router.route_many(prompts)] == [s.route for s in single]
