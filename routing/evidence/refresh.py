"""Write each pool model's public evidence (per-category ratings, list price) into the pool file.

:func:`refresh_pool` works on the pool file's parsed JSON and returns the new JSON and a report;
:func:`dump_pool_json` writes it back the way the shipped file is laid out (2-space indent, key
order kept, a rating's ``[rating, low, high]`` on one line). The command line is
``python -m routing.evidence refresh`` (:mod:`routing.evidence.__main__`).

A matched model gets::

    "evidence": {"ratings": {"source", "name", "variant", "snapshot", "matched_by", "categories":
                             {category: [rating, ci95_low, ci95_high], ...}},
                 "list_price": {"input_usd_per_mtok", "output_usd_per_mtok", "source"}}

(``list_price`` only when a price table is given and has the model; the pool's own
``input_price_per_m``/``output_price_per_m`` stay what the provider charges). A model that no
public rating matches gets ``{"ratings": null, "unknown": true, "note": ...}``: the prior then
takes it to be a typical member of its pool: the median of the pool's rated models per category
(:func:`routing.selectors.prior.ratings_from_table`; the ratings file's median when none is rated).
Keys of an existing evidence block that the refresh does not manage are kept.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Mapping

from routing.errors import PoolFileError
from routing.evidence.ratings import Ratings, match_names
from routing.pool import pool_from_data

#: The keys of a model's evidence block that a refresh writes (any others are kept as they are).
MANAGED_KEYS = ("ratings", "list_price", "unknown", "note")
UNKNOWN_NOTE = "no public rating matched {name}; the prior takes the median of the pool's rated models per category"
AMBIGUOUS_NOTE = ("no public rating matched {name} unambiguously (candidates: {candidates}; choose one with "
                  "--map); the prior takes the median of the pool's rated models per category")


def _categories(per_category: Mapping[str, tuple[float, float, float]]) -> dict[str, list[float]]:
    """``full`` first, then the other categories alphabetically."""
    order = sorted(per_category, key=lambda c: (c != "full", c))
    return {c: [float(v) for v in per_category[c]] for c in order}


def _changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(dict.fromkeys([*old, *new])):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(_changed_paths(old[key], new[key], path))
        return out
    return [] if old == new else [prefix or "evidence"]


def _match_model(model: dict, candidates: list[str], mapping: Mapping[str, str | None]) -> dict:
    """Match one pool model by its model_name, then its id; the mapping may name either."""
    model_name, model_id = str(model.get("model_name") or ""), str(model.get("id") or "")
    mapped = {}
    for key in (model_name, model_id):
        if key and key in mapping:
            mapped = {model_name: mapping[key]}
            break
    first = match_names([model_name], candidates, mapped)
    if model_name in first.matches:
        name, how = first.matches[model_name]
        return {"status": "matched", "name": name, "how": how, "matched_on": "model_name"}
    if not mapped and model_id and model_id != model_name:       # a mapping to None says: leave it unmatched
        second = match_names([model_id], candidates)
        if model_id in second.matches:
            name, how = second.matches[model_id]
            return {"status": "matched", "name": name, "how": how, "matched_on": "id"}
        if model_id in second.ambiguous and model_name not in first.ambiguous:
            return {"status": "ambiguous", "candidates": second.ambiguous[model_id], "matched_on": "id"}
    if model_name in first.ambiguous:
        return {"status": "ambiguous", "candidates": first.ambiguous[model_name], "matched_on": "model_name"}
    return {"status": "unmatched"}


def refresh_pool(pool_data: Any, ratings: Ratings, prices: Mapping[str, dict] | None = None,
                 mapping: Mapping[str, str | None] | None = None, *, variant: str, source: str,
                 snapshot: str, ratings_file_name: str) -> tuple[Any, dict]:
    """(the pool JSON with every model's evidence block written, a report of what matched and changed).

    ``pool_data`` is not changed. ``mapping`` is pool id or model_name -> rating name (``None``:
    no public rating). ``source`` names the table ("LMArena text arena"); the block states it with
    the variant and the file name. ``prices`` (model -> list price, :func:`read_price_table`)
    adds ``list_price``; without it an existing ``list_price`` is left as it was.
    """
    data = copy.deepcopy(pool_data)
    models = data.get("models") if isinstance(data, dict) else data
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise PoolFileError("The pool file must hold a list of model objects under \"models\".")
    mapping = dict(mapping or {})
    candidates = list(ratings)
    match_names([], candidates, mapping)                         # a mapping to a name not in the file is an error
    rating_source = f"{source}, {variant} ({ratings_file_name})"
    rows = []
    for model in models:
        found = _match_model(model, candidates, mapping)
        model_name = str(model.get("model_name") or model.get("id"))
        old = model.get("evidence") if isinstance(model.get("evidence"), dict) else {}
        new: dict[str, Any]
        price = None
        if found["status"] == "matched":
            name = found["name"]
            new = {"ratings": {"source": rating_source, "name": name, "variant": variant, "snapshot": snapshot,
                               "matched_by": found["how"], "categories": _categories(ratings[name])}}
            if prices is not None:
                if name in prices:
                    price = prices[name]
                    new["list_price"] = {"input_usd_per_mtok": float(price["input_usd_per_mtok"]),
                                         "output_usd_per_mtok": float(price["output_usd_per_mtok"]),
                                         "source": str(price.get("source", ""))}
            elif "list_price" in old:
                new["list_price"] = old["list_price"]
        else:
            note = (AMBIGUOUS_NOTE.format(name=model_name, candidates=", ".join(found["candidates"]))
                    if found["status"] == "ambiguous" else UNKNOWN_NOTE.format(name=model_name))
            new = {"ratings": None, "unknown": True, "note": note}
        for key, value in old.items():
            if key not in MANAGED_KEYS:
                new[key] = value
        change = "added" if "evidence" not in model else ("unchanged" if model["evidence"] == new else "changed")
        changed = _changed_paths(old, new) if change == "changed" else []
        model["evidence"] = new
        rows.append({"id": model.get("id"), "model_name": model.get("model_name"), **found,
                     "list_price": new.get("list_price") if found["status"] == "matched" else None,
                     "change": change, "changed": changed})
    pool_from_data(data, "the refreshed pool")                   # what is written must load
    keys = {k for m in models for k in (m.get("id"), m.get("model_name"))}
    report = {"source": rating_source, "variant": variant, "snapshot": snapshot,
              "prices_given": prices is not None, "models": rows,
              "unused_map_entries": sorted(k for k in mapping if k not in keys),
              "changed": any(r["change"] != "unchanged" for r in rows)}
    return data, report


def _compact_number_lists(text: str) -> str:
    """``[\\n 1.0,\\n 2.0\\n]`` -> ``[1.0, 2.0]`` (only across lines: a JSON string holds no raw newline)."""
    number = r"-?\d[\d.eE+-]*"

    def join(match: re.Match) -> str:
        return "[" + ", ".join(re.findall(number, match.group(0))) + "]"

    return re.sub(rf"\[\n\s*{number}(?:,\n\s*{number})*\n\s*\]", join, text)


def dump_pool_json(data: Any) -> str:
    """The pool file's text: 2-space indent, key order kept, number lists on one line."""
    return _compact_number_lists(json.dumps(data, indent=2, ensure_ascii=False)) + "\n"


def _price_text(price: dict | None) -> str:
    if not price:
        return ""
    return f"; list price {price['input_usd_per_mtok']:g}/{price['output_usd_per_mtok']:g} USD per M tokens in/out"


def format_report(report: dict) -> str:
    """The report as the command prints it: what matched and how, what did not, what would change."""
    rows = report["models"]
    width = max([len(str(r["id"])) for r in rows] + [2])
    lines = [f"Public ratings: {report['source']}, snapshot {report['snapshot']}", ""]
    matched = [r for r in rows if r["status"] == "matched"]
    lines.append(f"Matched ({len(matched)} of {len(rows)})")
    for r in matched:
        on = " on its id" if r["matched_on"] == "id" else ""
        lines.append(f"  {str(r['id']):<{width}}  {r['model_name']} -> {r['name']} ({r['how']}{on}"
                     f"{_price_text(r['list_price'])})")
    if report["prices_given"] and any(not r["list_price"] for r in matched):
        lines.append("  no list price in the price table for: "
                     + ", ".join(str(r["name"]) for r in matched if not r["list_price"]))
    others = [r for r in rows if r["status"] != "matched"]
    lines += ["", f"Not matched ({len(others)}): flagged \"unknown\"; the prior takes the median of the pool's rated models per category"]
    for r in others:
        why = ("ambiguous, candidates: " + ", ".join(r["candidates"])) if r["status"] == "ambiguous" \
            else "no public rating matched"
        lines.append(f"  {str(r['id']):<{width}}  {r['model_name']}: {why}")
    if not others:
        lines.append("  (none)")
    if report["unused_map_entries"]:
        lines += ["", "Map entries naming no pool model: " + ", ".join(report["unused_map_entries"])]
    lines += ["", "Changes to the pool file"]
    for r in rows:
        what = r["change"]
        if r["changed"]:
            shown = r["changed"][:6]
            what += ": " + ", ".join(shown) + (f" and {len(r['changed']) - 6} more" if len(r["changed"]) > 6 else "")
        lines.append(f"  {str(r['id']):<{width}}  evidence {what}")
    return "\n".join(lines)
