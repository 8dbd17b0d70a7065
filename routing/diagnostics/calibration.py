"""Calibrate the cost knob to a budget on your own prompts: ``python -m routing.diagnostics.calibration PROMPTS ...``.

The N-model version of RouteLLM's threshold calibration: route the prompts at every cost weight
from 0 to 1 (one batched scoring pass; each weight only re-decides), estimate what each setting
would cost (each prompt at about 4 characters a token in, ``output_tokens`` out, at the pool's
prices) and how much of the traffic it sends to the priciest model, and return the *smallest*
weight (the most quality) that keeps within the budget: a cost per 1,000 prompts
(``--cost-per-1k``), or a share of traffic allowed to the priciest model (``--priciest-share``).
The predicted quality is the mean of the selector's scores for its picks (for the rule-based
selector, keyword scores, not probabilities). Also the Batch tab's "Calibrate" section and the
``/calibrate`` API.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from routing.budget import estimate_cost
from routing.errors import UserError
from routing.selectors.base import Selector, normalised_prices, ranked

WEIGHTS = tuple(round(w, 3) for w in np.linspace(0.0, 1.0, 41))
DEFAULT_OUTPUT_TOKENS = 300


@dataclass
class Calibration:
    cost_weight: float | None            # None: no setting keeps within the budget
    target: str                          # "cost_per_1k" | "priciest_share"
    limit: float
    feasible: bool
    achieved: dict[str, float]           # at the chosen (or, if none fits, the cheapest) setting
    prompts: int
    priciest_model: str
    output_tokens: int
    curve: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _choices(scores: np.ndarray, prices: np.ndarray, weight: float, allowed: np.ndarray) -> np.ndarray:
    """The selector's pick per prompt at ``weight`` (its own ranking rule, :func:`ranked`)."""
    utility = np.where(allowed[None, :], scores - weight * prices[None, :], -np.inf)
    return np.array([ranked(row, prices)[0] for row in utility], dtype=int)


def calibrate(selector: Selector, prompts: Sequence[str], *, cost_per_1k: float | None = None,
              priciest_share: float | None = None, output_tokens: int = DEFAULT_OUTPUT_TOKENS,
              exclude: Sequence[str] = ()) -> Calibration:
    """The smallest cost weight whose estimated spend keeps within the budget (see the module doc)."""
    if (cost_per_1k is None) == (priciest_share is None):
        raise UserError("Give one budget: a cost per 1,000 prompts (cost_per_1k) or the share of traffic "
                        "allowed to the priciest model (priciest_share).")
    if cost_per_1k is not None and not (np.isfinite(cost_per_1k) and cost_per_1k >= 0):
        raise UserError(f"cost_per_1k must be a number of dollars, 0 or more (got {cost_per_1k!r}).")
    if priciest_share is not None and not (np.isfinite(priciest_share) and 0 <= priciest_share <= 1):
        raise UserError(f"priciest_share must be from 0 to 1 (got {priciest_share!r}).")
    if not 1 <= int(output_tokens) <= 100_000:
        raise UserError(f"output_tokens must be from 1 to 100,000 (got {output_tokens!r}).")
    prompts = [p for p in prompts if isinstance(p, str) and p.strip()]
    if not prompts:
        raise UserError("No prompts to calibrate on: give a file or a list with at least one prompt.")
    pool = selector.pool
    for model_id in exclude:
        pool.get(model_id)
    allowed = np.array([m not in set(exclude) for m in pool.ids])
    if not allowed.any():
        raise UserError("Every model is excluded: leave at least one model to route to.")
    scores = np.asarray(selector.score(prompts), dtype=float)
    prices = normalised_prices(pool)
    costs = np.array([[estimate_cost(spec, len(p), int(output_tokens)) for spec in pool] for p in prompts])
    priciest = int(np.argmax([spec.blended_price_per_m if ok else -1 for spec, ok in zip(pool, allowed)]))
    curve = []
    for w in WEIGHTS:
        pick = _choices(scores, prices, float(w), allowed)
        rows = np.arange(len(prompts))
        share = {m: round(float((pick == j).mean()), 4) for j, m in enumerate(pool.ids) if (pick == j).any()}
        curve.append({"cost_weight": float(w), "cost_per_1k": round(float(costs[rows, pick].mean() * 1000), 6),
                      "priciest_share": round(float((pick == priciest).mean()), 4),
                      "predicted_quality": round(float(scores[rows, pick].mean()), 4), "traffic": share})
    key, limit = ("cost_per_1k", float(cost_per_1k)) if cost_per_1k is not None else \
        ("priciest_share", float(priciest_share))
    fits = [c for c in curve if c[key] <= limit + 1e-12]
    if fits:
        chosen = fits[0]
        note = (f"cost weight {chosen['cost_weight']:.3f} is the most quality within the budget: about "
                f"${chosen['cost_per_1k']:.4f} per 1,000 such prompts, {chosen['priciest_share']:.0%} of them to "
                f"{pool.ids[priciest]}")
    else:
        chosen = min(curve, key=lambda c: (c[key], c["cost_weight"]))
        note = (f"no cost weight keeps within {limit:g}: the cheapest setting ({chosen['cost_weight']:.3f}) still "
                f"comes to {chosen[key]:g}; exclude the priciest models or raise the budget")
    return Calibration(cost_weight=chosen["cost_weight"] if fits else None, target=key, limit=limit,
                       feasible=bool(fits), achieved={k: chosen[k] for k in ("cost_per_1k", "priciest_share",
                                                                               "predicted_quality")},
                       prompts=len(prompts), priciest_model=pool.ids[priciest], output_tokens=int(output_tokens),
                       curve=curve, note=note)


