"""The pipeline's train step, end to end, as a benchmark router.

Fine-tunes the encoder with the same code as ``python -m training.pipeline.train`` (:func:`training.pipeline.train.fit`,
outcome objective: one sigmoid per model, trained on the per-model scores, early stopping on the
prepare step's validation split), then scores any prompts: per-model success probabilities in
the order of ``models``. Used by :mod:`training.benchmark.run`; nothing here touches the shipped
``selector_model/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.selectors.classifier import encode_ids
from training.pipeline.train import Progress, TrainConfig, _predict, fit, load_split


@dataclass
class FineTuned:
    model: Any
    tokenizer: Any
    config: TrainConfig
    models: list[str]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    val_texts: list[str] = field(default_factory=list)

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """(n, K) success probabilities, columns in ``models`` order."""
        if not len(prompts):
            return np.zeros((0, len(self.models)))
        ids = encode_ids(self.tokenizer, list(prompts), self.config.max_length, self.config.head_tokens)
        return _predict(self.model, self.tokenizer, ids, multi=True)

    def summary(self) -> dict[str, Any]:
        return {"base_model": self.config.base_model, "epochs": self.config.epochs,
                "learning_rate": self.config.learning_rate, "batch_size": self.config.batch_size,
                "max_length": self.config.max_length, "head_tokens": self.config.head_tokens,
                "seed": self.config.seed, "train_seconds": round(self.seconds, 1),
                "steps": self.history[-1]["step"] if self.history else 0, "loss_history": self.history}


def finetune(data_dir: str | Path, models: Sequence[str], config: TrainConfig,
             progress: Progress | None = None) -> FineTuned:
    """Fine-tune on ``data_dir``'s ``dataset_train.json`` / ``dataset_val.json`` (outcome records
    with per-model ``scores``); the head has one output per model in ``models``."""
    data_dir = Path(data_dir)
    labels = list(models)
    train = load_split(data_dir / "dataset_train.json", labels)
    val = load_split(data_dir / "dataset_val.json", labels)
    t0 = time.time()
    model, tokenizer, history = fit(train, val, labels, config, "multi_label", progress)
    return FineTuned(model, tokenizer, config, labels, history, time.time() - t0, val.texts)
