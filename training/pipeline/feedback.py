"""The outcome log as training data, with each rater's say capped: what ``--source feedback`` reads.

People's ratings (thumbs up / down, "another model would have been better") are the one part of
the log a caller writes directly, so one caller must not be able to steer retraining with them
(a security audit: 44 maths prompts rated down with ``better_model=llama-3.3`` by one caller sent
every caller's maths prompts to Llama). The export here is the RouterBench layout of
:meth:`routing.learning.outcome_log.OutcomeLog.to_frame` with three differences:

* **Each rater's ratings together weigh at most a small share of the rows.** A rater (the hashed
  ``rater`` of a rating; every rating without one - older rows, the app's own code - counts as one
  shared :data:`UNKNOWN_RATER`) who rated ``n`` prompts gets the weight
  ``w = min(1, budget / n)`` on each rating, ``budget = max(RATER_MIN_PROMPTS, share * rows)``
  (``share``: ``ROUTER_RATER_SHARE``, default 0.05; ``rows``: the distinct prompts in the log).
  So the rater's ratings together count as at most ``budget`` rows however many they make: with
  the audit's 44 rated prompts in a 44-row log, each rating weighs 3/44 = 0.07.
* **A rating that contradicts the evidence counts less.** Its weight is multiplied by
  :data:`CONTRADICTED` (0.25) once when it contradicts the evaluator on the same prompt (a thumbs
  down on an answer the evaluator scored at least 0.5, a thumbs up below it, or a "better" model
  the evaluator scored below the rated one there) and once more when it contradicts the other
  raters of the same prompt (their mean verdict on that model is more than 0.5 away).
* **A weight moves a score, it does not replace it.** A rated answer's score is
  ``e + W * (r - e)``: ``e`` the evaluator's score, ``r`` the ratings' weighted mean verdict (up 1,
  down 0, the rated answer 0.99 when only a better model is named), ``W`` their summed weight
  (at most 1). A model named as better that did not answer the prompt (a claim: no evaluator
  score to move) is scored 1.0 only when the claims for it weigh at least
  :data:`CLAIM_MIN_WEIGHT` (0.5) together, else it stays unobserved.

**The release gate's test outcomes** (:func:`gate_scores`, in the ``.gate.json`` file beside the
CSV; ``training.pipeline.train`` reads them for the test split) take even less from ratings: every test
outcome is an evaluator's score, moved by the ratings at most halfway (``W`` capped at
:data:`GATE_RATING_WEIGHT`, 0.5), and claims are not outcomes at all there. So ratings alone never
decide whether a candidate is promoted.

Users' "best answer" marks (the Compare tab) are applied as :func:`routing.learning.outcome_log.quality_scores`
applies them, before the ratings.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from training.text import prompt_text

UNKNOWN_RATER = "unknown"
#: A rater's ratings together weigh at least this many rows' worth (a tiny log still hears people).
RATER_MIN_PROMPTS = 3
#: Default share of the rows one rater's ratings may weigh together (ROUTER_RATER_SHARE).
RATER_SHARE = 0.05
#: Weight factor of a rating that contradicts the evaluator, and again one contradicting the peers.
CONTRADICTED = 0.25
#: Summed weight the claims "model X would have been better" need before X counts as observed.
CLAIM_MIN_WEIGHT = 0.5
#: The most a rating may move an evaluator's score in the release gate's test outcomes.
GATE_RATING_WEIGHT = 0.5
#: Where the evaluator's score separates a good answer from a bad one (contradiction test).
GOOD = 0.5
GATE_SUFFIX = ".gate.json"


@dataclass
class FeedbackExport:
    """The weighted export: a RouterBench-layout frame, the gate's test outcomes, and the raters."""

    frame: pd.DataFrame
    gate: dict[str, dict[str, float]]              # prompt text -> model -> test outcome
    raters: dict[str, dict[str, Any]] = field(default_factory=dict)   # rater -> prompts, weight

    def notes(self) -> list[str]:
        if not self.raters:
            return []
        capped = {r: v for r, v in self.raters.items() if v["weight"] < 1}
        text = f"ratings from {len(self.raters)} rater(s)"
        if capped:
            worst = max(capped, key=lambda r: capped[r]["prompts"])
            text += (f"; {len(capped)} capped (each rater's ratings weigh at most "
                     f"{self.raters[worst]['budget']:g} rows together: {worst[:12]} rated "
                     f"{capped[worst]['prompts']} prompts, each counted at weight {capped[worst]['weight']:.3f})")
        contradicted = sum(v["contradicted"] for v in self.raters.values())
        if contradicted:
            text += f"; {contradicted} rating(s) down-weighted for contradicting the evaluator or other raters"
        return [text]


