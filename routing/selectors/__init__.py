"""Selectors: one class per strategy behind a small registry (RouteLLM style).

``rules``   keyword and pattern rules (routing/selectors/rules.py), also the training labeller.
``learned`` the fine-tuned transformer in ``selector_model/`` (routing/selectors/learned.py).
``auto``    learned when ``selector_model/`` loads and matches the pool, else rules with a warning.
"""

from __future__ import annotations

import logging

from routing.errors import UserError
from routing.pool import ModelPool
from routing.selectors.base import Selection, Selector
from routing.selectors.rules import RuleSelector
from routing.settings import Settings

log = logging.getLogger(__name__)

SELECTOR_NAMES = ("auto", "learned", "rules")


def _load_learned(settings: Settings, pool: ModelPool) -> Selector:
    from routing.selectors.learned import LearnedSelector  # torch/transformers only when needed

    return LearnedSelector(pool, settings.selector_dir, settings.label_encoder_file, fast_path=settings.fast_path)


def load_selector(settings: Settings, pool: ModelPool, name: str | None = None) -> tuple[Selector, str | None]:
    """Build the selector the settings ask for; return it with a warning for the user, if any."""
    name = (name or settings.selector).lower()
    if name not in SELECTOR_NAMES:
        raise UserError(f"Unknown selector {name!r}: use one of {', '.join(SELECTOR_NAMES)}.")
    if name == "rules":
        return RuleSelector(pool), None
    if name == "auto" and not settings.selector_dir.exists():
        return RuleSelector(pool), (
            f"No learned selector at {settings.selector_dir}: routing with the keyword rules. "
            "Train one in the Training tab or with `python -m training.pipeline`."
        )
    try:
        return _load_learned(settings, pool), None
    except Exception as exc:  # noqa: BLE001 - any load failure falls back, visibly
        if name == "learned":
            raise UserError(f"The learned selector could not be loaded: {exc}") from exc
        log.warning("learned selector unavailable: %s", exc)
        return RuleSelector(pool), f"Learned selector unavailable ({exc}); routing with the keyword rules."


__all__ = ["Selection", "Selector", "RuleSelector", "load_selector", "SELECTOR_NAMES"]
