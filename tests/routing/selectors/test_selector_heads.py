"""Embedding-head selectors (routing/selectors/heads.py, training/pipeline/strategies.py) and the release
gate on a sparse log (training.pipeline.train.decide_gate): what automatic retraining depends on."""

import json

import numpy as np
import pytest

from routing.pool import load_pool
from routing.settings import DEFAULT_MODELS_FILE

CODING = [f"Write a Python function that {t} #{i}" for i in range(8)
          for t in ("reverses a list", "parses a date", "sorts numbers")]
POEMS = [f"Write a short poem about {t} #{i}" for i in range(8) for t in ("the sea", "autumn", "a cat")]


def _sparse_table(pool):
    """A log where each prompt was answered by one or two models: qwen2.5 good at code (seen on a
    few coding prompts only), llama-3.3 good at poems, deepseek-r1 (the usual pick) mediocre."""
    rows = []
    for i, p in enumerate(CODING):
        scores = {"deepseek-r1": 0.3}
        if i % 3 == 0:
            scores["qwen2.5"] = 0.9
        rows.append({"question": p, "scores": scores})
    for i, p in enumerate(POEMS):
        scores = {"llama-3.3": 0.8}
        if i % 3 == 0:
            scores["qwen2.5"] = 0.1
        rows.append({"question": p, "scores": scores})
    return rows


def test_per_model_neighbours_judge_a_rarely_seen_model_by_its_own_answers():
    from routing.selectors.heads import knn_scores, per_model_knn_scores

    rng = np.random.default_rng(0)
    code, poem = rng.normal(size=8), rng.normal(size=8)
    code /= np.linalg.norm(code)
    # The three coding prompts model 1 answered are a little further from the query than the rest.
    X = np.stack([code + 0.25 * rng.normal(size=8) for _ in range(3)] + [code + 0.02 * rng.normal(size=8)
                  for _ in range(9)] + [poem + 0.05 * rng.normal(size=8) for _ in range(12)])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = np.full((24, 2), np.nan)
    T[:12, 0] = 0.3                      # model 0 on every coding prompt: mediocre
    T[:3, 1] = 0.9                       # model 1 seen on three coding prompts: good
    T[12:, 1] = 0.1                      # ... and bad on every poem
    q = code[None, :]
    plain = knn_scores(X, T, q, 5)
    own = per_model_knn_scores(X, T, q, 5)
    assert own[0, 1] == pytest.approx(0.9, abs=0.05) and own.argmax() == 1
    assert plain.argmax() == 0           # shared neighbours: model 1's three answers drown in blanks
    assert np.allclose(per_model_knn_scores(X, np.nan_to_num(T), q, 5), knn_scores(X, np.nan_to_num(T), q, 5))


@pytest.mark.parametrize("strategy", ["knn", "cluster", "linear", "mlp"])
def test_a_head_folder_round_trips_and_the_registry_routes_with_it(tmp_path, strategy):
    from routing.selectors import load_selector
    from routing.selectors.heads import HeadScorer, is_head_dir
    from training.pipeline.run import run_pipeline
    from tests.conftest import router_settings

    pool = load_pool(DEFAULT_MODELS_FILE)
    table = tmp_path / "log.json"
    table.write_text(json.dumps(_sparse_table(pool)))
    target = tmp_path / "selector_model"
    result = run_pipeline("outcomes", str(table), None, 1, 1e-4, 8, tmp_path / "work", selector_dir=target,
                          label_encoder_file=tmp_path / "le.json", pool=pool, strategy=strategy)
    assert result["gate"]["promoted"] and result["gate"]["strategy"] == strategy
    assert is_head_dir(target) and (target / "head.safetensors").is_file()
    assert not (target / "encoder").exists()                          # the bundled encoder is not copied
    assert sum(f.stat().st_size for f in target.iterdir() if f.is_file()) < 1_000_000
    config = json.loads((target / "config.json").read_text())
    assert config["router"]["strategy"] == strategy and config["router"]["encoder"] == "bundled"
    assert "head.safetensors" in (target / "README.md").read_text()
    settings = router_settings(None, tmp_path, selector="learned", selector_dir=target,
                               label_encoder_file=tmp_path / "le.json")
    selector, warning = load_selector(settings, pool)
    assert warning is None and selector.name == "learned"
    pick = selector.select("Write a Python function that reverses a list #99")
    if strategy == "knn":
        assert pick.selected_model == "qwen2.5"                         # learned from three answers
    assert selector.select("Write a short poem about the sea #99").selected_model == "llama-3.3"
    assert strategy in pick.details["head"] and "Learned selector (" in pick.reasoning
    scores = HeadScorer(target).predict(["Write a short poem about autumn #42"])
    assert scores.shape == (1, len(result["confusion_matrix"]["labels"]))


