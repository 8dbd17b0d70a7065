"""Embedding-head selectors: a small head on the bundled sentence encoder's embeddings.

A head folder (what ``python -m training.pipeline.train --strategy knn|cluster|linear|mlp|auto`` writes, and what
``selector_model/`` may hold instead of a fine-tuned classifier) is::

    config.json          {"model_type": "router-embedding-head", "router": {"strategy", "encoder",
                          "labels", "max_length", "head_tokens", "source", "params"}}
    head.safetensors     the head's arrays (float16 where precision allows)
    label_encoder.json   model ids in column order
    encoder/             only when trained on another encoder than the bundled MiniLM
                         (``save_pretrained``); ``"encoder": "bundled"`` ships none

Strategies (each a function of the embedding ``X``; scores are per-model success estimates):

* ``knn``     the mean observed score of the k most similar logged prompts, per model, counting
              only prompts where that model was observed (a sparse log is read as it is), a
              model never observed near the prompt getting its overall mean;
* ``cluster`` soft k-means cluster rates at several resolutions (Avengers-Pro style), each rate
              shrunk towards the model's overall mean;
* ``linear``  a ridge probe per model, clipped to [0, 1];
* ``mlp``     bagged one-hidden-layer networks with one sigmoid per model (the benchmark's MLP
              success head), averaged over the bags;
* ``ensemble`` the mean of two or more of the above (``params["parts"]``, each part's arrays
              under ``part{i}/``): what ``--strategy auto`` saves when an average wins.

numpy only at serving time, apart from the encoder's forward pass.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.selectors.classifier import DEFAULT_BATCH_SIZE, ClassifierScorer, SelectorLoadError
from routing.selectors.encoder import shared_encoder

MODEL_TYPE = "router-embedding-head"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
#: What a head folder may hold (``ensemble`` is an average of the others, made by ``auto``).
HEAD_STRATEGIES = ("knn", "cluster", "linear", "mlp", "ensemble")


# ---------------------------------------------------------------- the strategies' arithmetic
def nearest(train_X: np.ndarray, X: np.ndarray, k: int, exclude_self: bool = False,
            chunk: int = 2048) -> np.ndarray:
    """Indices of the ``k`` most similar training rows for each row of ``X``, most similar first
    (cosine on normalised embeddings), in chunks so a large table never holds the whole
    similarity matrix."""
    k = max(1, min(k, train_X.shape[0] - (1 if exclude_self else 0)))
    out = np.zeros((len(X), k), dtype=np.int64)
    for s in range(0, len(X), chunk):
        sims = X[s:s + chunk] @ train_X.T
        if exclude_self:
            rows = np.arange(sims.shape[0])
            sims[rows, rows + s] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def mean_outcome(train_T: np.ndarray, nn: np.ndarray) -> np.ndarray:
    """Per model, the mean observed score over the neighbours ``nn`` (its overall mean where none
    of them observed it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmean(train_T[nn], axis=1)       # (n, k, K) -> (n, K)
        fill = np.nanmean(train_T, axis=0)
    fill = np.where(np.isnan(fill), 0.5, fill)
    return np.where(np.isnan(out), fill[None, :], out)


#: On a sparse log, neighbours are weighted by softmax(cosine x this): a model seen only a few
#: times near the prompt is judged by those few, not by the k-th nearest from another kind of prompt.
SPARSE_TEMPERATURE = 5.0


def knn_scores(train_X: np.ndarray, train_T: np.ndarray, X: np.ndarray, k: int,
               exclude_self: bool = False) -> np.ndarray:
    """The plain kNN router: the mean score of the ``k`` most similar training prompts (one
    neighbour search for all models; a model none of them observed gets its overall mean)."""
    return mean_outcome(train_T, nearest(train_X, X, k, exclude_self))


def weighted_neighbour_mean(rows_X: np.ndarray, values: np.ndarray, X: np.ndarray, k: int,
                            mask: np.ndarray | None = None) -> np.ndarray:
    """For each row of ``X``: the softmax(cosine x :data:`SPARSE_TEMPERATURE`)-weighted mean of
    ``values`` over its ``k`` most similar rows of ``rows_X`` (``mask``: pairs to leave out)."""
    sims = np.asarray(X, np.float64) @ np.asarray(rows_X, np.float64).T          # (n, rows)
    if mask is not None:
        sims = np.where(mask, -np.inf, sims)
    kk = max(1, min(k, len(rows_X)))
    top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    top_sims = np.take_along_axis(sims, top, axis=1)
    w = np.exp(SPARSE_TEMPERATURE * (top_sims - top_sims.max(axis=1, keepdims=True)))
    w = np.where(np.isfinite(top_sims), w, 0.0)
    vals = np.asarray(values, np.float64)[top]
    total = w.sum(axis=1)
    return np.where(total > 0, (w * vals).sum(axis=1) / np.maximum(total, 1e-12), float(np.mean(values)))


def per_model_knn_scores(train_X: np.ndarray, train_T: np.ndarray, X: np.ndarray, k: int,
                         exclude_self: bool = False) -> np.ndarray:
    """Per model, the similarity-weighted mean score of the ``k`` most similar training prompts
    *where that model was observed*. On a complete table that is :func:`knn_scores`; on a sparse
    log (each prompt answered by one or two models) each model gets its own search, weighted by
    softmax(cosine x :data:`SPARSE_TEMPERATURE`), so a model is judged by its own answers near
    the prompt, not by a blank filled with its overall mean."""
    if not np.isnan(train_T).any():
        return knn_scores(train_X, train_T, X, k, exclude_self)
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros((len(X), train_T.shape[1]))
    with np.errstate(all="ignore"):
        overall = np.nanmean(train_T)
    for j in range(train_T.shape[1]):
        rows = np.flatnonzero(~np.isnan(train_T[:, j]))
        if not len(rows):
            out[:, j] = 0.5 if np.isnan(overall) else overall
            continue
        mask = (rows[None, :] == np.arange(len(X))[:, None]) if exclude_self else None  # leave own row out
        out[:, j] = weighted_neighbour_mean(train_X[rows], train_T[rows, j], X, k, mask)
    return out


def cluster_scores(levels: Sequence[tuple[np.ndarray, np.ndarray]], temperature: float, X: np.ndarray) -> np.ndarray:
    """Softmax(cosine x temperature)-weighted cluster rates, averaged over the resolutions."""
    out = []
    for cent, rates in levels:
        sims = np.asarray(X) @ cent.T * temperature
        w = np.exp(sims - sims.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        out.append(w @ rates)
    return np.mean(out, axis=0)


def linear_scores(weights: np.ndarray, bias: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(X) @ weights + bias, 0.0, 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))   # exact GELU, as torch.nn.GELU()


def mlp_scores(arrays: dict[str, np.ndarray], bags: int, X: np.ndarray) -> np.ndarray:
    """The bagged MLP head: per bag sigmoid(GELU(X W1 + b1) W2 + b2), averaged over the bags."""
    X = np.asarray(X, np.float32)
    out = np.zeros((len(X), arrays["W2_0"].shape[1]), np.float64)
    for b in range(bags):
        hidden = _gelu(X @ arrays[f"W1_{b}"].astype(np.float32) + arrays[f"b1_{b}"].astype(np.float32))
        logits = hidden @ arrays[f"W2_{b}"].astype(np.float32) + arrays[f"b2_{b}"].astype(np.float32)
        out += 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    return out / max(1, bags)


def part_arrays(arrays: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """The arrays of an ensemble's ``i``-th part (stored under ``part{i}/``)."""
    prefix = f"part{i}/"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


#: Neighbours an added model's score is read from (of its own evaluated prompts).
ADDED_K = 10


def added_scores(added_X: np.ndarray, added_T: np.ndarray, X: np.ndarray, k: int = ADDED_K) -> np.ndarray:
    """An added model's score per prompt: the similarity-weighted mean of its outcomes on the ``k``
    most similar of the prompts it was evaluated on (its own profile; the other models untouched)."""
    return weighted_neighbour_mean(added_X, added_T, X, k)


#: Pseudo-prompts pulling an added model's residual in a cluster towards zero (towards its anchor).
ADDED_PRIOR = 5.0


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def anchor_shift(anchor_at_added: np.ndarray, added_T: np.ndarray) -> float:
    """The logit shift that moves the anchor's mean on the added model's prompts to its mean
    outcome there (bisection; the anchor is monotone in the shift)."""
    base, target = _logit(anchor_at_added), float(np.mean(added_T))
    lo, hi = -8.0, 8.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(np.mean(1 / (1 + np.exp(-(base + mid))))) < target else (lo, mid)
    return (lo + hi) / 2


def _soft(cent: np.ndarray, temperature: float, X: np.ndarray) -> np.ndarray:
    w = np.exp(temperature * (np.asarray(X, np.float64) @ np.asarray(cent, np.float64).T - 1.0))
    return w / w.sum(axis=1, keepdims=True)


def added_cluster_scores(levels: Sequence[tuple[np.ndarray, Any]], temperature: float, added_X: np.ndarray,
                         added_T: np.ndarray, X: np.ndarray, anchor_at_added: np.ndarray | None = None,
                         anchor_at_X: np.ndarray | None = None, prior_strength: float = ADDED_PRIOR) -> np.ndarray:
    """An added model's score on a cluster head (UniRoute/IRT-style: a model is its errors on
    representative clusters, read against what the pool already knows).

    The anchor is the head's existing models' mean score on a prompt (``anchor_at_added`` on the
    newcomer's evaluated prompts, ``anchor_at_X`` on the prompts to score): it says which prompts
    are hard for everyone. Shifted in logit space to the newcomer's level
    (:func:`anchor_shift`), it is the newcomer's prior; its residuals (outcome minus prior) are
    averaged in each of the head's prompt clusters, shrunk towards zero by ``prior_strength``
    pseudo-prompts, and read for a new prompt as the other models' rates are. Without an anchor
    (a constant) this is the newcomer's cluster rates shrunk towards its overall mean. On
    RouterBench and LLMRouter the anchor roughly halved what adding a model from 100 rows lost
    against training with all its rows (``training.benchmark.run --leave-one-model-out``)."""
    added_T = np.asarray(added_T, np.float64)
    if anchor_at_added is None or anchor_at_X is None:
        prior_a = np.full(len(added_T), float(added_T.mean()))
        prior_x = np.full(len(X), float(added_T.mean()))
    else:
        shift = anchor_shift(anchor_at_added, added_T)
        prior_a = 1 / (1 + np.exp(-(_logit(anchor_at_added) + shift)))
        prior_x = 1 / (1 + np.exp(-(_logit(anchor_at_X) + shift)))
    residual = []
    for cent, _ in levels:
        w = _soft(cent, temperature, added_X)
        rates = (w.T @ (added_T - prior_a)) / (w.sum(axis=0) + prior_strength)
        residual.append(_soft(cent, temperature, X) @ rates)
    return np.clip(prior_x + np.mean(residual, axis=0), 0.0, 1.0)


def head_scores(strategy: str, arrays: dict[str, np.ndarray], params: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """A saved head's scores for embeddings ``X`` (n, hidden) -> (n, models)."""
    X = np.asarray(X, dtype=np.float32)
    if strategy == "knn":
        score = per_model_knn_scores if params.get("per_model") else knn_scores
        return score(arrays["X"].astype(np.float32), arrays["T"].astype(np.float32), X, int(params["k"]))
    if strategy == "cluster":
        levels = [(arrays[f"centroids_{i}"].astype(np.float32), arrays[f"rates_{i}"].astype(np.float32))
                  for i in range(int(params["levels"]))]
        return cluster_scores(levels, float(params["temperature"]), X)
    if strategy == "linear":
        return linear_scores(arrays["weights"].astype(np.float32), arrays["bias"].astype(np.float32), X)
    if strategy == "mlp":
        return mlp_scores(arrays, int(params["bags"]), X)
    if strategy == "ensemble":
        parts = list(params.get("parts") or [])
        if not parts or any(p.get("strategy") == "ensemble" for p in parts):
            raise SelectorLoadError("An ensemble head needs parts, none of them an ensemble.")
        return np.mean([head_scores(str(p["strategy"]), part_arrays(arrays, i), dict(p.get("params") or {}), X)
                        for i, p in enumerate(parts)], axis=0)
    raise SelectorLoadError(f"Unknown head strategy {strategy!r}: use one of {', '.join(HEAD_STRATEGIES)}.")


# ---------------------------------------------------------------- files
def is_head_dir(folder: str | Path) -> bool:
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def save_head(folder: str | Path, *, strategy: str, arrays: dict[str, np.ndarray], params: dict[str, Any],
              labels: Sequence[str], encoder: str, max_length: int, head_tokens: int,
              source: str | None, extra: dict[str, Any] | None = None) -> Path:
    """Write a head folder. ``encoder``: a path to copy into ``encoder/`` or :data:`BUNDLED`."""
    from safetensors.numpy import save_file

    from routing.selectors.encoder import BUNDLED
    from routing.selectors.classifier import label_encoder_data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ref = BUNDLED
    if encoder != BUNDLED:
        import torch
        from transformers import AutoModel, AutoTokenizer

        AutoModel.from_pretrained(encoder, dtype=torch.float16).save_pretrained(str(folder / ENCODER_DIR))
        AutoTokenizer.from_pretrained(encoder).save_pretrained(str(folder / ENCODER_DIR))
        ref = ENCODER_DIR
    # float16 halves the file; the kNN's scores and the cluster rates need no more.
    save_file({k: np.ascontiguousarray(v, dtype=np.float16) for k, v in arrays.items()}, str(folder / HEAD_FILE))
    config = {"model_type": MODEL_TYPE, "router": {
        "strategy": strategy, "encoder": ref, "labels": list(labels), "max_length": int(max_length),
        "head_tokens": int(head_tokens), "source": source, "params": params, **(extra or {})}}
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (folder / "label_encoder.json").write_text(json.dumps(label_encoder_data(labels), indent=1), encoding="utf-8")
    return folder


class HeadScorer:
    """A saved embedding head: ``predict(texts) -> (n, len(labels))`` per-model scores."""

    multi_label = True

    def __init__(self, model_dir: str | Path, *, fast_path: str = "auto"):
        from safetensors.numpy import load_file

        from routing.selectors import fast_path as fp
        from routing.selectors.encoder import BUNDLED, bundled_encoder_path

        self.model_dir = Path(model_dir)
        try:
            config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
            router = config["router"]
            self.strategy = str(router["strategy"])
            self.labels = [str(x) for x in router["labels"]]
            # Models added later from a few outcomes (training.pipeline.add_model): see _added.
            self.added = [str(x) for x in router.get("added") or []]
            self.added_k = int(router.get("added_k") or ADDED_K)
            self._anchors: dict[int, np.ndarray] = {}     # added model -> the trained models' mean on its prompts
            self.params = dict(router.get("params") or {})
            self.max_length = int(router.get("max_length", 256))
            self.head_tokens = int(router.get("head_tokens", 32))
            self.source = router.get("source")
            self.arrays = load_file(str(self.model_dir / HEAD_FILE))
            ref = router.get("encoder", BUNDLED)
            self.encoder_path = bundled_encoder_path() if ref == BUNDLED else str(self.model_dir / ref)
            quantized = fast_path == "force" or (fast_path != "off" and fp.enabled(self.model_dir, fast_path))
            self.precision = fp.PRECISION if quantized else "fp32"
            self.encoder = shared_encoder(self.encoder_path, self.max_length, self.head_tokens, quantized)
        except SelectorLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any loading failure means a corrupt head folder
            raise SelectorLoadError(f"The selector head in {self.model_dir} cannot be loaded: {exc}") from exc
        if self.strategy not in HEAD_STRATEGIES:
            raise SelectorLoadError(f"{self.model_dir}: unknown head strategy {self.strategy!r}.")
        # One probe checks that the arrays fit the encoder and the labels (a truncated file fails here).
        try:
            probe = self.predict_embeddings(np.zeros((1, self.encoder.hidden_size), np.float32))
        except Exception as exc:  # noqa: BLE001
            raise SelectorLoadError(f"The selector head in {self.model_dir} does not fit its encoder: {exc}") from exc
        if probe.shape != (1, len(self.labels) + len(self.added)):
            raise SelectorLoadError(f"The selector head in {self.model_dir} scores {probe.shape[1]} models "
                                    f"but names {len(self.labels) + len(self.added)}.")
        self.labels = self.labels + self.added

    def describe(self) -> str:
        return _describe(self.strategy, self.arrays, self.params)

    def predict_embeddings(self, X: np.ndarray) -> np.ndarray:
        base = head_scores(self.strategy, self.arrays, self.params, X)
        if not self.added:
            return base
        extra = [self._added(i, X, base) for i in range(len(self.added))]
        return np.concatenate([base, np.stack(extra, axis=1)], axis=1)

    def _anchor(self, i: int, added_X: np.ndarray) -> np.ndarray:
        """The trained models' mean score on added model ``i``'s evaluated prompts (computed once;
        the arrays never change after loading)."""
        if i not in self._anchors:
            self._anchors[i] = head_scores(self.strategy, self.arrays, self.params, added_X).mean(axis=1)
        return self._anchors[i]

    def _added(self, index: int, X: np.ndarray, base: np.ndarray) -> np.ndarray:
        """An added model's scores: its rates in the head's prompt clusters where the head has
        clusters (a cluster head, or an ensemble with a cluster part), else its own neighbours."""
        added_X = self.arrays[f"added_X_{index}"].astype(np.float32)
        added_T = self.arrays[f"added_T_{index}"].astype(np.float32)
        arrays, params = self.arrays, self.params
        if self.strategy == "ensemble":
            for p, part in enumerate(params.get("parts") or []):
                if part.get("strategy") == "cluster":
                    arrays, params = part_arrays(self.arrays, p), dict(part.get("params") or {})
                    break
            else:
                params = {}
        elif self.strategy != "cluster":
            params = {}
        if "levels" in params:
            levels = [(arrays[f"centroids_{n}"].astype(np.float64), None) for n in range(int(params["levels"]))]
            return added_cluster_scores(levels, float(params["temperature"]), added_X, added_T, X,
                                        anchor_at_added=self._anchor(index, added_X), anchor_at_X=base.mean(axis=1))
        return added_scores(added_X, added_T, X, self.added_k)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)))
        return self.predict_embeddings(self.encoder.embed(texts)).astype(np.float64)


