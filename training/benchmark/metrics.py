"""Metrics for routers judged on an outcome table (quality, cost, curves, AIQ, APGR, CPT).

Conventions (one source for the benchmark and its tests):

* a *router* is a choice of one model per test prompt; its quality is the mean realised score,
  its cost the mean realised cost per prompt;
* a *curve* is the (cost, quality) points of a router family swept over the cost knob;
* AIQ (RouterBench): area under the non-decreasing upper convex hull of the curve, with the
  origin (0, 0) included and the hull held flat up to a common ``max_cost``, divided by
  ``max_cost`` - compare AIQ values within one report;
* APGR (RouteLLM, two models): the performance gap recovered, ``(q - q_weak) / (q_strong -
  q_weak)``, averaged over the share of prompts sent to the strong model from 0 to 1; CPT(x) is
  the smallest strong share that recovers x of the gap.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def realised(scores: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """Per-prompt score (or cost) of the chosen model."""
    return scores[np.arange(len(choice)), choice]


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> list[float]:
    """Percentile bootstrap CI of the mean of per-prompt values."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    return [float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))]


def paired_diff_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> list[float]:
    """Bootstrap CI of mean(a - b) resampling prompts (paired)."""
    return bootstrap_ci(np.asarray(a, float) - np.asarray(b, float), n_boot, seed)


def cost_aware_choice(pred: np.ndarray, model_cost: np.ndarray, lam: float) -> np.ndarray:
    """Pick argmax of predicted quality - lam x normalised cost; ties go to the cheaper model.

    ``model_cost`` is one cost per model (K,) or a predicted cost per prompt and model (n, K);
    either way it is normalised by the priciest model's mean cost, so lambda has one scale.
    """
    cost = np.asarray(model_cost, dtype=float)
    per_model = cost if cost.ndim == 1 else cost.mean(axis=0)
    top = per_model.max()
    norm = cost / top if top > 0 else np.zeros_like(cost)
    if norm.ndim == 1:
        norm = norm[None, :]
    utility = pred - lam * norm
    # Tie-break on cost: subtract a tiny cost-proportional amount.
    utility = utility - 1e-9 * norm
    return np.argmax(utility, axis=1)


DEFAULT_LAMBDAS = np.concatenate([[0.0], np.logspace(-4, 2, 241)])


