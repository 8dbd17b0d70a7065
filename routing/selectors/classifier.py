"""The fine-tuned classifier's scorer, and what every learned selector reads prompts with.

:class:`ClassifierScorer` scores prompts with the fine-tuned sequence classifier in a folder
(``selector_model/``); the head + tail truncation (:func:`encode_ids`), the label encoder
file and :class:`SelectorLoadError` are shared with the embedding heads (:mod:`routing.selectors.heads`)
and the sentence encoder (:mod:`routing.selectors.encoder`). Imports nothing else of
``routing.selectors`` but the int8 fast path, so the three cannot form a loop.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.errors import UserError


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
        # int8 scales activations per forward pass: one prompt per pass, so a batch decides as a
        # single request does (see routing.selectors.encoder.SentenceEncoder).
        self.batch_size = 1 if self.precision == fp.PRECISION else batch_size
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
