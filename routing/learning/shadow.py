"""Shadow comparisons: a sampled answer is also asked of one other model, in the background.

With ``ROUTER_SHADOW_RATE`` (the share of answers sampled) and ``ROUTER_SHADOW_BUDGET_USD``
(dollars per UTC day; without it there are no shadows), a sampled single-turn request is sent
once more, after the person has their answer, to the model that should teach the selector the
most: the one the outcome log has seen least on prompts of the same kind (the rules' category:
coding, maths, creative, ...), the better ranked on a tie. Prompts in the held-out test slice
(:mod:`routing.learning.slices`, never trained on) are asked of *every* other model instead, so
the release gate can compare any two selectors there on complete outcomes. The answers are
scored together by the evaluator (each the others' peer) and logged as one comparison
(``kind = "shadow"``), which the training export reads like any other.

The budget is a ledger of its own (``<ROUTER_DATA_DIR>/shadow_spend.sqlite3``): the most the
call can cost (:func:`routing.budget.cost_bound`: every byte of the prompt as a token, the
answer's ``max_tokens`` out) is held before it is made and its real cost recorded after, so
shadows never pass the cap, in any language, however many run at once. The call also counts
against the app's daily limit (``ROUTER_DAILY_BUDGET_USD``), as every paid call does. The
person's answer is never delayed or changed: shadows run in their own threads, and any failure
is only logged.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from routing.budget import SpendLedger, cost_bound, input_token_bound
from routing.errors import ProviderError, SpendLimitError, UserError
from routing.learning.slices import in_test_slice
from routing.router import QueryResult
from routing.selectors.rules import top_category

log = logging.getLogger(__name__)

SHADOW_LEDGER = "shadow_spend.sqlite3"


class ShadowSampler:
    def __init__(self, router: Any, outcome_log: Any, settings: Any, *,
                 rng: Callable[[], float] = random.random, workers: int = 2):
        self.router = router
        self.log = outcome_log
        self.rate = float(settings.shadow_rate or 0.0)
        self.ledger = SpendLedger(settings.data_dir, settings.shadow_budget_usd, filename=SHADOW_LEDGER,
                                  setting="ROUTER_SHADOW_BUDGET_USD")
        self.max_tokens = settings.max_tokens
        self.holdout_share = float(settings.holdout_share)
        self._rng = rng
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shadow")
        self._lock = threading.Lock()
        self._seen: Counter | None = None
        self._futures: list = []
        self.counts = {"sampled": 0, "logged": 0, "over_budget": 0, "failed": 0}

    @property
    def active(self) -> bool:
        return self.rate > 0 and self.ledger.daily_limit is not None

    def describe(self) -> str:
        if self.rate <= 0:
            return "Shadow comparisons are off (ROUTER_SHADOW_RATE=0)."
        if self.ledger.daily_limit is None:
            return (f"ROUTER_SHADOW_RATE is {self.rate:g} but no ROUTER_SHADOW_BUDGET_USD is set: no shadow "
                    "comparisons run without a budget.")
        return (f"Shadow comparisons: {self.rate:.0%} of answers are also asked of one other model. "
                + self.ledger.describe())

    # ------------------------------------------------------------------ choosing
    def _observed(self) -> Counter:
        """Answers in the log per (prompt kind, model)."""
        with self._lock:
            if self._seen is None:
                seen: Counter = Counter()
                try:
                    for c in self.log.comparisons():
                        kind = top_category(c.get("prompt") or "")
                        seen.update((kind, m) for m, r in c["results"].items() if not r.get("error"))
                except Exception:  # noqa: BLE001 - an unreadable log only makes the choice less informed
                    log.exception("shadow: could not read the outcome log")
                self._seen = seen
            return self._seen

    def _others(self, result: QueryResult) -> list[str]:
        return [m for m in result.ranking if m != result.answered_by and m in self.router.pool
                and self.router._can_try(m, explicit=False)]

    def choose(self, result: QueryResult, prompt: str = "") -> str | None:
        """The model to shadow ``result`` with, or None when none can be asked."""
        candidates = self._others(result)
        if not candidates:
            return None
        seen, kind = self._observed(), top_category(prompt)
        return min(candidates, key=lambda m: (seen[(kind, m)], candidates.index(m)))

    # ------------------------------------------------------------------ running
    def maybe_shadow(self, prompt: str, result: QueryResult, *, single_turn: bool = True,
                     timed_elsewhere: bool = False) -> bool:
        """Sample this answer for a shadow comparison; True when one was started (in the background).

        ``timed_elsewhere``: the answer log already holds this call's times, so the comparison
        leaves them out (a restart's latency knob would count the call twice otherwise)."""
        if not self.active or not single_turn or self._rng() >= self.rate:
            return False
        if in_test_slice(prompt, self.holdout_share):
            models = self._others(result)        # the held-out slice: every model, for the gate
        else:
            one = self.choose(result, prompt)
            models = [one] if one else []
        holds = []
        tokens_in = input_token_bound(prompt)  # ask_model sends the prompt as one user message
        for model in models:
            spec = self.router.pool.get(model)
            try:  # held now, so that concurrent shadows cannot pass the cap together
                holds.append((model, self.ledger.reserve(model, cost_bound(spec, tokens_in, self.max_tokens))))
            except SpendLimitError:
                self.counts["over_budget"] += 1
                break
        if not holds:
            return False
        self.counts["sampled"] += 1
        future = self._executor.submit(self._run, prompt, result, holds, timed_elsewhere)
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()] + [future]
        return True

    def _ask(self, model: str, prompt: str, hold: Any) -> Any | None:
        try:
            other = self.router.ask_model(model, prompt, max_tokens=self.max_tokens)
        except (ProviderError, UserError) as exc:
            self.ledger.settle(hold, None, failed=True)
            self.counts["failed"] += 1
            log.info("shadow: %s did not answer: %s", model, exc)
            return None
        except BaseException:
            self.ledger.settle(hold, None)
            raise
        self.ledger.settle(hold, other.cost_usd)
        return other

    def _run(self, prompt: str, result: QueryResult, holds: list[tuple[str, Any]],
             timed_elsewhere: bool = False) -> None:
        from routing.learning.recorder import score_comparison

        others = {model: self._ask(model, prompt, hold) for model, hold in holds}
        others = {m: o for m, o in others.items() if o is not None}
        if not others:
            return
        try:
            # The routed call's times are logged with its answer when the answer log has it: one
            # call, one sample for the latency a restarted knob starts from.
            timed = not timed_elsewhere
            entries = {result.answered_by: {"response": result.response, "error": None,
                                            "latency_ms": result.latency_ms if timed else None,
                                            "first_token_ms": result.first_token_ms if timed else None,
                                            "usage": result.usage, "cost_usd": result.cost_usd}}
            for m, o in others.items():
                entries[m] = {"response": o.text, "error": None, "latency_ms": o.latency_ms, "usage": o.usage,
                              "cost_usd": o.cost_usd}
            # The paid answers are on disk before the evaluator starts (it can take long, and the
            # process may die meanwhile): the row is written unscored, owned by no caller (a shadow
            # is the app's own comparison), and scored next; a later start scores it if this never does.
            comparison = {"prompt": prompt, "selected_model": result.selected_model, "best_model": None,
                          "router_correct": None, "selector": result.selector, "kind": "shadow",
                          "source": "shadow", "results": entries}
            comparison["id"] = self.log.record(comparison, owner=None, pending=True, durable=True)
            with self._lock:
                if self._seen is not None:
                    kind = top_category(prompt)
                    self._seen.update((kind, m) for m in entries)
            self.counts["logged"] += 1
        except Exception:  # noqa: BLE001 - never surfaces to anyone; the log says why
            self.counts["failed"] += 1
            log.exception("shadow: logging the comparison failed")
            return
        try:
            score_comparison(self.log, comparison, run_code=True)
        except Exception:  # noqa: BLE001 - the row stays, unscored; the next start scores it
            self.counts["failed"] += 1
            log.exception("shadow: scoring the comparison failed")

    def log_escalation(self, prompt: str, result: QueryResult) -> bool:
        """An escalated answer (``ROUTER_ESCALATE``: two models answered the same prompt) goes to the
        outcome log as a comparison, as a shadow's does: a label for free. Scored in the background
        (the evaluator may run the answers' code); True when it was queued."""
        esc = result.escalation or {}
        answers = esc.get("answers") or {}
        if not esc.get("asked") or len(answers) != 2:
            return False
        first, second = esc["from"], esc["to"]
        extra = esc.get("extra_cost_usd")
        costs = {second: extra, first: (None if result.cost_usd is None or extra is None else result.cost_usd - extra)}
        entries = {m: {"response": answers[m], "error": None, "latency_ms": None, "usage": {},
                       "cost_usd": costs.get(m)} for m in (first, second)}
        comparison = {"prompt": prompt, "selected_model": result.selected_model, "best_model": None,
                      "router_correct": None, "selector": result.selector, "kind": "escalation",
                      "source": "escalation", "results": entries}

        def run() -> None:
            from routing.learning.recorder import score_comparison

            try:
                comparison["id"] = self.log.record(comparison, owner=None, pending=True, durable=True)
                score_comparison(self.log, comparison, run_code=True)
            except Exception:  # noqa: BLE001 - never surfaces to anyone; the log says why
                log.exception("escalation: logging the comparison failed")

        future = self._executor.submit(run)
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()] + [future]
        return True

    def flush(self, timeout: float | None = None) -> None:
        with self._lock:
            futures = list(self._futures)
        for future in futures:
            try:
                future.result(timeout)
            except Exception:  # noqa: BLE001
                pass

    def summary(self) -> dict[str, Any]:
        return {"rate": self.rate, "active": self.active, **self.counts, "spend": self.ledger.summary(),
                "text": self.describe()}