def _num(value: Any) -> float | None:
    try:
        v = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    return v if v is None or math.isfinite(v) else None


def rater_of(rating: Mapping[str, Any]) -> str:
    """Who gave a rating: its ``rater`` (hashed), or the one shared :data:`UNKNOWN_RATER`."""
    return str(rating.get("rater") or UNKNOWN_RATER)


def _evaluator_scores(c: Mapping[str, Any]) -> dict[str, float | None]:
    from routing.learning.outcome_log import quality_scores

    return quality_scores(c.get("results") or {}, c.get("user_best_model"), None)


def _ratings_by_comparison(outcome_log: Any, comps: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every rater's latest rating of each comparison (:meth:`OutcomeLog.ratings` where the log
    has it, else the one rating each comparison carries)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    reader = getattr(outcome_log, "ratings", None)
    if callable(reader):
        try:
            for r in reader():
                out[str(r["comparison_id"])].append(dict(r))
            return out
        except TypeError:
            out.clear()
    for c in comps:
        if c.get("rating"):
            out[str(c["id"])].append({"comparison_id": c["id"], **c["rating"]})
    return out


def _verdicts(rating: Mapping[str, Any], evaluator: Mapping[str, float | None]) -> dict[str, float]:
    """What one rating says, per model: the rated answer 1 (up) / 0 (down) / 0.99 (only a better
    model named, as the log's own rule), the better model 1."""
    out: dict[str, float] = {}
    model, better = rating.get("model"), rating.get("better_model")
    verdict = int(rating.get("rating") or 0)
    if model:
        if verdict > 0:
            out[model] = 1.0
        elif verdict < 0:
            out[model] = 0.0
        elif better:
            e = evaluator.get(model)
            out[model] = min(e, 0.99) if e is not None else 0.99
    if better and better != model:
        out[better] = 1.0
    return out


def weigh(comparisons: Sequence[Mapping[str, Any]], ratings: Mapping[str, Sequence[Mapping[str, Any]]], *,
          share: float = RATER_SHARE, min_prompts: int = RATER_MIN_PROMPTS
          ) -> tuple[dict[tuple[str, int], float], dict[str, dict[str, Any]]]:
    """Each rating's weight (key: comparison id, index in ``ratings[id]``) and the raters' report."""
    prompts = {c["id"]: c["prompt"] for c in comparisons}
    rows = len(set(prompts.values()))
    budget = max(float(min_prompts), share * rows)
    rated: dict[str, set[str]] = defaultdict(set)
    for cid, items in ratings.items():
        if cid in prompts:
            for r in items:
                rated[rater_of(r)].add(prompts[cid])
    base = {rater: min(1.0, budget / len(p)) for rater, p in rated.items()}
    # The evidence on each prompt: the evaluator's scores (every comparison of it), and each
    # rater's verdicts.
    evaluator: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_id = {c["id"]: c for c in comparisons}
    for c in comparisons:
        for m, v in _evaluator_scores(c).items():
            if v is not None:
                evaluator[c["prompt"]][m].append(v)
    peers: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for cid, items in ratings.items():
        if cid in by_id:
            ev = _evaluator_scores(by_id[cid])
            for r in items:
                for m, v in _verdicts(r, ev).items():
                    peers[prompts[cid]][m].append((rater_of(r), v))
    weights: dict[tuple[str, int], float] = {}
    contradicted: dict[str, int] = defaultdict(int)
    for cid, items in ratings.items():
        if cid not in by_id:
            continue
        prompt, ev = prompts[cid], _evaluator_scores(by_id[cid])
        seen = {m: sum(v) / len(v) for m, v in evaluator[prompt].items() if v}
        for i, r in enumerate(items):
            who, says = rater_of(r), _verdicts(r, ev)
            w = base[who]
            model, better = r.get("model"), r.get("better_model")
            against_evaluator = False
            verdict = int(r.get("rating") or 0)
            if model in seen and verdict:
                against_evaluator = (verdict < 0 and seen[model] >= GOOD) or (verdict > 0 and seen[model] < GOOD)
            if better and better in seen and model in seen and seen[better] < seen[model]:
                against_evaluator = True
            against_peers = False
            for m, v in says.items():
                others = [pv for rater, pv in peers[prompt].get(m, []) if rater != who]
                if others and abs(sum(others) / len(others) - v) > 0.5:
                    against_peers = True
            w *= (CONTRADICTED if against_evaluator else 1.0) * (CONTRADICTED if against_peers else 1.0)
            if against_evaluator or against_peers:
                contradicted[who] += 1
            weights[(cid, i)] = w
    report = {rater: {"prompts": len(p), "weight": round(base[rater], 4), "budget": round(budget, 2),
                      "contradicted": contradicted.get(rater, 0)} for rater, p in rated.items()}
    return weights, report


