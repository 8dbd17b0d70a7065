"""Train step and pipeline on a tiny corpus with a tiny random encoder: model files, label
encoder, transformers.pipeline compatibility, the release gate, crash safety."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from routing.pool import load_pool
from routing.settings import DEFAULT_MODELS_FILE
from training.pipeline import release
from training.pipeline.label import label, write_labels
from training.pipeline.run import run_pipeline
from training.pipeline.prepare import prepare
from training.tiny import make_tiny_encoder
from training.pipeline.train import TrainConfig, train

PROMPTS = [
    "Write a Python function that reverses a linked list.", "Solve for x: 3x + 5 = 20",
    "Write a haiku about the autumn rain.", "Summarize this article in three key points: the council met.",
    "Translate 'good morning' into Spanish.", "hello! how are you today?",
    "What is the capital of Australia?", "Extract all the email addresses from: bob@x.com, amy@y.org",
    "Describe this painting of a stormy sea for alt text.", "A riddle: think step by step, who is lying?",
]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return str(make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc"))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"{p} #{i}"}) for i in range(4) for p in PROMPTS))
    return path


@pytest.fixture
def data_dir(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("ROUTER_SELECTOR_DIR", str(tmp_path / "selector_model"))
    pool = load_pool(DEFAULT_MODELS_FILE)
    labels = write_labels(label("rules", [corpus], pool), tmp_path / "work" / "labeled_prompts.json")
    prepare(labels, tmp_path / "work", seed=0)
    return tmp_path / "work"


def _cfg(base, **kw):
    return TrainConfig(base_model=base, epochs=1, batch_size=8, max_steps=2, max_length=64, **kw)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.slow
def test_train_writes_a_loadable_model_and_gate_refuses_a_worse_one(tmp_path, data_dir, tiny_base, monkeypatch):
    target, encoder = tmp_path / "selector_model", tmp_path / "label_encoder.json"
    steps = []
    first = train(data_dir, config=_cfg(tiny_base), selector_dir=target, label_encoder_file=encoder,
                  progress=lambda f, m: steps.append(f))
    assert first.gate["promoted"] and first.gate["reason"] == "no live model yet"
    assert steps and steps[-1] == 1.0
    files = {p.name for p in target.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "label_encoder.json", "tokenizer.json"} <= files
    pool = load_pool(DEFAULT_MODELS_FILE)
    assert json.loads(encoder.read_text())["classes"] == pool.ids
    config = json.loads((target / "config.json").read_text())
    assert config["id2label"] == {str(i): m for i, m in enumerate(pool.ids)}
    assert config.get("dtype", config.get("torch_dtype")) == "float16"
    card = (target / "README.md").read_text()
    assert "rule-based selector" in card and "macro-F1" in card and "Confusion matrix" in card
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix"):
        assert key in first.candidate_metrics

    from transformers import pipeline
    out = pipeline("text-classification", model=str(target))("Write a poem about the sea")
    assert out[0]["label"] in pool.ids

    # A candidate the gate refuses is not promoted, and the live model stays byte for byte.
    before = _digest(target)
    import training.pipeline.train as train_module

    real_gate, seen = train_module.decide_gate, {}

    def refusing(new_probs, old_probs, *args, **kwargs):
        seen["old"] = old_probs
        gate = real_gate(new_probs, old_probs, *args, **kwargs)
        return {**gate, "promoted": False, "reason": "macro_f1 -1.0000 < live 0.5: kept the live model"}

    monkeypatch.setattr("training.pipeline.train.decide_gate", refusing)
    second = train(data_dir, config=_cfg(tiny_base, seed=1), selector_dir=target, label_encoder_file=encoder)
    assert not second.gate["promoted"] and "kept the live model" in second.gate["reason"]
    assert seen["old"] is not None and second.gate["old_metric"] is not None   # the live model was scored
    assert _digest(target) == before
    assert not release.prev_dir(target).exists()


@pytest.mark.slow
def test_crash_mid_training_leaves_the_live_model_intact(tmp_path, data_dir, tiny_base):
    target, encoder = tmp_path / "selector_model", tmp_path / "label_encoder.json"
    train(data_dir, config=_cfg(tiny_base), selector_dir=target, label_encoder_file=encoder)
    before, enc_before = _digest(target), encoder.read_text()
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(data_dir, config=_cfg(tiny_base, seed=2), selector_dir=target, label_encoder_file=encoder,
              fail_after_partial_write=True)
    assert release.partial_dir(target).exists()            # the half-written candidate...
    assert _digest(target) == before and encoder.read_text() == enc_before   # ...never touched the live one
    from routing.selectors.learned import LearnedSelector
    LearnedSelector(load_pool(DEFAULT_MODELS_FILE), target, encoder)       # still loads

    # The next run cleans up and, when at least as good, promotes and keeps the previous model.
    third = train(data_dir, config=_cfg(tiny_base), selector_dir=target, label_encoder_file=encoder)
    assert any("unfinished candidate" in n for n in third.notes)
    assert not release.partial_dir(target).exists()
    assert third.gate["promoted"]                       # same seed and data: equal metric promotes
    assert release.prev_dir(target).is_dir() and _digest(release.prev_dir(target)) == before


def test_swap_is_atomic_and_recovers_a_missing_live_folder(tmp_path):
    target = tmp_path / "selector_model"
    target.mkdir()
    (target / "v").write_text("old")
    release.partial_dir(target).mkdir()
    (release.partial_dir(target) / "v").write_text("new")
    release.finish_candidate(target)
    (release.candidate_dir(target) / "label_encoder.json").write_text(json.dumps({"classes": ["a", "b"]}))
    release.promote(target, tmp_path / "label_encoder.json")
    assert (target / "v").read_text() == "new"
    assert (release.prev_dir(target) / "v").read_text() == "old"
    assert json.loads((tmp_path / "label_encoder.json").read_text())["classes"] == ["a", "b"]
    # Simulate a crash between two renames on a system without an atomic exchange.
    target.rename(tmp_path / "gone")
    notes = release.clean_stale(target)
    assert (target / "v").read_text() == "old" and any("restored" in n for n in notes)


@pytest.mark.slow
def test_run_pipeline_returns_what_the_training_tab_shows(tmp_path, corpus, tiny_base):
    messages = []
    result = run_pipeline("rules", str(corpus), tiny_base, 1, 1e-3, 8, tmp_path / "work",
                          lambda f, m: messages.append((f, m)), selector_dir=tmp_path / "sm",
                          label_encoder_file=tmp_path / "le.json", max_steps=2)
    assert set(result) >= {"metrics", "confusion_matrix", "loss_history", "gate"}
    assert set(result["gate"]) >= {"promoted", "reason", "old_metric", "new_metric"}
    assert result["confusion_matrix"]["labels"] == load_pool(DEFAULT_MODELS_FILE).ids
    assert all({"step", "train_loss", "val_loss"} <= set(h) for h in result["loss_history"])
    assert [f for f, _ in messages] == sorted(f for f, _ in messages)
    for name in ("labeled_prompts.json", "dataset_train.json", "dataset_val.json", "dataset_test.json"):
        assert (tmp_path / "work" / name).is_file()


def test_run_pipeline_rejects_bad_settings(tmp_path):
    from routing.errors import UserError

    with pytest.raises(UserError):
        run_pipeline("rules", None, None, 0, 1e-3, 8, tmp_path)
    with pytest.raises(UserError, match="Unknown label source"):
        run_pipeline("magic", None, None, 1, 1e-3, 8, tmp_path)


@pytest.mark.slow
def test_outcome_tables_train_a_per_model_success_head(tmp_path, tiny_base):
    """Outcomes -> multi-label (sigmoid per model) model; the gate compares routed quality."""
    pool = load_pool(DEFAULT_MODELS_FILE)
    rows = [{"question": f"{p} #{i}", "scores": {"qwen2.5": float(i % 2), "llama-3.3": 1.0 - (i % 3 == 0),
                                                "gpt-x": 1.0}}
            for i in range(4) for p in PROMPTS]
    table = tmp_path / "outcomes.json"
    table.write_text(json.dumps(rows))
    result = run_pipeline("outcomes", str(table), tiny_base, 1, 1e-3, 8, tmp_path / "work",
                          selector_dir=tmp_path / "sm", label_encoder_file=tmp_path / "le.json", max_steps=2)
    assert result["objective"] == "multi_label"
    assert result["gate"]["metric"] == "routed_quality" and result["gate"]["promoted"]
    assert any("gpt-x" in n for n in result["notes"])               # unknown model reported
    config = json.loads((tmp_path / "sm" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    from routing.selectors.learned import LearnedSelector
    sel = LearnedSelector(pool, tmp_path / "sm", tmp_path / "le.json")
    scores = sel.score(["Solve for x: 2x = 4", "hello"])
    assert scores.shape == (2, len(pool)) and ((scores > 0) & (scores < 1)).all()
    assert "answers well" in sel.select("hello").reasoning


def test_training_batches_cover_every_row_once_and_group_similar_lengths():
    import numpy as np

    from training.pipeline.train import _batches

    rng = np.random.default_rng(0)
    lengths = list(rng.integers(5, 256, 1000))
    batches = _batches(lengths, 16, np.random.default_rng(1), pool_batches=50)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))          # every row once per epoch
    assert all(1 <= len(b) <= 16 for b in batches)
    # Padding to the batch maximum wastes far less than with plain shuffled batches.
    L = np.asarray(lengths)
    waste = sum(L[b].max() * len(b) - L[b].sum() for b in batches)
    plain = np.random.default_rng(1).permutation(1000)
    plain_waste = sum(L[plain[i:i + 16]].max() * 16 - L[plain[i:i + 16]].sum() for i in range(0, 1000, 16))
    assert waste < 0.2 * plain_waste
    # ... and the order still changes from epoch to epoch.
    again = _batches(lengths, 16, np.random.default_rng(2), pool_batches=50)
    assert [b.tolist() for b in again] != [b.tolist() for b in batches]
