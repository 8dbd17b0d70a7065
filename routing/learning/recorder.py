"""Every answer becomes an outcome row, and people's ratings correct them.

:class:`AnswerRecorder` is handed each answer the app gives (the Ask chat, ``/query``,
``/query-specific``, the gateway): it returns an answer id at once and, in one background
thread, scores the answer with the evaluator and appends it to the outcome log as a
comparison of one result (``kind = "answer"``). A rating (thumbs up / down, or "another model
would have been better") names that id and is appended as a ``ratings`` row, overriding the
evaluator in the training export. The person's answer is never delayed by any of this.

Answers from the tiny local fallback model are not logged (it is not a pool model: nothing to
route to). ``ROUTER_LOG_ANSWERS=0`` turns logging off; ratings then have nothing to rate.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Mapping

from routing.errors import UserError
from routing.router import LOCAL_ANSWERER, QueryResult

log = logging.getLogger(__name__)

#: Answers waiting to be scored and written; past it new ones are not logged (and counted).
MAX_PENDING = 1000
#: Seconds a rating waits for its answer's row to be written.
RATING_WAIT_S = 30.0
RATINGS = {"up": 1, "down": -1, "": 0, None: 0, 1: 1, -1: -1, 0: 0, "+1": 1, "-1": -1}


def parse_rating(value: Any) -> int:
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, bool) or key not in RATINGS:
        raise UserError(f"rating must be \"up\", \"down\" or empty (got {value!r}).")
    return RATINGS[key]


def answer_id_from(value: Any) -> str:
    """The answer id in ``value`` (the gateway's ``chatcmpl-<id>`` or the bare id)."""
    if not isinstance(value, str) or not value.strip():
        raise UserError("Give the id of the answer you rate (it comes with each answer).")
    text = value.strip()
    text = text[len("chatcmpl-"):] if text.startswith("chatcmpl-") else text
    if not (8 <= len(text) <= 64 and all(c in "0123456789abcdef" for c in text)):
        raise UserError(f"{value!r} is not an answer id (ids look like chatcmpl-3f2a... or 3f2a...).")
    return text


class AnswerRecorder:
    """Logs answers in the background and takes ratings for them (one per process)."""

    def __init__(self, outcome_log: Any, pool: Any, *, enabled: bool = True, run_code: bool = True):
        self.log = outcome_log
        self.pool = pool
        self.enabled = enabled
        self.run_code = run_code
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer-log")
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self.counts = {"logged": 0, "dropped": 0, "failed": 0, "ratings": 0}

    # ------------------------------------------------------------------ answers
    def record(self, prompt: str, result: QueryResult, *, source: str, answer_id: str | None = None) -> str | None:
        """Queue ``result`` (the answer to ``prompt``) for the log; its id, or None when not logged.

        ``answer_id`` (32 hex characters) is used when given (the gateway names a stream before it ends).
        """
        if not self.enabled or result.answered_by == LOCAL_ANSWERER or result.answered_by not in self.pool:
            return None
        answer_id = answer_id or uuid.uuid4().hex
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self.counts["dropped"] += 1
                log.warning("answer log: %d answers waiting to be scored; this one is not logged", MAX_PENDING)
                return None
            future = self._executor.submit(self._write, answer_id, prompt, result, source)
            self._pending[answer_id] = future
        future.add_done_callback(lambda _f, key=answer_id: self._done(key))
        return answer_id

    def _done(self, answer_id: str) -> None:
        with self._lock:
            self._pending.pop(answer_id, None)

    def _write(self, answer_id: str, prompt: str, result: QueryResult, source: str) -> None:
        from routing.evaluator import evaluate  # the evaluator loads its model on first use

        try:
            ev = evaluate(prompt, result.response, run_code=self.run_code)
            model = result.answered_by
            self.log.record({
                "id": answer_id, "prompt": prompt, "selected_model": result.selected_model, "best_model": model,
                "router_correct": None, "selector": result.selector, "kind": "answer", "source": source,
                "results": {model: {"response": result.response, "error": None, "latency_ms": result.latency_ms,
                                    "first_token_ms": result.first_token_ms, "usage": result.usage, "cost_usd": result.cost_usd,
                                    "scores": ev.get("dimensions"), "total": ev.get("total"),
                                    "normalized": ev.get("normalized")}},
            })
            self.counts["logged"] += 1
        except Exception:  # noqa: BLE001 - logging an answer must never surface to the person asking
            self.counts["failed"] += 1
            log.exception("answer log: could not log answer %s", answer_id)
            raise

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued answer is written (tests, shutdown)."""
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            try:
                future.result(timeout)
            except Exception:  # noqa: BLE001 - already logged
                pass

    # ------------------------------------------------------------------ ratings
    def rate(self, answer_id: Any, rating: Any = "", better_model: Any = "", note: Any = "") -> dict[str, Any]:
        """Record a rating of one answer; a dict saying what was recorded. UserError for bad input."""
        answer = answer_id_from(answer_id)
        verdict = parse_rating(rating)
        better = (better_model or "").strip() if isinstance(better_model, str) else better_model
        if better:
            better = self.pool.get(str(better)).id  # UnknownModelError lists the valid ids
        if not isinstance(note, str):
            raise UserError("note must be text.")
        with self._lock:
            pending = self._pending.get(answer)
        if pending is not None:
            try:
                pending.result(RATING_WAIT_S)
            except Exception:  # noqa: BLE001 - the lookup below says it is missing
                pass
        if not self.enabled:
            raise UserError("Answers are not logged here (ROUTER_LOG_ANSWERS=0), so they cannot be rated.")
        self.log.record_rating(answer, rating=verdict, better_model=better or None, note=note[:2000])
        self.counts["ratings"] += 1
        return {"recorded": True, "answer_id": answer, "rating": {1: "up", -1: "down", 0: None}[verdict],
                "better_model": better or None}

    def summary(self) -> Mapping[str, Any]:
        with self._lock:
            waiting = len(self._pending)
        return {"enabled": self.enabled, "waiting": waiting, **self.counts}
