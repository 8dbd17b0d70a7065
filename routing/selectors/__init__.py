"""Selectors: one class per strategy behind a small registry (RouteLLM style).

``prior``   the evidence prior (routing/selectors/prior.py): public ratings of the pool's models,
            the prompt's kind and difficulty; what ``selector_model/`` ships.
``learned`` whatever selector folder ROUTER_SELECTOR_DIR holds: the prior, an embedding head or a
            fine-tuned classifier trained on outcomes (routing/selectors/learned.py).
``rules``   keyword and pattern rules (routing/selectors/rules.py): the fallback, and the
            training labeller.
``auto``    ``learned`` when the folder loads and matches the pool, else the rules with a warning.
"""

from __future__ import annotations

import logging

from routing.errors import UserError
from routing.pool import ModelPool
from routing.selectors.base import Selection, Selector
from routing.selectors.rules import RuleSelector
from routing.settings import Settings

log = logging.getLogger(__name__)

SELECTOR_NAMES = ("auto", "prior", "learned", "rules")


def _load_learned(settings: Settings, pool: ModelPool, folder=None) -> Selector:
    from routing.selectors.prior import PriorSelector, is_prior_dir   # numpy; the encoder when built

    folder = folder or settings.selector_dir
    if is_prior_dir(folder):
        return PriorSelector(pool, folder, fast_path=settings.fast_path)
    from routing.selectors.learned import LearnedSelector  # torch/transformers only when needed

    return LearnedSelector(pool, folder, settings.label_encoder_file, fast_path=settings.fast_path)


def load_selector(settings: Settings, pool: ModelPool, name: str | None = None) -> tuple[Selector, str | None]:
    """Build the selector the settings ask for; return it with a warning for the user, if any."""
    name = (name or settings.selector).lower()
    if name not in SELECTOR_NAMES:
        raise UserError(f"Unknown selector {name!r}: use one of {', '.join(SELECTOR_NAMES)}.")
    if name == "rules":
        return RuleSelector(pool), None
    if name == "prior":
        from routing.selectors.prior import is_prior_dir
        from routing.settings import DEFAULT_SELECTOR_DIR

        folder = settings.selector_dir if is_prior_dir(settings.selector_dir) else DEFAULT_SELECTOR_DIR
        try:
            return _load_learned(settings, pool, folder), None
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"The evidence prior could not be loaded from {folder}: {exc}") from exc
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
