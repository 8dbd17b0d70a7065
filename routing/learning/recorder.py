"""Every answer becomes an outcome row, and people's ratings correct them.

:class:`AnswerRecorder` is handed each answer the app gives (the Ask chat, ``/query``,
``/query-specific``, the gateway). Before :meth:`~AnswerRecorder.record` returns the answer's id,
the answer (prompt, response, model, usage, cost, times, and the scope of whoever got it) is in
the outcome log, synced to disk, as a comparison of one result (``kind = "answer"``) marked
unscored: an id that was handed out always names a row, whatever happens to the process next.
The evaluator scores it afterwards, in one background thread, and appends the scores
(``OutcomeLog.record_evaluation``). A process that starts finds the rows a previous one never
scored (``OutcomeLog.pending``: answers and shadow comparisons alike) and scores them in a
background thread of its own; until then the training export leaves them out (unless rated).

The router's fallbacks (the models it tried, or passed over, before the one that answered) go
with the answer, each with its cause (:func:`fallback_cause`: 429, timeout, server error, the
daily budget...), so the Traffic view can say when and why the router fell back.

A rating (thumbs up / down, or "another model would have been better") names that id and is
appended as a ``ratings`` row, overriding the evaluator in the training export. Only the scope
the answer was given to may rate it (the gateway key, the Gradio session or signed-in user:
``routing.learning.outcome_log.gateway_scope`` / ``gradio_scope``); anyone else is told the id does not
exist, so ids cannot be probed. Each rater may rate :data:`RATINGS_PER_WINDOW` times per
:data:`RATING_WINDOW_S` seconds (:class:`RatingRateLimited` past it), and a rater's latest
rating of an answer replaces their earlier one. The person's answer is never delayed by the
scoring.

Answers from the tiny local fallback model are not logged (it is not a pool model: nothing to
route to). ``ROUTER_LOG_ANSWERS=0`` turns logging off; ratings then have nothing to rate.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Mapping

from routing.errors import UserError
from routing.learning.outcome_log import current_owner
from routing.router import LOCAL_ANSWERER, QueryResult

log = logging.getLogger(__name__)

#: Answers waiting to be scored in this process; past it new ones are still logged (unscored) and
#: left for the next process's resume (counted as ``deferred``).
MAX_PENDING = 1000
#: Ratings one rater may make per window (sliding), and the window in seconds.
RATINGS_PER_WINDOW = 20
RATING_WINDOW_S = 60.0
#: Raters whose recent ratings are remembered at most (the least recently active go first).
MAX_RATERS = 10_000
RATINGS = {"up": 1, "down": -1, "": 0, None: 0, 1: 1, -1: -1, 0: 0, "+1": 1, "-1": -1}
_AMBIENT = object()


class RatingRateLimited(UserError):
    """Too many ratings from one rater; ``retry_after_s``: when the next one is taken."""

    def __init__(self, retry_after_s: float, limit: int, window_s: float):
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"Too many ratings: at most {limit} every {window_s:g} seconds from one caller. "
                         f"Try again in {self.retry_after_s} s.")


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window_s`` seconds per key (a sliding window)."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_RATERS):
        self.limit, self.window_s, self._clock, self.max_keys = int(limit), float(window_s), clock, max_keys
        self._events: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one event for ``key``; None when allowed, else the seconds until one is."""
        now = self._clock()
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and now - events[0] >= self.window_s:
                events.popleft()
            self._events[key] = events                     # the most recently active last
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
            if len(events) >= self.limit:
                return self.window_s - (now - events[0])
            events.append(now)
            return None


#: Why the router went past a model (:func:`fallback_cause`), as stored with an answer's fallbacks.
FALLBACK_CAUSES = ("rate_limited", "timeout", "server_error", "client_error", "key_refused", "connection",
                   "malformed", "too_large", "budget", "cooldown", "deadline", "no_key", "error")
#: Characters of a fallback's error message kept in the log (the cause says why; this is for diagnosis).
FALLBACK_ERROR_CHARS = 300


def fallback_cause(entry: Mapping[str, Any]) -> str:
    """The cause of one of the router's fallback entries (``QueryResult.fallbacks``: ``model``,
    ``error``, ``status``, ``skipped``), one of :data:`FALLBACK_CAUSES`. A skipped model was
    passed over without a call (no key, cooling down, the deadline, the daily budget); the others
    were called and failed (by HTTP status, else what the client's message says happened)."""
    error = str(entry.get("error") or "").lower()
    status = entry.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    if entry.get("skipped"):
        if "spending limit" in error or "spend ledger" in error or "cannot be bounded" in error:
            return "budget"
        if "cooling down" in error:
            return "cooldown"
        if "deadline" in error:
            return "deadline"
        if "same key was refused" in error:
            return "key_refused"
        return "no_key"
    if status == 429:
        return "rate_limited"
    if status in (401, 402, 403):
        return "key_refused"
    if status == 408 or "timed out" in error or "did not finish answering" in error:
        return "timeout"
    if status is not None and status >= 500 and "malformed" not in error:
        return "server_error"
    if "malformed" in error or "ended before the answer was complete" in error:
        return "malformed"
    if status is not None and status >= 400:
        return "client_error"
    if "could not connect" in error or "broke mid-answer" in error or "connection" in error:
        return "connection"
    if "too large" in error:
        return "too_large"
    return "error"


