"""Fit the evidence prior's few parameters on public data; write the folder the app loads.

    python -m training.prior --out selector_model [--sets routerbench,llmrouter,...]

1. **Topics**: a softmax classifier on the bundled MiniLM embedding from labelled public prompts
   (:func:`training.prior.data.topic_examples`), its accuracy measured on a held-out fifth.
2. **Link and difficulty**: on each outcome table's train split, with the rated models' public
   ratings, a one-parameter IRT fit: ``p = sigmoid(slope * (r_m(x) - 1300) / 100 - b_i)`` with a
   difficulty ``b_i`` per prompt (normal prior) and one ``slope`` for all tables; then a ridge
   regression from the embedding to ``b_i`` so a new prompt's difficulty is predicted.
Models without a public rating do not take part in the fit.
3. **Novelty**: 4,096 training prompts kept as exemplars and the familiarity below which 1% of
   held-out training prompts fall (:func:`fit_novelty`,
   :mod:`routing.selectors.novelty`): a prompt under it is flagged as unlike the training data.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from routing.selectors import prior as pr
from routing.selectors.novelty import FLAG_SHARE, N_EXEMPLARS, Novelty
from training.benchmark.outcomes import OutcomeTable

log = logging.getLogger(__name__)

DIFFICULTY_PRIOR_SD = 2.0      # logit units: how far a prompt's difficulty may be from 0 a priori
ELO_SLOPE = np.log(10) / 4     # 100 rating points = this many logits in a pairwise vote (the start)


def _held_out(texts: Sequence[str], share: float = 0.2) -> np.ndarray:
    return np.array([int(hashlib.sha256(t.encode("utf-8", "replace")).hexdigest()[:8], 16) / 0xFFFFFFFF < share
                     for t in texts])


def fit_topics(X: np.ndarray, labels: Sequence[str], C: float = 4.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Softmax weights (hidden, topics) and biases; the report has the held-out accuracy."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([pr.TOPICS.index(lab) for lab in labels])
    hold = _held_out([str(i) + str(lab) for i, lab in enumerate(labels)])
    probe = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(X[~hold], y[~hold])
    acc = float((probe.predict(X[hold]) == y[hold]).mean())
    per_topic = {t: float((probe.predict(X[hold & (y == i)]) == i).mean()) if (hold & (y == i)).any() else None
                 for i, t in enumerate(pr.TOPICS)}
    model = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(X, y)
    W = np.zeros((X.shape[1], len(pr.TOPICS)))
    b = np.zeros(len(pr.TOPICS))
    W[:, model.classes_] = model.coef_.T
    b[model.classes_] = model.intercept_
    report = {"examples": int(len(y)), "per_topic": {t: int((y == i).sum()) for i, t in enumerate(pr.TOPICS)},
              "held_out_accuracy": round(acc, 4), "held_out_recall": per_topic, "C": C}
    return W, b, report


@dataclass
class LinkData:
    """One outcome table as the link fit reads it: rated models only."""

    name: str
    X: np.ndarray
    texts: list[str]
    scores: np.ndarray        # (n, K_rated)
    ratings: pr.Ratings       # of those models


def _topic_params(W: np.ndarray, b: np.ndarray) -> pr.PriorParams:
    return pr.PriorParams(W, b, np.zeros(W.shape[0]), 0.0, ELO_SLOPE)


def fit_link(items: Sequence[LinkData], W: np.ndarray, bias: np.ndarray, rounds: int = 12
             ) -> tuple[float, list[np.ndarray]]:
    """The common slope and each table's per-prompt difficulties (MAP)."""
    params = _topic_params(W, bias)
    slope = ELO_SLOPE
    diffs = [np.zeros(len(it.texts)) for it in items]
    topics = [pr.topic_probabilities(params, it.X) for it in items]
    for _ in range(rounds):
        rel = []
        for t, it in enumerate(items):
            mix = pr.category_mix(topics[t], it.texts, pr.sigmoid(diffs[t]))
            rel.append((mix @ it.ratings.R.T - pr.REFERENCE) / 100.0)          # (n, K)
        for t, it in enumerate(items):                                          # difficulties
            seen = ~np.isnan(it.scores)
            y = np.nan_to_num(it.scores)
            b = diffs[t]
            for _ in range(10):
                p = pr.sigmoid(slope * rel[t] - b[:, None])
                grad = ((y - p) * seen).sum(axis=1) + b / DIFFICULTY_PRIOR_SD ** 2   # of the loss
                hess = (p * (1 - p) * seen).sum(axis=1) + 1 / DIFFICULTY_PRIOR_SD ** 2
                b = b - grad / hess
            diffs[t] = b
        for _ in range(10):                                                     # the slope
            g = h = 0.0
            for t, it in enumerate(items):
                seen = ~np.isnan(it.scores)
                y = np.nan_to_num(it.scores)
                p = pr.sigmoid(slope * rel[t] - diffs[t][:, None])
                g += float((((y - p) * rel[t]) * seen).sum()) / max(1, seen.sum())
                h += float(((p * (1 - p) * rel[t] ** 2) * seen).sum()) / max(1, seen.sum())
            slope = max(0.05, slope + g / max(h, 1e-9))
    return float(slope), diffs