def _cells(c: Mapping[str, Any], items: Sequence[Mapping[str, Any]], weights: Mapping[tuple[str, int], float],
           cap: float, claims: bool) -> dict[str, float | None]:
    """One comparison's per-model scores after its ratings: ``e + min(W, cap) * (r - e)``; claims
    (a better model with no evaluator score here) only where ``claims`` and they weigh enough."""
    ev = _evaluator_scores(c)
    said: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for i, r in enumerate(items):
        w = weights.get((c["id"], i), 0.0)
        for m, v in _verdicts(r, ev).items():
            said[m].append((v, w))
    out = dict(ev)
    for m, votes in said.items():
        total = sum(w for _, w in votes)
        if total <= 0:
            continue
        mean = sum(v * w for v, w in votes) / total
        e = ev.get(m)
        if e is not None:
            out[m] = e + min(total, cap, 1.0) * (mean - e)
        elif m in ev:
            continue                      # the model failed here: an outage, not a verdict
        elif claims and total >= CLAIM_MIN_WEIGHT:
            out[m] = mean
    return out


def export(outcome_log: Any, *, share: float = RATER_SHARE, min_prompts: int = RATER_MIN_PROMPTS) -> FeedbackExport:
    """The weighted RouterBench-layout frame of ``outcome_log`` (see the module docstring)."""
    from routing.learning.outcome_log import routerbench_columns, routerbench_row

    everything = outcome_log.comparisons()
    ratings = _ratings_by_comparison(outcome_log, everything)
    comps = [c for c in everything if c.get("scoring") != "pending" or ratings.get(c["id"]) or c.get("user_best_model")]
    weights, report = weigh(comps, ratings, share=share, min_prompts=min_prompts)
    models: list[str] = []
    merged: dict[str, dict[str, Any]] = {}
    for c in comps:
        items = ratings.get(c["id"], [])
        scores = _cells(c, items, weights, 1.0, claims=True)
        gate = _cells(c, items, weights, GATE_RATING_WEIGHT, claims=False)
        models += [m for m in scores if m not in models]
        row = merged.setdefault(c["prompt"], {"sample_id": c["id"], "scores": {}, "gate": {}, "responses": {},
                                              "costs": {}})
        for m, value in scores.items():
            r = (c.get("results") or {}).get(m) or {}
            if m in (c.get("results") or {}) or value is not None:   # a weak claim does not blank a real score
                row["scores"][m] = value
                row["responses"][m] = r.get("response")
                row["costs"][m] = None if r.get("error") else r.get("cost_usd")
        for m, value in gate.items():
            row["gate"][m] = value
    rows, gate_out = [], {}
    for prompt, m in merged.items():
        known = {k: v for k, v in m["scores"].items() if v is not None}
        winner = max(known, key=known.get) if known and max(known.values()) > 0 else None
        rows.append(routerbench_row(m, prompt, models, winner))
        gate_out[prompt_text(prompt)] = {k: float(v) for k, v in m["gate"].items() if v is not None}
    return FeedbackExport(pd.DataFrame(rows, columns=routerbench_columns(models)), gate_out, report)


def gate_file(csv_path: str | Path) -> Path:
    path = Path(csv_path)
    return path.with_name(path.stem + GATE_SUFFIX)


def write_export(outcome_log: Any, out_csv: str | Path, *, share: float = RATER_SHARE) -> FeedbackExport:
    """Write :func:`export` to ``out_csv`` (verbatim cells: the pipeline reads prompts exactly) and
    the gate's test outcomes and the raters' report to ``<out>.gate.json``; both atomically."""
    result = export(outcome_log, share=share)
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    result.frame.to_csv(tmp, index=False)
    tmp.replace(out)
    side = gate_file(out)
    tmp = side.with_name(f".{side.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps({"gate_scores": result.gate, "raters": result.raters, "share": share,
                               "notes": result.notes()}, ensure_ascii=False), encoding="utf-8")
    tmp.replace(side)
    return result


def read_gate(csv_path: str | Path) -> dict[str, Any] | None:
    """The ``.gate.json`` written beside an export, or None."""
    side = gate_file(csv_path)
    if not side.is_file():
        return None
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except ValueError:
        return None
