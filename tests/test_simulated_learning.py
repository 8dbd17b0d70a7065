"""The learning loop in the simulated world (training/simulate.py), small and fast: the app serves
prompts with shadows and automatic retraining, and no promotion may make routing worse."""

import pytest

from training.simulate import WORLD, is_good, oracle_quality, prompts, quality


def test_the_world_is_what_the_rules_get_wrong():
    test = prompts(40, 7)
    best = {kind: max(table, key=table.get) for kind, table in WORLD.items()}
    assert quality(lambda p: best[next(k for k, q in test if q == p)], test) == pytest.approx(oracle_quality(test))
    draws = [is_good("qwen2.5", "coding", f"p{i}") for i in range(400)]
    assert 0.9 < sum(draws) / len(draws) <= 1.0  # the hidden chance, drawn the same way every time
    assert is_good("qwen2.5", "coding", "x") == is_good("qwen2.5", "coding", "x")


@pytest.mark.slow
def test_serving_with_shadows_and_retraining_never_makes_routing_worse(protocol_server, tmp_path):
    from training.simulate import run_world
    from training.tiny import make_tiny_encoder

    base = make_tiny_encoder(tmp_path / "tiny")
    curve = run_world(protocol_server, tmp_path / "world", stream=24, test=40, every=24,
                      train_args=["--base-model", str(base), "--epochs", "1", "--learning-rate", "1e-3"])
    assert curve.points, "no retraining run happened"
    assert curve.start < curve.oracle
    for point in curve.points:
        assert point["quality"] >= curve.start - 1e-9 or not point["promoted"], point
        assert point["shadow_spend_usd"] <= 100.0
    kept = [p for p in curve.points if not p["promoted"]]
    assert all("rules'" in p["reason"] or "live" in p["reason"] for p in kept)
