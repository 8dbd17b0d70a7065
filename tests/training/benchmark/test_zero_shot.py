"""python -m training.benchmark --zero-shot on anyone's outcome table: the baselines, the CIs, the
unrated models, the ratings map, and its last line as one JSON object."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.benchmark.run import main

RATED = {"acme/alpha-7b-chat": "alpha-7b-chat", "beta-70b-instruct": "beta-70b-instruct-2501"}


def _ratings_csv(path):
    rows = []
    for name, base in (("alpha-7b-chat", 1150.0), ("beta-70b-instruct-2501", 1350.0), ("gamma-v1", 1250.0)):
        for category in ("full", "coding", "math", "creative_writing", "hard_6"):
            rows.append({"variant": "style_control", "category": category, "model": name, "rating": base,
                         "ci95_low": base - 10, "ci95_high": base + 10})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _table(path, seed, n=40):
    rng = np.random.default_rng(seed)
    prompts = [f"Question {i}: what is {i} times {i + 2}? Explain the steps." if i % 2 else
               f"Write a short poem number {i} about the {['sea', 'moon', 'city'][i % 3]}." for i in range(n)]
    weak = (rng.random(n) < 0.4).astype(float)
    strong = (rng.random(n) < 0.8).astype(float)
    other = (rng.random(n) < 0.6).astype(float)
    pd.DataFrame({"prompt": prompts, "acme/alpha-7b-chat": weak, "beta-70b-instruct": strong, "delta": other,
                  "acme/alpha-7b-chat|total_cost": 0.0001, "beta-70b-instruct|total_cost": 0.002,
                  "delta|total_cost": 0.0005}).to_csv(path, index=False)
    return path


@pytest.fixture
def tables(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_CACHE_DIR", str(tmp_path / "cache"))
    return (_table(tmp_path / "train.csv", 0), _table(tmp_path / "test.csv", 1), _ratings_csv(tmp_path / "r.csv"))


def test_zero_shot_on_a_new_table_ends_with_the_promised_json(tables, tmp_path, capsys):
    train, test, ratings = tables
    assert main(["--zero-shot", "--test", str(test), "--train", str(train), "--ratings", str(ratings),
                 "--out", str(tmp_path / "out")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = {"prior", "random", "best_rated", "category_best", "best_single", "knn"}
    assert set(line["quality"]) == names and set(line["aiq"]) == names
    assert set(line["diff_ci95"]) == {"aiq_prior_vs_knn", "aiq_prior_vs_category_best"}
    assert all(len(v) == 2 and v[0] <= v[1] for v in line["diff_ci95"].values())
    assert line["unrated_models"] == ["delta"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["ratings_match"]["matched"]["acme/alpha-7b-chat"] == {"rating_name": "alpha-7b-chat", "how": "exact"}
    assert report["ratings_match"]["matched"]["beta-70b-instruct"]["how"] == "prefix"
    # At cost weight 0 the prior sends everything to the best-rated model, which is the strong one here.
    assert line["quality"]["prior"] == line["quality"]["best_rated"] == pytest.approx(
        pd.read_csv(test)["beta-70b-instruct"].mean())


def test_the_ratings_map_rates_what_the_automatic_match_cannot(tables, tmp_path, capsys):
    train, test, ratings = tables
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"delta": "gamma-v1", "_comment": "delta is sold as gamma-v1"}))
    assert main(["--zero-shot", "--test", str(test), "--ratings", str(ratings), "--ratings-map", str(mapping),
                 "--out", str(tmp_path / "out")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["unrated_models"] == [] and "knn" not in line["aiq"]
    mapping.write_text(json.dumps({"delta": "no-such-model"}))
    assert main(["--zero-shot", "--test", str(test), "--ratings", str(ratings), "--ratings-map", str(mapping),
                 "--out", str(tmp_path / "out")]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_two_models_also_get_apgr_and_a_table_without_costs_needs_prices(tables, tmp_path, capsys):
    train, test, ratings = tables
    frame = pd.read_csv(test)
    two = tmp_path / "two.csv"
    frame[["prompt", "acme/alpha-7b-chat", "beta-70b-instruct"]].to_csv(two, index=False)
    assert main(["--zero-shot", "--test", str(two), "--ratings", str(ratings), "--out", str(tmp_path / "o")]) == 2
    assert "--prices" in capsys.readouterr().err
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"acme/alpha-7b-chat": 0.2, "beta-70b-instruct": 3.0}))
    assert main(["--zero-shot", "--test", str(two), "--ratings", str(ratings), "--prices", str(prices),
                 "--out", str(tmp_path / "o")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line["apgr"]) >= {"prior", "random", "best_rated", "category_best"}