def fit_difficulty(Xs: Sequence[np.ndarray], diffs: Sequence[np.ndarray], alpha: float | None = None
                   ) -> tuple[np.ndarray, float, dict]:
    """Ridge from the embedding to difficulty, each table weighing the same in total."""
    from sklearn.linear_model import Ridge, RidgeCV

    X = np.vstack(Xs)
    y = np.concatenate(diffs)
    w = np.concatenate([np.full(len(d), 1.0 / len(d)) for d in diffs]) * len(y) / len(diffs)
    if alpha is None:
        alpha = float(RidgeCV(alphas=np.logspace(-2, 3, 11)).fit(X, y, sample_weight=w).alpha_)
    model = Ridge(alpha=alpha).fit(X, y, sample_weight=w)
    r = float(np.corrcoef(model.predict(X), y)[0, 1]) if len(y) > 2 else float("nan")
    return model.coef_.astype(np.float64), float(model.intercept_), {"alpha": alpha, "train_corr": round(r, 3)}


def link_data(name: str, table: OutcomeTable, X: np.ndarray, ratings: pr.Ratings) -> LinkData | None:
    """The table restricted to its rated models (None when fewer than two are rated)."""
    keep = [k for k in range(len(table.models)) if ratings.known[k]]
    if len(keep) < 2:
        return None
    sub = pr.Ratings([ratings.models[k] for k in keep], ratings.R[keep], ratings.halfwidth[keep],
                     ratings.known[keep], [ratings.names[k] for k in keep])
    return LinkData(name, X, list(table.prompts), table.scores[:, keep], sub)


def fit_prior(topic_X: np.ndarray, topic_labels: Sequence[str], items: Sequence[LinkData],
              info: Mapping[str, Any] | None = None, *, topic_C: float = 4.0,
              difficulty_alpha: float | None = None) -> pr.PriorParams:
    """All the prior's parameters from labelled prompts and rated outcome tables."""
    W, b, topic_report = fit_topics(topic_X, topic_labels, C=topic_C)
    slope, diffs = fit_link(items, W, b)
    diff_w, diff_b, diff_report = fit_difficulty([it.X for it in items], diffs, difficulty_alpha)
    params = pr.PriorParams(W, b, diff_w, diff_b, slope, {
        "topics": topic_report, "difficulty": diff_report, "slope": round(slope, 4),
        "outcome_tables": {it.name: {"prompts": len(it.texts), "rated_models": it.ratings.models} for it in items},
        **dict(info or {})})
    return params


def fit_novelty(X: np.ndarray, *, n_exemplars: int = N_EXEMPLARS, flag_share: float = FLAG_SHARE,
                held_out: float = 0.1, seed: int = 0) -> Novelty:
    """Exemplars drawn from ``1 - held_out`` of the training embeddings ``X`` (unit rows), and the
    familiarity below which ``flag_share`` of the held-out rest falls (the threshold). The figures
    (``info``) say how many exemplars, what the held-out prompts' familiarities look like, and what
    share of all the fitting prompts (not only the exemplars) the threshold flags."""
    X = np.asarray(X, np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_held = max(1, int(round(held_out * len(X))))
    held, fit = X[order[:n_held]], X[order[n_held:]]
    keep = fit[rng.choice(len(fit), min(n_exemplars, len(fit)), replace=False)]
    model = Novelty(keep, 0.0)
    model.save_precision()   # score with the int8 vectors that ship
    held_sims = model.familiarity(held)
    model.threshold = float(np.quantile(held_sims, flag_share))
    model.info = {"exemplars": int(len(keep)), "training_prompts": int(len(X)), "held_out": int(n_held),
                  "flag_share_target": flag_share,
                  "held_out_familiarity": {"p01": round(float(np.quantile(held_sims, 0.01)), 4),
                                           "p10": round(float(np.quantile(held_sims, 0.10)), 4),
                                           "median": round(float(np.median(held_sims)), 4)},
                  "fitting_prompts_flagged": round(float(np.mean(model.familiarity(fit) < model.threshold)), 4)}
    return model