def calibrate_file(selector: Selector, settings: Any, path: Any, *, cost_per_1k: float | None = None,
                   priciest_share: float | None = None, output_tokens: int = DEFAULT_OUTPUT_TOKENS,
                   prompt_column: str | None = None, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`calibrate` on a prompt file (CSV / JSONL, read as a batch reads it, within the batch limits)."""
    from routing.batch.io import open_batch_file

    max_rows = getattr(settings, "batch_max_rows", None) if settings is not None else None
    max_mb = getattr(settings, "batch_max_mb", None) if settings is not None else None
    source = open_batch_file(path, prompt_column=prompt_column, max_rows=max_rows, max_mb=max_mb)
    prompts = [row.prompt for chunk in source.iter_chunks(1000) for row in chunk]
    return calibrate(selector, prompts, cost_per_1k=cost_per_1k, priciest_share=priciest_share,
                     output_tokens=output_tokens, exclude=exclude).to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routing.diagnostics.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("prompts", help="prompt file (CSV with a prompt/text/question column, JSONL, JSON or TXT)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--cost-per-1k", type=float, help="dollars per 1,000 prompts")
    budget.add_argument("--priciest-share", type=float, help="share of traffic allowed to the priciest model (0-1)")
    parser.add_argument("--output-tokens", type=int, default=DEFAULT_OUTPUT_TOKENS,
                        help="expected answer length in tokens, for the estimate")
    parser.add_argument("--exclude", nargs="*", default=[], help="pool ids never to route to")
    args = parser.parse_args(argv)
    from routing.pool import load_pool
    from routing.selectors import load_selector
    from routing.settings import get_settings, pool_files

    try:
        settings = get_settings()
        pool = load_pool(pool_files(settings).live)
        selector, warning = load_selector(settings, pool)
        if warning:
            print(f"note: {warning}", file=sys.stderr)
        result = calibrate_file(selector, None, args.prompts, cost_per_1k=args.cost_per_1k,
                                priciest_share=args.priciest_share, output_tokens=args.output_tokens,
                                exclude=args.exclude)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'weight':>6}  {'$/1k':>10}  {'priciest':>8}  {'quality':>7}")
    for c in result["curve"][::4]:
        print(f"{c['cost_weight']:6.3f}  {c['cost_per_1k']:10.4f}  {c['priciest_share']:8.0%}  "
              f"{c['predicted_quality']:7.3f}")
    print(result["note"])
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
