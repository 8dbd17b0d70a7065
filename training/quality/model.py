"""Train the evaluator's learned quality model: ``python -m training.quality``.

Data: a graded answer table (``question_id, prompt, model, answer, gpt4_score``; by default the
shared ``judgments/arena_bench_v1_graded.csv``: 4,171 answers by 14 models to 300 open-ended
prompts with GPT-4's reference-guided 1-10 grade). Always split **by prompt**: a held-out test
share of the prompts (chosen by a hash of the question id, so reruns agree) never reaches
training.

1. Features (:mod:`routing.evaluation.quality`): text statistics of each answer, and with peers
   the word and character n-gram TF-IDF / number / length relations to the other answers to the
   same prompt.
2. Two linear heads predict the grade: ``alone`` and ``peers``. Each is trained *pairwise*
   (logistic regression on the feature differences of same-prompt answers with different
   grades: it learned the ordering better than ridge on the grade, 0.664 vs 0.656 alone and
   0.698 vs 0.689 with peers in 5-fold prompt-grouped CV), then scaled to the grade by least
   squares; the L2 strength is chosen by prompt-grouped CV on the training prompts.
3. The evaluator's blend (:func:`routing.evaluation.evaluator.evaluate`): per regime (choice / code (one
   function) / program / math / open, alone / with peers) a logistic curve on (heuristic ``normalized``, learned score) with
   non-negative weights, fitted on training prompts with the learned score taken out-of-fold (so
   the blend does not trust a score that saw its own rows). Where the RouterBench *train* slices
   give right/wrong outcomes for a regime (multiple choice: arc_challenge, winograde; code: mbpp,
   whose prompts each ask for one function) those rows alone fit it - being right is what must be
   ranked, and on mbpp the grade-trained score does not predict it (AUC 0.47 alone) - the other
   regimes (program: coding requests judged on the whole answer; math; open) are fitted on the
   graded training prompts. RouterBench *test* slices stay for the evaluator benchmark.
4. Saved in ``quality_model/``: ``config.json``, ``model.safetensors`` (float16),
   ``README.md`` (model card), ``training_report.json``, ``test_split.json``.
"""

from __future__ import annotations

import os

import argparse
import hashlib
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from routing.evaluation import quality as Q
from routing.evaluation.sandbox import measuring_refusal

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]  # training/quality/model.py -> the repository


def _portable(path) -> str:
    """A path relative to the repository (``../shared/...`` for the shared data): the card is portable."""
    try:
        return os.path.relpath(Path(str(path)).resolve(), REPO_ROOT)
    except (TypeError, ValueError):
        return str(path)
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_GRADED = SHARED_DATA / "judgments" / "arena_bench_v1_graded.csv"
DEFAULT_ROUTERBENCH = SHARED_DATA / "outcomes" / "routerbench"
DEFAULT_OUT = REPO_ROOT / "quality_model"
Progress = Callable[[str], None]


@dataclass
class QualityConfig:
    """Training settings (recorded in the model card)."""

    test_fraction: float = 0.2
    folds: int = 5
    alphas: Sequence[float] = (10.0, 100.0)             # L2 strengths (C = 1 / alpha), by grouped CV
    blend_l2: float = 1e-3
    pairwise_blend: bool = False            # graded regimes: blend direction fitted pairwise (tried: no gain)
    tilt_blend: bool = False                # outcome-fitted regimes turned toward the grades at equal
                                            # train AUC (measured: +0.006 graded, mbpp AUC -0.003; off)
    routerbench_prompts: int = 2000         # prompts per RouterBench train slice for the blend (2000: all
                                            # of arc_challenge 1039, winograde 887, mbpp 299)
    cv_learned_weight: bool = True          # outcome-fitted regimes keep the learned score only where
                                            # prompt-grouped CV AUC on their outcome rows is higher with it
    routerbench_slices: Sequence[str] = ("arc_challenge", "winograde", "mbpp")
    run_code: bool = True                   # run code answers in the sandbox when fitting the blend
                                            # (graded and RouterBench rows), as the app scores them
    seed: int = 0


# --------------------------------------------------------------------------- data


