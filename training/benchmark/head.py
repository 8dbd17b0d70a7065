"""Per-model success heads on frozen sentence embeddings (the benchmark's fast training path).

Three learners, all ``fit(X, T) -> self`` / ``predict(X) -> (n, K)`` success probabilities:
:class:`SuccessHead` (bagged MLP), :class:`ClusterPrior` (soft k-means success rates) and
:class:`LinearProbe` (ridge); plus the kNN baseline (:func:`knn_predict`, :func:`choose_k`).

Full fine-tuning of the encoder on thousands of long prompts does not fit a few minutes on two
CPU cores, so the benchmark trains the selector's *head* on the base encoder's embeddings
(computed once, cached): a small MLP with one sigmoid per model, trained with masked binary
cross-entropy on the real per-model scores (soft targets), early-stopped on a validation
split and averaged over a few seeds (a bagged ensemble, which also calibrates the
probabilities). The output is a per-model success probability that the cost knob trades
against price.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from routing.selectors.heads import (cluster_scores, knn_scores, linear_scores, mean_outcome, nearest,
                                     per_model_knn_scores)


@dataclass
class HeadConfig:
    hidden: int = 256
    dropout: float = 0.2
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    max_epochs: int = 150
    patience: int = 10
    batch_size: int = 256
    seeds: Sequence[int] = (0, 1, 2)
    val_fraction: float = 0.15


def _masked_bce(logits, targets, mask):
    import torch

    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (per * mask).sum() / mask.sum().clamp(min=1)


class SuccessHead:
    """Bagged MLP heads: ``fit(X, T)`` with T (n, K) scores in [0, 1] (NaN = missing)."""

    def __init__(self, config: HeadConfig | None = None):
        self.config = config or HeadConfig()
        self.models: list = []
        self.history: list[list[dict[str, float]]] = []

    def _one(self, X: np.ndarray, T: np.ndarray, seed: int):
        import torch

        cfg = self.config
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        n = len(X)
        perm = rng.permutation(n)
        n_val = max(1, int(cfg.val_fraction * n))
        val, tr = perm[:n_val], perm[n_val:]
        Xt = torch.tensor(X, dtype=torch.float32)
        Tt = torch.tensor(np.nan_to_num(T), dtype=torch.float32)
        Mt = torch.tensor(~np.isnan(T), dtype=torch.float32)
        k = T.shape[1]
        net = torch.nn.Sequential(
            torch.nn.Dropout(cfg.dropout / 2), torch.nn.Linear(X.shape[1], cfg.hidden), torch.nn.GELU(),
            torch.nn.Dropout(cfg.dropout), torch.nn.Linear(cfg.hidden, k))
        with torch.no_grad():  # start from each model's base rate (0.5 for one never observed here)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rate = np.clip(np.nan_to_num(np.nanmean(T[tr], axis=0), nan=0.5), 1e-3, 1 - 1e-3)
            net[-1].bias.copy_(torch.tensor(np.log(rate / (1 - rate)), dtype=torch.float32))
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        best, best_state, bad, hist = float("inf"), None, 0, []
        for epoch in range(cfg.max_epochs):
            net.train()
            order = rng.permutation(tr)
            total = 0.0
            for s in range(0, len(order), cfg.batch_size):
                b = order[s:s + cfg.batch_size]
                loss = _masked_bce(net(Xt[b]), Tt[b], Mt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            net.eval()
            with torch.no_grad():
                vl = _masked_bce(net(Xt[val]), Tt[val], Mt[val]).item()
            hist.append({"epoch": epoch + 1, "train_loss": total / max(1, len(tr)), "val_loss": vl})
            if vl < best - 1e-5:
                best, bad = vl, 0
                best_state = {kk: v.clone() for kk, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return net, hist

    def fit(self, X: np.ndarray, T: np.ndarray) -> "SuccessHead":
        import torch

        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        self.models, self.history = [], []
        for seed in self.config.seeds:
            net, hist = self._one(np.asarray(X, np.float32), np.asarray(T, float), seed)
            self.models.append(net)
            self.history.append(hist)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        import torch

        Xt = torch.tensor(np.asarray(X, np.float32))
        with torch.no_grad():
            probs = [torch.sigmoid(m(Xt)).numpy() for m in self.models]
        return np.mean(probs, axis=0).astype(float)

    def export(self) -> tuple[dict[str, np.ndarray], dict]:
        """Each bag's two layers as arrays (:func:`routing.selectors.heads.mlp_scores` reads them)."""
        arrays: dict[str, np.ndarray] = {}
        for b, net in enumerate(self.models):
            first, last = net[1], net[4]
            arrays[f"W1_{b}"] = first.weight.detach().numpy().T.copy()
            arrays[f"b1_{b}"] = first.bias.detach().numpy().copy()
            arrays[f"W2_{b}"] = last.weight.detach().numpy().T.copy()
            arrays[f"b2_{b}"] = last.bias.detach().numpy().copy()
        return arrays, {"bags": len(self.models), "hidden": int(self.config.hidden),
                        "epochs": [len(h) for h in self.history]}


