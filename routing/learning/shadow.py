"""Shadow comparisons: a sampled answer is also asked of one other model, in the background.

With ``ROUTER_SHADOW_RATE`` (the share of answers sampled) and ``ROUTER_SHADOW_BUDGET_USD``
(dollars per UTC day; without it there are no shadows), a sampled single-turn request is sent
once more, after the person has their answer, to the model that should teach the selector the
most: of the next models in the ranking (up to three), the one the outcome log has seen least,
the better ranked on a tie. Both answers are scored together by the evaluator (each the other's
peer) and logged as a comparison of two (``kind = "shadow"``), which the training export reads
like any other.

The budget is a ledger of its own (``<ROUTER_DATA_DIR>/shadow_spend.sqlite3``): the call's
estimated cost is held before it is made and its real cost recorded after, so shadows stop at
the cap exactly, however many run at once. The call also counts against the app's daily limit
(``ROUTER_DAILY_BUDGET_USD``), as every paid call does. The person's answer is never delayed
or changed: shadows run in their own threads, and any failure is only logged.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from routing.budget import SpendLedger, estimate_cost
from routing.errors import ProviderError, SpendLimitError, UserError
from routing.router import QueryResult

log = logging.getLogger(__name__)

SHADOW_LEDGER = "shadow_spend.sqlite3"
#: Models after the answering one that a shadow may go to (best ranked first).
CANDIDATES = 3


class ShadowSampler:
    def __init__(self, router: Any, outcome_log: Any, settings: Any, *,
                 rng: Callable[[], float] = random.random, workers: int = 2):
        self.router = router
        self.log = outcome_log
        self.rate = float(settings.shadow_rate or 0.0)
        self.ledger = SpendLedger(settings.data_dir, settings.shadow_budget_usd, filename=SHADOW_LEDGER,
                                  setting="ROUTER_SHADOW_BUDGET_USD")
        self.max_tokens = settings.max_tokens
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
        with self._lock:
            if self._seen is None:
                seen: Counter = Counter()
                try:
                    for c in self.log.comparisons():
                        seen.update(m for m, r in c["results"].items() if not r.get("error"))
                except Exception:  # noqa: BLE001 - an unreadable log only makes the choice less informed
                    log.exception("shadow: could not read the outcome log")
                self._seen = seen
            return self._seen

    def choose(self, result: QueryResult) -> str | None:
        """The model to shadow ``result`` with, or None when none can be asked."""
        candidates = [m for m in result.ranking if m != result.answered_by and m in self.router.pool
                      and self.router._can_try(m, explicit=False)][:CANDIDATES]
        if not candidates:
            return None
        seen = self._observed()
        return min(candidates, key=lambda m: (seen[m], candidates.index(m)))

    # ------------------------------------------------------------------ running
    def maybe_shadow(self, prompt: str, result: QueryResult, *, single_turn: bool = True) -> bool:
        """Sample this answer for a shadow comparison; True when one was started (in the background)."""
        if not self.active or not single_turn or self._rng() >= self.rate:
            return False
        model = self.choose(result)
        if model is None:
            return False
        spec = self.router.pool.get(model)
        try:  # held now, so that concurrent shadows cannot pass the cap together
            hold = self.ledger.reserve(model, estimate_cost(spec, len(prompt), self.max_tokens))
        except SpendLimitError:
            self.counts["over_budget"] += 1
            return False
        self.counts["sampled"] += 1
        future = self._executor.submit(self._run, prompt, result, model, hold)
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()] + [future]
        return True

    def _run(self, prompt: str, result: QueryResult, model: str, hold: Any) -> None:
        from routing.compare import pick_winner, ModelOutcome
        from routing.evaluator import evaluate_group

        try:
            other = self.router.ask_model(model, prompt, max_tokens=self.max_tokens)
        except (ProviderError, UserError) as exc:
            self.ledger.settle(hold, None, failed=True)
            self.counts["failed"] += 1
            log.info("shadow: %s did not answer: %s", model, exc)
            return
        except BaseException:
            self.ledger.settle(hold, None)
            raise
        self.ledger.settle(hold, other.cost_usd)
        try:
            answers = {result.answered_by: result.response, model: other.text}
            evaluations = evaluate_group(prompt, answers, run_code=True)
            outcomes = {}
            for name, text in answers.items():
                o = ModelOutcome(name, name)
                ev = evaluations[name]
                o.response, o.normalized, o.total = text, ev["normalized"], ev["total"]
                o.cost_usd = result.cost_usd if name == result.answered_by else other.cost_usd
                outcomes[name] = o
            best = pick_winner(outcomes)
            first = {"response": result.response, "error": None, "latency_ms": result.latency_ms,
                     "usage": result.usage, "cost_usd": result.cost_usd}
            second = {"response": other.text, "error": None, "latency_ms": other.latency_ms,
                      "usage": other.usage, "cost_usd": other.cost_usd}
            for entry, name in ((first, result.answered_by), (second, model)):
                ev = evaluations[name]
                entry.update(scores=ev.get("dimensions"), total=ev.get("total"), normalized=ev.get("normalized"))
            self.log.record({
                "prompt": prompt, "selected_model": result.selected_model, "best_model": best,
                "router_correct": None if best is None else best == result.selected_model,
                "selector": result.selector, "kind": "shadow", "source": "shadow",
                "results": {result.answered_by: first, model: second},
            })
            with self._lock:
                if self._seen is not None:
                    self._seen.update([result.answered_by, model])
            self.counts["logged"] += 1
        except Exception:  # noqa: BLE001 - never surfaces to anyone; the log says why
            self.counts["failed"] += 1
            log.exception("shadow: scoring or logging the comparison failed")

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
