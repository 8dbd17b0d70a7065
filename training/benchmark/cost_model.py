"""Expected cost of each model on each prompt, learned from TRAIN's per-prompt costs.

A model's price per prompt is not one number: input tokens grow with the prompt (a 5-shot
prompt costs several times a one-liner) and output tokens with the task (code answers are
long). The selector's cost knob trades predicted success against the *expected cost on this
prompt*, so :class:`CostModel` predicts ``log(cost)`` per model with a ridge regression on the
prompt's sentence embedding plus its length (characters, log and linear), its strength chosen
per model by leave-one-out CV - fitted on TRAIN, applied to any new prompt. Models without usable costs fall back to their mean cost.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_FLOOR = 1e-12   # costs are clipped here before the log (free models stay ~0)


def length_features(prompts: Sequence[str]) -> np.ndarray:
    """(n, 2): log1p(characters) and characters / 10,000 - the prompt-length part of the cost."""
    chars = np.array([len(p) for p in prompts], dtype=float)
    return np.c_[np.log1p(chars), chars / 1e4]


class CostModel:
    """``fit(X, prompts, costs)`` with costs (n, K) in USD (NaN = unknown); ``predict`` -> (n, K)."""

    def __init__(self, alphas: Sequence[float] = (0.1, 1.0, 10.0)):
        self.alphas = tuple(alphas)
        self.models: list = []
        self.fallback = np.zeros(0)

    def _features(self, X: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        return np.c_[np.asarray(X, float), length_features(prompts)]

    def fit(self, X: np.ndarray, prompts: Sequence[str], costs: np.ndarray) -> "CostModel":
        from sklearn.linear_model import RidgeCV

        costs = np.asarray(costs, float)
        F = self._features(X, prompts)
        known = np.isfinite(costs)
        col = np.where(known, costs, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
        self.fallback = col
        self.models = []
        for j in range(costs.shape[1]):
            ok = np.isfinite(costs[:, j]) & (costs[:, j] >= 0)
            if ok.sum() < 5:
                self.models.append(None)
                continue
            y = np.log(np.maximum(costs[ok, j], _FLOOR))
            self.models.append(RidgeCV(alphas=self.alphas).fit(F[ok], y))
        return self

    def predict(self, X: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        F = self._features(X, prompts)
        out = np.tile(self.fallback, (len(F), 1))
        for j, m in enumerate(self.models):
            if m is not None:
                out[:, j] = np.exp(np.clip(m.predict(F), np.log(_FLOOR), 50.0))
        return out
