"""When the router asks a stronger model too, and which answer it keeps (issue 30, item 2).

Two triggers, each a setting:

* **unsure**: the selector's predicted quality of its top two models differs by less than
  ``ROUTER_ESCALATE_MARGIN`` (default 0.05; the scores are each model's chance of a good answer);
* **weak**: the evaluator (``routing.evaluation.evaluate``, without running code, so it adds no
  sandbox time) scores the first answer below ``ROUTER_ESCALATE_MIN_SCORE`` (default 0.45, on its
  0-1 scale).

The model asked next is the **next one up by predicted quality**: of the models the selector
scores above the one that answered, the lowest (a step up, not a jump to the priciest). The router
keeps the answer the evaluator scores higher; within its noise (``TIE_MARGIN``) it keeps the first,
which cost less. The second call is reserved in the spend ledger like any other, so a daily cap
or ``max_cost_usd`` stops it (the answer says so) and it never overshoots a budget.

Streams are decided before the first token is sent, by a stated rule: the *unsure* trigger sends
the request to the next model up instead (one call, not two); the *weak* trigger, which needs the
whole answer, applies to answers that are not streamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

DEFAULT_MARGIN = 0.05
DEFAULT_MIN_SCORE = 0.45


@dataclass(frozen=True)
class EscalationPolicy:
    enabled: bool = False
    margin: float = DEFAULT_MARGIN
    min_score: float = DEFAULT_MIN_SCORE

    @classmethod
    def for_settings(cls, settings: Any) -> "EscalationPolicy":
        return cls(bool(getattr(settings, "escalate", False)),
                   float(getattr(settings, "escalate_margin", DEFAULT_MARGIN)),
                   float(getattr(settings, "escalate_min_score", DEFAULT_MIN_SCORE)))


def quality_margin(selection: Any) -> float | None:
    """The selector's predicted-quality gap between its two best-scored models (None with one)."""
    scores = sorted((float(v) for v in (selection.scores or {}).values()), reverse=True)
    return scores[0] - scores[1] if len(scores) > 1 else None


def next_model_up(selection: Any, answered: str, exclude: Sequence[str] = ()) -> str | None:
    """Of the models the selector scores above ``answered`` (and not excluded), the lowest-scored:
    the next step up in predicted quality; None when ``answered`` is already the best."""
    scores = selection.scores or {}
    base = float(scores.get(answered, 0.0))
    above = [(float(v), m) for m, v in scores.items() if float(v) > base and m != answered and m not in exclude]
    return min(above)[1] if above else None


def unsure(selection: Any, policy: EscalationPolicy) -> str | None:
    """Why the decision is unsure (the *unsure* trigger), or None."""
    gap = quality_margin(selection)
    if gap is None or gap >= policy.margin:
        return None
    top = sorted(selection.scores, key=lambda m: -float(selection.scores[m]))[:2]
    return (f"unsure: the selector's predicted quality of {top[0]} and {top[1]} differs by {gap:.3f}, "
            f"below {policy.margin:g} (ROUTER_ESCALATE_MARGIN)")


def answer_score(prompt: str, answer: str) -> float:
    """The evaluator's 0-1 score of an answer, without running its code."""
    from routing.evaluation.evaluator import evaluate

    return float(evaluate(prompt, answer or "", run_code=False)["normalized"])


def weak(score: float, policy: EscalationPolicy) -> str | None:
    if score >= policy.min_score:
        return None
    return f"weak: the evaluator scored the answer {score:.2f}, below {policy.min_score:g} (ROUTER_ESCALATE_MIN_SCORE)"


def keep_second(first_score: float, second_score: float) -> bool:
    """Whether the stronger model's answer replaces the first: only when it scores higher by more
    than the evaluator's noise (a tie keeps the first, cheaper answer)."""
    from routing.evaluation.evaluator import TIE_MARGIN

    return second_score > first_score + TIE_MARGIN


__all__ = ["EscalationPolicy", "quality_margin", "next_model_up", "unsure", "answer_score", "weak", "keep_second",
           "DEFAULT_MARGIN", "DEFAULT_MIN_SCORE"]