def knn_predict(train_X: np.ndarray, train_T: np.ndarray, X: np.ndarray, k: int,
                exclude_self: bool = False) -> np.ndarray:
    """Mean score of the k most similar training prompts (cosine on normalised embeddings)."""
    return knn_scores(train_X, train_T, X, k, exclude_self)


def choose_k(train_X: np.ndarray, train_T: np.ndarray, ks: Sequence[int] = (5, 10, 20, 40, 80, 160),
             folds: int = 5, seed: int = 0, per_model: bool = False) -> tuple[int, dict[int, float]]:
    """k maximising routed quality (pure-quality setting) in ``folds``-fold CV on TRAIN. The
    neighbours are found once per fold for the largest k; smaller k take the first of them."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(train_X))
    filled = np.where(np.isnan(train_T), np.nanmean(train_T, axis=0)[None, :], train_T)
    vals: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    for f in range(folds):
        tr, te = fold != f, fold == f
        if not te.any() or not tr.any():
            continue
        if per_model and np.isnan(train_T).any():   # a sparse log: each model's own neighbours
            for k in ks:
                pick = per_model_knn_scores(train_X[tr], train_T[tr], train_X[te], k).argmax(1)
                vals[k].append(filled[te][np.arange(te.sum()), pick])
            continue
        nn = nearest(train_X[tr], train_X[te], max(ks))
        for k in ks:
            pick = mean_outcome(train_T[tr], nn[:, :k]).argmax(1)
            vals[k].append(filled[te][np.arange(te.sum()), pick])
    scores = {k: float(np.mean(np.concatenate(v))) for k, v in vals.items() if v}
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


class KnnPrior:
    """Per-model success rates as the mean outcome of the k most similar TRAIN prompts, k chosen by
    5-fold CV inside ``fit`` (the kNN baseline's rule), as a component the selector may blend in.
    Less smooth than the cluster prior: within one task it still orders prompts by their
    neighbourhood, which gives the cost knob more operating points."""

    def __init__(self, seed: int = 0, per_model: bool = False):
        self.seed = seed
        self.per_model = per_model   # each model's own neighbours (routing.selectors.heads.per_model_knn_scores)
        self.k = 1
        self.X = np.zeros((0, 0))
        self.T = np.zeros((0, 0))

    def fit(self, X: np.ndarray, T: np.ndarray) -> "KnnPrior":
        self.X, self.T = np.asarray(X, float), np.asarray(T, float)
        self.k, _ = choose_k(self.X, self.T, seed=self.seed, per_model=self.per_model)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        score = per_model_knn_scores if self.per_model else knn_scores
        return score(self.X, self.T, np.asarray(X, float), self.k)

    def export(self) -> tuple[dict[str, np.ndarray], dict]:
        """The arrays and parameters a head folder stores (:mod:`routing.selectors.heads`)."""
        return {"X": self.X, "T": self.T}, {"k": int(self.k), "per_model": self.per_model}


@dataclass
class ClusterConfig:
    sizes: Sequence[int] = (16, 32, 64)   # k-means resolutions, averaged
    temperature: float = 20.0             # soft assignment: softmax(cosine x temperature)
    prior_strength: float = 10.0          # pseudo-prompts pulling a small cluster to the global rate
    seed: int = 0


class ClusterPrior:
    """Per-model success rates of prompt clusters, softly assigned and averaged over resolutions.

    ``fit`` clusters the training embeddings with k-means at several sizes; each cluster keeps
    every model's mean real score, shrunk towards the model's global rate (``prior_strength``
    pseudo-prompts). A new prompt gets the softmax-weighted (by cosine similarity to the
    centroids) mix of those rates - a smooth, calibrated estimate of P(model succeeds | prompt)
    that degrades gracefully to each model's overall rate far from the training data.
    """

    def __init__(self, config: ClusterConfig | None = None):
        self.config = config or ClusterConfig()
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []   # (centroids, rates)

    def fit(self, X: np.ndarray, T: np.ndarray) -> "ClusterPrior":
        from sklearn.cluster import KMeans

        cfg = self.config
        T = np.asarray(T, float)
        glob = np.nanmean(T, axis=0)
        glob = np.where(np.isnan(glob), 0.5, glob)
        self.levels = []
        for i, k in enumerate(cfg.sizes):
            k = max(1, min(int(k), len(X)))
            km = KMeans(k, n_init=3, random_state=cfg.seed + i).fit(X)
            rates = np.zeros((k, T.shape[1]))
            for c in range(k):
                rows = T[km.labels_ == c]
                n = (~np.isnan(rows)).sum(axis=0)
                total = np.nansum(rows, axis=0)
                rates[c] = (total + cfg.prior_strength * glob) / (n + cfg.prior_strength)
            cent = km.cluster_centers_ / np.maximum(np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-9)
            self.levels.append((cent, rates))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return cluster_scores(self.levels, self.config.temperature, X)

    def export(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {}
        for i, (cent, rates) in enumerate(self.levels):
            arrays[f"centroids_{i}"], arrays[f"rates_{i}"] = cent, rates
        return arrays, {"levels": len(self.levels), "temperature": float(self.config.temperature),
                        "sizes": [len(c) for c, _ in self.levels],
                        "prior_strength": float(self.config.prior_strength)}


@dataclass
class LinearConfig:
    alphas: Sequence[float] = (1.0, 3.0, 10.0, 30.0, 100.0)   # ridge strengths, one per model by LOO-CV


class LinearProbe:
    """Per-model success rates as a ridge regression on the embeddings (a linear probe).

    Targets are the real scores (soft, in [0, 1]); missing cells take the model's mean. Each
    model's ridge strength is chosen by efficient leave-one-out CV on the training rows
    (``RidgeCV(alpha_per_target=True)``); predictions are clipped to [0, 1]. Seconds to fit,
    and on binary outcome tables as good as the MLP head.
    """

    def __init__(self, config: LinearConfig | None = None):
        self.config = config or LinearConfig()
        self.model = None
        self.mean = np.zeros(0)

    def fit(self, X: np.ndarray, T: np.ndarray) -> "LinearProbe":
        from sklearn.linear_model import RidgeCV

        T = np.asarray(T, float)
        self.mean = np.nan_to_num(np.nanmean(T, axis=0), nan=0.5)
        filled = np.where(np.isnan(T), self.mean[None, :], T)
        self.model = RidgeCV(alphas=tuple(self.config.alphas), alpha_per_target=True).fit(
            np.asarray(X, float), filled - self.mean)
        return self

    def _weights(self) -> tuple[np.ndarray, np.ndarray]:
        coef = np.asarray(self.model.coef_, float).reshape(len(self.mean), -1)   # (K, hidden)
        return coef.T, np.asarray(self.model.intercept_, float).reshape(-1) + self.mean

    def predict(self, X: np.ndarray) -> np.ndarray:
        weights, bias = self._weights()
        return linear_scores(weights, bias, np.asarray(X, float))

    def export(self) -> tuple[dict[str, np.ndarray], dict]:
        weights, bias = self._weights()
        return {"weights": weights, "bias": bias}, {"alphas": [float(a) for a in np.ravel(self.model.alpha_)]}
