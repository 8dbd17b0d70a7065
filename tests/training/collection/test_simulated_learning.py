"""The learning loop in the simulated world (training/collection/simulate.py), small and fast: the app serves
prompts with shadows and automatic retraining, and no promotion may make routing worse."""

import pytest

from training.collection.simulate import WORLD, is_good, oracle_quality, prompts, quality


def test_the_world_is_what_the_rules_get_wrong():
    test = prompts(40, 7)
    best = {kind: max(table, key=table.get) for kind, table in WORLD.items()}
    assert quality(lambda p: best[next(k for k, q in test if q == p)], test) == pytest.approx(oracle_quality(test))
    draws = [is_good("qwen2.5", "coding", f"p{i}") for i in range(400)]
    assert 0.9 < sum(draws) / len(draws) <= 1.0  # the hidden chance, drawn the same way every time
    assert is_good("qwen2.5", "coding", "x") == is_good("qwen2.5", "coding", "x")


@pytest.mark.slow
def test_serving_with_shadows_and_retraining_learns_and_never_makes_routing_worse(protocol_server, tmp_path):
    """The fast version of benchmarks/learning_curve.py: half the logged prompts held out (so the
    gate has enough complete rows after 120 prompts), a retraining run every 60 prompts."""
    from training.collection.simulate import run_world

    curve = run_world(protocol_server, tmp_path / "world", stream=120, test=80, every=120,
                      train_args=[], settings_overrides={"holdout_share": 0.5})
    assert curve.points, "no retraining run happened"
    assert curve.start < curve.oracle
    promoted = [p for p in curve.points if p["promoted"]]
    assert promoted, curve.points                                    # normal use made the router learn
    assert promoted[-1]["quality"] > curve.start + 0.05, curve.points
    best = curve.start
    for point in curve.points:                                       # no promotion made it worse
        if point["promoted"]:
            assert point["quality"] >= best - 1e-9, point
            best = point["quality"]
        else:
            assert "kept the" in point["reason"] and point["quality"] == pytest.approx(best)
        assert point["shadow_spend_usd"] <= 100.0
