"""The selector interface: score every pool model for a prompt, then decide.

A selector only has to implement :meth:`Selector.score`; the decision (quality minus
lambda x normalised price, excluded models, confidence, reason) is shared here so the
rule-based and learned selectors explain themselves the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, asdict
from typing import Any, Mapping, Sequence

import numpy as np

from routing.errors import UserError
from routing.pool import ModelPool


@dataclass
class Selection:
    """The routing decision for one prompt."""

    prompt: str
    selected_model: str
    confidence: float                 # the selector's probability for the selected model
    scores: dict[str, float]          # every pool model's predicted quality / probability
    ranking: list[str]                # models best first, after the cost trade-off and exclusions
    runner_up: str | None
    reasoning: str
    selector: str                     # which selector decided ("rules", "learned")
    cost_weight: float = 0.0
    quality_pick: str = ""            # the pick at cost_weight 0 (before the slider)
    excluded: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    route: str | None = None          # the route from examples that decided (routing/routes/), None: the selector
    route_similarity: float | None = None  # that route's similarity to the prompt (its threshold is in details)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EVIDENCE_KEYS = ("topics", "rating_mix", "looks_hard", "fail_chance_at_1300", "models", "evidence", "unrated_models",
                 "novelty")


def evidence_of(selection: "Selection") -> dict[str, Any] | None:
    """The evidence behind a decision of the evidence prior (what the prompt looks like, how hard,
    each model's chance and the ratings it came from), for ``/query`` and ``/v1/route``; None for
    selectors that decide on other grounds."""
    details = selection.details or {}
    if selection.selector != "prior" or "models" not in details:
        return None
    return {k: details[k] for k in EVIDENCE_KEYS if k in details}


def ranked(utility: Sequence[float], prices: Sequence[float]) -> list[int]:
    """Model indices best first: higher utility, then cheaper, then pool order (the one tie-break)."""
    return sorted(range(len(utility)), key=lambda i: (-utility[i], prices[i], i))


def normalised_latencies(pool: ModelPool, latencies: Mapping[str, float | None] | None) -> np.ndarray:
    """Each model's observed latency / the slowest observed, in [0, 1]; a model not yet observed
    gets the median of the observed ones (0 for all when none is)."""
    values = np.array([np.nan if (latencies or {}).get(m) is None else float(latencies[m]) for m in pool.ids])
    known = values[~np.isnan(values)]
    if not len(known) or known.max() <= 0:
        return np.zeros(len(values))
    values = np.where(np.isnan(values), float(np.median(known)), values)
    return values / known.max()


def normalised_prices(pool: ModelPool) -> np.ndarray:
    """Blended prices scaled to [0, 1] by the priciest model (all zeros if all are free)."""
    prices = np.array([m.blended_price_per_m for m in pool.models], dtype=float)
    top = prices.max() if len(prices) else 0.0
    return prices / top if top > 0 else np.zeros_like(prices)


class Selector(ABC):
    """Scores every model of a pool for prompts. Subclasses implement :meth:`score`."""

    name: str = "base"

    def __init__(self, pool: ModelPool):
        self.pool = pool

    @abstractmethod
    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """Return an array (len(prompts), len(pool)) of predicted quality in [0, 1]."""

    def explain(self, prompt: str, row: np.ndarray) -> tuple[str, dict[str, Any]]:
        """A selector-specific sentence on why the scores look like this, plus details."""
        return "", {}

    def select(self, prompt: str, *, cost_weight: float = 0.0, exclude: Sequence[str] = (),
               latency_weight: float = 0.0, latencies: Mapping[str, float | None] | None = None) -> Selection:
        return self.select_many([prompt], cost_weight=cost_weight, exclude=exclude, latency_weight=latency_weight,
                                latencies=latencies)[0]

    def select_many(self, prompts: Sequence[str], *, cost_weight: float = 0.0,
                    exclude: Sequence[str] = (), latency_weight: float = 0.0,
                    latencies: Mapping[str, float | None] | None = None) -> list[Selection]:
        """Decide for many prompts with one batched :meth:`score` call.

        ``latency_weight`` (0-1, like ``cost_weight``) trades the score against each model's
        observed latency (``latencies``: model id -> median ms of its recent calls, None where
        not yet observed), normalised by the slowest observed; a model never observed counts as
        the median of the observed ones.
        """
        ids = self.pool.ids
        for model_id in exclude:
            self.pool.get(model_id)  # raises UnknownModelError with the valid ids
        allowed = np.array([i not in set(exclude) for i in ids])
        if not allowed.any():
            raise UserError("Every model is excluded: leave at least one model to route to.")
        if not 0.0 <= float(cost_weight) <= 1.0:
            raise UserError(f"cost_weight must be between 0 (pure quality) and 1 (cheapest), got {cost_weight}.")
        if not 0.0 <= float(latency_weight) <= 1.0:
            raise UserError(f"latency_weight must be between 0 (ignore latency) and 1 (fastest), got {latency_weight}.")
        if not prompts:
            return []
        matrix = np.asarray(self.score(list(prompts)), dtype=float)
        prices = normalised_prices(self.pool)
        slowness = normalised_latencies(self.pool, latencies) if latency_weight > 0 else None
        return [self._decide(p, row, prices, float(cost_weight), allowed, list(exclude),
                             float(latency_weight), slowness, latencies)
                for p, row in zip(prompts, matrix)]

    def _decide(self, prompt: str, row: np.ndarray, prices: np.ndarray, cost_weight: float,
                allowed: np.ndarray, exclude: list[str], latency_weight: float = 0.0,
                slowness: np.ndarray | None = None, latencies: Mapping[str, float | None] | None = None) -> Selection:
        ids = self.pool.ids
        utility = row - cost_weight * prices
        without_latency = None
        if slowness is not None:
            base = np.where(allowed, utility, -np.inf)
            without_latency = ids[ranked(base, prices)[0]]
            utility = utility - latency_weight * slowness
        utility = np.where(allowed, utility, -np.inf)
        quality = np.where(allowed, row, -np.inf)
        # Stable tie-break: higher utility, then cheaper, then pool order.
        order = ranked(utility, prices)
        ranking = [ids[i] for i in order if allowed[i]]
        q_order = ranked(quality, prices)
        quality_pick = ids[q_order[0]]
        chosen = ranking[0]
        runner_up = ranking[1] if len(ranking) > 1 else None
        why, details = self.explain(prompt, row)
        reasoning = self._reason(row, chosen, runner_up, quality_pick, cost_weight, exclude, why)
        if slowness is not None:
            reasoning += " " + self._latency_reason(chosen, without_latency, latency_weight, latencies or {})
            details = {**details, "latency_weight": latency_weight,
                       "latency_ms": {m: latencies.get(m) for m in ids} if latencies else {},
                       "latency_changed_pick": without_latency != chosen}
        return Selection(
            prompt=prompt, selected_model=chosen, confidence=float(row[ids.index(chosen)]),
            scores={i: float(s) for i, s in zip(ids, row)}, ranking=ranking, runner_up=runner_up,
            reasoning=reasoning, selector=self.name, cost_weight=cost_weight,
            quality_pick=quality_pick, excluded=exclude, details=details,
        )

    def _latency_reason(self, chosen: str, without: str | None, weight: float,
                        latencies: Mapping[str, float | None]) -> str:
        def ms(model: str) -> str:
            value = latencies.get(model)
            return "not yet observed" if value is None else f"{value / 1000:.1f} s"

        if not any(v is not None for v in latencies.values()):
            return f"The latency slider ({weight:.2f}) had nothing to weigh: no model's latency is observed yet."
        if without and without != chosen:
            slow, fast = self.pool.get(without), self.pool.get(chosen)
            return (f"The latency slider ({weight:.2f}) changed the pick: {slow.display_name} would rank first "
                    f"without it, but its recent median latency is {ms(without)} against "
                    f"{fast.display_name}'s {ms(chosen)}.")
        return f"The latency slider ({weight:.2f}) did not change the pick (recent median {ms(chosen)})."

    def _reason(self, row: np.ndarray, chosen: str, runner_up: str | None, quality_pick: str,
                cost_weight: float, exclude: list[str], why: str) -> str:
        ids = self.pool.ids
        score = dict(zip(ids, row))
        name = self.pool.get(chosen).display_name
        parts = [f"{name} ({chosen}) scores {score[chosen]:.0%}"]
        if runner_up:
            parts[0] += f"; runner-up {self.pool.get(runner_up).display_name} at {score[runner_up]:.0%}"
            if score[runner_up] > score[chosen]:
                up = self.pool.get(runner_up)
                parts[0] += (f" (higher, but ranked second once price counts: ${up.blended_price_per_m:.3f}/M tokens "
                             f"against ${self.pool.get(chosen).blended_price_per_m:.3f}/M)")
        parts[0] += "."
        if why:
            parts.append(why)
        if quality_pick != chosen:
            qp = self.pool.get(quality_pick)
            parts.append(
                f"The cost slider ({cost_weight:.2f}) changed the pick: {qp.display_name} scores higher "
                f"({score[quality_pick]:.0%}) but costs ${qp.blended_price_per_m:.3f}/M tokens against "
                f"${self.pool.get(chosen).blended_price_per_m:.3f}/M."
            )
        elif cost_weight > 0:
            parts.append(f"The cost slider ({cost_weight:.2f}) did not change the pick.")
        if exclude:
            parts.append(f"Excluded by you: {', '.join(exclude)}.")
        return " ".join(parts)
