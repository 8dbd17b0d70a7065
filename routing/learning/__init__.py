"""The router learns from use: every answer logged and scored, people's ratings, shadow comparisons.

:class:`Learning` is what the entry points (the Ask chat, ``/query``, the gateway) call after an
answer: it hands the answer to :class:`~routing.learning.recorder.AnswerRecorder` (an id at
once, the scored row in the background) and lets
:class:`~routing.learning.shadow.ShadowSampler` sample it for a comparison with a second model.
Neither delays or changes the answer. Ratings come back through :meth:`Learning.rate`. The same
call records the answer in the service's metrics (:class:`routing.metrics.RouterMetrics`,
``Learning.metrics``, served at ``GET /metrics``).
"""

from __future__ import annotations

import logging
from typing import Any

from routing.learning.recorder import AnswerRecorder, answer_id_from, parse_rating
from routing.learning.retrain import Retrainer
from routing.learning.shadow import ShadowSampler
from routing.metrics import RouterMetrics
from routing.router import QueryResult

log = logging.getLogger(__name__)

__all__ = ["Learning", "AnswerRecorder", "ShadowSampler", "Retrainer", "answer_id_from", "parse_rating"]


class Learning:
    def __init__(self, settings: Any, router: Any, outcome_log: Any, pool: Any, reload: Any = None,
                 metrics: RouterMetrics | None = None):
        self.outcome_log = outcome_log
        self.metrics = metrics if metrics is not None else RouterMetrics()  # one registry per service
        self.recorder = AnswerRecorder(outcome_log, pool, enabled=settings.log_answers)
        self.shadow = ShadowSampler(router, outcome_log, settings)
        self.retrainer = Retrainer(settings, outcome_log, reload or (lambda: ""))

    def after_answer(self, prompt: str, result: QueryResult, *, source: str, single_turn: bool = True,
                     answer_id: str | None = None, **owner: Any) -> str | None:
        """Log ``result`` and maybe shadow it; the answer id (None when not logged). Never raises.

        ``owner=``: the scope the answer is given to (``routing.learning.outcome_log.gateway_scope``); by
        default the Gradio request being served (``current_owner``). Only that scope may rate it."""
        self.metrics.observe_answer(result, source=source)   # never raises
        try:
            found = self.recorder.record(prompt, result, source=source, answer_id=answer_id, **owner)
        except Exception:  # noqa: BLE001 - learning must never break an answer
            log.exception("learning: could not queue the answer")
            found = None
        try:
            self.shadow.maybe_shadow(prompt, result, single_turn=single_turn, timed_elsewhere=found is not None)
        except Exception:  # noqa: BLE001
            log.exception("learning: could not start a shadow comparison")
        try:   # ROUTER_ESCALATE: two models answered; their comparison is a label for free
            self.shadow.log_escalation(prompt, result)
        except Exception:  # noqa: BLE001
            log.exception("learning: could not log the escalation's comparison")
        try:
            self.retrainer.maybe_start()
        except Exception:  # noqa: BLE001
            log.exception("learning: could not start automatic retraining")
        result.answer_id = found
        return found

    def rate(self, answer_id: Any, rating: Any = "", better_model: Any = "", note: Any = "", *,
             rater: str | None = None) -> dict[str, Any]:
        """Rate an answer as ``rater`` (the caller's scope; see ``AnswerRecorder.rate``)."""
        return self.recorder.rate(answer_id, rating, better_model, note, rater=rater)

    def flush(self, timeout: float | None = 60.0) -> None:
        self.shadow.flush(timeout)
        self.recorder.flush(timeout)

    def summary(self) -> dict[str, Any]:
        return {"answers": dict(self.recorder.summary()), "shadow": self.shadow.summary(),
                "retraining": {"enabled": self.retrainer.enabled, "running": self.retrainer.running,
                               "text": self.retrainer.describe()}}
