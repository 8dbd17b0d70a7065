"""A matched route turned into the router's decision (:meth:`routing.router.Router.decide` calls
:func:`routed_selection` before the selector decides alone).

- target a pool id: that model first; the selector's ranking after it (the fallbacks);
- ``{"rule": "cheapest"}``: the pool by price, cheapest first, models that cannot be called now (no
  key, resting after failures) last;
- ``{"exclude": [...]}``: the selector's decision among the pool without those models.

The request's own exclusions (``exclude``, models over ``max_cost_usd``) still hold: a route whose
target they rule out does not decide, and the reason says so. Every decision made while routes
exist says where it came from: the route that matched, its similarity against its threshold, or the
closest route when none did. ``Selection.route`` / ``route_similarity`` name the route that decided
(None when the selector did).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from routing.routes.matcher import RouteMatch, RouteMatcher, RouteScore
from routing.routes.store import RULE_CHEAPEST
from routing.selectors.base import Selection, Selector


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(str(text).split())
    return "\u201c" + (flat if len(flat) <= limit else flat[: limit - 1] + "\u2026") + "\u201d"


def _matched(found: RouteMatch, score: RouteScore) -> str:
    return (f"Route {_quote(found.route.name)} matched: similarity {found.similarity:.2f} against its threshold "
            f"{found.threshold:.2f} (closest example {_quote(score.closest_example, 60)}).")


def routed_selection(matcher: RouteMatcher | None, prompt: str, *, selector: Selector, pool: Any,
                     exclude: Sequence[str] = (), knobs: dict[str, Any] | None = None,
                     can_call: Callable[[str], bool] = lambda model: True) -> Selection | None:
    """The decision for ``prompt`` when routes exist (None when there are none: the caller asks the
    selector as before). ``can_call(model_id)``: whether the router would try that model now."""
    if not matcher:
        return None
    knobs = dict(knobs or {})
    exclude = list(exclude)
    scores = matcher.scores(prompt)
    found = matcher.match(prompt, scores)
    route_scores = {s.name: {"similarity": round(s.similarity, 4), "threshold": round(s.threshold, 4)}
                    for s in scores}
    if found is None:
        closest = max(scores, key=lambda s: s.similarity - s.threshold)
        base = selector.select(prompt, exclude=exclude, **knobs)
        note = (f"No route matched (closest: {_quote(closest.name)} at {closest.similarity:.2f}, below its "
                f"threshold {closest.threshold:.2f}).")
        return _with(base, note, route_scores)

    route, target = found.route, found.route.target
    score = next(s for s in scores if s.name == route.name)
    said = _matched(found, score)
    decided = {"name": route.name, "similarity": round(found.similarity, 4),
               "threshold": round(found.threshold, 4), "target": target.to_json()}
    allowed = [m for m in pool.ids if m not in exclude]

    if target.model:
        base = selector.select(prompt, exclude=exclude, **knobs)
        if target.model not in allowed:
            why = "is not in the pool" if target.model not in pool else "is excluded for this request"
            return _with(base, f"{said} Its model, {target.model}, {why}: the selector decided.", route_scores)
        spec = pool.get(target.model)
        chosen = dataclasses.replace(
            base, selected_model=spec.id, confidence=base.scores.get(spec.id, 0.0),
            ranking=[spec.id, *[m for m in base.ranking if m != spec.id]],
            runner_up=next((m for m in base.ranking if m != spec.id), None))
        return _decided(chosen, f"{said} It sends these prompts to {spec.display_name} ({spec.id}). "
                                f"Without it: {base.reasoning}", decided, route_scores, found)

    if target.rule == RULE_CHEAPEST:
        base = selector.select(prompt, exclude=exclude, **knobs)
        if not allowed:
            return _with(base, f"{said} Every model is excluded for this request: the selector decided.",
                         route_scores)
        index = {m: i for i, m in enumerate(pool.ids)}
        ranking = sorted(allowed, key=lambda m: (not can_call(m), pool.get(m).blended_price_per_m, index[m]))
        spec = pool.get(ranking[0])
        callable_now = can_call(spec.id)
        how = ("the cheapest model that can be called now" if callable_now else
               "the cheapest model (none can be called now: no key, or resting after failures)")
        chosen = dataclasses.replace(base, selected_model=spec.id, confidence=base.scores.get(spec.id, 0.0),
                                     ranking=ranking, runner_up=ranking[1] if len(ranking) > 1 else None)
        return _decided(chosen, f"{said} It sends these prompts to {how}: {spec.display_name} ({spec.id}, "
                                f"${spec.blended_price_per_m:.3f}/M tokens); the next cheapest answer if it "
                                f"fails. Without it: {base.reasoning}", decided, route_scores, found)

    without = [m for m in target.exclude if m in pool and m not in exclude]
    if not [m for m in allowed if m not in without]:
        base = selector.select(prompt, exclude=exclude, **knobs)
        return _with(base, f"{said} It leaves no model this request allows: the selector decided.", route_scores)
    chosen = selector.select(prompt, exclude=[*exclude, *without], **knobs)
    return _decided(chosen, f"{said} The selector decides without {', '.join(target.exclude)}: "
                            f"{chosen.reasoning}", decided, route_scores, found)


def _with(selection: Selection, note: str, route_scores: dict[str, Any]) -> Selection:
    """The selector's decision, its reason led by what the routes said."""
    return dataclasses.replace(selection, reasoning=f"{note} {selection.reasoning}",
                               details={**(selection.details or {}), "route_scores": route_scores})


def _decided(selection: Selection, reasoning: str, decided: dict[str, Any], route_scores: dict[str, Any],
             found: RouteMatch) -> Selection:
    return dataclasses.replace(selection, reasoning=reasoning, route=found.route.name,
                               route_similarity=round(float(found.similarity), 4),
                               details={**(selection.details or {}), "route": decided, "route_scores": route_scores})