def fallback_records(fallbacks: Any) -> list[dict[str, Any]]:
    """An answer's fallbacks as the outcome log stores them: each ``model``, ``cause``
    (:func:`fallback_cause`), ``status``, ``skipped`` and the start of the error message."""
    out = []
    for entry in fallbacks or []:
        if not isinstance(entry, Mapping):
            continue
        status = entry.get("status")
        out.append({"model": str(entry.get("model") or ""), "cause": fallback_cause(entry),
                    "status": status if isinstance(status, int) and not isinstance(status, bool) else None,
                    "skipped": bool(entry.get("skipped")),
                    "error": str(entry.get("error") or "")[:FALLBACK_ERROR_CHARS]})
    return out


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


def score_comparison(outcome_log: Any, comparison: Mapping[str, Any], *, run_code: bool = True) -> bool:
    """Score a comparison logged unscored (an answer, a shadow comparison) and append the scores.

    One answer is scored alone (``evaluate``), several together (``evaluate_group``, each the
    others' peer, the winner by ``decide_winner``: none on a tie or with one answer), as when they
    were scored before logging.
    False when there was nothing to score or another process scored it first.
    """
    from routing.compare.run import ModelOutcome, decide_winner
    from routing.evaluation.evaluator import evaluate, evaluate_group  # the evaluator loads its model on first use

    prompt = comparison["prompt"]
    answered = {m: r for m, r in (comparison.get("results") or {}).items() if not r.get("error")}
    if not answered:
        return False
    if comparison.get("kind") == "answer" and len(answered) == 1:
        (model, r), = answered.items()
        ev = evaluate(prompt, r.get("response") or "", run_code=run_code)
        scored = {model: {"scores": ev.get("dimensions"), "total": ev.get("total"), "normalized": ev.get("normalized")}}
        return outcome_log.record_evaluation(comparison["id"], scored, best_model=model)
    evaluations = evaluate_group(prompt, {m: r.get("response") or "" for m, r in answered.items()}, run_code=run_code)
    scored, outcomes = {}, {}
    for model, r in answered.items():
        ev = evaluations[model]
        scored[model] = {"scores": ev.get("dimensions"), "total": ev.get("total"), "normalized": ev.get("normalized")}
        o = ModelOutcome(model, model)
        o.response, o.normalized, o.total, o.cost_usd = r.get("response"), ev["normalized"], ev["total"], r.get("cost_usd")
        outcomes[model] = o
    best, _tied, _why = decide_winner(outcomes)
    selected = comparison.get("selected_model")
    return outcome_log.record_evaluation(comparison["id"], scored, best_model=best,
                                         router_correct=None if best is None or selected is None else best == selected)


