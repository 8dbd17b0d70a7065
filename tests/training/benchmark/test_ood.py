"""Out-of-domain routing (training/benchmark/ood.py): APGR of two-model routers trained elsewhere."""

import json

import numpy as np
import pytest

from training.benchmark import ood
def _world(n, rng, shift=0.0):
    """Prompts along one direction: the strong model is needed where X[:, 0] > shift."""
    X = rng.normal(size=(n, 16))
    X[:, 0] = rng.uniform(-1, 1, n) * 3
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    hard = X[:, 0] > shift
    S = np.c_[np.ones(n), (~hard).astype(float)]        # strong always right, weak only on easy prompts
    return X, S


def test_routers_that_learned_the_direction_recover_the_gap_and_random_does_not():
    rng = np.random.default_rng(0)
    X_train, S_train = _world(300, rng)
    X_test, S_test = _world(200, rng)
    ranks = ood.rank_scores(X_train, S_train, X_test)
    assert set(ranks) == {"knn", "cluster", "linear", "mlp", "logistic"}
    result = ood.evaluate_set(ranks, S_test)
    assert result["random"] == pytest.approx(0.5, abs=0.05) and result["n"] == 200
    oracle = ood.evaluate_set({"oracle": S_test[:, 0] - S_test[:, 1]}, S_test)["apgr"]["oracle"]
    assert oracle == pytest.approx(0.75, abs=0.03)       # half the prompts need the strong model
    for name in ("knn", "linear", "logistic"):
        assert result["apgr"][name] > 0.95 * oracle, (name, result["apgr"])
    # a router ranking backwards is below random: APGR is not a symmetric score
    assert ood.evaluate_set({"backwards": -ranks["linear"]}, S_test)["apgr"]["backwards"] < 0.3


def test_nothing_to_learn_and_missing_data_are_clear_errors(tmp_path, capsys):
    from routing.errors import UserError

    with pytest.raises(UserError, match="never"):
        ood.logistic_router(np.eye(4), np.ones((4, 2)))          # the strong model never strictly better
    assert ood.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.json")]) == 2
    assert "shared routing data" in capsys.readouterr().err
    table = tmp_path / "t.csv"
    table.write_text("prompt,a,b\nhello,1,0\nworld,0,1\n")
    with pytest.raises(UserError, match="no column for gpt-4"):
        ood.pair_set([table], ("gpt-4", "b"), "toy")
    assert ood.pair_set([table], ("a", "b"), "toy").scores.tolist() == [[1, 0], [0, 1]]


@pytest.mark.slow
def test_the_report_on_the_shared_data(tmp_path):
    if not (ood.DEFAULT_DATA / "routerbench").is_dir():
        pytest.skip("../shared/data/outcomes not present")
    out = tmp_path / "ood.json"
    assert ood.main(["--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads(out.read_text())
    assert set(report["summary"]["sets"]) == {"arena_bench", "arc_challenge_held_out", "mbpp_held_out",
                                              "winograde_held_out"}
    assert all(0 <= v <= 1.2 for row in report["summary"]["apgr"].values() for v in row.values())
