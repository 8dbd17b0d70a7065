"""Fitting the evidence prior: the link recovers a known ability-minus-difficulty world, the
difficulty regression and topic classifier fit, and the folder round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from routing.selectors import prior as pr
from training.prior.fit import LinkData, fit_difficulty, fit_link, fit_prior, fit_topics


def _world(seed=0, n=400, slope=0.8):
    rng = np.random.default_rng(seed)
    ratings = np.array([1150.0, 1250.0, 1300.0, 1350.0, 1450.0])
    b = rng.normal(0.0, 1.0, n)
    p = pr.sigmoid(slope * (ratings[None, :] - pr.REFERENCE) / 100.0 - b[:, None])
    y = (rng.random(p.shape) < p).astype(float)
    y[rng.random(y.shape) < 0.05] = np.nan                           # a few models not run on a prompt
    table = {f"m{k}": {c: (r, r - 10, r + 10) for c in pr.RATING_CATEGORIES} for k, r in enumerate(ratings)}
    R = pr.ratings_from_table(list(table), table, {})
    X = rng.normal(size=(n, 8))
    X[:, 0] = b                                                      # the embedding carries the difficulty
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return LinkData("synthetic", X, ["plain english text"] * n, y, R), b


def test_the_link_recovers_the_slope_and_the_difficulties_of_a_known_world():
    item, b = _world()
    W, bias = np.zeros((8, len(pr.TOPICS))), np.zeros(len(pr.TOPICS))
    slope, (fitted,) = fit_link([item], W, bias)
    assert slope == pytest.approx(0.8, abs=0.15)
    assert np.corrcoef(fitted, b)[0, 1] > 0.6                        # 5 models a prompt: noisy, but it follows
    w, intercept, report = fit_difficulty([item.X], [fitted])
    assert np.corrcoef(item.X @ w + intercept, b)[0, 1] > 0.5 and report["alpha"] > 0


def test_the_topic_classifier_learns_separable_topics_and_reports_held_out_accuracy():
    rng = np.random.default_rng(1)
    centres = np.eye(4, 16)
    labels = [pr.TOPICS[i % 4] for i in range(400)]
    X = np.array([centres[pr.TOPICS.index(t)] + rng.normal(0, 0.2, 16) for t in labels])
    W, b, report = fit_topics(X, labels)
    assert W.shape == (16, 4) and report["held_out_accuracy"] > 0.9
    probs = pr.softmax(X @ W + b)
    assert (probs.argmax(1) == [pr.TOPICS.index(t) for t in labels]).mean() > 0.9


def test_a_fitted_prior_round_trips_through_its_folder(tmp_path):
    item, _ = _world(n=120)
    rng = np.random.default_rng(2)
    topic_X = rng.normal(size=(80, 8))
    labels = [pr.TOPICS[i % 4] for i in range(80)]
    params = fit_prior(topic_X, labels, [item], {"note": "test"})
    folder = params.save(tmp_path / "prior")
    assert pr.is_prior_dir(folder) and not pr.is_prior_dir(tmp_path)
    again = pr.PriorParams.load(folder)
    assert again.slope == pytest.approx(params.slope, rel=1e-6) and again.info["note"] == "test"
    p1 = pr.predict(params, item.X[:5], item.texts[:5], item.ratings).p
    p2 = pr.predict(again, item.X[:5], item.texts[:5], item.ratings).p
    assert np.abs(p1 - p2).max() < 0.01                              # float16 weights on disk
