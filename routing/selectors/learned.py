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

Prompts are read with *head + tail* truncation (:func:`encode`): the first few tokens (the
instruction) and the end (the question of a long few-shot prompt).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.errors import UserError
from routing.pool import ModelPool
from routing.selectors.base import Selector

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 256   # tokens the selector reads per prompt
DEFAULT_HEAD_TOKENS = 32   # of which this many from the start, the rest from the end
DEFAULT_BATCH_SIZE = 32


class SelectorLoadError(UserError):
    """The learned selector's files are missing, corrupt, or do not match the pool."""


def head_tail_ids(ids: list[int], budget: int, head: int) -> list[int]:
    """Keep ``head`` ids from the start and the rest of ``budget`` from the end."""
    if len(ids) <= budget:
        return ids
    head = max(0, min(head, budget))
    tail = budget - head
    return ids[:head] + (ids[-tail:] if tail > 0 else [])


def _special_affixes(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special ids a tokenizer puts before and after a single text (e.g. [CLS] ... [SEP]),
    worked out once per tokenizer (two extra tokenizer calls per routing decision otherwise)."""
    cached = getattr(tokenizer, "_router_affixes", None)
    if cached is None:
        cached = _find_affixes(tokenizer)
        try:
            tokenizer._router_affixes = cached
        except AttributeError:
            pass
    return cached


def _find_affixes(tokenizer: Any) -> tuple[list[int], list[int]]:
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain):])
    return [], []


def encode_ids(tokenizer: Any, texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH,
               head_tokens: int = DEFAULT_HEAD_TOKENS) -> list[list[int]]:
    """Token ids with special tokens, head + tail truncated to ``max_length``."""
    prefix, suffix = _special_affixes(tokenizer)
    budget = max(1, max_length - len(prefix) - len(suffix))
    # Cut very long texts by characters first (cheap) - ~8 chars per token is generous.
    cap = max_length * 16
    clipped = [t if len(t) <= 2 * cap else t[:cap] + " " + t[-cap:] for t in texts]
    raw = tokenizer(list(clipped), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [prefix + head_tail_ids(list(ids), budget, head_tokens) + suffix for ids in raw]


def pad(tokenizer: Any, batch: list[list[int]]) -> dict[str, Any]:
    return tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt")


def encode(tokenizer: Any, texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH,
           head_tokens: int = DEFAULT_HEAD_TOKENS) -> dict[str, Any]:
    """Tokenize with head + tail truncation and pad to the longest in the batch (torch tensors)."""
    return pad(tokenizer, encode_ids(tokenizer, texts, max_length, head_tokens))


def read_label_encoder(path: Path) -> list[str]:
    """Class labels in index order from ``label_encoder.json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SelectorLoadError(f"Label encoder {path} not found: run python -m training.pipeline.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SelectorLoadError(f"Label encoder {path} is not valid JSON.") from exc
    classes = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise SelectorLoadError(f"Label encoder {path} must hold \"classes\": [model ids in class order].")
    return classes


def label_encoder_data(classes: Sequence[str]) -> dict[str, Any]:
    """The ``label_encoder.json`` content for ``classes`` (index order)."""
    return {"classes": list(classes), "id2label": {str(i): c for i, c in enumerate(classes)},
            "label2id": {c: i for i, c in enumerate(classes)}}


class ClassifierScorer:
    """A saved sequence classifier that turns prompts into per-class probabilities."""

    def __init__(self, model_dir: str | Path, *, max_length: int | None = None, head_tokens: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, fast_path: str = "auto"):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise SelectorLoadError(f"No selector model in {model_dir} (config.json missing): "
                                    "train one with python -m training.pipeline.")
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - any loading failure means a corrupt model folder
            raise SelectorLoadError(f"The selector model in {model_dir} cannot be loaded: {exc}") from exc
        self.model.eval()
        from routing.selectors import fast_path as fp

        self.precision = "fp32"
        if fast_path == "force" or (fast_path != "off" and fp.enabled(model_dir, fast_path)):
            self.model, self.precision = fp.int8(self.model), fp.PRECISION
        cfg = self.model.config
        self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
        self.multi_label = cfg.problem_type == "multi_label_classification"
        extra = getattr(cfg, "router", None) or {}
        self.max_length = int(max_length or extra.get("max_length", DEFAULT_MAX_LENGTH))
        self.head_tokens = int(head_tokens if head_tokens is not None else extra.get("head_tokens", DEFAULT_HEAD_TOKENS))
        self.source = extra.get("source")
        self.batch_size = batch_size
        self.model_dir = model_dir
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape (len(texts), len(self.labels)); batched, length-sorted."""
        import torch

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if not texts:
            return out
        ids = encode_ids(self.tokenizer, texts, self.max_length, self.head_tokens)
        order = np.argsort([len(x) for x in ids], kind="stable")
        with self._lock, torch.inference_mode():
            for start in range(0, len(ids), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = pad(self.tokenizer, [ids[i] for i in idx])
                logits = self.model(**batch).logits.float()
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                out[idx] = probs.numpy()
        return out


class LearnedSelector(Selector):
    """Scores pool models with the selector in ``model_dir``: a fine-tuned classifier, or an
    embedding head on the bundled encoder (:mod:`routing.selectors.heads`)."""

    name = "learned"

    def __init__(self, pool: ModelPool, model_dir: str | Path, label_encoder_file: str | Path,
                 *, batch_size: int = DEFAULT_BATCH_SIZE, fast_path: str = "auto"):
        super().__init__(pool)
        classes = read_label_encoder(Path(label_encoder_file))
        from routing.selectors.heads import load_scorer  # heads imports this module

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
