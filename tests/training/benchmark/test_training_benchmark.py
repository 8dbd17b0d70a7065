"""Benchmark metrics against hand-computed values on toy tables, and the benchmark end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.benchmark import metrics as rm
from routing.errors import UserError
from training.benchmark.run import benchmark, fit_selector
from training.benchmark.cost_model import CostModel
from training.benchmark.head import LinearProbe, choose_k, knn_predict
from training.benchmark.outcomes import OutcomeTable

SUMMARY_KEYS = {"n_train", "n_test", "models", "quality", "ci95", "diff_ci95", "aiq",
                "cost_share_at_best_single_quality", "apgr", "cpt50", "cpt80", "strategies", "onboarding"}


def test_quality_cost_and_cost_knob_by_hand():
    scores = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    costs = np.array([[10.0, 1.0]] * 4)
    choice = np.array([0, 1, 1, 0])
    assert rm.realised(scores, choice).mean() == 1.0
    assert rm.realised(costs, choice).mean() == pytest.approx(5.5)
    pred = np.array([[0.9, 0.2], [0.9, 0.8], [0.3, 0.7], [0.6, 0.5]])
    model_cost = np.array([10.0, 1.0])
    assert rm.cost_aware_choice(pred, model_cost, 0.0).tolist() == [0, 0, 1, 0]
    # lambda 0.2 costs the pricey model 0.2 - 0.02: rows where its edge is smaller switch
    assert rm.cost_aware_choice(pred, model_cost, 0.2).tolist() == [0, 1, 1, 1]
    assert rm.cost_aware_choice(np.array([[0.5, 0.5]]), model_cost, 0.0).tolist() == [1]   # tie -> cheaper


def test_aiq_and_hull_by_hand():
    # hull through (0,0), (1,.5), (2,.8); the dominated point (1.5,.5) is ignored
    assert rm.upper_hull([(1, 0.5), (2, 0.8), (1.5, 0.5)]) == [(0.0, 0.0), (1.0, 0.5), (2.0, 0.8)]
    assert rm.aiq([(1, 0.5), (2, 0.8)], 2.0) == pytest.approx((0.25 + 0.65) / 2)
    # flat after the best point up to max_cost; a pricier, worse point does not lower it
    assert rm.aiq([(1, 0.6), (4, 0.5)], 4.0) == pytest.approx((0.3 + 3 * 0.6) / 4)
    assert rm.cost_to_reach([{"cost": 3, "quality": 0.7}, {"cost": 2, "quality": 0.8}], 0.7) == 2


def test_apgr_random_is_half_and_oracle_exceeds_one_when_weak_sometimes_wins():
    rng = np.random.default_rng(1)
    n = 1000
    strong = (rng.random(n) < 0.8).astype(float)
    weak = (rng.random(n) < 0.5).astype(float)
    scores = np.c_[strong, weak]
    assert rm.random_apgr(scores, 0, 1, draws=100) == pytest.approx(0.5, abs=0.02)
    oracle = rm.apgr(scores[:, 0] - scores[:, 1], scores, 0, 1)
    assert oracle > 1.0
    anti = rm.apgr(scores[:, 1] - scores[:, 0], scores, 0, 1)
    assert anti < 0.5
    # CPT: the oracle recovers half the gap after sending few prompts to the strong model
    assert rm.cpt(scores[:, 0] - scores[:, 1], scores, 0, 1, 0.5) < 0.5
    x, pgr = rm.pgr_curve(scores[:, 0] - scores[:, 1], scores, 0, 1)
    assert pgr[0] == pytest.approx(0.0) and pgr[-1] == pytest.approx(1.0)


def test_apgr_by_hand_on_four_prompts():
    scores = np.array([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=float)   # strong .75, weak .5
    # order 0, 3, 1, 2: qualities for k=0..4 -> .5, .75, 1.0, 1.0, .75 -> PGR 0, 1, 2, 2, 1
    rank = np.array([4, 2, 1, 3])
    x, pgr = rm.pgr_curve(rank, scores, 0, 1)
    assert pgr.tolist() == pytest.approx([0, 1, 2, 2, 1])
    assert rm.apgr(rank, scores, 0, 1) == pytest.approx(np.trapezoid([0, 1, 2, 2, 1], x))
    assert rm.cpt(rank, scores, 0, 1, 0.8) == 0.25


def test_bootstrap_cis_cover_the_mean_and_pair():
    v = np.r_[np.ones(60), np.zeros(40)]
    lo, hi = rm.bootstrap_ci(v)
    assert lo < 0.6 < hi and hi - lo < 0.25
    assert rm.paired_diff_ci(v, v) == [0.0, 0.0]


def test_knn_and_k_choice():
    X = np.eye(4)[[0, 0, 1, 1, 2, 2, 3, 3]].astype(float)
    T = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 0], [0, 1], [0, 1]], float)
    pred = knn_predict(X, T, X[[0, 2]], k=2)
    assert pred.tolist() == [[1, 0], [0, 1]]
    k, scores = choose_k(X, T, ks=(1, 2, 8), folds=2)
    assert k in (1, 2) and scores[8] <= scores[k]


def test_nearest_neighbours_in_chunks_match_brute_force():
    from training.benchmark.head import nearest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = (rng.random((300, 3)) < 0.5).astype(float)
    T[rng.random((300, 3)) < 0.2] = np.nan                  # missing cells are skipped, not zeros
    Q = X[:40] + rng.normal(scale=0.01, size=(40, 8))
    sims = Q @ X.T
    ref = np.argsort(-sims, axis=1)[:, :25]
    assert (nearest(X, Q, 25, chunk=7) == ref).all()         # most similar first, chunking invisible
    expect = np.nanmean(T[ref], axis=1)
    assert np.allclose(knn_predict(X, T, Q, 25), np.where(np.isnan(expect), np.nanmean(T, 0), expect))
    self_sims = X @ X.T
    np.fill_diagonal(self_sims, -np.inf)
    assert (nearest(X, X, 5, exclude_self=True, chunk=64) == np.argsort(-self_sims, axis=1)[:, :5]).all()


def test_cost_model_predicts_longer_prompts_cost_more_and_falls_back_without_costs():
    rng = np.random.default_rng(0)
    prompts = ["word " * int(n) for n in rng.integers(5, 2000, 200)]
    X = rng.normal(size=(200, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    chars = np.array([len(p) for p in prompts], float)
    costs = np.c_[chars * 1e-6 + 1e-4, chars * 1e-8 + 1e-6, np.full(200, np.nan)]
    costs[::7, 0] = np.nan                                   # missing cells are skipped
    cm = CostModel().fit(X, prompts, costs)
    pred = cm.predict(X[:2], ["word " * 10, "word " * 1500])
    assert pred.shape == (2, 3)
    assert pred[1, 0] > 3 * pred[0, 0]                        # a long prompt costs more
    truth = np.array([[50e-6 + 1e-4], [7500e-6 + 1e-4]])
    assert np.allclose(pred[:, :1], truth, rtol=0.4)       # log-linear fit: rough, right scale
    assert (pred[:, 0] > pred[:, 1]).all()                   # the pricey model stays pricey
    assert pred[0, 2] == 0.0                                 # no costs at all: the (nan -> 0) mean


def test_linear_probe_ranks_models_by_topic_and_stays_in_unit_range():
    rng = np.random.default_rng(0)
    topic = rng.integers(0, 2, 300)
    X = np.c_[topic, 1 - topic, rng.normal(scale=0.1, size=(300, 4))]
    T = np.c_[topic, 1 - topic].astype(float)
    T[::5, 1] = np.nan                                       # missing scores are tolerated
    probe = LinearProbe().fit(X, T)
    pred = probe.predict(X[:20])
    assert pred.min() >= 0 and pred.max() <= 1
    assert (pred.argmax(1) == 1 - topic[:20]).all()           # model a wins topic 1, model b topic 0


def test_the_benchmarks_selector_is_the_apps_auto_head_chosen_on_train_only():
    from training.pipeline.strategies import AUTO_CANDIDATES, HEAD_STRATEGIES

    rng = np.random.default_rng(0)
    topic = rng.integers(0, 2, 120)
    X = np.c_[topic, 1 - topic, rng.normal(scale=0.1, size=(120, 4))]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = np.c_[topic, 1 - topic].astype(float)
    table = OutcomeTable([f"prompt {i}" for i in range(120)], ["a", "b"], T,
                         np.c_[np.full(120, 2e-3), np.full(120, 1e-4)])
    with pytest.raises(UserError, match="auto or one of"):
        fit_selector(X, table, 0, "cluster+nonsense")
    chosen, fitted, head = fit_selector(X, table, 0)
    assert chosen in AUTO_CANDIDATES and head.criterion == "aiq"          # priced: ranked by AIQ
    assert set(head.val_scores) == set(AUTO_CANDIDATES) and all(0 < v <= 1 for v in head.val_scores.values())
    pred = fitted.predict(X[:10])
    assert pred.shape == (10, 2) and (pred.argmax(1) == 1 - topic[:10]).all()
    # The same contest training.pipeline.train runs (same seed, same data): the same pick, the same scores.
    from training.pipeline.strategies import fit_head
    from training.pipeline.train import Dataset

    data = Dataset(table.prompts, list(1 - topic), T, [{"costs": {"a": 2e-3, "b": 1e-4}}] * 120)
    empty = Dataset([], [], np.zeros((0, 2)), [])
    app = fit_head("auto", {"train": X, "val": np.zeros((0, X.shape[1]))}, {"train": data, "val": empty},
                   True, 0, models=["a", "b"])
    assert app.params.get("candidate", app.strategy) == chosen and app.val_scores == head.val_scores
    chosen, fitted, head = fit_selector(X, table, 0, "knn+linear")        # a fixed pair: no contest
    assert chosen == "knn+linear" and head is None and set(HEAD_STRATEGIES) >= set(fitted.names)
    pred = fitted.predict(X[:10])
    assert ((0 <= pred) & (pred <= 1)).all() and (pred.argmax(1) == 1 - topic[:10]).all()


def _toy_tables(tmp_path, n_train=80, n_test=40):
    rng = np.random.default_rng(0)
    def table(n, name):
        topics = rng.integers(0, 2, n)
        prompts = [(f"['Write python code for task {i}']" if t else f"['Tell me a story about dragon {i}']")
                   for i, t in enumerate(topics)]
        strong = (rng.random(n) < 0.8).astype(float)
        weak = np.where(topics == 0, (rng.random(n) < 0.9), (rng.random(n) < 0.2)).astype(float)
        df = pd.DataFrame({"": range(n), "prompt": prompts, "big/strong": strong, "small/weak": weak,
                           "big/strong|total_cost": 0.01, "small/weak|total_cost": 0.001})
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path
    return table(n_train, "train.csv"), table(n_test, "test.csv")


@pytest.mark.slow
def test_benchmark_end_to_end_on_a_toy_table(tmp_path):
    from training.tiny import make_tiny_encoder

    base = make_tiny_encoder(tmp_path / "enc")
    train, test = _toy_tables(tmp_path)
    report = benchmark([str(train)], [str(test)], tmp_path / "out", base_model=str(base),
                       cache_dir=tmp_path / "cache", strategies=["knn", "linear", "auto"], leave_one_model_out=True, onboarding_ks=(10, 20))
    s = report["summary"]
    assert set(s["onboarding"]) == {"10", "20"}                            # each model held out, added back
    assert all(v["models"] == 2 and {"quality", "aiq", "aiq_lost_vs_full"} <= set(v) for v in s["onboarding"].values())
    assert set(s) == SUMMARY_KEYS
    assert set(s["strategies"]) == {"knn", "linear", "auto"}                 # side by side, as training fits them
    assert all({"quality", "aiq", "cost_share"} <= set(v) for v in s["strategies"].values())
    from training.pipeline.strategies import AUTO_CANDIDATES

    assert report["strategies"]["auto"]["strategy"] in AUTO_CANDIDATES
    # The headline selector is what training.pipeline.train --strategy auto ships, not a benchmark-only pick.
    assert report["selector"]["variant"] == report["strategies"]["auto"]["strategy"]
    assert s["aiq"]["selector"] == pytest.approx(s["strategies"]["auto"]["aiq"])
    lo, hi = s["diff_ci95"]["aiq_selector_vs_knn"]                         # paired bootstrap over prompts
    assert lo <= s["aiq"]["selector"] - s["aiq"]["knn"] + 1e-9 and lo <= hi
    df = pd.read_csv(test)
    S = df[["big/strong", "small/weak"]].to_numpy()
    assert s["n_test"] == len(df) and s["models"] == ["big/strong", "small/weak"]
    assert s["quality"]["random"] == pytest.approx(S.mean())
    assert s["quality"]["oracle"] == pytest.approx(S.max(axis=1).mean())
    assert s["quality"]["best_single"] == pytest.approx(S[:, 0].mean())
    assert s["apgr"]["random"] == pytest.approx(0.5, abs=0.05) and s["apgr"]["oracle"] > 1
    assert all(v is not None for v in s["aiq"].values())
    assert s["aiq"]["oracle"] >= max(s["aiq"]["selector"], s["aiq"]["knn"])
    lo, hi = s["ci95"]["selector"]
    assert lo <= s["quality"]["selector"] <= hi
    assert (tmp_path / "out" / "report.json").is_file() and (tmp_path / "out" / "cost_quality.html").is_file()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["summary"] == s
    html = (tmp_path / "out" / "cost_quality.html").read_text(encoding="utf-8")
    assert 'src="https://cdn' not in html and "best single model" in html  # opens offline
    assert "embedding_head" not in report["routers"]                     # no copy of the selector


@pytest.mark.slow
def test_benchmark_without_costs_has_null_cost_fields_and_many_models(tmp_path):
    from training.tiny import make_tiny_encoder

    base = make_tiny_encoder(tmp_path / "enc")
    rows = [{"question": f"question {i} about {'math' if i % 2 else 'poems'}",
             "scores": {"a": float(i % 2), "b": float(1 - i % 2), "c": 0.5}} for i in range(40)]
    (tmp_path / "tr.json").write_text(json.dumps(rows))
    (tmp_path / "te.json").write_text(json.dumps(rows[:20]))
    report = benchmark([str(tmp_path / "tr.json")], [str(tmp_path / "te.json")], tmp_path / "out",
                       base_model=str(base), cache_dir=tmp_path / "cache", with_mlp_head=False)
    s = report["summary"]
    assert s["aiq"] == {"best_single_hull": None, "knn": None, "selector": None, "oracle": None}
    assert s["cost_share_at_best_single_quality"] == {"knn": None, "selector": None}
    assert s["apgr"]["selector"] is None and s["cpt50"]["knn"] is None


@pytest.mark.slow
def test_benchmark_fine_tunes_the_encoder_with_the_pipelines_train_step(tmp_path):
    from training.tiny import make_tiny_encoder
    from training.pipeline.train import TrainConfig

    base = make_tiny_encoder(tmp_path / "enc")
    train, test = _toy_tables(tmp_path, n_train=120)
    cfg = TrainConfig(base_model=str(base), epochs=2, batch_size=16, max_length=32, learning_rate=1e-3)
    report = benchmark([str(train)], [str(test)], tmp_path / "out", base_model=str(base),
                       cache_dir=tmp_path / "cache", finetune_config=cfg)
    sel = report["selector"]
    # The fine-tuned model trained with the pipeline's fit(): a loss history, and it scores TEST.
    assert sel["finetune"]["steps"] > 0 and sel["finetune"]["loss_history"]
    assert sel["source"] in ("embedding", "finetuned", "finetuned+embedding")
    assert set(sel["source_scores_on_val"]) == {"embedding", "finetuned", "finetuned+embedding"}
    assert {"finetuned", "embedding_head"} <= set(report["routers"])
    assert {"finetuned", "embedding_head"} <= set(report["alternatives"])
    q = report["routers"]["finetuned"]["quality"]
    assert 0 <= q <= 1 and report["timing_s"]["finetune"] > 0
    assert set(report["summary"]) == SUMMARY_KEYS


def test_benchmark_cli_rejects_an_unknown_selector_strategy_before_any_work(tmp_path, capsys):
    from training.benchmark.run import main

    train, test = _toy_tables(tmp_path)
    rc = main(["--train", str(train), "--test", str(test), "--out", str(tmp_path / "out"),
               "--selector-strategy", "cluster+bogus"])
    assert rc == 2 and "auto or one of" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()                  # refused before embedding anything
    rc = main(["--train", str(train), "--test", str(test), "--out", str(tmp_path / "out"), "--strategies", "knn,nope"])
    assert rc == 2 and "'nope'" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_benchmark_cli_rejects_a_missing_table(tmp_path, capsys):
    from training.benchmark.run import main

    rc = main(["--train", str(tmp_path / "nope.csv"), "--test", str(tmp_path / "nope.csv"),
               "--out", str(tmp_path / "out")])
    assert rc == 2 and "nope.csv" in capsys.readouterr().err