def test_the_saved_mlp_and_ensemble_heads_score_as_the_trained_ones(tmp_path):
    """The app serves a head with numpy from its float16 arrays: its scores must be the trained
    torch heads' (a wrong layer order, transposition or activation would reroute silently)."""
    from routing.selectors.heads import HeadScorer, save_head
    from training.pipeline.strategies import fit_one, saved_strategy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 384)).astype(np.float32)
    X[:, 0] = 6 * np.sign(X[:, 0])                       # a direction the outcomes follow
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = np.c_[(X[:, 0] > 0), (X[:, 1] > 0), np.full(240, 0.5)].astype(float)
    T[rng.random(T.shape) < 0.1] = np.nan
    probe = X[:5]
    for name in ("mlp", "linear+mlp", "cluster+mlp"):
        fitted = fit_one(name, X, T, 0)
        arrays, params = fitted.export()
        folder = save_head(tmp_path / name, strategy=saved_strategy(name), arrays=arrays, params=params,
                           labels=["a", "b", "c"], encoder="bundled", max_length=64, head_tokens=16, source="outcomes")
        served = HeadScorer(folder, fast_path="off")
        assert served.predict_embeddings(probe) == pytest.approx(fitted.predict(probe), abs=2e-3)
        assert ("MLP" in served.describe()) and (("mean of" in served.describe()) == ("+" in name))
        if name == "mlp":   # and it learned something: model "a" is right where X[:, 0] > 0
            pos, neg = served.predict_embeddings(X[X[:, 0] > 0]), served.predict_embeddings(X[X[:, 0] < 0])
            assert pos[:, 0].mean() > neg[:, 0].mean() + 0.2


def test_auto_compares_pairs_of_heads_too_and_saves_a_winning_pair_as_an_ensemble(tmp_path):
    from training.pipeline.strategies import AUTO_CANDIDATES, fit_head
    from training.pipeline.train import Dataset

    assert {"mlp", "linear+mlp", "knn+cluster"} <= set(AUTO_CANDIDATES)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 384)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    T = np.c_[(X[:, 0] > 0), (X[:, 0] <= 0)].astype(float)
    data = Dataset([f"p{i}" for i in range(150)], [int(t[1]) for t in T], T, [{}] * 150)
    empty = Dataset([], [], np.zeros((0, 2)), [])
    fit = fit_head("auto", {"train": X, "val": np.zeros((0, 384))}, {"train": data, "val": empty}, True, 0)
    assert set(fit.val_scores) == set(AUTO_CANDIDATES) and fit.criterion == "quality"
    assert fit.val_scores[fit.best] == max(fit.val_scores.values())
    chosen = fit.params.get("candidate", fit.strategy)
    assert (fit.strategy == "ensemble") == ("candidate" in fit.params) == ("+" in chosen)
    # one-standard-error rule: a single head that CV cannot tell from the best pair is preferred
    assert fit.val_scores[chosen] <= fit.val_scores[fit.best]
    if "+" in chosen:
        assert chosen == fit.best
    # Where every record prices every model, the whole cost-quality curve decides (AIQ).
    priced = Dataset(data.texts, data.labels, T, [{"costs": {"a": 1.0, "b": 0.1}} for _ in range(150)])
    fit = fit_head("auto", {"train": X, "val": np.zeros((0, 384))}, {"train": priced, "val": empty}, True, 0,
                   models=["a", "b"])
    assert fit.criterion == "aiq" and 0 < max(fit.val_scores.values()) <= 1
    half = Dataset(data.texts, data.labels, T, [{"costs": {"a": 1.0}} for _ in range(150)])   # b unpriced
    assert fit_head("auto", {"train": X, "val": np.zeros((0, 384))}, {"train": half, "val": empty}, True, 0,
                    models=["a", "b"]).criterion == "quality"


