"""The learned selector: loads a classifier + label encoder, checks them against the pool,
scores all models in one pass, explains its pick, and fails clearly on a mismatch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routing.pool import load_pool
from routing.selectors.classifier import SelectorLoadError, encode, label_encoder_data
from routing.selectors.learned import LearnedSelector
from routing.settings import DEFAULT_MODELS_FILE
from training.tiny import make_tiny_encoder


@pytest.fixture(scope="module")
def pool():
    return load_pool(DEFAULT_MODELS_FILE)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, pool):
    folder = tmp_path_factory.mktemp("sel")
    make_tiny_encoder(folder / "selector_model", labels=pool.ids)
    (folder / "label_encoder.json").write_text(json.dumps(label_encoder_data(pool.ids)))
    return folder


def test_loads_and_picks_a_pool_model_with_a_reason(model_dir, pool):
    sel = LearnedSelector(pool, model_dir / "selector_model", model_dir / "label_encoder.json")
    assert sel.name == "learned"
    choice = sel.select("Write a limerick about a cat", cost_weight=0.0)
    assert choice.selected_model in pool.ids and choice.selector == "learned"
    assert sum(choice.scores.values()) == pytest.approx(1.0, abs=1e-4)     # softmax head
    assert "Learned selector" in choice.reasoning and "runner-up" in choice.reasoning
    assert choice.details["predicted_winner"] == choice.quality_pick
    assert choice.details["winner_probability"] == pytest.approx(choice.scores[choice.quality_pick])
    excluded = sel.select("Write a limerick about a cat", exclude=[choice.selected_model])
    assert excluded.selected_model != choice.selected_model


def test_scores_many_prompts_in_batches_in_input_order(model_dir, pool):
    sel = LearnedSelector(pool, model_dir / "selector_model", model_dir / "label_encoder.json", batch_size=4)
    prompts = [f"prompt number {i} " + "word " * (i % 7 * 40) for i in range(11)]
    batch = sel.score(prompts)
    assert batch.shape == (11, len(pool))
    one_by_one = np.vstack([sel.score([p]) for p in prompts])
    assert np.allclose(batch, one_by_one, atol=1e-5)
    assert sel.score([]).shape == (0, len(pool))


def test_long_prompts_keep_their_end(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir / "selector_model"))
    ids = encode(tok, ["intro " + "filler " * 2000 + "the final question"], max_length=32, head_tokens=4)["input_ids"][0]
    text = tok.decode(ids, skip_special_tokens=True)
    assert ids.shape[0] == 32 and text.startswith("intro") and text.endswith("the final question")


def test_mismatched_label_encoder_names_the_mismatch(model_dir, pool, tmp_path):
    enc = tmp_path / "label_encoder.json"
    enc.write_text(json.dumps(label_encoder_data(list(reversed(pool.ids)))))
    with pytest.raises(SelectorLoadError, match="was trained on"):
        LearnedSelector(pool, model_dir / "selector_model", enc)


def test_model_for_another_pool_is_refused_with_the_model_names(tmp_path, pool):
    labels = pool.ids[:4] + ["gpt-4"]
    make_tiny_encoder(tmp_path / "m", labels=labels)
    (tmp_path / "le.json").write_text(json.dumps(label_encoder_data(labels)))
    with pytest.raises(SelectorLoadError) as err:
        LearnedSelector(pool, tmp_path / "m", tmp_path / "le.json")
    assert pool.ids[4] in str(err.value) and "gpt-4" in str(err.value)


def test_missing_or_corrupt_model_raises_selector_load_error(tmp_path, pool, model_dir):
    with pytest.raises(SelectorLoadError, match="config.json missing"):
        LearnedSelector(pool, tmp_path / "nowhere", model_dir / "label_encoder.json")
    with pytest.raises(SelectorLoadError, match="not found"):
        LearnedSelector(pool, model_dir / "selector_model", tmp_path / "none.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(SelectorLoadError, match="cannot be loaded"):
        LearnedSelector(pool, broken, model_dir / "label_encoder.json")
    bad_enc = tmp_path / "bad.json"
    bad_enc.write_text(json.dumps({"classes": []}))
    with pytest.raises(SelectorLoadError, match="must hold"):
        LearnedSelector(pool, model_dir / "selector_model", bad_enc)


def test_the_int8_fast_path_runs_only_where_its_check_passed(tmp_path, pool):
    import shutil

    from routing.selectors import fast_path
    from routing.selectors.heads import load_scorer
    from training.pipeline.fast_path import write_check

    folder = tmp_path / "selector_model"
    make_tiny_encoder(folder, labels=pool.ids)
    prompts = [f"Write a limerick about cat number {i}" for i in range(30)] + ["Solve 2x + 3 = 7", "Hi"]
    assert load_scorer(folder).precision == "fp32"                      # never checked: fp32
    info = write_check(folder, prompts)
    assert info["n"] == len(prompts) and 0.0 <= info["agreement"] <= 1.0
    assert json.loads((folder / fast_path.FAST_PATH_FILE).read_text())["agreement"] == info["agreement"]
    for agreement, expected in ((0.98, "fp32"), (0.995, fast_path.PRECISION)):
        (folder / fast_path.FAST_PATH_FILE).write_text(json.dumps({**info, "agreement": agreement}))
        scorer = load_scorer(folder)
        assert scorer.precision == expected
        assert scorer.predict(prompts[:3]).shape == (3, len(pool.ids))
    assert load_scorer(folder, fast_path="off").precision == "fp32"    # ROUTER_FAST_PATH=off
    (folder / fast_path.FAST_PATH_FILE).write_text("not json")
    assert load_scorer(folder).precision == "fp32"                      # a broken record is no check
    shutil.rmtree(folder)


def test_the_shipped_selector_runs_int8_only_where_its_check_passed_at_every_cost_weight():
    """The shipped evidence prior picks DeepSeek R1 almost everywhere at cost weight 0, so a check at
    cost weight 0 alone passed trivially (100%) while int8 moved 5.5% of the picks at 0.75 (all
    near-ties: the mean utility lost was 0.0003). The check now runs at every cost weight."""
    from routing.selectors import fast_path
    from routing.settings import DEFAULT_SELECTOR_DIR

    info = fast_path.read(DEFAULT_SELECTOR_DIR)
    weights = {str(w) for w in fast_path.CHECK_COST_WEIGHTS}
    assert info and info["n"] >= 600 and set(info["by_cost_weight"]) == set(info["exact_by_cost_weight"]) == weights
    assert info["agreement"] == min(info["by_cost_weight"].values())
    assert all(info["exact_by_cost_weight"][w] <= info["by_cost_weight"][w] for w in weights)
    assert max(info["mean_regret"].values()) < 0.005
    assert fast_path.enabled(DEFAULT_SELECTOR_DIR) == (info["agreement"] >= fast_path.MIN_AGREEMENT)
    assert not fast_path.enabled(DEFAULT_SELECTOR_DIR, "off")


def test_the_check_counts_a_flipped_near_tie_as_agreeing_and_a_real_change_as_not():
    from routing.selectors import fast_path

    prices = [1.0, 0.1]
    fp32 = lambda texts: np.array([[0.86, 0.40]] * len(texts))           # noqa: E731
    near = lambda texts: np.array([[0.84, 0.40]] * len(texts))           # noqa: E731 - at w=0.5: 0.34 vs 0.35
    far = lambda texts: np.array([[0.30, 0.40]] * len(texts))            # noqa: E731 - a score moved a lot
    texts = ["a", "b", "c"]
    flipped = fast_path.agreement(fp32, near, texts, prices)
    assert flipped["exact_by_cost_weight"]["0.5"] == 0.0                # the pick flipped at w=0.5 ...
    assert flipped["agreement"] == 1.0 and flipped["mean_regret"]["0.5"] == pytest.approx(0.01)  # ... by 0.01
    info = fast_path.agreement(fp32, far, texts, prices)
    assert info["agreement"] == 0.0 and info["exact_by_cost_weight"]["0.0"] == 0.0

