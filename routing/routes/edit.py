"""The routes from the page: the view (with each route's threshold and leave-one-out figures), adding,
replacing and removing a route, and "Test a prompt".

An edit reads the routes file's JSON, changes that one route, checks every route as start-up would
(:func:`routing.routes.store.parse_routes`), writes the file atomically and has the service reload it
(embedding and calibrating anew: examples seen before come from the matcher's cache). If the reload
fails, the previous file (or its absence) is put back: nothing is saved and the live routes stay as
they were. Only the route being saved has to be new: a file whose *other* routes fail their checks
(a target removed from the pool) can still be mended here by removing or replacing the broken one.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from routing.routes.policy import editing_refusal, require_editing
from routing.routes.store import (MAX_EXAMPLES, MIN_EXAMPLES, RULE_CHEAPEST, RoutesFileError, parse_route,
                                  parse_routes, read_data, replace_bytes, write_routes)
from routing.settings import routes_path

#: The "Route to edit" choice that adds a route.
NEW_ROUTE = "(add a new route)"
#: The target words of the form and the API (anything else is a pool id).
TARGET_CHEAPEST = RULE_CHEAPEST
TARGET_EXCLUDE = "exclude"

_EDIT_LOCK = threading.Lock()


def _lines(value: Any, name: str) -> list[str]:
    """Prompts from a text box (one per line) or a list."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, (list, tuple)):
        return [v.strip() if isinstance(v, str) else v for v in value if not (isinstance(v, str) and not v.strip())]
    raise RoutesFileError(f"{name} must be text, one prompt per line, or a list of prompts.")


