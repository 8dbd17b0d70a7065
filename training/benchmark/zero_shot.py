"""Zero-shot routing from public ratings, and what a few outcomes add (issue 27's measurement).

One table (anyone's)::

    python -m training.benchmark --zero-shot --test TABLE [--train TABLE] [--prices FILE]
        [--ratings FILE] [--ratings-map FILE] [--prior DIR] --out DIR

routes TABLE's models with only their public ratings and the prior in ``--prior`` (default: the
shipped ``selector_model/``), against random, always the best-rated model, the keyword rules'
category mapped to the model rated best in it, the best single model in hindsight and (with
``--train``) kNN on TRAIN. Its last line is one JSON object (``quality``, ``aiq``, ``apgr`` for two
models, ``diff_ci95``, ``unrated_models``).

The five public sets, each routed by a prior fitted on the *other* four (leave one dataset out),
plus the few-outcome curves (k = 25 ... 500 rows of the set's train split: prior + updates against
kNN on the same rows)::

    python -m training.benchmark --zero-shot --public-sets --out benchmarks/out/zero_shot \
        --report-json benchmarks/results/zero_shot.json

Costs are the table's real costs where it has them, else list prices x the answer's length
(the answers' own length where the table has them, else 200 tokens); models without a price are
left out of the cost figures and listed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from routing.errors import UserError
from routing.evidence.ratings import default_ratings, match_names, read_price_table, read_ratings
from routing.selectors import prior as pr
from routing.selectors.rules import top_category
from training.benchmark import metrics as rm
from training.benchmark.head import choose_k, knn_predict
from training.benchmark.outcomes import OutcomeTable, estimate_costs, load_prices, read_many

log = logging.getLogger(__name__)

CURVE_KS = (25, 50, 100, 200, 500)
#: The keyword rules' categories (routing/categories.py) as rating categories.
RULE_TO_RATING = {"coding": "coding", "math": "math", "creative": "creative_writing", "reasoning": "hard_6"}


def read_ratings_map(path: str | Path | None) -> dict[str, str | None]:
    """A JSON object: outcome-table column -> rating name (or null: no rating); ``_`` keys are comments."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"Ratings map {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(v is None or isinstance(v, str) for v in data.values()):
        raise UserError(f"Ratings map {path} must hold a JSON object: outcome-table column -> rating name.")
    return {str(k): v for k, v in data.items() if not str(k).startswith("_")}


PUBLIC_SETS_MAP = Path(__file__).resolve().parents[2] / "benchmarks" / "ratings_maps" / "public_sets.json"


def table_ratings(models: Sequence[str], ratings_file: str | Path, mapping: Mapping[str, str | None] | None = None
                  ) -> tuple[pr.Ratings, dict[str, Any]]:
    """The table's models' ratings (unknown ones at the file's median) and the match report."""
    ratings = read_ratings(ratings_file)
    mapping = {k: v for k, v in (mapping or {}).items() if k in set(models)}
    report = match_names(models, list(ratings), mapping)
    table = {m: (ratings[report.matches[m][0]] if m in report.matches else None) for m in models}
    names = [report.matches[m][0] if m in report.matches else None for m in models]
    out = pr.ratings_from_table(models, table, default_ratings(ratings), names)
    return out, {"matched": {m: {"rating_name": c, "how": how} for m, (c, how) in report.matches.items()},
                 "unmatched": list(report.unmatched), "ambiguous": dict(report.ambiguous)}


def priced(table: OutcomeTable, prices_file: str | None, mapping: Mapping[str, str | None] | None = None
           ) -> tuple[OutcomeTable, list[str]]:
    """The table with costs: its own, else estimated from ``prices_file`` (a price JSON as
    :func:`load_prices` reads, or the LMArena price CSV, matched by name). Unpriced models are dropped."""
    if table.costs is not None and not np.isnan(table.costs).all():
        return table, []
    if not prices_file:
        raise UserError(f"{table.source} has no costs: give --prices (USD per million tokens per model).")
    if str(prices_file).endswith(".csv"):
        rows = read_price_table(prices_file)
        # The ratings map names rating entries; the price file uses the same names where it has them.
        match = match_names(table.models, list(rows), {k: v for k, v in (mapping or {}).items() if v in rows})
        prices = {m: (rows[c]["input_usd_per_mtok"], rows[c]["output_usd_per_mtok"])
                  for m, (c, _) in match.matches.items()}
    else:
        prices = load_prices(prices_file)
    keep = [m for m in table.models if m in prices]
    dropped = [m for m in table.models if m not in prices]
    if len(keep) < 2:
        raise UserError(f"Fewer than two of {table.source}'s models have a price in {prices_file}.")
    return estimate_costs(table.select_models(keep), prices), dropped


def _filled(scores: np.ndarray) -> np.ndarray:
    """Missing cells at the model's mean (a model not run on a prompt is neither right nor wrong)."""
    mean = np.nan_to_num(np.nanmean(scores, axis=0), nan=0.0)
    return np.where(np.isnan(scores), mean[None, :], scores)


def baselines(params: pr.PriorParams, texts: Sequence[str], ratings: pr.Ratings, seed: int = 0
              ) -> dict[str, np.ndarray]:
    """Predictions of the evidence-only baselines (each a (n, K) matrix the cost knob can sweep)."""
    n, K = len(texts), len(ratings.models)
    col = {c: i for i, c in enumerate(pr.RATING_CATEGORIES)}
    link = lambda r: pr.sigmoid(params.slope * (r - pr.REFERENCE) / 100.0)   # noqa: E731
    rng = np.random.default_rng(seed)
    category = [col[RULE_TO_RATING.get(top_category(t), "full")] for t in texts]
    return {"random": rng.random((n, K)),
            "best_rated": np.broadcast_to(link(ratings.R[:, col["full"]]), (n, K)).copy(),
            "category_best": link(ratings.R[:, category].T)}


def evaluate(preds: Mapping[str, np.ndarray], test: OutcomeTable, knob: np.ndarray, *, ci_pairs=(),
             n_boot: int = 500, seed: int = 0) -> dict[str, Any]:
    """Quality at cost weight 0, AIQ, cost share at best-single quality and APGR for each prediction."""
    S = _filled(test.scores)
    C = _filled(test.costs)
    K = len(test.models)
    singles = {m: {"quality": float(S[:, j].mean()), "cost": float(C[:, j].mean())} for j, m in enumerate(test.models)}
    best = max(range(K), key=lambda j: (singles[test.models[j]]["quality"], -singles[test.models[j]]["cost"]))
    max_cost = max(s["cost"] for s in singles.values())
    target_q, target_c = singles[test.models[best]]["quality"], singles[test.models[best]]["cost"]
    out: dict[str, Any] = {"quality": {}, "aiq": {}, "cost_share_at_best_single_quality": {}, "cost_per_1k": {}}
    for name, pred in preds.items():
        choice = rm.cost_aware_choice(pred, knob, 0.0)
        out["quality"][name] = round(float(rm.realised(S, choice).mean()), 4)
        out["cost_per_1k"][name] = round(float(rm.realised(C, choice).mean()) * 1000, 6)
        curve = rm.sweep(pred, S, C, knob)
        out["aiq"][name] = round(rm.aiq([(p["cost"], p["quality"]) for p in curve], max_cost), 4)
        reach = rm.cost_to_reach(curve, target_q)
        out["cost_share_at_best_single_quality"][name] = None if reach is None else round(reach / target_c, 4)
    out["quality"]["best_single"] = round(target_q, 4)
    out["aiq"]["best_single"] = round(rm.aiq([(s["cost"], s["quality"]) for s in singles.values()], max_cost), 4)
    out["cost_share_at_best_single_quality"]["best_single"] = 1.0
    out["quality"]["oracle"] = round(float(S.max(axis=1).mean()), 4)
    out["best_single_model"] = test.models[best]
    if K == 2:
        strong, weak = best, 1 - best
        out["apgr"] = {name: round(rm.apgr(pred[:, strong] - pred[:, weak], S, strong, weak), 4)
                       for name, pred in preds.items()}
    out["diff_ci95"] = {}
    knob_matrix = np.broadcast_to(knob, S.shape).copy()
    for a, b in ci_pairs:
        if a in preds and b in preds:
            ci = rm.aiq_diff_ci(preds[a], knob_matrix, preds[b], knob_matrix, S, C, max_cost, n_boot, seed)
            out["diff_ci95"][f"aiq_{a}_vs_{b}"] = [round(v, 4) for v in ci]
            q = rm.paired_diff_ci(rm.realised(S, rm.cost_aware_choice(preds[a], knob, 0.0)),
                                  rm.realised(S, rm.cost_aware_choice(preds[b], knob, 0.0)), seed=seed)
            out["diff_ci95"][f"quality_{a}_vs_{b}"] = [round(v, 4) for v in q]
    return out


def knob_prices(table: OutcomeTable) -> np.ndarray:
    """The cost knob's per-model price: the model's mean cost on the table (what a router reads
    from a price list; the normalisation makes only the ratios matter)."""
    return np.nan_to_num(np.nanmean(table.costs, axis=0), nan=0.0)


def few_outcome_curve(params: pr.PriorParams, ratings: pr.Ratings, train: OutcomeTable, Xtr: np.ndarray,
                      test: OutcomeTable, Xte: np.ndarray, knob: np.ndarray, ks: Sequence[int] = CURVE_KS,
                      seed: int = 0, n_boot: int = 300) -> dict[str, Any]:
    """Prior + updates from k train rows against kNN on the same k rows, per k."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    out = {}
    sizes = [k for k in ks if k < len(train)] + [len(train)]     # the last point: the whole train split
    for k in sizes:
        idx = order[:k]
        T = train.scores[idx]
        refinement = pr.refine(params, ratings, Xtr[idx], [train.prompts[i] for i in idx], T)
        p_upd = pr.predict(params, Xte, test.prompts, ratings, refinement).p
        kk, _ = choose_k(Xtr[idx], T, ks=tuple(x for x in (5, 10, 20, 40, 80) if x < k) or (5,), seed=seed)
        p_knn = knn_predict(Xtr[idx], T, Xte, kk)
        res = evaluate({"prior_updates": p_upd, "knn": p_knn}, test, knob,
                       ci_pairs=[("prior_updates", "knn")], n_boot=n_boot, seed=seed)
        out[str(k) if k != len(train) else f"all ({k})"] = {"aiq": {n: res["aiq"][n] for n in ("prior_updates", "knn")},
                       "quality": {n: res["quality"][n] for n in ("prior_updates", "knn")},
                       "diff_ci95": res["diff_ci95"], "knn_k": kk}
    return out


def zero_shot_table(params: pr.PriorParams, test: OutcomeTable, Xte: np.ndarray, ratings_file: str | Path,
                    *, train: OutcomeTable | None = None, Xtr: np.ndarray | None = None,
                    prices_file: str | None = None, mapping: Mapping[str, str | None] | None = None,
                    curve_ks: Sequence[int] = (), seed: int = 0, n_boot: int = 500) -> dict[str, Any]:
    """The whole zero-shot report for one test table."""
    test_priced, unpriced = priced(test, prices_file, mapping)
    models = test_priced.models
    ratings, match = table_ratings(models, ratings_file, mapping)
    preds = {"prior": pr.predict(params, Xte, test_priced.prompts, ratings).p,
             **baselines(params, test_priced.prompts, ratings, seed)}
    train_priced = None
    if train is not None and Xtr is not None:
        train_priced = train.select_models(models)
        if train_priced.costs is not None and np.isnan(train_priced.costs).all():
            train_priced.costs = None
        kk, _ = choose_k(Xtr, train_priced.scores, seed=seed)
        preds["knn"] = knn_predict(Xtr, train_priced.scores, Xte, kk)
    knob = knob_prices(test_priced)
    pairs = [("prior", "knn"), ("prior", "category_best"), ("prior", "best_rated"), ("prior", "random")]
    report = evaluate(preds, test_priced, knob, ci_pairs=pairs, n_boot=n_boot, seed=seed)
    report.update({"source": test.source, "prompts": len(test_priced), "models": models,
                   "unpriced_models_left_out": unpriced, "ratings_match": match,
                   "unrated_models": [m for m, known in zip(models, ratings.known) if not known],
                   "unrated_share": round(float(1 - ratings.known.mean()), 3),
                   "costs": "real" if test.costs is not None and not np.isnan(test.costs).all() else "list prices"})
    if curve_ks and train_priced is not None:
        report["few_outcomes"] = few_outcome_curve(params, ratings, train_priced, Xtr, test_priced, Xte, knob,
                                                   curve_ks, seed)
    return report


def summary_line(report: Mapping[str, Any]) -> dict[str, Any]:
    """The one-line JSON the command ends with."""
    names = ("prior", "random", "best_rated", "category_best", "best_single", "knn")
    out = {"quality": {n: report["quality"].get(n) for n in names if n in report["quality"]},
           "aiq": {n: report["aiq"].get(n) for n in names if n in report["aiq"]}}
    if "apgr" in report:
        out["apgr"] = {n: report["apgr"].get(n) for n in names if n in report["apgr"]}
    ci = report.get("diff_ci95", {})
    out["diff_ci95"] = {"aiq_prior_vs_knn": ci.get("aiq_prior_vs_knn"),
                        "aiq_prior_vs_category_best": ci.get("aiq_prior_vs_category_best")}
    out["unrated_models"] = report.get("unrated_models", [])
    return out


# --------------------------------------------------------------------------- the five public sets
def public_sets(out_dir: Path, *, seed: int = 0, curve_ks: Sequence[int] = CURVE_KS, n_boot: int = 500,
                progress=print) -> dict[str, Any]:
    """Leave one dataset out over the five public sets: fit the prior on four, route the fifth."""
    from training.embeddings import embed
    from training.prior.data import outcome_sets, shared_data, topic_examples
    from training.prior.fit import fit_prior, link_data
    from routing.settings import get_settings

    t0 = time.time()
    data = shared_data()
    ratings_file = data / "ratings" / "lmarena_text_category_ratings.csv"
    cache = get_settings().cache_dir / "embeddings"
    texts, labels, _ = topic_examples(data)
    topic_X = embed(texts, None, max_length=256, cache_dir=cache)
    sets = outcome_sets(data)
    mapping = read_ratings_map(PUBLIC_SETS_MAP)
    X = {}
    rated = {}
    for s in sets:
        X[s.name] = (embed(s.train.prompts, None, max_length=256, cache_dir=cache),
                     embed(s.test.prompts, None, max_length=256, cache_dir=cache))
        r, _ = table_ratings(s.train.models, ratings_file, mapping)
        rated[s.name] = link_data(s.name, s.train, X[s.name][0], r)
        progress(f"{s.name}: {len(s.train)} train / {len(s.test)} test prompts, "
                 f"{int(r.known.sum())} of {len(r.models)} models rated ({time.time() - t0:.0f} s)")
    report: dict[str, Any] = {"sets": {}, "command": "python -m training.benchmark --zero-shot --public-sets",
                              "seed": seed}
    for s in sets:
        others = [rated[o.name] for o in sets if o.name != s.name and rated[o.name] is not None]
        params = fit_prior(topic_X, labels, others, {"left_out": s.name})
        res = zero_shot_table(params, s.test, X[s.name][1], ratings_file, train=s.train, Xtr=X[s.name][0],
                              prices_file=s.prices, mapping=mapping, curve_ks=curve_ks, seed=seed, n_boot=n_boot)
        res["prior_fit"] = {"slope": params.info.get("slope"), "difficulty": params.info.get("difficulty"),
                            "fitted_on": [o.name for o in others]}
        report["sets"][s.name] = res
        progress(f"{s.name}: AIQ prior {res['aiq']['prior']} | knn {res['aiq'].get('knn')} | category_best "
                 f"{res['aiq']['category_best']} | best_rated {res['aiq']['best_rated']} | random "
                 f"{res['aiq']['random']}  ({time.time() - t0:.0f} s)")
    report["timing_s"] = round(time.time() - t0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def one_table(args) -> dict[str, Any]:
    from training.embeddings import embed
    from training.prior.data import shared_data
    from routing.settings import get_settings

    cache = Path(args.cache_dir) if args.cache_dir else get_settings().cache_dir / "embeddings"
    prior_dir = Path(args.prior or get_settings().selector_dir)
    if not pr.is_prior_dir(prior_dir):
        raise UserError(f"{prior_dir} holds no evidence prior: fit one with python -m training.prior --out DIR.")
    params = pr.PriorParams.load(prior_dir)
    ratings_file = args.ratings or shared_data() / "ratings" / "lmarena_text_category_ratings.csv"
    mapping = read_ratings_map(args.ratings_map)
    test = read_many(args.test)
    train = read_many(args.train) if args.train else None
    Xte = embed(test.prompts, None, max_length=256, cache_dir=cache)
    Xtr = embed(train.prompts, None, max_length=256, cache_dir=cache) if train is not None else None
    report = zero_shot_table(params, test, Xte, ratings_file, train=train, Xtr=Xtr, prices_file=args.prices,
                             mapping=mapping, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


ROUTERS = ("prior", "knn", "category_best", "best_rated", "random", "best_single")


def _ci(pair: Sequence[float] | None) -> str:
    return "-" if not pair else f"[{pair[0]:+.3f}, {pair[1]:+.3f}]"


def format_table(report: Mapping[str, Any]) -> str:
    """The one table's figures as text."""
    lines = [f"{report['source']}: {report['prompts']} prompts, {len(report['models'])} models "
             f"({len(report['unrated_models'])} without a public rating; costs: {report['costs']})",
             f"{'router':15s} {'quality':>8s} {'AIQ':>7s} {'cost share':>10s}"]
    for name in ROUTERS:
        if name in report["aiq"]:
            share = report["cost_share_at_best_single_quality"].get(name)
            lines.append(f"{name:15s} {report['quality'][name]:8.4f} {report['aiq'][name]:7.4f} "
                         f"{'-' if share is None else f'{share:.3f}':>10s}")
    for key, pair in report.get("diff_ci95", {}).items():
        lines.append(f"  {key}: 95% CI {_ci(pair)}")
    if report["unpriced_models_left_out"]:
        lines.append(f"  left out (no price): {', '.join(report['unpriced_models_left_out'])}")
    return "\n".join(lines)


def format_public(report: Mapping[str, Any]) -> str:
    """The five sets side by side, then the few-outcome curves."""
    sets = report["sets"]
    lines = ["Zero-shot AIQ (each set routed by a prior fitted on the other four)",
             f"{'set':12s} " + " ".join(f"{n:>13s}" for n in ROUTERS) + "  prior-knn CI95      prior-category CI95"]
    for name, r in sets.items():
        ci = r["diff_ci95"]
        lines.append(f"{name:12s} " + " ".join(f"{r['aiq'].get(n, float('nan')):13.4f}" for n in ROUTERS)
                     + f"  {_ci(ci.get('aiq_prior_vs_knn')):18s}  {_ci(ci.get('aiq_prior_vs_category_best'))}")
    lines.append("")
    lines.append("Few outcomes: AIQ of prior + updates vs kNN on the same k train rows (95% CI of the difference)")
    for name, r in sets.items():
        curve = r.get("few_outcomes") or {}
        cells = [f"k={k}: {c['aiq']['prior_updates']:.4f} vs {c['aiq']['knn']:.4f} "
                 f"{_ci(c['diff_ci95'].get('aiq_prior_updates_vs_knn'))}" for k, c in curve.items()]
        lines.append(f"{name:12s} " + " | ".join(cells))
    return "\n".join(lines)
