"""The learned selector: a fine-tuned transformer that scores every pool model in one pass.

``selector_model/`` holds a Hugging Face sequence classifier (``save_pretrained``, safetensors)
whose ``id2label`` are pool model ids, and ``label_encoder.json`` (repository root) maps class
index <-> model id. Two heads are understood:

* ``single_label_classification`` (softmax): "which model is best" - what rule labels train;
* ``multi_label_classification`` (sigmoid): "will this model succeed" per model - what outcome
  tables train (calibrated per-model success probabilities).

Loading checks that the encoder, the model and the pool name the same models and raises
:class:`SelectorLoadError` (a :class:`UserError`) naming any mismatch; the registry then falls
back to the rules with a visible warning.

Prompts are read with *head + tail* truncation (:func:`routing.selectors.classifier.encode`): the first few tokens (the
instruction) and the end (the question of a long few-shot prompt).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.pool import ModelPool
from routing.selectors.base import Selector
from routing.selectors.heads import load_scorer
from routing.selectors.classifier import DEFAULT_BATCH_SIZE, SelectorLoadError, read_label_encoder


class LearnedSelector(Selector):
    """Scores pool models with the selector in ``model_dir``: a fine-tuned classifier, or an
    embedding head on the bundled encoder (:mod:`routing.selectors.heads`)."""

    name = "learned"

    def __init__(self, pool: ModelPool, model_dir: str | Path, label_encoder_file: str | Path,
                 *, batch_size: int = DEFAULT_BATCH_SIZE, fast_path: str = "auto"):
        super().__init__(pool)
        classes = read_label_encoder(Path(label_encoder_file))

        self.scorer = load_scorer(model_dir, fast_path=fast_path, batch_size=batch_size)
        if classes != self.scorer.labels:
            raise SelectorLoadError(
                f"{label_encoder_file} lists {classes} but the model in {model_dir} was trained on "
                f"{self.scorer.labels}: retrain, or restore the matching label_encoder.json.")
        missing = [m for m in pool.ids if m not in classes]
        extra = [c for c in classes if c not in pool.ids]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"pool models it does not know: {', '.join(missing)}")
            if extra:
                parts.append(f"models it was trained on that are not in the pool: {', '.join(extra)}")
            raise SelectorLoadError(
                f"The learned selector in {model_dir} does not match the pool ({'; '.join(parts)}). "
                "Retrain it on this pool (python -m training.pipeline) or use the rules selector.")
        self._columns = [classes.index(m) for m in pool.ids]
        self.model_dir = Path(model_dir)

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        probs = self.scorer.predict(prompts)
        return probs[:, self._columns] if len(probs) else np.zeros((0, len(self.pool)))

    def explain(self, prompt: str, row: np.ndarray) -> tuple[str, dict[str, Any]]:
        ids = self.pool.ids
        order = np.argsort(-row, kind="stable")
        winner = ids[order[0]]
        runner = ids[order[1]] if len(order) > 1 else None
        source = self.scorer.source
        describe = getattr(self.scorer, "describe", None)
        if describe is not None:
            why = f"Learned selector ({describe()}): each score is the expected score of the model's answer"
        elif self.scorer.multi_label:
            why = "Learned selector: each score is the predicted probability that the model answers well"
        else:
            why = "Learned selector: scores are the predicted probability of being the best pick"
        if source == "rules":
            why += " (trained to imitate the rules on the built-in corpus)"
        elif source:
            why += f" (trained on {source} data)"
        why += "."
        details = {"probabilities": {m: float(p) for m, p in zip(ids, row)}, "predicted_winner": winner,
                   "winner_probability": float(row[order[0]]), "runner_up": runner,
                   "runner_up_probability": float(row[order[1]]) if runner else None,
                   "head": getattr(self.scorer, "strategy", None)
                           or ("multi_label" if self.scorer.multi_label else "single_label"),
                   "model_dir": str(self.model_dir), "precision": getattr(self.scorer, "precision", "fp32")}
        return why, details
