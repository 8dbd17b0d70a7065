"""Compare all: ask every pool model the same prompt at once, score each answer, name the winner.

:func:`compare_stream` sends the prompt to every model in a thread pool bounded by
``settings.compare_concurrency`` and yields a :class:`CompareEvent` per finished model as it
arrives (so the whole comparison takes about as long as the slowest model, not the sum),
then a final ``done`` event with the :class:`Comparison`. :func:`compare_all` returns only
that comparison. Once every model has answered, the answers are scored together by
:func:`routing.evaluation.evaluator.evaluate_group` (each with the others as peers, so agreeing on a
multiple-choice option or a final number counts): ``result`` events carry the answers, the
``done`` event the scores. The winner is the best evaluator score (ties: cheaper, then pool
order). With
``judge=True`` an LLM judge (:mod:`routing.compare.judge`) also grades every answer and the top two
meet in a both-orders pairwise comparison. The router's pick for the same prompt is compared
with the winner (``router_correct``). A model that fails carries its error; the others finish.

Without an OpenRouter key nothing remote can answer: the comparison says so (``notice``) and,
when the local model is on, carries its single answer under ``local_answer`` (scored, labelled
as the local model) so the flow can be tried; it never fills the pool's columns with it.

Pass an :class:`routing.learning.outcome_log.OutcomeLog` to append every comparison to the log.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, asdict
from typing import Any, Callable, Iterator, Sequence

from routing.errors import ProviderError, UserError
from routing.evaluation.evaluator import TIE_MARGIN, evaluate, evaluate_group
from routing.compare.judge import Judge
from routing.router import LOCAL_ANSWERER
from routing.selectors.base import Selection

log = logging.getLogger(__name__)

NO_KEY_NOTICE = ("Compare all needs an OpenRouter key: set OPENROUTER_API_KEY to send the prompt to every "
                 "pool model.")

__all__ = ["ModelOutcome", "Comparison", "CompareEvent", "compare_stream", "compare_all", "pick_winner", "decide_winner",
           "NO_KEY_NOTICE"]


@dataclass
class ModelOutcome:
    """One model's answer in a comparison, with the evaluator's points."""

    model: str
    display_name: str
    response: str = ""
    error: str | None = None
    latency_ms: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    scores: dict[str, float] = field(default_factory=dict)      # evaluator points per dimension
    max_points: dict[str, float] = field(default_factory=dict)  # applied dimensions' maxima
    penalties: dict[str, float] = field(default_factory=dict)
    explanations: dict[str, str] = field(default_factory=dict)
    total: float | None = None
    normalized: float | None = None
    judge_grade: float | None = None
    judge_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    """A finished comparison; :meth:`to_dict` is the ``/query-compare`` payload."""

    id: str
    prompt: str
    selected_model: str | None
    selection: Selection | None
    results: dict[str, ModelOutcome]
    best_model: str | None = None
    judge_best_model: str | None = None
    judge_model: str | None = None
    judge_details: dict[str, Any] = field(default_factory=dict)
    wall_ms: float = 0.0
    cost_weight: float = 0.0
    notice: str | None = None
    local_answer: ModelOutcome | None = None
    warnings: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    logged: bool = False
    tied: list[str] = field(default_factory=list)       # models within TIE_MARGIN of the top: no winner
    no_winner: str | None = None                        # why there is no winner, in words

    @property
    def router_correct(self) -> bool | None:
        """Whether the router's pick is the evaluator's winner (None when nobody answered)."""
        if self.best_model is None or self.selected_model is None:
            return None
        return self.selected_model == self.best_model

    @property
    def router_ties(self) -> bool:
        """Whether the router's pick, not the winner, scored exactly as the winner (a tie the price broke)."""
        if self.best_model is None or self.selected_model in (None, self.best_model):
            return False
        pick, best = self.results.get(self.selected_model), self.results.get(self.best_model)
        return bool(pick and pick.ok and pick.normalized is not None and best.normalized is not None
                    and round(pick.normalized, 6) == round(best.normalized, 6))

    @property
    def router_correct_by_judge(self) -> bool | None:
        if self.judge_best_model is None or self.selected_model is None:
            return None
        return self.selected_model == self.judge_best_model

    def to_dict(self) -> dict[str, Any]:
        sel = self.selection
        return {
            "prompt": self.prompt,
            "selected_model": self.selected_model,
            "results": {m: {"response": r.response, "scores": r.scores, "total": r.total,
                            "normalized": r.normalized, "latency_ms": r.latency_ms, "cost_usd": r.cost_usd,
                            "usage": r.usage, "error": r.error, "max_points": r.max_points,
                            "penalties": r.penalties, "explanations": r.explanations,
                            "judge_grade": r.judge_grade, "display_name": r.display_name}
                        for m, r in self.results.items()},
            "best_model": self.best_model,
            "tied": list(self.tied),
            "no_winner": self.no_winner,
            "router_correct": self.router_correct,
            "judge_best_model": self.judge_best_model,
            "judge_model": self.judge_model,
            "router_correct_by_judge": self.router_correct_by_judge,
            "judge_details": self.judge_details,
            "comparison_id": self.id if self.logged else None,
            "selection_confidence": None if sel is None else round(sel.confidence, 4),
            "selection_scores": {} if sel is None else {k: round(v, 4) for k, v in sel.scores.items()},
            "reasoning": None if sel is None else sel.reasoning,
            "selector": None if sel is None else sel.selector,
            "wall_ms": self.wall_ms,
            "slowest_ms": max((r.latency_ms or 0.0 for r in self.results.values()), default=0.0),
            "notice": self.notice,
            "local_answer": None if self.local_answer is None else self.local_answer.to_dict(),
            "warnings": list(self.warnings),
        }

    def to_log_record(self) -> dict[str, Any]:
        """What :meth:`OutcomeLog.record` stores."""
        return {"id": self.id, "created_at": self.created_at, "prompt": self.prompt,
                "selected_model": self.selected_model, "best_model": self.best_model, "tied": list(self.tied),
                "judge_best_model": self.judge_best_model, "router_correct": self.router_correct,
                "cost_weight": self.cost_weight, "judge_model": self.judge_model, "wall_ms": self.wall_ms,
                "selector": None if self.selection is None else self.selection.selector,
                "results": {m: r.to_dict() for m, r in self.results.items()}}