def load_graded(path: Path) -> pd.DataFrame:
    """The graded table: ``question_id, prompt, model, answer, grade`` (rows without a grade go)."""
    frame = pd.read_csv(path)
    missing = {"question_id", "prompt", "answer", "gpt4_score"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    frame = frame.rename(columns={"gpt4_score": "grade"})
    frame["grade"] = pd.to_numeric(frame["grade"], errors="coerce")
    frame = frame.dropna(subset=["grade"]).reset_index(drop=True)
    frame["question_id"] = frame["question_id"].astype(str)
    frame["prompt"] = frame["prompt"].fillna("").astype(str)
    frame["answer"] = frame["answer"].fillna("").astype(str)
    if "model" not in frame.columns:
        frame["model"] = ""
    return frame


def is_test_prompt(question_id: str, fraction: float) -> bool:
    """The frozen prompt split: a hash of the id, so every rerun holds out the same prompts."""
    digest = hashlib.sha256(str(question_id).encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < fraction


def prompt_folds(groups: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of every row, whole prompts per fold (shuffled by ``seed``)."""
    unique = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    fold_of = {unique[i]: int(k % folds) for k, i in enumerate(order)}
    return np.array([fold_of[g] for g in groups], dtype=int)


# --------------------------------------------------------------------------- features


def features(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(alone features, peer-aware features) for every row; peers are the other answers to the
    same ``question_id``."""
    stats = np.stack([Q.text_features(p, a) for p, a in zip(frame["prompt"], frame["answer"])]) \
        if len(frame) else np.zeros((0, len(Q.TEXT_FEATURES)), np.float32)
    peers = np.zeros((len(frame), len(Q.PEER_FEATURES)), np.float32)
    for _, index in frame.groupby("question_id", sort=False).indices.items():
        texts = frame["answer"].to_numpy()[index]
        nonempty = [i for i, t in zip(index, texts) if t.strip()]
        if len(nonempty) >= Q.MIN_PEERS + 1:
            peers[nonempty] = Q.group_peer_features(frame["answer"].to_numpy()[nonempty].tolist())
    return stats, np.concatenate([stats, peers], axis=1)


def heuristic_scores(frame: pd.DataFrame, *, run_code: bool = False, peers: bool = False,
                     workers: int = 2) -> tuple[np.ndarray, list[str]]:
    """The evaluator's heuristic figures of every row - shape (n, 2): ``heuristic_normalized``
    and the penalty share (:func:`routing.evaluation.evaluator.penalty_share`) - and its regime key, alone
    or with the other answers to the prompt as peers, without the learned part."""
    from concurrent.futures import ThreadPoolExecutor

    from routing.evaluation.evaluator import evaluate, evaluate_group

    from routing.evaluation.evaluator import penalty_share

    scores = np.zeros((len(frame), 2))
    regimes = [""] * len(frame)

    def regime_of(result: dict[str, Any]) -> str:
        used = peers and (result["details"].get("peer_votes") or {}).get("used")
        return result["regime"] + ("/peers" if used else "/alone")

    if not peers:
        def one(i: int) -> tuple[int, dict[str, Any]]:
            return i, evaluate(frame["prompt"].iat[i], frame["answer"].iat[i], run_code=run_code, learned=False)
        jobs: Iterable = range(len(frame))
    else:
        def one(key: Any) -> list[tuple[int, dict[str, Any]]]:   # type: ignore[misc]
            index = groups[key]
            results = evaluate_group(frame["prompt"].iat[index[0]],
                                     {int(i): frame["answer"].iat[i] for i in index}, run_code=run_code,
                                     learned=False)
            return list(results.items())
        groups = frame.groupby("question_id", sort=False).indices
        jobs = list(groups)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for found in pool.map(one, jobs):
            for i, result in ([found] if not peers else found):
                scores[i] = (result["heuristic_normalized"], penalty_share(result))
                regimes[i] = regime_of(result)
    return scores, regimes


# --------------------------------------------------------------------------- heads


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, float)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale < 1e-6, 1.0, scale)
    return (X - mean) / scale, mean, scale


def ranking_pairs(groups: Sequence[Any], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(better, worse) row indices of every pair of rows in the same group with different y."""
    better, worse = [], []
    for index in pd.Series(range(len(y))).groupby(list(groups), sort=False).indices.values():
        values = y[index]
        rows, cols = np.nonzero(values[:, None] > values[None, :])
        better.append(index[rows])
        worse.append(index[cols])
    if not better:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(better), np.concatenate(worse)


def fit_head(X: np.ndarray, y: np.ndarray, alpha: float, groups: Sequence[Any] | None = None) -> Q.LinearHead:
    """A linear grade predictor on standardised features.

    With ``groups`` (the prompt of every row), the direction is learned *pairwise* - logistic
    regression on feature differences of same-prompt answers with different grades, L2 strength
    ``alpha`` (C = 1 / alpha), which is what ordering answers to one prompt asks for - and then
    scaled to the grade by least squares. Without groups (or without any pair): ridge regression.
    """
    from sklearn.linear_model import LogisticRegression, Ridge

    Z, mean, scale = _standardise(X)
    y = np.asarray(y, float)
    better, worse = ranking_pairs(groups, y) if groups is not None else (np.zeros(0, int), np.zeros(0, int))
    if len(better) == 0:
        model = Ridge(alpha=alpha).fit(Z, y)
        return Q.LinearHead(mean, scale, model.coef_, float(model.intercept_))
    diff = Z[better] - Z[worse]
    D = np.concatenate([diff, -diff])
    L = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
    direction = LogisticRegression(C=1.0 / alpha, fit_intercept=False, max_iter=2000).fit(D, L).coef_[0]
    s = Z @ direction
    var = float(np.var(s))
    a = float(np.cov(s, y, bias=True)[0, 1] / var) if var > 1e-12 else 0.0
    a = max(a, 0.0)
    b = float(np.mean(y) - a * np.mean(s))
    return Q.LinearHead(mean, scale, a * direction, b)


def pairwise_agreement(groups: Sequence[Any], grades: Sequence[float], scores: Sequence[float]) -> tuple[float, int]:
    """Over non-tied (by grade) pairs of answers to the same prompt: the share the scores order
    as the grades do (score ties count 0.5). Returns (agreement, pairs); NaN without pairs."""
    frame = pd.DataFrame({"g": list(groups), "y": np.asarray(grades, float), "s": np.asarray(scores, float)})
    wins = pairs = 0.0
    for _, part in frame.groupby("g", sort=False):
        y = part["y"].to_numpy()
        s = part["s"].to_numpy()
        better = (y[:, None] - y[None, :]) > 0
        diff = (s[:, None] - s[None, :])[better]
        wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
        pairs += float(better.sum())
    return (wins / pairs if pairs else float("nan")), int(pairs)


def spearman_per_prompt(groups: Sequence[Any], grades: Sequence[float], scores: Sequence[float]) -> tuple[float, int]:
    """Mean over prompts of Spearman's rho between grades and scores (prompts where either is
    constant are skipped). Returns (mean rho, prompts counted)."""
    from scipy.stats import spearmanr

    frame = pd.DataFrame({"g": list(groups), "y": np.asarray(grades, float), "s": np.asarray(scores, float)})
    rhos = []
    for _, part in frame.groupby("g", sort=False):
        if len(part) < 2 or part["y"].nunique() < 2 or part["s"].nunique() < 2:
            continue
        rhos.append(float(spearmanr(part["y"], part["s"]).statistic))
    return (float(np.mean(rhos)) if rhos else float("nan")), len(rhos)


def choose_alpha(X: np.ndarray, y: np.ndarray, groups: Sequence[str], alphas: Sequence[float],
                 folds: int, seed: int) -> tuple[float, dict[float, float]]:
    """Ridge strength with the best prompt-grouped CV pairwise agreement (ties: the stronger)."""
    fold = prompt_folds(groups, folds, seed)
    groups_arr = np.asarray(groups)
    scores: dict[float, float] = {}
    for alpha in alphas:
        pred = np.zeros(len(y))
        for f in range(folds):
            tr, te = fold != f, fold == f
            if tr.sum() < 2 or te.sum() == 0:
                continue
            pred[te] = fit_head(X[tr], y[tr], alpha, groups_arr[tr]).predict(X[te])
        scores[float(alpha)] = pairwise_agreement(groups, y, pred)[0]
    best = max(scores, key=lambda a: (round(scores[a], 4), a))
    return best, scores


def out_of_fold(X: np.ndarray, y: np.ndarray, groups: Sequence[str], alpha: float, folds: int,
                seed: int) -> np.ndarray:
    """Grade predictions of every row by a head that never saw the row's prompt."""
    fold = prompt_folds(groups, folds, seed + 1)
    groups_arr = np.asarray(groups)
    pred = np.zeros(len(y))
    for f in range(folds):
        tr, te = fold != f, fold == f
        if te.sum() == 0:
            continue
        pred[te] = fit_head(X[tr], y[tr], alpha, groups_arr[tr]).predict(X[te]) if tr.sum() >= 2 else float(np.mean(y))
    return np.clip(pred, 1.0, 10.0)


# --------------------------------------------------------------------------- the blend


def _pairwise_direction(X: np.ndarray, target: np.ndarray, groups: Sequence[Any], l2: float) -> np.ndarray | None:
    """Non-negative weights ordering same-group rows as ``target`` does (pairwise logistic loss);
    None when there is no pair."""
    from scipy.optimize import minimize

    better, worse = ranking_pairs(groups, np.asarray(target, float))
    if len(better) == 0:
        return None
    D = X[better] - X[worse]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = D @ w
        value = float(np.mean(np.logaddexp(0.0, -m))) + l2 * float(w @ w)
        grad = -(D * (1.0 / (1.0 + np.exp(np.clip(m, -40, 40))))[:, None]).mean(axis=0) + 2 * l2 * w
        return value, grad

    found = minimize(loss, np.ones(X.shape[1]), jac=True, method="L-BFGS-B", bounds=[(0, 40)] * X.shape[1])
    return found.x


def _calibrate(s: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(bias, scale >= 0) of ``sigmoid(bias + scale * s)`` fitted to soft targets ``t`` (cross-entropy)."""
    from scipy.optimize import minimize

    def calibration(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] + w[1] * s
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        value = -np.mean(t * np.log(p + 1e-9) + (1 - t) * np.log(1 - p + 1e-9))
        g = p - t
        return float(value), np.array([g.mean(), (g * s).mean()])

    found = minimize(calibration, np.array([0.0, 1.0]), jac=True, method="L-BFGS-B",
                     bounds=[(-40, 40), (0, 100)])
    return float(found.x[0]), float(found.x[1])


def tilt_toward_grades(fit: dict[str, float], outcome: tuple[np.ndarray, np.ndarray, np.ndarray],
                       graded: tuple[np.ndarray, np.ndarray, np.ndarray, Sequence[Any]],
                       steps: int = 36) -> dict[str, float]:
    """A blend fitted on right/wrong outcomes, turned toward the learned score as far as the
    judge's grades of the same regime gain and the outcomes' ROC AUC does not fall.

    ``outcome`` = (heuristic (n, 2), quality, 0/1 target) of the outcome rows, ``graded`` = the
    same for graded rows plus their prompt groups. The heuristic : quality angle is scanned from
    the outcome fit's own angle up to quality alone (the penalty's weight relative to them kept);
    the angle with the best pairwise agreement with the grades among those whose AUC on the
    outcome rows is at least the outcome fit's own is kept, then bias and scale are refitted on
    the outcome rows. (Why: on RouterBench mbpp the grade-trained score does not predict passing
    the tests, so an outcome-only fit gives it almost no weight, which throws away what it
    knows about open coding questions; this takes the part that costs the outcomes nothing.)
    """
    from sklearn.metrics import roc_auc_score

    H_o, q_o, t_o = outcome
    H_g, q_g, y_g, groups_g = graded
    y_o = (np.asarray(t_o, float) >= 0.5).astype(int)
    if len(set(y_o.tolist())) < 2 or not len(y_g):
        return fit
    a, b, c = fit["heuristic"], fit["quality"], fit.get("penalty", 0.0)
    norm = float(np.hypot(a, b))
    if norm <= 0:
        return fit
    own = float(np.arctan2(b, a))
    pen = c / norm

    X_o = np.column_stack([H_o[:, 0], q_o, H_o[:, 1]])
    X_g = np.column_stack([H_g[:, 0], q_g, H_g[:, 1]])

    def direction(angle: float) -> np.ndarray:
        return np.array([np.cos(angle), np.sin(angle), -pen])

    def auc(angle: float) -> float:
        return float(roc_auc_score(y_o, X_o @ direction(angle)))

    def agreement(angle: float) -> float:
        return pairwise_agreement(groups_g, y_g, X_g @ direction(angle))[0]

    floor = auc(own)
    best, best_agreement = own, agreement(own)
    for angle in np.linspace(own, np.pi / 2, steps + 1)[1:]:
        if auc(angle) + 1e-12 >= floor:
            value = agreement(angle)
            if value > best_agreement + 1e-9:
                best, best_agreement = float(angle), value
    if best == own:
        return fit
    bias, scale = _calibrate(X_o @ direction(best), np.asarray(t_o, float))
    w = scale * direction(best)
    return {**fit, "bias": round(bias, 5), "heuristic": round(float(w[0]), 5), "quality": round(float(w[1]), 5),
            "penalty": round(float(-w[2]), 5),
            "fit": fit.get("fit", "cross-entropy") + ", tilted toward the judge's grades at equal outcome AUC",
            "outcome_auc": round(floor, 4), "outcome_auc_tilted": round(auc(best), 4),
            "graded_pairwise": round(agreement(own), 4), "graded_pairwise_tilted": round(best_agreement, 4)}


def fit_blend(heuristic: np.ndarray, quality: np.ndarray, target: np.ndarray, l2: float = 1e-3,
              groups: Sequence[Any] | None = None) -> dict[str, float]:
    """Logistic curve ``sigmoid(bias + a * heuristic + b * quality - c * penalty)`` with a, b, c >= 0
    fitted to soft targets in [0, 1] (cross-entropy, a little L2). ``heuristic`` is (n, 2):
    the heuristic ``normalized`` and the penalty share.

    With ``groups`` (the prompt of each row) the *direction* (a : b : c) is fitted pairwise -
    ordering answers to the same prompt, which is what picking a winner asks - and only the
    bias and the overall scale by cross-entropy (calibration, so figures stay comparable across
    prompts)."""
    from scipy.optimize import minimize

    H = np.asarray(heuristic, float).reshape(len(target), -1)
    h = H[:, 0]
    pen = H[:, 1] if H.shape[1] > 1 else np.zeros(len(h))
    q = np.asarray(quality, float)
    t = np.clip(np.asarray(target, float), 0.0, 1.0)
    direction = (_pairwise_direction(np.column_stack([h, q, -pen]), t, groups, l2)
                 if groups is not None else None)
    if direction is not None and direction.any():
        bias, scale = _calibrate(np.column_stack([h, q, -pen]) @ direction, t)
        a, b, c = (scale * float(v) for v in direction)
        return {"bias": round(bias, 5), "heuristic": round(a, 5), "quality": round(b, 5), "penalty": round(c, 5),
                "rows": int(len(t)), "fit": "pairwise direction, calibrated"}

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] + w[1] * h + w[2] * q - w[3] * pen
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        eps = 1e-9
        value = -np.mean(t * np.log(p + eps) + (1 - t) * np.log(1 - p + eps)) + l2 * float(w[1:] @ w[1:])
        g = p - t
        grad = np.array([g.mean(), (g * h).mean() + 2 * l2 * w[1], (g * q).mean() + 2 * l2 * w[2],
                         -(g * pen).mean() + 2 * l2 * w[3]])
        return float(value), grad

    found = minimize(loss, np.array([0.0, 1.0, 1.0, 0.0]), jac=True, method="L-BFGS-B",
                     bounds=[(-20, 20), (0, 40), (0, 40), (0, 40)])
    bias, a, b, c = (float(v) for v in found.x)
    return {"bias": round(bias, 5), "heuristic": round(a, 5), "quality": round(b, 5), "penalty": round(c, 5),
            "rows": int(len(t)), "fit": "cross-entropy"}


def learned_weight_cv(heuristic: np.ndarray, quality: np.ndarray, target: np.ndarray, groups: Sequence[Any],
                      l2: float = 1e-3, folds: int = 5, seed: int = 0) -> tuple[float, float] | None:
    """Out-of-fold ROC AUC of an outcome-fitted blend with the learned score and without it
    (quality fixed at 0), prompt-grouped ``folds``-fold; None when a fold or the whole lacks
    both outcomes."""
    from sklearn.metrics import roc_auc_score

    y = (np.asarray(target, float) >= 0.5).astype(int)
    if len(set(y.tolist())) < 2 or len(set(groups)) < folds:
        return None
    fold = prompt_folds([str(g) for g in groups], folds, seed)
    H, q = np.asarray(heuristic, float), np.asarray(quality, float)
    oof = {"with": np.zeros(len(y)), "without": np.zeros(len(y))}
    for k in range(folds):
        train, test = fold != k, fold == k
        for name, values in (("with", q), ("without", np.zeros_like(q))):
            w = fit_blend(H[train], values[train], target[train], l2)
            z = w["bias"] + w["heuristic"] * H[test, 0] + w["quality"] * values[test] - w["penalty"] * H[test, 1]
            oof[name][test] = z
    return float(roc_auc_score(y, oof["with"])), float(roc_auc_score(y, oof["without"]))


def fit_blends(keys: Sequence[str], heuristic: np.ndarray, quality: np.ndarray, target: np.ndarray,
               l2: float = 1e-3, min_rows: int = 40, outcome: np.ndarray | None = None,
               groups: Sequence[Any] | None = None,
               tilt_groups: Sequence[Any] | None = None,
               outcome_groups: Sequence[Any] | None = None) -> dict[str, dict[str, float]]:
    """One :func:`fit_blend` per regime key with at least ``min_rows`` rows; "open/alone" always
    (all rows when it has too few). ``outcome`` marks rows with a real right/wrong label
    (RouterBench): a regime that has at least ``min_rows`` of them is fitted on them alone,
    since being right is what the blend must rank (a judge's grade is the softer proxy).
    ``groups`` (prompt of every row): graded-only regimes fit their direction pairwise.
    ``tilt_groups`` (prompt of every row): a regime fitted on outcomes that also has at least
    ``min_rows`` graded rows is turned toward the grades where that costs the outcomes' AUC
    nothing (:func:`tilt_toward_grades`).
    ``outcome_groups`` (prompt of every row): a regime fitted on outcomes keeps the learned score
    only when its prompt-grouped cross-validated ROC AUC on those rows is higher with it than
    without (:func:`learned_weight_cv`); otherwise it is refitted with the learned weight at 0.
    (Why: on two-option questions the learned score, which rewards care and length, adds nothing
    the peers' vote does not know, and a fitted weight there only adds noise.)"""
    keys_arr = np.asarray(keys)
    outcome = np.zeros(len(keys_arr), bool) if outcome is None else np.asarray(outcome, bool)
    out: dict[str, dict[str, float]] = {}
    for key in sorted(set(keys_arr.tolist())):
        rows = keys_arr == key
        graded_rows = rows & ~outcome
        on_outcomes = (rows & outcome).sum() >= min_rows
        if on_outcomes:
            rows = rows & outcome
        if rows.sum() >= min_rows:
            graded_only = not (rows & outcome).any()
            out[key] = fit_blend(heuristic[rows], quality[rows], target[rows], l2,
                                 groups=np.asarray(groups)[rows] if groups is not None and graded_only else None)
            if outcome_groups is not None and on_outcomes and out[key]["quality"] > 0:
                cv = learned_weight_cv(heuristic[rows], quality[rows], target[rows],
                                       np.asarray(outcome_groups)[rows], l2)
                if cv is not None:
                    if cv[0] <= cv[1]:
                        out[key] = fit_blend(heuristic[rows], np.zeros(int(rows.sum())), target[rows], l2)
                        out[key]["quality"] = 0.0
                    out[key].update(cv_auc_learned=round(cv[0], 4), cv_auc_without=round(cv[1], 4),
                                    learned_kept=bool(cv[0] > cv[1]))
            if tilt_groups is not None and on_outcomes and graded_rows.sum() >= min_rows:
                out[key] = tilt_toward_grades(
                    out[key], (heuristic[rows], quality[rows], target[rows]),
                    (heuristic[graded_rows], quality[graded_rows], target[graded_rows],
                     np.asarray(tilt_groups)[graded_rows]))
            n_outcomes = int((rows & outcome).sum())
            out[key]["source"] = ("right/wrong outcomes" if n_outcomes == rows.sum() else
                                  f"judge grades + {n_outcomes} right/wrong outcomes" if n_outcomes else "judge grades")
    if "open/alone" not in out:
        out["open/alone"] = fit_blend(heuristic, quality, target, l2)
        out["open/alone"]["source"] = "all rows"
    return out


# --------------------------------------------------------------------------- pipeline


@dataclass
class Fitted:
    alone: Q.LinearHead
    peers: Q.LinearHead
    combination: dict[str, dict[str, float]]
    alphas: dict[str, Any] = field(default_factory=dict)


def fit_pipeline(frame: pd.DataFrame, X_alone: np.ndarray, X_peers: np.ndarray, heur_alone: np.ndarray,
                 heur_peers: np.ndarray, keys_alone: Sequence[str], keys_peers: Sequence[str],
                 config: QualityConfig, outcome_rows: "OutcomeRows | None" = None) -> Fitted:
    """Heads and blend from the graded rows given (all from training prompts), plus RouterBench
    train rows with right/wrong outcomes for the blend (:func:`routerbench_rows`)."""
    y = frame["grade"].to_numpy(float)
    groups = frame["question_id"].tolist()
    alpha_a, scan_a = choose_alpha(X_alone, y, groups, config.alphas, config.folds, config.seed)
    alpha_p, scan_p = choose_alpha(X_peers, y, groups, config.alphas, config.folds, config.seed)
    oof_a = Q.grade_to_score(out_of_fold(X_alone, y, groups, alpha_a, config.folds, config.seed))
    oof_p = Q.grade_to_score(out_of_fold(X_peers, y, groups, alpha_p, config.folds, config.seed))
    head_a, head_p = fit_head(X_alone, y, alpha_a, groups), fit_head(X_peers, y, alpha_p, groups)
    keys = list(keys_alone) + list(keys_peers)
    heur = np.concatenate([heur_alone, heur_peers])
    qual = np.concatenate([oof_a, np.where([k.endswith("/peers") for k in keys_peers], oof_p, oof_a)])
    target = np.concatenate([Q.grade_to_score(y), Q.grade_to_score(y)])
    outcome = np.zeros(len(keys), bool)
    # each graded row twice (alone, with peers): the keys keep the two apart
    blend_groups = [f"{g}|alone" for g in groups] + [f"{g}|peers" for g in groups]
    if outcome_rows is not None and len(outcome_rows.target):
        # the heads never saw these rows, so their scores are out-of-sample already
        q_rb = outcome_rows.quality(head_a, head_p)
        keys += list(outcome_rows.keys)
        heur = np.concatenate([heur, outcome_rows.heuristic])
        qual = np.concatenate([qual, q_rb])
        target = np.concatenate([target, outcome_rows.target])
        outcome = np.concatenate([outcome, np.ones(len(q_rb), bool)])
        blend_groups += [f"rb:{g}" for g in outcome_rows.prompts]
    live = heur[:, 0] > 0   # heuristic 0 is a veto (normalized 0), so those rows do not shape the curve
    combination = fit_blends([k for k, m in zip(keys, live) if m], heur[live], qual[live], target[live],
                             config.blend_l2, outcome=outcome[live],
                             groups=[g for g, m in zip(blend_groups, live) if m] if config.pairwise_blend else None,
                             tilt_groups=[g for g, m in zip(blend_groups, live) if m] if config.tilt_blend else None,
                             outcome_groups=[g for g, m in zip(blend_groups, live) if m]
                             if config.cv_learned_weight else None)
    return Fitted(head_a, head_p, combination,
                  {"alone": alpha_a, "peers": alpha_p, "scan_alone": scan_a, "scan_peers": scan_p})


def predict(fitted: Fitted, X_alone: np.ndarray, X_peers: np.ndarray, heur_alone: np.ndarray,
            heur_peers: np.ndarray, keys_alone: Sequence[str], keys_peers: Sequence[str]) -> dict[str, np.ndarray]:
    """Learned scores and blended ``normalized`` figures, alone and with peers."""
    q_a = Q.grade_to_score(np.clip(fitted.alone.predict(X_alone), 1, 10))
    q_p = Q.grade_to_score(np.clip(fitted.peers.predict(X_peers), 1, 10))

    def blend(keys: Sequence[str], h: np.ndarray, q: np.ndarray) -> np.ndarray:
        out = np.zeros(len(h))
        for i, key in enumerate(keys):
            w = fitted.combination[Q.blend_key(fitted.combination, key)]
            z = w["bias"] + w["heuristic"] * h[i, 0] + w["quality"] * q[i] - w.get("penalty", 0.0) * h[i, 1]
            out[i] = 1.0 / (1.0 + np.exp(-z))
        return np.where(h[:, 0] > 0, out, 0.0)   # the evaluator's veto: heuristic 0 -> 0

    # as in the evaluator, rows where peers may not reach the learned score use the alone head
    q_used = np.where([k.endswith("/peers") for k in keys_peers], q_p, q_a)
    return {"quality_alone": q_a, "quality_peers": q_p, "combined_alone": blend(keys_alone, heur_alone, q_a),
            "combined_peers": blend(keys_peers, heur_peers, q_used)}


@dataclass
class OutcomeRows:
    """RouterBench train answers for the blend: features, heuristic, regime key, 0/1 target;
    ``peer_head`` marks the rows scored with the peer-aware head (as the evaluator would)."""

    keys: list[str]
    heuristic: np.ndarray
    target: np.ndarray
    X_alone: np.ndarray
    X_peers: np.ndarray
    peer_head: np.ndarray
    slices: list[str]
    prompts: list[str] = field(default_factory=list)   # "<slice>:<prompt id>" of every row

    def quality(self, head_alone: Q.LinearHead, head_peers: Q.LinearHead) -> np.ndarray:
        q_a = Q.grade_to_score(np.clip(head_alone.predict(self.X_alone), 1, 10))
        if not self.peer_head.any():
            return q_a
        q_p = Q.grade_to_score(np.clip(head_peers.predict(self.X_peers), 1, 10))
        return np.where(self.peer_head, q_p, q_a)


def routerbench_rows(data_dir: Path, config: QualityConfig, progress: Progress | None = None) -> OutcomeRows:
    """Rows (each answer alone and with its prompt's other answers as peers) from the RouterBench
    *train* slices, ``config.routerbench_prompts`` prompts each; their test slices stay unseen."""
    from routing.evaluation.answers import load_answers

    keys: list[str] = []
    heur, target, X_a, X_p, peer_head, slices, prompts = [], [], [], [], [], [], []
    for name in config.routerbench_slices:
        path = Path(data_dir) / f"{name}_train.csv"
        if not path.is_file():
            continue
        answers = load_answers(path)
        keep = answers["prompt_id"].drop_duplicates().sample(
            frac=1.0, random_state=config.seed).head(config.routerbench_prompts)
        answers = answers[answers["prompt_id"].isin(keep)].reset_index(drop=True)
        frame = pd.DataFrame({"question_id": answers["prompt_id"].astype(str), "prompt": answers["prompt"],
                              "answer": answers["answer"].fillna("").astype(str)})
        if progress:
            progress(f"RouterBench {name}: {len(frame)} answers")
        xa, xp = features(frame)
        h_a, k_a = heuristic_scores(frame, run_code=config.run_code)
        h_p, k_p = heuristic_scores(frame, run_code=config.run_code, peers=True)
        uses = np.array([_peer_head_applies(k, p) for k, p in zip(k_p, frame["prompt"])])
        k_p = [k.split("/")[0] + "/peers" if use else k for k, use in zip(k_p, uses)]
        y = answers["correct"].to_numpy(float)
        keys += list(k_a) + list(k_p)
        heur += [h_a, h_p]
        target += [y, y]
        X_a += [xa, xa]
        X_p += [xp, xp]
        peer_head += [np.zeros(len(y), bool), uses]
        slices += [name] * (2 * len(y))
        prompts += [f"{name}:{p}" for p in frame["question_id"]] * 2
    if not keys:
        empty = np.zeros(0)
        return OutcomeRows([], np.zeros((0, 2)), empty, np.zeros((0, len(Q.TEXT_FEATURES))),
                           np.zeros((0, len(Q.TEXT_FEATURES) + len(Q.PEER_FEATURES))), np.zeros(0, bool), [])
    return OutcomeRows(keys, np.concatenate(heur), np.concatenate(target), np.concatenate(X_a),
                       np.concatenate(X_p), np.concatenate(peer_head), slices, prompts)


def _peer_head_applies(key: str, prompt: str) -> bool:
    """Mirror of the evaluator's rule (:func:`routing.evaluation.evaluator.peer_head_applies`); ``key`` is the
    heuristic's key with peers ("/peers" when the peers voted on the answer's result)."""
    from routing.evaluation.prompt import analyze_prompt
    from routing.evaluation.evaluator import peer_head_applies

    base = key.split("/")[0]
    return peer_head_applies(base, bool(analyze_prompt(prompt).tests) if base == "code" else False,
                             key.endswith("/peers"))


def graded_peer_keys(frame: pd.DataFrame, keys_peers: Sequence[str]) -> list[str]:
    """Regime keys of the peer-aware rows as the evaluator forms them (the peer head counts)."""
    out = []
    for key, prompt in zip(keys_peers, frame["prompt"]):
        base = key.split("/")[0]
        out.append(base + ("/peers" if _peer_head_applies(key, prompt) else key[len(base):]))
    return out


# --------------------------------------------------------------------------- saving


def save_model(fitted: Fitted, out_dir: Path, report: dict[str, Any], config: QualityConfig) -> None:
    """``config.json``, ``model.safetensors`` (float16), ``README.md``, ``training_report.json``."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.asarray(v, np.float16) for k, v in
               {**fitted.alone.tensors("alone"), **fitted.peers.tensors("peers")}.items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": Q.FORMAT})
    conf = {
        "format": Q.FORMAT,
        "model_type": "router-quality-linear",
        "target": "GPT-4 reference-guided grade 1-10; score = (grade - 1) / 9",
        "text_features": list(Q.TEXT_FEATURES),
        "peer_features": list(Q.PEER_FEATURES),
        "min_peers": Q.MIN_PEERS,
        "alphas": {"alone": fitted.alphas.get("alone"), "peers": fitted.alphas.get("peers")},
        "combination": fitted.combination,
        "training": {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in asdict(config).items()},
    }
    (out_dir / "config.json").write_text(json.dumps(conf, indent=2) + "\n", encoding="utf-8")
    (out_dir / "training_report.json").write_text(json.dumps(report, indent=2, default=float) + "\n",
                                                  encoding="utf-8")
    (out_dir / "README.md").write_text(model_card(report, conf), encoding="utf-8")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and value == value else "n/a"


def model_card(report: dict[str, Any], conf: dict[str, Any]) -> str:
    test = report.get("test", {})
    rows = []
    for name in ("length", "heuristic", "quality_alone", "combined_alone", "quality_peers", "combined_peers"):
        m = test.get(name)
        if m:
            rows.append(f"| {name} | {_fmt(m['pairwise'])} | {_fmt(m['spearman'])} |")
    blend_rows = [f"| {k} | {w['bias']:.3f} | {w['heuristic']:.3f} | {w['quality']:.3f} | {w.get('penalty', 0):.3f} | "
                  f"{w['rows']} | "
                  f"{w.get('source', '')}"
                  + (f", turned toward the grades (graded pairwise {w['graded_pairwise']:.3f} -> "
                     f"{w['graded_pairwise_tilted']:.3f}, outcome AUC {w['outcome_auc']:.3f} -> "
                     f"{w['outcome_auc_tilted']:.3f})" if "graded_pairwise_tilted" in w else "")
                  + (f"; learned score {'kept' if w['learned_kept'] else 'dropped'} by CV (AUC "
                     f"{w['cv_auc_learned']:.4f} with it, {w['cv_auc_without']:.4f} without)"
                     if "learned_kept" in w else "") + " |"
                  for k, w in sorted(conf["combination"].items())]
    tilt_note = ("" if not any("graded_pairwise_tilted" in w for w in conf["combination"].values()) else
                 " A regime fitted on outcomes that also has graded training prompts is then turned\n"
                 "toward the learned score as far as the grades of those prompts gain while the outcomes'\n"
                 "ROC AUC does not fall (`--tilt-blend`, `training.quality.model.tilt_toward_grades`).")
    data = report.get("data", {})
    return f"""---
library_name: numpy
tags: [llm-router, answer-quality, evaluator]
---
# Answer-quality model (the evaluator's learned score)

Reads a (prompt, answer) pair and predicts the grade GPT-4 gives it (1-10, reference-guided,
"correctness and helpfulness"); the evaluator (`routing/evaluation/evaluator.py`) blends it with its
heuristics. Load with `routing.evaluation.quality.QualityModel("quality_model")`; train with
`python -m training.quality`.

## Model
Two linear heads on standardised features (float16 weights in `model.safetensors`;
`config.json` names the features), each trained pairwise (logistic regression on the feature
differences of same-prompt answers with different grades) and scaled to the grade by least squares:
- `alone`: {len(conf['text_features'])} text statistics of the answer ({', '.join(conf['text_features'])});
- `peers`: the same plus {', '.join(conf['peer_features'])} (word and character
  3-5-gram TF-IDF cosine, shared numbers and length against the other models' answers to the same
  prompt; at least {conf['min_peers']} peers).

Generic padding sentences (stock hedges and sign-offs that say nothing specific,
`routing.evaluation.penalties.filler_sentences`) are left out before the statistics, so padding
earns no length credit (the heuristics' `filler` penalty also subtracts points).

L2 strengths (C = 1 / alpha, prompt-grouped CV): alone {conf['alphas']['alone']}, peers {conf['alphas']['peers']}.
Frozen MiniLM embeddings of the answer (the selector's encoder) were tried and measured: as
features of the answer they did not improve prompt-disjoint agreement; as agreement with the
peers (mean embedding cosine) they added about as much to the peers head as the character
n-gram cosine does (+0.006 against +0.006 in head-level 5-fold CV, together no more) at ~70-90 ms
per answer on one CPU thread instead of a few milliseconds per group, so the model reads none.

## Data and split
`{_portable(data.get('graded'))}`: {data.get('rows')} graded answers to {data.get('prompts')} prompts
(Arena-Bench v1, Apache-2.0). Split **by prompt** (hash of `question_id`, frozen in
`test_split.json`): {data.get('train_prompts')} training prompts ({data.get('train_rows')} answers),
{data.get('test_prompts')} test prompts ({data.get('test_rows')} answers).

## Test metrics (held-out prompts)
Pairwise: share of non-tied (by GPT-4 grade) answer pairs to the same prompt ordered as GPT-4
orders them (score ties count half). Spearman: mean per prompt.

| scorer | pairwise | Spearman |
|---|---|---|
{chr(10).join(rows)}

`python -m routing.evaluation.benchmark --graded FILE` reports the same with 5-fold prompt-disjoint
cross-validation over all prompts.

## The evaluator's blend (fitted on training prompts, learned score out-of-fold)
`normalized = sigmoid(bias + heuristic * heuristic_normalized + quality * score - penalty * penalty_share)`
(penalty_share: the penalties' points over the applied dimensions' maximum), per regime, and 0
when the heuristics give 0 (empty, no valid option, penalties beyond the points: a veto; such
answers average 1.2 of 10 from GPT-4 in the data):

| regime | bias | heuristic | quality | penalty | rows | source |
|---|---|---|---|---|---|---|
{chr(10).join(blend_rows)}

`source` says what each was fitted on: where the RouterBench train slices (arc_challenge,
winograde, mbpp; {report.get('routerbench_rows', 0)} rows, each answer alone and with peers) have
right/wrong outcomes for a regime (choice: three or more options, binary: two, code: a prompt that
asks for one function), those rows alone fit it, and the learned score keeps a weight there only
where 5-fold prompt-grouped CV on those rows gives a higher ROC AUC with it than without; the others
(program: any other coding request; math; open) are fitted on the graded training prompts'
grades.{tilt_note} The heuristic figures it was fitted on are computed as the app
computes them: {"code answers run in the sandbox" if conf.get("training", {}).get("run_code", True)
                else "code answers NOT run (--no-run-code), unlike the app"}.

## Limits
- Trained on 14 models of 2023 (GPT-4, Claude 1/2, GPT-3.5, Llama-2, Mixtral, ...) graded by
  GPT-4: it learns what that judge rewards in their answers, which is partly style; newer
  models (reasoning models, long markdown answers) are outside the data.
- It cannot check facts: alone it ranks by signals of care and density; with peers it rewards
  saying what most other models say, which fails when the majority is wrong.
- English prompts mostly; answers are cut to {Q.MAX_CHARS} characters.

Trained {report.get('trained_at')} on {report.get('machine')} in {report.get('seconds')} s.
"""


# --------------------------------------------------------------------------- entry point


def train(graded: Path = DEFAULT_GRADED, out_dir: Path | None = DEFAULT_OUT,
          routerbench_dir: Path | None = DEFAULT_ROUTERBENCH, config: QualityConfig | None = None,
          progress: Progress | None = None) -> dict[str, Any]:
    """Train on the graded file's training prompts, test on its held-out prompts, fit the blend,
    save to ``out_dir`` (None: do not save). Returns the training report."""
    config = config or QualityConfig()
    say = progress or (lambda msg: log.info(msg))
    started = time.time()
    frame = load_graded(Path(graded))
    test_mask = np.array([is_test_prompt(q, config.test_fraction) for q in frame["question_id"]])
    if test_mask.all() or not test_mask.any():   # tiny tables: hold out at least one prompt
        first = frame["question_id"].iat[0]
        test_mask = (frame["question_id"] == first).to_numpy()
    say(f"{len(frame)} answers, {frame['question_id'].nunique()} prompts; features")
    X_a, X_p = features(frame)
    say("heuristic scores")
    h_a, k_a = heuristic_scores(frame, run_code=config.run_code)
    h_p, k_p = heuristic_scores(frame, run_code=config.run_code, peers=True)
    k_p = graded_peer_keys(frame, k_p)
    train_mask = ~test_mask
    tr = frame[train_mask].reset_index(drop=True)
    rb_rows = None
    if routerbench_dir is not None and Path(routerbench_dir).is_dir() and config.routerbench_prompts > 0:
        say("RouterBench train slices for the choice / code blend")
        rb_rows = routerbench_rows(Path(routerbench_dir), config, say)
    say("fitting heads and blend")
    fitted = fit_pipeline(tr, X_a[train_mask], X_p[train_mask], h_a[train_mask], h_p[train_mask],
                          [k for k, m in zip(k_a, train_mask) if m], [k for k, m in zip(k_p, train_mask) if m],
                          config, outcome_rows=rb_rows)
    te = frame[test_mask].reset_index(drop=True)
    pred = predict(fitted, X_a[test_mask], X_p[test_mask], h_a[test_mask], h_p[test_mask],
                   [k for k, m in zip(k_a, test_mask) if m], [k for k, m in zip(k_p, test_mask) if m])
    groups, grades = te["question_id"].tolist(), te["grade"].to_numpy(float)
    scorers = {"length": te["answer"].str.len().to_numpy(float), "heuristic": h_a[test_mask, 0], **pred}
    test_metrics = {}
    for name, values in scorers.items():
        pair, n_pairs = pairwise_agreement(groups, grades, values)
        rho, n_prompts = spearman_per_prompt(groups, grades, values)
        test_metrics[name] = {"pairwise": pair, "pairs": n_pairs, "spearman": rho, "prompts": n_prompts}
    report = {
        "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()} CPU ({platform.python_version()})",
        "seconds": round(time.time() - started, 1),
        "data": {"graded": str(graded), "rows": len(frame), "prompts": int(frame["question_id"].nunique()),
                 "train_rows": int(train_mask.sum()), "test_rows": int(test_mask.sum()),
                 "train_prompts": int(tr["question_id"].nunique()), "test_prompts": int(te["question_id"].nunique())},
        "alphas": fitted.alphas,
        "combination": fitted.combination,
        "routerbench_rows": int(len(rb_rows.target)) if rb_rows is not None else 0,
        "test": test_metrics,
    }
    if out_dir is not None:
        save_model(fitted, Path(out_dir), report, config)
        (Path(out_dir) / "test_split.json").write_text(json.dumps(
            {"test_fraction": config.test_fraction, "rule": "sha256(question_id)[:8] / 0xFFFFFFFF < fraction",
             "test_question_ids": sorted(te["question_id"].unique().tolist())}, indent=1) + "\n", encoding="utf-8")
        say(f"saved {out_dir}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graded", type=Path, default=DEFAULT_GRADED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--routerbench-dir", type=Path, default=DEFAULT_ROUTERBENCH)
    parser.add_argument("--routerbench-prompts", type=int, default=QualityConfig.routerbench_prompts,
                        help="prompts per RouterBench train slice for the blend (0: none)")
    parser.add_argument("--no-run-code", action="store_true")
    parser.add_argument("--tilt-blend", action="store_true",
                        help="turn outcome-fitted blends (code with peers) toward the judge's grades where "
                             "the outcomes' train AUC does not fall (measured in the README; off by default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.graded.is_file():
        print(f"graded file {args.graded} not found", file=sys.stderr)
        return 2
    refusal = None if args.no_run_code else measuring_refusal()
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    config = QualityConfig(routerbench_prompts=args.routerbench_prompts, run_code=not args.no_run_code,
                           tilt_blend=args.tilt_blend)
    report = train(args.graded, args.out, args.routerbench_dir, config, progress=print)
    for name, m in report["test"].items():
        print(f"{name:<16} pairwise {m['pairwise']:.3f}  spearman {m['spearman']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
