"""Which selector the train step builds: ``python -m training.pipeline.train --strategy NAME``.

* ``finetune`` - the encoder fine-tuned end to end as a sequence classifier (the shipped format,
  ``pipeline("text-classification")`` loads it);
* ``knn``, ``cluster``, ``linear``, ``mlp`` - a head on the bundled encoder's frozen embeddings
  (:mod:`routing.selectors.heads`): seconds to train (the bagged MLP up to a minute), and they
  read a sparse outcome log as it is (a model is judged only where it was observed);
* ``prior`` - the evidence prior (:mod:`routing.selectors.prior`) refined by the outcomes: a
  Bayesian update of each model's rating per topic and a shrunk per-prompt correction
  (``refine``); what ``auto`` trains while the app routes with the prior (the shipped selector),
  as it beat kNN trained on the same rows from 25 to 500 outcomes on most public sets;
* ``auto`` - the four heads and the mean of every pair of them (:data:`AUTO_CANDIDATES`)
  compared by 3-fold cross-validation on train + validation (TRAIN data only; the frozen test
  split is never looked at; each head fitted once per fold, a pair scored by the mean of its
  two out-of-fold predictions), by AIQ where the records price every model, else by routing
  quality. The one-standard-error rule picks among the candidates whose score is within one
  standard error (paired over prompts) of the best: the fewest parts, then the best score - CV
  on RouterBench and LLMRouter could not tell most candidates apart (all within 0.003 AIQ, and
  the top pick changed with the fold seed), so a pair must win clearly to be shipped. The pick
  is refitted on all of it (a pair is saved as an ``ensemble`` head). On a sparse log (over a
  third of the cells unobserved) it is ``knn`` without a contest: there
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
from typing import Any, Callable, Sequence

import numpy as np

from routing.errors import UserError

#: The heads one can ask for by name (a head folder may also hold an ``ensemble`` of them).
HEAD_STRATEGIES = ("knn", "cluster", "linear", "mlp")
#: What ``auto`` compares: each head and the mean of each pair.
AUTO_CANDIDATES = (*HEAD_STRATEGIES, *(f"{a}+{b}" for i, a in enumerate(HEAD_STRATEGIES)
                                        for b in HEAD_STRATEGIES[i + 1:]))
STRATEGIES = ("finetune", *HEAD_STRATEGIES, "auto", "prior")
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
    criterion: str = "quality"                                   # what auto ranked by: quality or aiq
    best: str = ""                                               # auto: the top CV score (chosen may be simpler)


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


class Ensemble:
    """The mean of fitted heads; exported as an ``ensemble`` head folder."""

    def __init__(self, names: list[str], parts: list[Any]):
        self.names, self.parts = names, parts

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.mean([p.predict(X) for p in self.parts], axis=0)

    def export(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays: dict[str, np.ndarray] = {}
        parts = []
        for i, (name, part) in enumerate(zip(self.names, self.parts)):
            a, params = part.export()
            arrays.update({f"part{i}/{k}": v for k, v in a.items()})
            parts.append({"strategy": name, "params": params})
        return arrays, {"parts": parts}


def saved_strategy(name: str) -> str:
    """The head folder's strategy for a candidate (a pair is an ``ensemble``)."""
    return "ensemble" if "+" in name else name


def fit_one(strategy: str, X: np.ndarray, T: np.ndarray, seed: int) -> Any:
    """Fit a head (or ``a+b``: the mean of two) on embeddings ``X`` and outcomes ``T``."""
    from training.benchmark.head import ClusterConfig, ClusterPrior, HeadConfig, KnnPrior, LinearProbe, SuccessHead

    if "+" in strategy:
        names = strategy.split("+")
        return Ensemble(names, [fit_one(n, X, T, seed) for n in names])
    if strategy == "knn":
        return KnnPrior(seed=seed, per_model=True).fit(X, T)
    if strategy == "cluster":
        return ClusterPrior(ClusterConfig(seed=seed)).fit(X, T)
    if strategy == "linear":
        return LinearProbe().fit(X, T)
    if strategy == "mlp":
        return SuccessHead(HeadConfig(seeds=(seed, seed + 1, seed + 2))).fit(X, T)
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


def record_costs(records: list[dict[str, Any]], models: list[str], k: int) -> np.ndarray | None:
    """The (n, K) cost of each model on each prompt from the records' ``costs`` (outcome tables
    with cost columns, e.g. RouterBench), or None unless every record prices every model."""
    if len(models) != k or not records:
        return None
    out = np.full((len(records), k), np.nan)
    for i, rec in enumerate(records):
        costs = rec.get("costs") if isinstance(rec, dict) else None
        if not isinstance(costs, dict):
            return None
        for j, m in enumerate(models):
            value = costs.get(m)
            if isinstance(value, (int, float)) and np.isfinite(value) and value >= 0:
                out[i, j] = float(value)
    return None if np.isnan(out).any() else out


def cost_quality_score(pred: np.ndarray, T: np.ndarray, costs: np.ndarray, knob: np.ndarray | None = None) -> float:
    """AIQ (area under the cost-quality hull of the cost knob's sweep, RouterBench's figure) of
    out-of-fold scores ``pred``, the knob trading them against ``knob`` (expected cost per prompt
    and model; default each model's mean cost); a pick without an outcome counts as the model's mean."""
    from training.benchmark import metrics as rm
    filled = _filled(T)
    points = [(p["cost"], p["quality"]) for p in rm.sweep(pred, filled, costs, costs.mean(axis=0) if knob is None else knob)]
    return float(rm.aiq(points, float(costs.mean(axis=0).max())))


def _filled(T: np.ndarray) -> np.ndarray:
    """Outcomes with each unobserved cell counted as its model's mean (0 for a model never observed)."""
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(T, axis=0), nan=0.0)
    return np.where(np.isnan(T), mean[None, :], T)


