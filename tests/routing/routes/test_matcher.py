"""Matching with the real bundled MiniLM: thresholds calibrated by leave-one-out on a realistic small set,
held-out paraphrases match their route, unrelated prompts and near misses fall through."""

from __future__ import annotations

import numpy as np
import pytest

from routing.routes.matcher import MIN_THRESHOLD, RouteMatcher, calibrate, leave_one_out, route_encoder, similarities
from routing.routes.store import parse_routes
from routing.settings import Settings
from tests.routing.routes.example_routes import HELD_OUT, UNRELATED, routes_json

POOL = ["deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"]


@pytest.fixture(scope="module")
def matcher() -> RouteMatcher:
    return RouteMatcher(parse_routes(routes_json(), POOL), settings=Settings())


# ------------------------------------------------------------------ the numbers, on made-up scores

def test_calibrate_puts_the_threshold_midway_in_the_gap_when_the_scores_separate():
    report = calibrate(np.array([0.5, 0.6, 0.7]), np.array([0.1, 0.3]))
    assert report["threshold"] == pytest.approx(0.4)
    assert (report["accuracy"], report["precision"], report["recall"]) == (1.0, 1.0, 1.0)


def test_calibrate_maximises_f1_when_they_overlap_and_prefers_the_higher_cut_on_a_tie():
    pos, non = np.array([0.30, 0.50, 0.60, 0.70]), np.array([0.35, 0.40, 0.10])
    report = calibrate(pos, non)
    # cut at 0.50 keeps 3 of 4 with no false match (F1 0.857); at 0.30 all 4 with 2 false (F1 0.8)
    assert report["threshold"] == pytest.approx(0.45)
    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (3, 0, 1, 3)
    tie = calibrate(np.array([0.5, 0.9]), np.array([0.7, 0.75]))   # cuts at 0.5 and 0.9 both give F1 0.667
    assert tie["threshold"] == pytest.approx(0.825)


def test_calibrate_never_goes_below_the_floor():
    report = calibrate(np.array([0.21, 0.25]), np.array([]))
    assert report["threshold"] == MIN_THRESHOLD and report["recall"] == 1.0 and report["precision"] == 1.0
    assert calibrate(np.array([0.05, 0.1]), np.array([-0.2]))["threshold"] == MIN_THRESHOLD


def test_a_prompt_nearer_a_negative_than_any_example_is_penalised_by_the_margin():
    examples = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]])
    negatives = np.array([[0.0, 1.0, 0.0]])
    near_negative = np.array([0.0, 0.98, 0.199])
    parts = similarities(near_negative, examples, negatives)
    centroid = near_negative @ (examples.mean(0) / np.linalg.norm(examples.mean(0)))
    margin = 0.98 - 0.98 * 0.6
    assert parts["similarity"][0] == pytest.approx(centroid - margin)
    far = similarities(np.array([1.0, 0.0, 0.0]), examples, negatives)
    assert far["similarity"][0] == pytest.approx(far["centroid"][0])   # nearer an example: no penalty


def test_leave_one_out_scores_each_example_without_itself():
    examples = np.eye(3)
    pos, non = leave_one_out(examples, np.zeros((0, 3)), np.zeros((0, 3)))
    assert np.allclose(pos, 0.0) and len(non) == 0   # each unit vector is orthogonal to the others' centroid


# ------------------------------------------------------------------ the real encoder, a realistic set

def test_each_route_is_calibrated_on_its_own_examples_and_reports_its_figures(matcher):
    report = {r["name"]: r for r in matcher.report()["routes"]}
    for name, negatives in (("legal", 3), ("cooking", 3)):
        r = report[name]
        assert r["examples"] == len(matcher.get(name).examples)
        assert r["non_matches"] == negatives + sum(len(x.examples) for x in matcher.routes if x.name != name)
        assert MIN_THRESHOLD <= r["threshold"] < 0.5
        assert r["accuracy"] >= 0.8 and r["precision"] >= 0.8 and r["recall"] >= 0.6
        pos = np.array(r["leave_one_out_scores"]["examples"])
        non = np.array(r["leave_one_out_scores"]["non_matches"])
        assert pos.mean() > non.mean() + 0.15                       # examples score well above the rest
        assert calibrate(pos, non)["threshold"] == pytest.approx(r["threshold"], abs=1e-3)
    assert report["legal"]["threshold"] != report["cooking"]["threshold"]    # per route, not one global cut
    overall = matcher.report()["overall"]
    assert overall["examples"] == 13 and overall["accuracy"] >= 0.7


@pytest.mark.parametrize("route", ["legal", "cooking"])
def test_held_out_paraphrases_match_their_route(matcher, route):
    for prompt in HELD_OUT[route]:
        found = matcher.match(prompt)
        assert found is not None and found.route.name == route, prompt
        assert found.similarity >= found.threshold


def test_unrelated_prompts_match_no_route(matcher):
    for prompt in UNRELATED:
        assert matcher.match(prompt) is None, (prompt, [(s.name, round(s.similarity, 3)) for s in matcher.scores(prompt)])


def test_a_near_miss_like_a_negative_is_kept_out_by_the_penalty(matcher):
    prompt = "Write a short courtroom drama where a tenant's lawyer wins back a security deposit"
    [legal, _] = matcher.scores(prompt)
    assert legal.closest_negative == "Write a courtroom drama scene where the lawyer gives a dramatic closing speech"
    margin = legal.closest_negative_similarity - legal.closest_example_similarity
    assert margin > 0
    assert legal.similarity + margin >= legal.threshold      # the centroid alone would let it in
    assert not legal.matched and matcher.match(prompt) is None


def test_scores_say_which_example_is_closest(matcher):
    scores = matcher.scores("How long do I roast a 2 kg chicken, and how hot should the oven be?")
    assert [s.name for s in scores] == ["legal", "cooking"]
    cooking = scores[1]
    assert cooking.matched and cooking.closest_example == "How long should I roast a 2 kg chicken and at what temperature?"
    assert cooking.target == "the cheapest callable model"
    assert cooking.to_dict()["similarity"] == round(cooking.similarity, 4)


def test_no_routes_load_no_encoder():
    calls = []
    empty = RouteMatcher([], encoder_factory=lambda: calls.append(1))
    assert calls == [] and empty.encoder is None and not empty and empty.scores("hi") == []
    assert empty.match("hi") is None and empty.report()["overall"]["accuracy"] is None


def test_routes_use_the_evidence_priors_own_encoder(make_service):
    service = make_service(selector="prior")
    assert route_encoder(service.settings) is service.selector.encoder