class AnswerRecorder:
    """Logs answers (at once, unscored), scores them in the background, takes ratings (one per process)."""

    def __init__(self, outcome_log: Any, pool: Any, *, enabled: bool = True, run_code: bool = True,
                 resume: bool = True, ratings_per_window: int = RATINGS_PER_WINDOW,
                 rating_window_s: float = RATING_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.log = outcome_log
        self.pool = pool
        self.enabled = enabled
        self.run_code = run_code
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer-log")
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self.limiter = SlidingWindowLimiter(ratings_per_window, rating_window_s, clock=clock)
        self.counts = {"logged": 0, "scored": 0, "deferred": 0, "failed": 0, "resumed": 0, "ratings": 0,
                       "rate_limited": 0}
        self._resumer: threading.Thread | None = None
        if resume:   # also with answers off: shadow comparisons are logged all the same
            self.resume()

    # ------------------------------------------------------------------ answers
    def record(self, prompt: str, result: QueryResult, *, source: str, answer_id: str | None = None,
               owner: Any = _AMBIENT) -> str | None:
        """Write ``result`` (the answer to ``prompt``) to the log, unscored and synced to disk, and
        queue its scoring; its id, or None when not logged.

        ``answer_id`` (32 hex characters) is used when given (the gateway names a stream before it
        ends). ``owner``: the scope it is given to (``gateway_scope`` / ``gradio_scope``); default
        the Gradio request being served, else None (the app's own code: the CLI, tests).
        """
        if not self.enabled or result.answered_by == LOCAL_ANSWERER or result.answered_by not in self.pool:
            return None
        answer_id = answer_id or uuid.uuid4().hex
        owner = current_owner() if owner is _AMBIENT else owner
        model = result.answered_by
        try:
            self.log.record({
                "id": answer_id, "prompt": prompt, "selected_model": result.selected_model, "best_model": model,
                "router_correct": None, "selector": result.selector, "kind": "answer", "source": source,
                "fallbacks": fallback_records(result.fallbacks),
                "results": {model: {"response": result.response, "error": None, "latency_ms": result.latency_ms,
                                    "first_token_ms": result.first_token_ms, "usage": result.usage,
                                    "cost_usd": result.cost_usd}},
            }, owner=owner, pending=True, durable=True)
        except Exception:  # noqa: BLE001 - logging an answer must never surface to the person asking
            self.counts["failed"] += 1
            log.exception("answer log: could not log answer %s", answer_id)
            return None
        self.counts["logged"] += 1
        row = {"id": answer_id, "prompt": prompt, "kind": "answer", "selected_model": result.selected_model,
               "results": {model: {"response": result.response, "error": None, "cost_usd": result.cost_usd}}}
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self.counts["deferred"] += 1
                log.warning("answer log: %d answers waiting to be scored; %s is scored by the next start",
                            MAX_PENDING, answer_id)
                return answer_id
            future = self._executor.submit(self._score, row)
            self._pending[answer_id] = future
        future.add_done_callback(lambda _f, key=answer_id: self._done(key))
        return answer_id

    def _done(self, answer_id: str) -> None:
        with self._lock:
            self._pending.pop(answer_id, None)

    def _score(self, comparison: Mapping[str, Any]) -> None:
        try:
            if score_comparison(self.log, comparison, run_code=self.run_code):
                self.counts["scored"] += 1
        except Exception:  # noqa: BLE001 - the row stays, unscored; the next start tries again
            self.counts["failed"] += 1
            log.exception("answer log: could not score %s", comparison.get("id"))
            raise

    def resume(self) -> None:
        """Score, in a background thread, the rows an earlier process logged but never scored."""
        def run() -> None:
            try:
                rows = self.log.pending()
            except Exception:  # noqa: BLE001 - an unreadable log: nothing to resume
                log.exception("answer log: could not read the rows left unscored")
                return
            for row in rows:
                try:
                    if score_comparison(self.log, row, run_code=self.run_code):
                        self.counts["resumed"] += 1
                except Exception:  # noqa: BLE001
                    self.counts["failed"] += 1
                    log.exception("answer log: could not score %s (left from an earlier run)", row.get("id"))

        # A daemon thread: a short process (the batch command) is not kept alive by it; what it
        # leaves unscored stays pending for the next start.
        self._resumer = threading.Thread(target=run, name="answer-log-resume", daemon=True)
        self._resumer.start()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued answer is scored, and the resume is done (tests, shutdown)."""
        if self._resumer is not None:
            self._resumer.join(timeout)
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            try:
                future.result(timeout)
            except Exception:  # noqa: BLE001 - already logged
                pass

    # ------------------------------------------------------------------ ratings
    def rate(self, answer_id: Any, rating: Any = "", better_model: Any = "", note: Any = "", *,
             rater: str | None = None) -> dict[str, Any]:
        """Record a rating of one answer; a dict saying what was recorded. UserError for bad input.

        ``rater``: the caller's scope (``gateway_scope`` / ``gradio_scope``). Only the scope the
        answer was given to may rate it: another scope gets the "No answer" error of an unknown
        id. Every entry point passes one; None is the app's own code (tests, scripts), which
        rates only rows it wrote itself (owner None). RatingRateLimited past the rater's limit.
        """
        if rater is not None:
            wait = self.limiter.hit(rater)
            if wait is not None:
                self.counts["rate_limited"] += 1
                raise RatingRateLimited(wait, self.limiter.limit, self.limiter.window_s)
        answer = answer_id_from(answer_id)
        verdict = parse_rating(rating)
        better = (better_model or "").strip() if isinstance(better_model, str) else better_model
        if better:
            better = self.pool.get(str(better)).id  # UnknownModelError lists the valid ids
        if not isinstance(note, str):
            raise UserError("note must be text.")
        if not self.enabled:
            raise UserError("Answers are not logged here (ROUTER_LOG_ANSWERS=0), so they cannot be rated.")
        self.log.record_rating(answer, rating=verdict, better_model=better or None, note=note[:2000],
                               rater=rater, owner=rater)
        self.counts["ratings"] += 1
        return {"recorded": True, "answer_id": answer, "rating": {1: "up", -1: "down", 0: None}[verdict],
                "better_model": better or None}

    def summary(self) -> Mapping[str, Any]:
        with self._lock:
            waiting = len(self._pending)
        return {"enabled": self.enabled, "waiting": waiting, **self.counts}
