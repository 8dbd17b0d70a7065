"""Which selector the train step builds: ``python -m training.train --strategy NAME``.

* ``finetune`` - the encoder fine-tuned end to end as a sequence classifier (the shipped format,
  ``pipeline("text-classification")`` loads it);
* ``knn``, ``cluster``, ``linear`` - a head on the bundled encoder's frozen embeddings
  (:mod:`routing.selectors.heads`): seconds to train, and they read a sparse outcome log as it
  is (a model is judged only where it was observed);
* ``auto`` - the three heads compared by 3-fold cross-validation on train + validation (TRAIN
  data only; the frozen test split is never looked at), the best refitted on all of it. On a
  sparse log (over a third of the cells unobserved) it is ``knn`` without a contest: there
  cross-validation has to fill the unobserved picks with something, and any filling favours
  the models the log observed most (in a simulated world it preferred the linear probe, which
  routed 0.67 against kNN's 0.79).

Routing quality in a fold is the mean real score of each pick, a pick without an outcome
counting as the picked model's mean observed score in the other folds (the direct estimate);
for rule labels it is macro-F1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from routing.errors import UserError
from routing.selectors.heads import HEAD_STRATEGIES

STRATEGIES = ("finetune", *HEAD_STRATEGIES, "auto")
CV_FOLDS = 3
SPARSE_SHARE = 1 / 3   # unobserved cells above which auto is knn
DEFAULT_STRATEGY = "finetune"

Progress = Callable[[float, str], None]


@dataclass
class HeadFit:
    strategy: str
    arrays: dict[str, np.ndarray]
    params: dict[str, Any]
    val_scores: dict[str, float] = field(default_factory=dict)   # strategy -> validation score (auto)
    seconds: float = 0.0
    fitted: Any = None                                           # predict(X) -> (n, K)


@dataclass
class _Fold:
    targets: np.ndarray
    labels: list[int]


def check_strategy(name: str) -> str:
    name = (name or DEFAULT_STRATEGY).strip().lower()
    if name not in STRATEGIES:
        raise UserError(f"Unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}.")
    return name


def targets_for(data: Any, multi: bool) -> np.ndarray:
    """What a head learns: real per-model scores (NaN = not observed); for rule labels the rules'
    soft scores, or one-hot labels where a record has none."""
    T = np.array(data.targets, dtype=float)
    if not multi:
        missing = np.all(np.isnan(T), axis=1)
        for i in np.flatnonzero(missing):
            T[i] = 0.0
            T[i, data.labels[i]] = 1.0
    return T


def fit_one(strategy: str, X: np.ndarray, T: np.ndarray, seed: int) -> Any:
    from training.head import ClusterConfig, ClusterPrior, KnnPrior, LinearProbe

    if strategy == "knn":
        return KnnPrior(seed=seed, per_model=True).fit(X, T)
    if strategy == "cluster":
        return ClusterPrior(ClusterConfig(seed=seed)).fit(X, T)
    if strategy == "linear":
        return LinearProbe().fit(X, T)
    raise UserError(f"{strategy!r} is not a head strategy ({', '.join(HEAD_STRATEGIES)}).")


def validation_score(pred: np.ndarray, data: Any, T_train: np.ndarray, multi: bool) -> float:
    """Routing quality on the validation split (see the module docstring)."""
    if not len(pred):
        return float("nan")
    pick = pred.argmax(axis=1)
    if not multi:
        from sklearn.metrics import f1_score

        return float(f1_score(data.labels, pick, labels=list(range(pred.shape[1])), average="macro",
                              zero_division=0))
    with np.errstate(all="ignore"):
        prior = np.nanmean(T_train, axis=0)
    prior = np.where(np.isnan(prior), 0.0, prior)
    got = data.targets[np.arange(len(pick)), pick]
    return float(np.where(np.isnan(got), prior[pick], got).mean())


def fit_head(strategy: str, X: dict[str, np.ndarray], splits: dict[str, Any], multi: bool, seed: int,
             progress: Progress | None = None) -> HeadFit:
    """Fit ``strategy`` (a head or ``auto``) on the TRAIN (+ validation) embeddings ``X``."""
    say = progress or (lambda f, m: None)
    t0 = time.time()
    T_train = targets_for(splits["train"], multi)
    T_val = targets_for(splits["val"], multi)
    scores: dict[str, float] = {}
    chosen = strategy
    X_all = np.concatenate([X["train"], X["val"]]) if len(X["val"]) else X["train"]
    T_all = np.concatenate([T_train, T_val]) if len(X["val"]) else T_train
    labels_all = list(splits["train"].labels) + (list(splits["val"].labels) if len(X["val"]) else [])
    if not len(X_all):
        raise UserError("The training split is empty.")
    if strategy == "auto":
        folds = np.random.default_rng(seed).permutation(len(X_all)) % CV_FOLDS
        if np.isnan(T_all).mean() > SPARSE_SHARE:
            chosen = "knn"
            scores = {"sparse_log": float(np.isnan(T_all).mean())}
        elif len(X_all) >= 2 * CV_FOLDS:
            for i, name in enumerate(HEAD_STRATEGIES):
                say(i / (len(HEAD_STRATEGIES) + 1), f"cross-validating {name} ({CV_FOLDS} folds of TRAIN)")
                got = []
                for f in range(CV_FOLDS):
                    tr, te = folds != f, folds == f
                    pred = fit_one(name, X_all[tr], T_all[tr], seed).predict(X_all[te])
                    fold = _Fold(T_all[te], [labels_all[j] for j in np.flatnonzero(te)])
                    got.append(validation_score(pred, fold, T_all[tr], multi) * te.sum())
                scores[name] = float(sum(got) / len(X_all))
            chosen = max(HEAD_STRATEGIES, key=lambda n: (scores[n], -HEAD_STRATEGIES.index(n)))
        else:
            chosen = "knn"
    say(0.8, f"fitting {chosen} on train + validation")
    fitted = fit_one(chosen, X_all, T_all, seed)
    arrays, params = fitted.export()
    params = {**params, "rows": int(len(X_all))}
    return HeadFit(chosen, arrays, params, scores, time.time() - t0, fitted)