def entry_from_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The routes file's entry a form or API call describes: ``name``, ``examples`` and ``negatives``
    (one per line, or lists), ``description``, ``target`` (a pool id, ``cheapest`` or ``exclude``) and
    ``exclude`` (pool ids, with ``target`` ``exclude``)."""
    target = fields.get("target")
    target = target.strip() if isinstance(target, str) else target
    excluded = fields.get("exclude") or []
    if isinstance(excluded, str):
        excluded = [m.strip() for m in excluded.split(",") if m.strip()]
    if not target:
        raise RoutesFileError("target is empty: choose a pool model, \"cheapest\" (the cheapest callable model) or "
                              "\"exclude\" (the selector decides among the models not excluded).")
    if target == TARGET_CHEAPEST:
        target_json: Any = {"rule": RULE_CHEAPEST}
    elif target == TARGET_EXCLUDE:
        if not excluded:
            raise RoutesFileError("target \"exclude\" needs the models to leave out (exclude: a list of pool ids).")
        target_json = {"exclude": list(excluded)}
    else:
        target_json = target
    entry: dict[str, Any] = {"name": fields.get("name"), "examples": _lines(fields.get("examples"), "examples"),
                             "negatives": _lines(fields.get("negatives"), "negatives"), "target": target_json}
    description = fields.get("description")
    if description is not None and not (isinstance(description, str) and not description.strip()):
        entry["description"] = description
    return entry


def _commit(service: Any, path, entries: list[Any]) -> None:
    """Check ``entries`` as start-up would, write them and reload the service's routes; on any failure the
    previous file (or none) is put back and the live routes stay as they were."""
    routes = parse_routes({"routes": entries}, service.pool.ids, "The routes")
    previous = path.read_bytes() if path.is_file() else None
    write_routes(path, routes)
    try:
        service.reload_routes()
    except BaseException:
        replace_bytes(path, previous)
        raise


def save_route(service: Any, fields: Mapping[str, Any], edit_name: str | None = None) -> dict[str, Any]:
    """Add a route, or replace the one named ``edit_name`` (or, without it, the one with the same name);
    save and reload. Returns ``message``, ``route`` and the new view (:func:`routes_view`)."""
    require_editing(service.settings)
    entry = entry_from_fields(fields)
    route = parse_route(entry, service.pool.ids, "the route")     # its own errors first, named by field
    edit_name = (edit_name or "").strip()
    if edit_name == NEW_ROUTE:
        edit_name = ""
    path = routes_path(service.settings)
    with _EDIT_LOCK:
        data = read_data(path) or {"routes": []}
        entries = list(data["routes"])
        names = [e.get("name") if isinstance(e, dict) else None for e in entries]
        replaced = edit_name or (route.name if route.name in names else "")
        if replaced and replaced not in names:
            raise RoutesFileError(f"No route {replaced!r} to replace (the routes are {', '.join(map(str, names))}).")
        if replaced:
            entries[names.index(replaced)] = route.to_json()
            what = f"Saved route {route.name!r}" + (f" (was {replaced!r})" if replaced != route.name else "")
        else:
            entries.append(route.to_json())
            what = f"Added route {route.name!r}"
        _commit(service, path, entries)
    report = next(r for r in service.routes.reports if r["name"] == route.name)
    return {"message": f"{what} to {path} and reloaded: threshold {report['threshold']:.2f}, leave-one-out "
                       f"accuracy {_pct(report['accuracy'])}, precision {_pct(report['precision'])}, recall "
                       f"{_pct(report['recall'])}.", "route": route.name, "routes": routes_view(service)}


def remove_route(service: Any, name: Any) -> dict[str, Any]:
    """Remove the route ``name``, save and reload (the file stays, with the other routes)."""
    require_editing(service.settings)
    if not isinstance(name, str) or not name.strip() or name.strip() == NEW_ROUTE:
        raise RoutesFileError("Choose the route to remove.")
    name = name.strip()
    path = routes_path(service.settings)
    with _EDIT_LOCK:
        data = read_data(path) or {"routes": []}
        entries = list(data["routes"])
        keep = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
        if len(keep) == len(entries):
            names = [e.get("name") for e in entries if isinstance(e, dict)]
            raise RoutesFileError(f"No route {name!r} (the routes are {', '.join(map(str, names)) or 'none'}).")
        _commit(service, path, keep)
    return {"message": f"Removed route {name!r}; saved to {path} and reloaded: {len(keep)} route"
                       f"{'s' if len(keep) != 1 else ''} left.", "route": name, "routes": routes_view(service)}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def routes_view(service: Any) -> dict[str, Any]:
    """The live routes with their threshold and leave-one-out figures, the file, and whether they may be
    edited here."""
    matcher, settings = service.routes, service.settings
    path = routes_path(settings)
    reports = {r["name"]: r for r in matcher.reports}
    routes = []
    for route in matcher.routes:
        report = reports[route.name]
        routes.append({**route.to_json(), "negatives": list(route.negatives), "description": route.description,
                       "target_description": route.target.describe(),
                       "threshold": report["threshold"],
                       "leave_one_out": {k: report[k] for k in ("accuracy", "precision", "recall", "f1", "examples",
                                                                "non_matches", "tp", "fp", "fn", "tn")},
                       "leave_one_out_scores": report["leave_one_out_scores"]})
    refusal = editing_refusal(settings)
    report = matcher.report()
    return {"file": str(path), "exists": path.is_file(), "routes": routes, "overall": report["overall"],
            "similarity": report["similarity"], "min_threshold": report["min_threshold"],
            "examples_per_route": [MIN_EXAMPLES, MAX_EXAMPLES],
            "warning": getattr(service, "routes_warning", None), "editable": refusal is None, "refusal": refusal}


def try_prompt(service: Any, prompt: Any) -> dict[str, Any]:
    """Every route's similarity to ``prompt`` against its threshold, and what the router would decide
    (no model is called, nothing is spent)."""
    router = service.router       # one reference: routes and pool of one moment
    prompt = router.validate_prompt(prompt)
    scores = router.routes.scores(prompt) if router.routes else []
    selection = router.decide(prompt)
    spec = router.pool.get(selection.selected_model)
    return {"prompt": prompt, "routes": [s.to_dict() for s in scores], "route": selection.route,
            "route_similarity": selection.route_similarity, "selected_model": selection.selected_model,
            "selected_name": spec.display_name, "ranking": selection.ranking, "reasoning": selection.reasoning,
            "selector": selection.selector}


__all__ = ["NEW_ROUTE", "TARGET_CHEAPEST", "TARGET_EXCLUDE", "entry_from_fields", "save_route", "remove_route",
           "routes_view", "try_prompt"]
