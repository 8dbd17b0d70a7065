"""Prompts unlike anything the prior learned from are flagged (issue 30, item 4): the decision says
so, /query and /v1/route carry it, the Status counts it; the threshold comes from the training
data's own similarities and survives the int8 file it ships in."""

import numpy as np
import pytest

from routing.selectors.novelty import Novelty

FAMILIAR = "Write a Python function that returns the n-th Fibonacci number"


def unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_familiarity_is_the_nearest_exemplar_or_seen_prompt_and_survives_the_file(tmp_path):
    (tmp_path / "config.json").write_text('{"router": {}}')
    rng = np.random.default_rng(0)
    exemplars = unit(rng.normal(size=(50, 16)))
    novelty = Novelty(exemplars, 0.5, {"exemplars": 50})
    probe = unit([exemplars[3] + 0.05 * rng.normal(size=16), rng.normal(size=16)])
    fam = novelty.familiarity(probe)
    assert fam[0] > 0.9 and fam[0] == pytest.approx((probe[0] @ exemplars.T).max())
    assert novelty.familiarity(probe[1:], seen=probe[1:])[0] == pytest.approx(1.0)   # seen since: familiar
    novelty.save(tmp_path)
    loaded = Novelty.load(tmp_path)
    assert loaded.threshold == pytest.approx(0.5) and loaded.info["exemplars"] == 50
    assert np.allclose(loaded.familiarity(probe), fam, atol=0.01)                     # int8 on disk
    assert Novelty.load(tmp_path / "missing") is None


def test_the_threshold_flags_the_stated_share_of_held_out_training_prompts():
    from training.prior.fit import fit_novelty

    rng = np.random.default_rng(1)
    centres = unit(rng.normal(size=(8, 64)))
    X = unit(centres[rng.integers(0, 8, 2000)] + 0.08 * rng.normal(size=(2000, 64)))
    novelty = fit_novelty(X, n_exemplars=300, flag_share=0.05)
    assert novelty.info["held_out"] == 200 and len(novelty.exemplars) == 300
    assert 0.02 <= novelty.info["fitting_prompts_flagged"] <= 0.10       # about the 5% asked for
    far = unit(rng.normal(size=(200, 64)))                               # nothing like the clusters
    assert novelty.unlike(far).mean() > 0.8


@pytest.fixture(scope="module")
def shipped():
    pytest.importorskip("torch")
    from routing.pool import load_pool
    from routing.selectors import load_selector
    from routing.settings import get_settings

    settings = get_settings()
    selector, _ = load_selector(settings, load_pool(settings.models_file))
    if getattr(selector, "novelty", None) is None:
        pytest.fail("the shipped selector_model/ has no novelty.safetensors")
    return selector


def test_the_shipped_prior_flags_a_prompt_unlike_its_training_data(shipped):
    familiar = shipped.select(FAMILIAR)
    assert familiar.details["novelty"]["unlike_training_data"] is False
    assert "Unlike the prompts" not in familiar.reasoning
    odd = shipped.select("!!!!????....")
    novelty = odd.details["novelty"]
    assert novelty["unlike_training_data"] is True and novelty["familiarity"] < novelty["threshold"]
    assert "Unlike the prompts the prior learned from" in odd.reasoning
    assert "routed on the public ratings and the price" in odd.reasoning


def test_query_and_route_carry_it_and_status_counts_it(make_service, protocol_server):
    pytest.importorskip("torch")
    from routing.settings import DEFAULT_SELECTOR_DIR

    service = make_service(selector="auto", selector_dir=DEFAULT_SELECTOR_DIR)
    assert service.selector.name == "prior"
    result = service.query("!!!!????....")
    assert result["evidence"]["novelty"]["unlike_training_data"] is True
    service.query(FAMILIAR)
    counts = service.status()["unlike_training_data"]
    assert counts["decisions"] >= 2 and counts["unlike_training_data"] >= 1