def _standard_errors(preds: dict[str, np.ndarray], best: str, T: np.ndarray, costs: np.ndarray | None,
                     knob: np.ndarray | None, multi: bool, seed: int) -> dict[str, float]:
    """Each candidate's standard error of its CV score's gap to ``best`` (paired over prompts):
    the bootstrap's for AIQ, the per-prompt differences' for routing quality; 0 for macro-F1."""
    if not multi:
        return {n: 0.0 for n in preds}
    filled = _filled(T)
    out = {}
    if costs is not None:
        from training.benchmark import metrics as rm
        top = float(costs.mean(axis=0).max())
        for name, pred in preds.items():
            out[name] = 0.0 if name == best else float(np.std(rm.aiq_diff_samples(
                preds[best], knob, pred, knob, filled, costs, top, n_boot=200, seed=seed)))
        return out
    rows = np.arange(len(T))
    picked = {name: filled[rows, pred.argmax(axis=1)] for name, pred in preds.items()}
    for name in preds:
        d = picked[best] - picked[name]
        out[name] = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return out


def fit_head(strategy: str, X: dict[str, np.ndarray], splits: dict[str, Any], multi: bool, seed: int,
             progress: Progress | None = None, models: Sequence[str] | None = None) -> HeadFit:
    """Fit ``strategy`` (a head or ``auto``) on the TRAIN (+ validation) embeddings ``X``.

    ``auto`` ranks its candidates by out-of-fold AIQ when every record prices every model
    (``records[i]["costs"]``, keyed by ``models``: the cost knob's whole curve counts, as in
    ``training.benchmark.run``), else by routing quality (see the module docstring)."""
    say = progress or (lambda f, m: None)
    t0 = time.time()
    T_train = targets_for(splits["train"], multi)
    T_val = targets_for(splits["val"], multi)
    scores: dict[str, float] = {}
    chosen = strategy
    X_all = np.concatenate([X["train"], X["val"]]) if len(X["val"]) else X["train"]
    T_all = np.concatenate([T_train, T_val]) if len(X["val"]) else T_train
    labels_all = list(splits["train"].labels) + (list(splits["val"].labels) if len(X["val"]) else [])
    records_all = list(splits["train"].records) + (list(splits["val"].records) if len(X["val"]) else [])
    criterion, best = "quality", ""
    if not len(X_all):
        raise UserError("The training split is empty.")
    if strategy == "auto":
        folds = np.random.default_rng(seed).permutation(len(X_all)) % CV_FOLDS
        if np.isnan(T_all).mean() > SPARSE_SHARE:
            chosen = "knn"
            scores = {"sparse_log": float(np.isnan(T_all).mean())}
        elif len(X_all) >= 2 * CV_FOLDS:
            oof = {name: np.zeros(T_all.shape) for name in HEAD_STRATEGIES}   # each head's out-of-fold scores
            for i, name in enumerate(HEAD_STRATEGIES):
                say(i / (len(HEAD_STRATEGIES) + 1), f"cross-validating {name} ({CV_FOLDS} folds of TRAIN)")
                for f in range(CV_FOLDS):
                    tr, te = folds != f, folds == f
                    oof[name][te] = fit_one(name, X_all[tr], T_all[tr], seed).predict(X_all[te])
            costs = record_costs(records_all, list(models or []), T_all.shape[1]) if multi else None
            knob = None
            if costs is not None:   # the knob's expected cost per prompt, out of fold (as it will be live)
                from training.benchmark.cost_model import CostModel

                criterion, knob = "aiq", np.zeros(costs.shape)
                texts = list(splits["train"].texts) + (list(splits["val"].texts) if len(X["val"]) else [])
                for f in range(CV_FOLDS):
                    tr, te = folds != f, folds == f
                    cm = CostModel().fit(X_all[tr], [texts[j] for j in np.flatnonzero(tr)], costs[tr])
                    knob[te] = cm.predict(X_all[te], [texts[j] for j in np.flatnonzero(te)])
            preds = {name: np.mean([oof[part] for part in name.split("+")], axis=0) for name in AUTO_CANDIDATES}
            for name, pred in preds.items():
                if costs is not None:
                    scores[name] = cost_quality_score(pred, T_all, costs, knob)
                    continue
                got = []
                for f in range(CV_FOLDS):
                    tr, te = folds != f, folds == f
                    fold = _Fold(T_all[te], [labels_all[j] for j in np.flatnonzero(te)])
                    got.append(validation_score(pred[te], fold, T_all[tr], multi) * te.sum())
                scores[name] = float(sum(got) / len(X_all))
            best = max(AUTO_CANDIDATES, key=lambda n: (round(scores[n], 9), -AUTO_CANDIDATES.index(n)))
            se = _standard_errors(preds, best, T_all, costs, knob, multi, seed)
            within_se = [n for n in AUTO_CANDIDATES if scores[best] - scores[n] <= se[n] + 1e-12]
            # the one-standard-error rule: the fewest parts among the candidates that CV cannot tell
            # from the best, then the best score (an ensemble has to win clearly to be shipped)
            chosen = min(within_se, key=lambda n: (len(n.split("+")), -scores[n], AUTO_CANDIDATES.index(n)))
        else:
            chosen = "knn"
    say(0.8, f"fitting {chosen} on train + validation")
    fitted = fit_one(chosen, X_all, T_all, seed)
    arrays, params = fitted.export()
    params = {**params, "rows": int(len(X_all))}
    if "+" in chosen:
        params["candidate"] = chosen
    return HeadFit(saved_strategy(chosen), arrays, params, scores, time.time() - t0, fitted, criterion,
                   best if strategy == "auto" and best else chosen)