@dataclass
class CompareEvent:
    """``selection`` (router's pick), ``delta`` (a piece of one model's answer, in ``text``; only when
    streaming), ``result`` (one model finished), ``judged``, ``done``."""

    kind: str
    model: str | None = None
    text: str = ""
    outcome: ModelOutcome | None = None
    selection: Selection | None = None
    comparison: Comparison | None = None


def _score(outcome: ModelOutcome, prompt: str, run_code: bool, ev: dict[str, Any] | None = None) -> None:
    ev = evaluate(prompt, outcome.response, run_code=run_code) if ev is None else ev
    outcome.scores = ev["dimensions"]
    outcome.max_points = ev["max_points"]
    outcome.penalties = ev["penalties"]
    outcome.explanations = ev["explanations"]
    outcome.total = ev["total"]
    outcome.normalized = ev["normalized"]


def _ask_one(router: Any, spec: Any, prompt: str, max_tokens: int | None,
             on_delta: Callable[[str], None] | None = None) -> ModelOutcome:
    """Ask one model; never raises (the error goes in the outcome). :func:`_score_all` scores it."""
    outcome = ModelOutcome(spec.id, spec.display_name)
    start = time.monotonic()
    try:
        result = router.ask_model(spec.id, prompt, max_tokens=max_tokens, on_delta=on_delta)
    except (ProviderError, UserError) as exc:
        outcome.error = getattr(exc, "message", None) or str(exc)
        outcome.latency_ms = round((time.monotonic() - start) * 1000, 1)
        return outcome
    except Exception as exc:  # noqa: BLE001 - one broken model must not break the comparison
        log.exception("compare: %s raised", spec.id)
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.latency_ms = round((time.monotonic() - start) * 1000, 1)
        return outcome
    outcome.response = result.text or ""
    outcome.usage = dict(result.usage or {})
    outcome.cost_usd = result.cost_usd
    outcome.latency_ms = round(result.latency_ms or (time.monotonic() - start) * 1000, 1)
    return outcome


def _score_all(results: dict[str, ModelOutcome], prompt: str, run_code: bool, workers: int) -> None:
    """Score every answered outcome with the other answers as its peers. Answers with the same
    text get the first one's evaluation: identical answers score identically (running their code
    twice could time out once and not the other)."""
    answered = {m: r.response for m, r in results.items() if r.ok}
    try:
        evaluations = evaluate_group(prompt, answered, run_code=run_code, workers=workers)
    except Exception as exc:  # noqa: BLE001 - an evaluator bug must not hide the answers
        log.exception("compare: evaluating the answers failed")
        for m in answered:
            results[m].explanations = {"evaluator": f"could not score: {exc}"}
        return
    first: dict[str, str] = {}
    for m, ev in evaluations.items():
        same = first.setdefault(answered[m], m)
        _score(results[m], prompt, run_code, evaluations[same])