def test_a_corrupt_or_mismatched_head_is_refused_with_a_reason(tmp_path):
    from routing.selectors.heads import HeadScorer, save_head
    from routing.selectors.classifier import SelectorLoadError

    folder = save_head(tmp_path / "h", strategy="linear", arrays={"weights": np.zeros((384, 2)), "bias": np.zeros(2)},
                       params={}, labels=["a", "b"], encoder="bundled", max_length=64, head_tokens=16, source="outcomes")
    assert HeadScorer(folder).predict(["hello"]).shape == (1, 2)
    bad = save_head(tmp_path / "m", strategy="linear", arrays={"weights": np.zeros((384, 3)), "bias": np.zeros(3)},
                    params={}, labels=["a", "b"], encoder="bundled", max_length=64, head_tokens=16, source=None)
    with pytest.raises(SelectorLoadError, match="scores 3 models but names 2"):
        HeadScorer(bad)
    (folder / "head.safetensors").write_bytes((folder / "head.safetensors").read_bytes()[:40])
    with pytest.raises(SelectorLoadError, match="cannot be loaded"):
        HeadScorer(folder)
    # a crafted ensemble: nested, empty, or naming arrays it does not have
    for params in ({"parts": [{"strategy": "ensemble", "params": {}}]}, {"parts": []},
                   {"parts": [{"strategy": "mlp", "params": {"bags": 3}}]}):
        crafted = save_head(tmp_path / "e", strategy="ensemble", arrays={"part0/W1_0": np.zeros((384, 4))},
                            params=params, labels=["a", "b"], encoder="bundled", max_length=64, head_tokens=16,
                            source=None)
        with pytest.raises(SelectorLoadError, match="does not fit its encoder"):
            HeadScorer(crafted)


def _test_split(targets):
    from training.pipeline.train import Dataset

    targets = np.asarray(targets, dtype=float)
    return Dataset([f"p{i}" for i in range(len(targets))], [0] * len(targets), targets, [{}] * len(targets))


def _onehot(picks, k=3):
    return np.eye(k)[picks]


def test_the_gate_compares_picks_where_both_have_an_outcome():
    from training.pipeline.train import decide_gate

    # The live selector picks model 0 everywhere; the candidate picks model 1, observed (better) on
    # the prompts where someone also asked it. Counting unobserved picks as 0 refused it before.
    T = [[0.4, 0.9, np.nan]] * 12 + [[0.4, np.nan, np.nan]] * 12
    test = _test_split(T)
    gate = decide_gate(_onehot([1] * 24), _onehot([0] * 24), test, ["a", "b", "c"], "routed_quality",
                       against="live", has_live=True)
    assert gate["promoted"] and gate["paired"]["n"] == 12 and gate["new_metric"] == pytest.approx(0.9)
    # A candidate whose picks nobody observed is not promoted on faith.
    gate = decide_gate(_onehot([2] * 24), _onehot([0] * 24), test, ["a", "b", "c"], "routed_quality",
                       against="rules", has_live=False)
    assert not gate["promoted"] and "only 0 of 24" in gate["reason"] and "rule-based selector" in gate["reason"]


def test_the_strict_gate_wants_a_gain_that_is_surely_above_zero():
    from training.pipeline.train import decide_gate

    rng = np.random.default_rng(1)
    live = rng.choice([0.0, 0.4], size=40)
    tiny_gain = np.c_[live, live + rng.choice([0.0, 0.0, 0.0, 0.4, -0.4], size=40), live]
    clear_gain = np.c_[live, np.full(40, 0.4), live]
    for T, promoted in ((tiny_gain, False), (clear_gain, True), (np.c_[live, live, live], False)):
        gate = decide_gate(_onehot([1] * 40), _onehot([0] * 40), _test_split(T), ["a", "b", "c"], "routed_quality",
                           against="live", has_live=True, strict=True)
        assert gate["promoted"] is promoted, gate["reason"]
        assert "one-sided 95% lower bound" in gate["reason"]
    # Not strict (a person's Training run): a tie is enough, as before.
    assert decide_gate(_onehot([1] * 40), _onehot([0] * 40), _test_split(np.c_[live, live, live]), ["a", "b", "c"],
                       "routed_quality", against="live", has_live=True)["promoted"]