def sweep(pred: np.ndarray, scores: np.ndarray, costs: np.ndarray, model_cost: np.ndarray,
          lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> list[dict[str, float]]:
    """(lambda, cost, quality) for the cost knob swept over ``lambdas`` (duplicates removed)."""
    points = []
    seen = set()
    for lam in lambdas:
        choice = cost_aware_choice(pred, model_cost, float(lam))
        key = choice.tobytes()
        if key in seen:
            continue
        seen.add(key)
        points.append({"lambda": float(lam), "cost": float(realised(costs, choice).mean()),
                       "quality": float(realised(scores, choice).mean())})
    return points


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-decreasing upper convex hull of (cost, quality) points, starting at the origin."""
    pts = sorted(set([(0.0, 0.0)] + [(float(c), float(q)) for c, q in points]))
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    # Keep it non-decreasing: stop at the highest quality (beyond it, stay flat).
    best = max(range(len(hull)), key=lambda i: (hull[i][1], -hull[i][0]))
    return hull[:best + 1]


def aiq(points: Sequence[tuple[float, float]], max_cost: float) -> float:
    """Area under the non-decreasing hull, flat after its top, on [0, max_cost], over max_cost."""
    if max_cost <= 0:
        return float(max(q for _, q in points)) if points else float("nan")
    hull = upper_hull(points)
    xs = [c for c, _ in hull]
    ys = [q for _, q in hull]
    if xs[-1] < max_cost:
        xs.append(max_cost)
        ys.append(ys[-1])
    xs_arr, ys_arr = np.array(xs), np.array(ys)
    inside = xs_arr <= max_cost
    if not inside.all():  # cut the hull at max_cost
        y_cut = float(np.interp(max_cost, xs_arr, ys_arr))
        xs_arr = np.append(xs_arr[inside], max_cost)
        ys_arr = np.append(ys_arr[inside], y_cut)
    return float(np.trapezoid(ys_arr, xs_arr) / max_cost)


def cost_to_reach(points: Sequence[dict[str, float]], target_quality: float, tol: float = 1e-12) -> float | None:
    """Lowest cost among curve points whose quality reaches ``target_quality`` (None if none)."""
    ok = [p["cost"] for p in points if p["quality"] >= target_quality - tol]
    return min(ok) if ok else None


def pgr_curve(rank_score: np.ndarray, scores: np.ndarray, strong: int, weak: int) -> tuple[np.ndarray, np.ndarray]:
    """Strong-model share x (0..1, n+1 points) and the gap recovered when the top-x prompts by
    ``rank_score`` (higher = more in need of the strong model) go to the strong model."""
    n = len(rank_score)
    order = np.argsort(-np.asarray(rank_score, float), kind="stable")
    s_strong = scores[order, strong]
    s_weak = scores[order, weak]
    # quality when the first k go strong: sum strong[:k] + sum weak[k:]
    gain = np.concatenate([[0.0], np.cumsum(s_strong - s_weak)])
    quality = (s_weak.sum() + gain) / n
    q_strong, q_weak = scores[:, strong].mean(), scores[:, weak].mean()
    gap = q_strong - q_weak
    x = np.arange(n + 1) / n
    pgr = (quality - q_weak) / gap if gap != 0 else np.full(n + 1, np.nan)
    return x, pgr


def apgr(rank_score: np.ndarray, scores: np.ndarray, strong: int, weak: int) -> float:
    x, pgr = pgr_curve(rank_score, scores, strong, weak)
    return float(np.trapezoid(pgr, x))


def cpt(rank_score: np.ndarray, scores: np.ndarray, strong: int, weak: int, target: float) -> float | None:
    """Smallest strong-model share that recovers ``target`` (e.g. 0.5) of the gap."""
    x, pgr = pgr_curve(rank_score, scores, strong, weak)
    hit = np.nonzero(pgr >= target - 1e-12)[0]
    return float(x[hit[0]]) if len(hit) else None


def random_apgr(scores: np.ndarray, strong: int, weak: int, draws: int = 200, seed: int = 0) -> float:
    """APGR of routing at random (mean over seeded random orders; 0.5 in expectation)."""
    rng = np.random.default_rng(seed)
    return float(np.mean([apgr(rng.random(len(scores)), scores, strong, weak) for _ in range(draws)]))


def aiq_diff_samples(pred_a: np.ndarray, knob_a: np.ndarray, pred_b: np.ndarray, knob_b: np.ndarray,
                     scores: np.ndarray, costs: np.ndarray, max_cost: float, n_boot: int = 500, seed: int = 0,
                     lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> np.ndarray:
    """Paired bootstrap draws of AIQ(a) - AIQ(b), resampling prompts.

    Each router's choice at every knob setting is fixed (it does not depend on which prompts are
    drawn), so a resample only re-averages the realised quality and cost of those choices.
    """
    def realised_matrix(pred: np.ndarray, knob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        choices = np.unique(np.stack([cost_aware_choice(pred, knob, float(lam)) for lam in lambdas]), axis=0)
        rows = np.arange(len(scores))
        return scores[rows, choices], costs[rows, choices]      # (settings, n) each

    qa, ca = realised_matrix(pred_a, knob_a)
    qb, cb = realised_matrix(pred_b, knob_b)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(scores), len(scores))
        a = aiq(list(zip(ca[:, idx].mean(axis=1), qa[:, idx].mean(axis=1))), max_cost)
        b = aiq(list(zip(cb[:, idx].mean(axis=1), qb[:, idx].mean(axis=1))), max_cost)
        diffs.append(a - b)
    return np.asarray(diffs, float)


def aiq_diff_ci(pred_a: np.ndarray, knob_a: np.ndarray, pred_b: np.ndarray, knob_b: np.ndarray,
                scores: np.ndarray, costs: np.ndarray, max_cost: float, n_boot: int = 500, seed: int = 0,
                lambdas: Sequence[float] = DEFAULT_LAMBDAS) -> list[float]:
    """Paired bootstrap 95% CI of AIQ(a) - AIQ(b), resampling test prompts (:func:`aiq_diff_samples`)."""
    diffs = aiq_diff_samples(pred_a, knob_a, pred_b, knob_b, scores, costs, max_cost, n_boot, seed, lambdas)
    return [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]