def decide_winner(results: dict[str, ModelOutcome]) -> tuple[str | None, list[str], str | None]:
    """``(winner, tied, why no winner)``. No winner when fewer than two models answered (the others
    never ran: nothing was compared) or when the top scores are within :data:`TIE_MARGIN` (a tie:
    the evaluator cannot tell them apart)."""
    scored = [r for r in results.values() if r.ok and r.normalized is not None]
    if not scored:
        return None, [], None
    if len(scored) < 2:
        missing = [r.model for r in results.values() if not r.ok]
        return None, [], (f"only {scored[0].model} answered ({', '.join(missing)} did not run), so nothing was "
                          "compared: no winner, and the router's pick is not marked right or wrong")
    top = max(r.normalized for r in scored)
    tied = [r.model for r in scored if r.normalized >= top - TIE_MARGIN]
    if len(tied) > 1:
        return None, tied, (f"{', '.join(tied)} scored within {TIE_MARGIN} of each other (a tie the evaluator "
                            "cannot break): no winner, and the router's pick is not marked right or wrong")
    return pick_winner(results), [], None


def pick_winner(results: dict[str, ModelOutcome], key: str = "normalized") -> str | None:
    """The best answered model by ``key`` (ties: cheaper, then pool order); None if none answered."""
    order = list(results)
    ranked = [r for r in results.values() if r.ok and getattr(r, key) is not None]
    if not ranked:
        return None
    best = max(ranked, key=lambda r: (getattr(r, key), r.total or 0.0,
                                      -(r.cost_usd if r.cost_usd is not None else float("inf")),
                                      -order.index(r.model)))
    return best.model


def _local_answer(router: Any, prompt: str, max_tokens: int | None, run_code: bool) -> ModelOutcome:
    local = router.hub.local
    outcome = ModelOutcome(LOCAL_ANSWERER, f"{LOCAL_ANSWERER} (local model, not a pool model)")
    start = time.monotonic()
    try:
        result = local.chat(LOCAL_ANSWERER, [{"role": "user", "content": prompt}],
                            max_tokens=min(max_tokens or router.settings.max_tokens,
                                           router.settings.local_max_new_tokens))
    except Exception as exc:  # noqa: BLE001 - the local model may still be loading or missing
        outcome.error = getattr(exc, "message", None) or str(exc)
        outcome.latency_ms = round((time.monotonic() - start) * 1000, 1)
        return outcome
    outcome.response, outcome.usage, outcome.cost_usd = result.text or "", dict(result.usage or {}), result.cost_usd
    outcome.latency_ms = round(result.latency_ms or (time.monotonic() - start) * 1000, 1)
    _score(outcome, prompt, run_code)
    return outcome


def _resolve_models(router: Any, models: Sequence[str] | str | None) -> list[Any]:
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models:
        return list(router.pool.models)
    seen: list[str] = []
    for m in models:
        spec = router.pool.get(str(m).strip())  # UnknownModelError lists the valid ids
        if spec.id not in seen:
            seen.append(spec.id)
    return [router.pool.get(m) for m in seen]


def _run_judge(judge: Judge, comparison: Comparison, concurrency: int) -> None:
    answered = {m: r.response for m, r in comparison.results.items() if r.ok}
    grades = judge.grade_many(comparison.prompt, answered, concurrency=concurrency)
    for m, g in grades.items():
        comparison.results[m].judge_grade = g.grade
        comparison.results[m].judge_error = g.error
    details: dict[str, Any] = {"grades": {m: g.grade for m, g in grades.items()},
                               "errors": {m: g.error for m, g in grades.items() if g.error}}
    graded = sorted(((g.grade, m) for m, g in grades.items() if g.grade is not None),
                    key=lambda gm: (-gm[0], list(comparison.results).index(gm[1])))
    if len(graded) == 1:
        comparison.judge_best_model = graded[0][1]
    elif len(graded) >= 2:
        (_, first), (_, second) = graded[0], graded[1]
        verdict = judge.compare(comparison.prompt, (first, answered[first]), (second, answered[second]))
        details["pairwise"] = verdict.to_dict()
        if verdict.winner:
            comparison.judge_best_model = verdict.winner
        elif graded[0][0] > graded[1][0] and not verdict.errors:
            # The pairwise orders disagreed (position bias) or called a tie: the grade decides.
            comparison.judge_best_model = first
            details["note"] = "pairwise verdicts disagreed or tied; the higher grade decides"
        else:
            details["note"] = "no consistent judge winner (equal grades and no pairwise agreement)"
    elif details["errors"]:
        first = next(iter(details["errors"].values()))
        details["note"] = (f"the judge failed on all {len(grades)} answers, e.g. {first}" if len(details["errors"]) ==
                           len(grades) else f"the judge gave no grade 1-10 for any answer, e.g. {first}")
    comparison.judge_details = details