def _describe(strategy: str, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> str:
    if strategy == "knn":
        return f"kNN over {len(arrays['X'])} logged prompts (k={params.get('k')})"
    if strategy == "cluster":
        return f"prompt clusters ({', '.join(str(s) for s in params.get('sizes', []))})"
    if strategy == "mlp":
        return f"{params.get('bags')} bagged MLP heads"
    if strategy == "ensemble":
        return "the mean of " + " and ".join(_describe(str(p["strategy"]), part_arrays(arrays, i),
                                                        dict(p.get("params") or {}))
                                             for i, p in enumerate(params.get("parts") or []))
    return "a linear probe"


def load_scorer(model_dir: str | Path, *, fast_path: str = "auto", batch_size: int | None = None
                ) -> Any:
    """Whatever selector folder this is: the evidence prior, an embedding head or a fine-tuned classifier.
    ``fast_path``: ``auto`` (int8 where the folder's check passed), ``off``, ``force``."""
    from routing.selectors.prior import PriorScorer, is_prior_dir

    if is_prior_dir(model_dir):
        return PriorScorer(model_dir, fast_path=fast_path)
    if is_head_dir(model_dir):
        return HeadScorer(model_dir, fast_path=fast_path)
    return ClassifierScorer(model_dir, fast_path=fast_path, batch_size=batch_size or DEFAULT_BATCH_SIZE)