def test_the_hash_test_slice_grows_with_the_log_and_no_prompt_changes_sides(tmp_path):
    from training.pipeline.prepare import prepare

    def run(n):
        records = [{"text": f"prompt number {i}", "label": "a" if i % 2 else "b"} for i in range(n)]
        path = tmp_path / f"labels{n}.json"
        path.write_text(json.dumps(records))
        prepare(path, tmp_path / "out", test_slice="hash", test_fraction=0.2)
        return {s: {r["text"] for r in json.loads((tmp_path / "out" / f"dataset_{s}.json").read_text())}
                for s in ("train", "val", "test")}

    small, big = run(100), run(300)
    assert small["test"] < big["test"] and 30 < len(big["test"]) < 90
    assert not (small["train"] | small["val"]) & big["test"]      # trained on once, never tested on later
    assert small["test"] <= big["test"]


@pytest.mark.parametrize("strategy", ["knn", "cluster"])
def test_a_model_is_added_from_its_outcomes_without_changing_the_others(tmp_path, strategy):
    from routing.selectors.heads import HeadScorer
    from training.pipeline import release
    from training.pipeline.add_model import main as add_model
    from training.pipeline.run import run_pipeline

    pool = load_pool(DEFAULT_MODELS_FILE)
    table = tmp_path / "log.json"
    table.write_text(json.dumps(_sparse_table(pool)))
    target, encoder = tmp_path / "selector_model", tmp_path / "le.json"
    run_pipeline("outcomes", str(table), None, 1, 1e-4, 8, tmp_path / "work", selector_dir=target,
                 label_encoder_file=encoder, pool=pool, strategy=strategy)
    probe = ["Write a Python function that parses a date #50", "Write a short poem about autumn #50"]
    before = HeadScorer(target, fast_path="off").predict(probe)
    # The newcomer: excellent at poems, poor at code, seen on 24 prompts.
    rows = [{"question": p, "scores": {"newcomer": 0.95 if "poem" in p else 0.05}} for p in POEMS + CODING[:12]]
    (tmp_path / "new.json").write_text(json.dumps(rows))
    args = ["--outcomes", str(tmp_path / "new.json"), "--model", "newcomer", "--selector-dir", str(target),
            "--label-encoder", str(encoder)]
    assert add_model(args) == 0
    after = HeadScorer(target, fast_path="off")
    assert after.labels[-1] == "newcomer" and json.loads(encoder.read_text())["classes"] == after.labels
    scores = after.predict(probe)
    assert np.allclose(scores[:, :-1], before)                        # the other models are untouched
    # the newcomer's own profile (on a 48-prompt head each cluster holds a prompt or two, so its
    # residuals are shrunk hard towards the other models' mean; kNN reads its few rows as they are)
    assert scores[1, -1] - scores[0, -1] > (0.15 if strategy == "cluster" else 0.3)
    assert scores[1, -1] > (0.6 if strategy == "cluster" else 0.7)
    assert release.prev_dir(target).is_dir()                          # the previous selector is kept
    assert add_model(args) == 2                                       # already there: refused
    classifier = tmp_path / "clf"
    from training.tiny import make_tiny_encoder

    make_tiny_encoder(classifier, labels=pool.ids)
    assert add_model([*args[:4], "--selector-dir", str(classifier), "--label-encoder", str(tmp_path / "x.json")]) == 2