def compare_stream(router: Any, prompt: str, *, models: Sequence[str] | str | None = None,
                   cost_weight: float = 0.0, max_tokens: int | None = None, concurrency: int | None = None,
                   judge: bool = False, judge_model: str | None = None, run_code: bool = True,
                   local_fallback: bool = True, outcome_log: Any = None,
                   stream: bool = False) -> Iterator[CompareEvent]:
    """Ask every model (or ``models``) at once; yield events as answers arrive, then ``done``.
    With ``stream`` each answer also arrives piece by piece (``delta`` events), as it is written.

    Raises :class:`UserError` for an empty/too long prompt or an unknown model id (before any
    request is sent). ``concurrency`` defaults to ``settings.compare_concurrency``.
    """
    prompt = router.validate_prompt(prompt)
    specs = _resolve_models(router, models)
    judge_obj = Judge(router, judge_model) if judge else None  # unknown judge id fails early
    start = time.monotonic()
    selection = router.route(prompt, cost_weight=cost_weight)
    yield CompareEvent("selection", selection=selection)

    comparison = Comparison(id=uuid.uuid4().hex, prompt=prompt, selected_model=selection.selected_model,
                            selection=selection, results={s.id: ModelOutcome(s.id, s.display_name) for s in specs},
                            cost_weight=cost_weight, judge_model=judge_obj.model if judge_obj else None,
                            warnings=list(getattr(router, "warnings", []) or []))
    missing = {s.id: router.hub.missing_key(s) for s in specs}
    callable_specs = [s for s in specs if not missing[s.id]]
    for s in specs:
        if missing[s.id]:
            comparison.results[s.id].error = missing[s.id]
            yield CompareEvent("result", model=s.id, outcome=comparison.results[s.id])

    limit = max(1, int(concurrency or router.settings.compare_concurrency or 1))
    if callable_specs:
        executor = ThreadPoolExecutor(max_workers=min(limit, len(callable_specs)), thread_name_prefix="compare")
        try:
            pieces: queue.SimpleQueue = queue.SimpleQueue()

            def streamer(model_id: str) -> Callable[[str], None] | None:
                return (lambda text: pieces.put((model_id, text))) if stream else None

            pending = {executor.submit(_ask_one, router, s, prompt, max_tokens, streamer(s.id)): s
                       for s in callable_specs}
            while pending:
                finished, _ = wait(pending, timeout=0.1 if stream else None, return_when=FIRST_COMPLETED)
                while not pieces.empty():   # every piece before its model's result
                    model_id, text = pieces.get()
                    yield CompareEvent("delta", model=model_id, text=text)
                for future in finished:
                    spec = pending.pop(future)
                    outcome = future.result()
                    comparison.results[spec.id] = outcome
                    yield CompareEvent("result", model=spec.id, outcome=outcome)
        finally:
            # A client that stops listening leaves the remaining calls to finish on their own.
            executor.shutdown(wait=False, cancel_futures=True)

    _score_all(comparison.results, prompt, run_code, limit)
    comparison.best_model, comparison.tied, comparison.no_winner = decide_winner(comparison.results)
    if not callable_specs:
        comparison.notice = NO_KEY_NOTICE
        if local_fallback and router.hub.local is not None:
            comparison.notice += (f" Below is the local model's ({LOCAL_ANSWERER}) single answer so you can try "
                                  "the flow; it is one small local model, not a comparison.")
            comparison.local_answer = _local_answer(router, prompt, max_tokens, run_code)
        elif local_fallback:
            comparison.notice += " The local model is off too (ROUTER_LOCAL_MODEL=0), so nothing can answer."
    if judge_obj is not None and (comparison.best_model is not None or comparison.tied):
        _run_judge(judge_obj, comparison, limit)
        yield CompareEvent("judged", comparison=comparison)
    comparison.wall_ms = round((time.monotonic() - start) * 1000, 1)

    # A tie is an outcome (every tied model answered as well as the others); a comparison where
    # fewer than two models answered is not (the others never ran).
    if outcome_log is not None and (comparison.best_model is not None or comparison.tied):
        try:
            outcome_log.record(comparison.to_log_record())
            comparison.logged = True
        except Exception as exc:  # noqa: BLE001 - a full disk must not lose the user's answers
            log.exception("compare: could not append to the outcome log")
            comparison.warnings.append(f"The outcome log could not be written: {exc}")
    yield CompareEvent("done", comparison=comparison)


def compare_all(router: Any, prompt: str, **kwargs: Any) -> Comparison:
    """:func:`compare_stream` run to the end; returns the finished :class:`Comparison`."""
    last = None
    for event in compare_stream(router, prompt, **kwargs):
        last = event
    assert last is not None and last.comparison is not None
    return last.comparison