def test_an_added_model_inherits_what_is_hard_for_everyone_where_it_has_no_rows():
    """The anchor: a newcomer evaluated only on easy and medium prompts is expected to fail where
    every trained model fails, not to score its overall mean there (what a cluster rate shrunk to
    the mean said before); where it has rows, its own residuals still count."""
    from routing.selectors.heads import added_cluster_scores, anchor_shift

    rng = np.random.default_rng(0)
    cent = np.eye(3, 8)                                   # three prompt clusters: easy, medium, hard
    def prompts(c, n):
        X = cent[c] + 0.05 * rng.normal(size=(n, 8))
        return X / np.linalg.norm(X, axis=1, keepdims=True)
    others_mean = {0: 0.9, 1: 0.6, 2: 0.1}               # the trained models' mean score per cluster
    aX = np.concatenate([prompts(0, 40), prompts(1, 40)])
    aT = np.r_[np.ones(38), np.zeros(2), np.ones(28), np.zeros(12)]       # 0.95 easy, 0.70 medium
    anchor_a = np.r_[np.full(40, others_mean[0]), np.full(40, others_mean[1])]
    X = np.concatenate([prompts(c, 5) for c in range(3)])
    anchor_x = np.repeat([others_mean[c] for c in range(3)], 5)
    levels = [(cent, None)]
    anchored = added_cluster_scores(levels, 20.0, aX, aT, X, anchor_a, anchor_x).reshape(3, 5).mean(axis=1)
    plain = added_cluster_scores(levels, 20.0, aX, aT, X).reshape(3, 5).mean(axis=1)
    assert anchored[2] < 0.3 < plain[2]                                  # hard for everyone: hard for it
    assert anchored[0] == pytest.approx(0.95, abs=0.05) and anchored[1] == pytest.approx(0.70, abs=0.07)
    # the shift matches the anchor's mean to the newcomer's mean outcome on its own prompts
    shift = anchor_shift(anchor_a, aT)
    assert np.mean(1 / (1 + np.exp(-(np.log(anchor_a / (1 - anchor_a)) + shift)))) == pytest.approx(aT.mean(), abs=1e-6)


def test_the_one_standard_error_rule_ships_a_pair_only_when_it_wins_clearly():
    from training.pipeline.strategies import _standard_errors

    rng = np.random.default_rng(0)
    n = 400
    T = np.c_[rng.random(n) < 0.5, rng.random(n) < 0.5].astype(float)
    noisy = np.c_[T[:, 0] + rng.normal(0, 2.0, n), T[:, 1] + rng.normal(0, 2.0, n)]   # barely informative
    sharp = T + rng.normal(0, 0.1, (n, 2))                                             # reads T exactly
    se = _standard_errors({"a+b": sharp, "a": noisy, "b": sharp + 0.001}, "a+b", T, None, None, True, 0)
    assert se["a+b"] == 0.0 and se["a"] > 0.01 and se["b"] < 1e-9   # b picks as a+b does: no gap to doubt
    costs = np.c_[np.full(n, 1.0), np.full(n, 0.1)]
    se = _standard_errors({"a+b": sharp, "a": noisy}, "a+b", T, costs, np.tile(costs[0], (n, 1)), True, 0)
    assert se["a"] > 0.005


def test_a_model_added_to_an_ensemble_head_is_read_through_its_cluster_part(tmp_path):
    from routing.selectors.heads import HeadScorer, save_head
    from training.pipeline.add_model import add_to_head
    from training.pipeline.strategies import fit_one

    from routing.selectors.heads import shared_encoder
    from routing.selectors.encoder import bundled_encoder_path

    encoder = shared_encoder(bundled_encoder_path(), 64, 16)
    texts = CODING + POEMS
    X = encoder.embed(texts)
    T = np.array([[0.9, 0.2] if "Python" in t else [0.2, 0.9] for t in texts])
    fitted = fit_one("cluster+linear", X, T, 0)
    arrays, params = fitted.export()
    folder = save_head(tmp_path / "ens", strategy="ensemble", arrays=arrays, params=params, labels=["coder", "poet"],
                       encoder="bundled", max_length=64, head_tokens=16, source="outcomes")
    before = HeadScorer(folder, fast_path="off").predict(texts[:2] + texts[-2:])
    newcomer = np.array([0.95 if "poem" in t else 0.05 for t in texts])
    add_to_head(folder, "newcomer", texts, newcomer)
    after = HeadScorer(folder, fast_path="off")
    scores = after.predict(texts[:2] + texts[-2:])
    assert after.labels == ["coder", "poet", "newcomer"] and np.allclose(scores[:, :2], before, atol=1e-6)
    # poems are the newcomer's strength (48 prompts: each cluster's residual is shrunk hard)
    assert scores[2:, 2].mean() - scores[:2, 2].mean() > 0.2
