"""Proof on real outcome data: ``python -m training.benchmark --train TRAIN... --test TEST...``.

Trains a selector on TRAIN outcome tables with the pipeline's label step (outcomes) and prepare
step (a stratified validation split), and the head exactly as the app's train step fits it
(``python -m training.pipeline.train --strategy auto``, :mod:`training.pipeline.strategies`): per-model success
probabilities on the base encoder's embeddings - the k nearest TRAIN prompts' outcomes, a
multi-resolution cluster prior, a ridge linear probe, a bagged MLP, or the mean of two of them,
picked by 3-fold CV on TRAIN (AIQ where TRAIN has costs) with the one-standard-error rule - and
a cost model giving each model's expected cost on each prompt, which the cost knob trades
against success. ``--selector-strategy`` fixes the head instead. With ``--finetune`` the pipeline's train step also
fine-tunes the encoder end to end (one sigmoid per model, :mod:`training.benchmark.finetuned_selector`),
and the selector is the fine-tuned model, the embedding head or their average, whichever routes
best on the validation split. (Off by default: on RouterBench and LLMRouter the fine-tuned model
was no better on the validation split, at ~25x the time.)
It reports on TEST, side by side: random routing, every single model, the best single model
(chosen on TRAIN), the per-prompt oracle, a kNN router on the base encoder's sentence embeddings
(k by 5-fold CV on TRAIN), the selector and each of its parts:

* quality at the pure-quality setting with bootstrap 95% CIs, and paired-bootstrap CIs of the
  selector's difference to the best single model and to kNN;
* the cost-quality curve over the cost knob, AIQ, and the cost at which a router first reaches
  the best single model's quality as a share of that model's cost;
* for two-model pools: APGR and the strong-model share needed for 50% / 80% of the gap (CPT).

Writes ``report.json`` and ``cost_quality.html`` (plotly) to ``--out`` and prints a one-line
JSON summary last. Metric conventions: :mod:`training.benchmark.metrics`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.errors import UserError
from routing.settings import get_settings
from training.benchmark import metrics as rm
from training.embeddings import default_base_model, embed
from training.benchmark.cost_model import CostModel
from training.benchmark.head import choose_k, knn_predict
from training.benchmark.finetuned_selector import finetune
from training.pipeline.label import label_outcomes
from training.benchmark.outcomes import OutcomeTable, estimate_costs, load_prices, read_many
from training.pipeline.train import TrainConfig

log = logging.getLogger(__name__)


def _expand(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        out += [x for x in p.split(",") if x]
    return out


def load_tables(train_paths: Sequence[str], test_paths: Sequence[str],
                prices_file: str | None) -> tuple[OutcomeTable, OutcomeTable, list[str]]:
    """Read, align models, drop incomplete test rows, attach costs. Returns (train, test, notes)."""
    train, test = read_many(_expand(train_paths)), read_many(_expand(test_paths))
    notes = []
    models = [m for m in train.models if m in test.models]
    if len(models) < 2:
        raise UserError(f"TRAIN and TEST share {len(models)} model(s) ({models}); need at least 2.")
    dropped = [m for m in train.models + test.models if m not in models]
    if dropped:
        notes.append(f"models not in both tables ignored: {sorted(set(dropped))}")
    train, test = train.select_models(models), test.select_models(models)
    complete = [i for i in range(len(test)) if not np.isnan(test.scores[i]).any()]
    if len(complete) < len(test):
        notes.append(f"dropped {len(test) - len(complete)} test row(s) with a missing score")
        test = test.rows(complete)
    keep = [i for i in range(len(train)) if not np.isnan(train.scores[i]).all()]
    train = train.rows(keep)
    if prices_file:
        prices = load_prices(prices_file)
        if train.costs is None or np.isnan(train.costs).all():
            train = estimate_costs(train, prices)
        if test.costs is None or np.isnan(test.costs).all():
            test = estimate_costs(test, prices)
        notes.append("per-prompt costs estimated from the price file where the tables have none")
    for t in (train, test):
        if t.costs is not None:   # fill missing cost cells with the model's mean cost
            col = np.nanmean(t.costs, axis=0)
            t.costs = np.where(np.isnan(t.costs), np.nan_to_num(col)[None, :], t.costs)
    return train, test, notes


def run_selector_pipeline(train: OutcomeTable, work: Path, seed: int) -> dict[str, Any]:
    """The pipeline's label and prepare steps on TRAIN (outcome labels, stratified val split)."""
    from training.pipeline.label import write_labels, LabelResult
    from training.pipeline.prepare import prepare

    records, labels, notes = label_outcomes(train, None)
    counts = {m: sum(1 for r in records if r["label"] == m) for m in labels}
    res = LabelResult(records, labels, "outcomes", [train.source], counts, notes)
    path = write_labels(res, work / "labeled_prompts.json")
    prepared = prepare(path, work, val_fraction=0.15, test_fraction=0.0, seed=seed, refreeze=True,
                       frozen_test=work / "none.json")
    return {"labels": labels, "class_counts": counts, "prepare": prepared.summary()}


def fit_selector(X: np.ndarray, train: OutcomeTable, seed: int, strategy: str = "auto") -> tuple[str, Any, Any]:
    """The selector exactly as ``python -m training.pipeline.train --strategy STRATEGY`` fits its head on
    ``train`` (TRAIN only): ``(candidate, fitted, head_fit)``. ``auto`` is the app's contest
    (:func:`training.pipeline.strategies.fit_head`: the four heads and their pairs by 3-fold CV on TRAIN,
    by AIQ where TRAIN prices every model, the one-standard-error rule); ``head_fit`` is its
    :class:`~training.pipeline.strategies.HeadFit` (None for a fixed strategy)."""
    from training.pipeline.strategies import AUTO_CANDIDATES, fit_head, fit_one
    from training.pipeline.train import Dataset

    if strategy != "auto":
        if strategy not in AUTO_CANDIDATES:
            raise UserError(f"Unknown selector strategy {strategy!r}; use auto or one of {', '.join(AUTO_CANDIDATES)}.")
        return strategy, fit_one(strategy, X, train.scores, seed), None
    records = ([{"costs": dict(zip(train.models, map(float, row)))} for row in train.costs]
               if train.costs is not None else [{}] * len(train))   # as training.pipeline.label writes them
    data = Dataset(list(train.prompts), [int(np.nanargmax(np.nan_to_num(r, nan=-1))) for r in train.scores],
                   train.scores, records)
    empty = Dataset([], [], np.zeros((0, train.scores.shape[1])), [])
    head = fit_head("auto", {"train": X, "val": np.zeros((0, X.shape[1]))}, {"train": data, "val": empty},
                    True, seed, models=train.models)
    return head.params.get("candidate", head.strategy), head.fitted, head


def curve_aiq(pred: np.ndarray, scores: np.ndarray, costs: np.ndarray, knob_cost: np.ndarray,
              max_cost: float) -> float:
    """AIQ of the cost-knob sweep of ``pred`` with ``knob_cost`` (per model or per prompt)."""
    pts = [(p["cost"], p["quality"]) for p in rm.sweep(pred, scores, costs, knob_cost)]
    return rm.aiq(pts, max_cost)


def fit_cost_model(X: np.ndarray, table: OutcomeTable) -> CostModel | None:
    """Per-prompt, per-model cost model on TRAIN (None when the table has no costs)."""
    if table.costs is None:
        return None
    return CostModel().fit(X, table.prompts, table.costs)


SOURCES = ("embedding", "finetuned", "finetuned+embedding")


def choose_source(train: OutcomeTable, X: np.ndarray, val_texts: Sequence[str], variant: str,
                  finetuned_val: Any, model_cost: np.ndarray, seed: int = 0) -> tuple[str, dict[str, float]]:
    """Embedding head, fine-tuned transformer, or their average: whichever routes best on the
    prepare step's validation split of TRAIN (AIQ where TRAIN has costs, else quality at lambda 0).

    ``finetuned_val(prompts)`` scores the validation prompts with the fine-tuned model (which never
    trained on them); the embedding head ``variant`` (an auto candidate) is refitted without them
    for this comparison.
    """
    where = {t.strip(): i for i, t in enumerate(train.prompts)}
    val = sorted({where[t.strip()] for t in val_texts if t.strip() in where})
    rest = np.setdiff1d(np.arange(len(train)), val)
    if len(val) < 10 or len(rest) < 10:
        return "finetuned+embedding", {}
    T = train.scores
    from training.pipeline.strategies import fit_one

    emb = fit_one(variant, X[rest], T[rest], seed).predict(X[val])
    ft = finetuned_val([train.prompts[i] for i in val])
    preds = {"embedding": emb, "finetuned": ft, "finetuned+embedding": (emb + ft) / 2}
    Tv = T[val]
    filled = np.where(np.isnan(Tv), np.nanmean(T[rest], axis=0)[None, :], Tv)
    scores: dict[str, float] = {}
    if train.costs is not None:
        cm = CostModel().fit(X[rest], [train.prompts[i] for i in rest], train.costs[rest])
        knob = cm.predict(X[val], [train.prompts[i] for i in val])
        top = float(train.costs[rest].mean(axis=0).max())
        for name, pred in preds.items():
            scores[name] = curve_aiq(pred, filled, train.costs[val], knob, top)
    else:
        for name, pred in preds.items():
            scores[name] = float(rm.realised(filled, rm.cost_aware_choice(pred, model_cost, 0.0)).mean())
    return max(SOURCES, key=lambda n: (scores[n], -SOURCES.index(n))), scores


def _router_result(name: str, choice: np.ndarray, test: OutcomeTable) -> dict[str, Any]:
    q = rm.realised(test.scores, choice)
    out = {"name": name, "quality": float(q.mean()), "ci95": rm.bootstrap_ci(q)}
    if test.costs is not None:
        out["cost"] = float(rm.realised(test.costs, choice).mean())
    return out


def benchmark(train_paths: Sequence[str], test_paths: Sequence[str], out_dir: str | Path,
              prices_file: str | None = None, *, base_model: str | None = None, seed: int = 0,
              max_length: int = 256, cache_dir: str | Path | None = None,
              with_mlp_head: bool = True, selector_strategy: str = "auto",
              finetune_config: TrainConfig | None = None, strategies: Sequence[str] = (),
              leave_one_model_out: bool = False, onboarding_ks: Sequence[int] = (50, 100, 200)) -> dict[str, Any]:
    """Run the whole comparison; returns the report (also written to ``out_dir/report.json``).

    With ``finetune_config`` the pipeline's train step also fine-tunes the encoder on TRAIN
    (outcome objective), and the selector is the embedding head, the fine-tuned transformer or
    their average, whichever routes best on the prepare step's validation split.
    """
    from training.pipeline.strategies import AUTO_CANDIDATES, HEAD_STRATEGIES

    if selector_strategy not in ("auto", *AUTO_CANDIDATES):   # before minutes of embedding
        raise UserError(f"Unknown selector strategy {selector_strategy!r}; use auto or one of "
                        f"{', '.join(AUTO_CANDIDATES)}.")
    unknown = [n for n in strategies if n not in (*HEAD_STRATEGIES, "auto")]
    if unknown:
        raise UserError(f"Unknown strategy {unknown[0]!r}: use some of {', '.join((*HEAD_STRATEGIES, 'auto'))} "
                        "(fine-tuning: --finetune).")
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, test, notes = load_tables(train_paths, test_paths, prices_file)
    models = train.models
    K = len(models)
    S, C = test.scores, test.costs
    has_cost = C is not None and train.costs is not None
    train_mean = np.nanmean(train.scores, axis=0)
    model_cost = np.nanmean(train.costs, axis=0) if has_cost else np.zeros(K)

    # The pipeline's label + prepare steps (records the class balance, the val split).
    pipe = run_selector_pipeline(train, out / "work", seed)

    base = base_model or default_base_model()
    cache = Path(cache_dir) if cache_dir else get_settings().cache_dir / "embeddings"
    print(f"embedding {len(train)} train + {len(test)} test prompts with {base} ...", flush=True)
    Xtr = embed(train.prompts, base, max_length=max_length, cache_dir=cache)
    Xte = embed(test.prompts, base, max_length=max_length, cache_dir=cache)
    t_embed = time.time() - t0

    # kNN baseline, k by 5-fold CV on TRAIN.
    k, k_scores = choose_k(Xtr, train.scores, seed=seed)
    knn_pred = knn_predict(Xtr, train.scores, Xte, k)

    # The selector: the app's own training strategy (``training.pipeline.train --strategy auto`` by
    # default: per-model success probabilities from a head on the same embeddings, the head or
    # pair of heads chosen by CV on TRAIN), so the figures are those of what the app ships; its
    # cost knob uses the cost model's expected cost of each model on each prompt.
    t1 = time.time()
    variant, fitted, head_fit = fit_selector(Xtr, train, seed, selector_strategy)
    cv = dict(head_fit.val_scores) if head_fit is not None else {}
    emb_pred = fitted.predict(Xte)
    cost_model = fit_cost_model(Xtr, train) if has_cost else None
    sel_cost = cost_model.predict(Xte, test.prompts) if cost_model is not None else model_cost
    t_head = time.time() - t1

    # The pipeline's train step end to end: fine-tune the encoder on TRAIN's outcomes.
    sel_pred, source, source_scores, ft_pred, ft_info = emb_pred, "embedding", {}, None, None
    t_ft = 0.0
    if finetune_config is not None:
        t2 = time.time()
        cfg = finetune_config if finetune_config.base_model else \
            TrainConfig(**{**vars(finetune_config), "base_model": base})
        print(f"fine-tuning {cfg.base_model} on {len(train)} TRAIN prompts "
              f"(up to {cfg.epochs} epochs) ...", flush=True)
        ft = finetune(out / "work", models, cfg, progress=lambda f, msg: print(f"  {msg}", flush=True))
        ft_pred = ft.predict(test.prompts)
        source, source_scores = choose_source(train, Xtr, ft.val_texts, variant, ft.predict, model_cost, seed)
        sel_pred = {"embedding": emb_pred, "finetuned": ft_pred,
                    "finetuned+embedding": (emb_pred + ft_pred) / 2}[source]
        ft_info = ft.summary()
        t_ft = time.time() - t2
    mlp_pred = None
    if with_mlp_head:
        from training.pipeline.strategies import fit_one

        mlp_pred = emb_pred if variant == "mlp" else fit_one("mlp", Xtr, train.scores, seed).predict(Xte)

    # ---- pure-quality comparison
    best = int(np.argmax(train_mean))
    oracle_choice = np.array([min(np.flatnonzero(r >= r.max() - 1e-12),
                                  key=lambda j: (model_cost[j], j)) for r in S])
    routers = {
        "best_single": _router_result(models[best], np.full(len(S), best), test),
        "oracle": _router_result("oracle", oracle_choice, test),
        "knn": _router_result(f"knn (k={k})", rm.cost_aware_choice(knn_pred, model_cost, 0.0), test),
        "selector": _router_result("selector", rm.cost_aware_choice(sel_pred, sel_cost, 0.0), test),
    }
    # Each part of the selector on its own, where it differs from the selector (transparency; not
    # in the summary).
    alternatives: dict[str, np.ndarray] = {}
    if ft_pred is not None:
        alternatives.update(embedding_head=emb_pred, finetuned=ft_pred)
    if mlp_pred is not None and not np.array_equal(mlp_pred, sel_pred):
        alternatives["mlp_head"] = mlp_pred
    for name, pred in alternatives.items():
        routers[name] = _router_result(name, rm.cost_aware_choice(pred, sel_cost, 0.0), test)
    singles = {m: _router_result(m, np.full(len(S), j), test) for j, m in enumerate(models)}
    random_q = float(S.mean())
    sel_q = rm.realised(S, rm.cost_aware_choice(sel_pred, sel_cost, 0.0))
    knn_q = rm.realised(S, rm.cost_aware_choice(knn_pred, model_cost, 0.0))
    best_q = S[:, best]

    report: dict[str, Any] = {
        "train": _expand(train_paths), "test": _expand(test_paths), "prices": prices_file,
        "n_train": len(train), "n_test": len(test), "models": models, "notes": notes,
        "pipeline": pipe, "knn": {"k": k, "cv_quality": k_scores},
        "selector": {"source": source, "source_scores_on_val": source_scores, "finetune": ft_info,
                     "method": "the app's training strategy (training.pipeline.train --strategy, auto by default): "
                               "per-model success probabilities from a head on the base encoder's mean-pooled "
                               "embeddings (head+tail truncation) - kNN, a multi-resolution soft k-means cluster "
                               "prior, a ridge linear probe, a bagged MLP, or the mean of two of them, chosen by "
                               "3-fold CV on TRAIN (AIQ where TRAIN has costs) with the one-standard-error rule; with "
                               "fine-tuning, the pipeline's fine-tuned transformer (sigmoid per model), or "
                               "its average with that head, where it routes better on the validation "
                               "split; decision utility = p - lambda x "
                               "expected cost of the model on this prompt (ridge cost model on TRAIN's "
                               "per-prompt costs), normalised by the priciest model's mean cost",
                     "cost_model": "ridge on log cost per model (embedding + prompt length)" if cost_model else None,
                     "strategy": selector_strategy, "variant": variant, "cv_on_train": cv,
                     "cv_criterion": head_fit.criterion if head_fit is not None else None,
                     "cv_best": head_fit.best if head_fit is not None else None,
                     "base_model": base, "max_length": max_length},
        "random": {"quality": random_q, "cost": float(C.mean()) if has_cost else None},
        "singles": singles, "routers": routers,
        "timing_s": {"embedding": round(t_embed, 1), "head": round(t_head, 1), "finetune": round(t_ft, 1)},
    }

    # ---- cost-quality curves
    curves: dict[str, list[dict[str, float]]] = {}
    aiq = {"best_single_hull": None, "knn": None, "selector": None, "oracle": None}
    share = {"knn": None, "selector": None}
    if has_cost:
        curves["selector"] = rm.sweep(sel_pred, S, C, sel_cost)
        curves["knn"] = rm.sweep(knn_pred, S, C, model_cost)
        for name, pred in alternatives.items():
            curves[name] = rm.sweep(pred, S, C, sel_cost)
        single_pts = [(singles[m]["cost"], singles[m]["quality"]) for m in models]
        oracle_pts = [(routers["oracle"]["cost"], routers["oracle"]["quality"])]
        # The oracle's own cost curve: cheapest model that reaches each quality level per prompt.
        oc = rm.sweep(S, S, C, model_cost)
        curves["oracle"] = oc
        max_cost = max(c for c, _ in single_pts)
        aiq = {"best_single_hull": rm.aiq(single_pts, max_cost),
               "knn": rm.aiq([(p["cost"], p["quality"]) for p in curves["knn"]], max_cost),
               "selector": rm.aiq([(p["cost"], p["quality"]) for p in curves["selector"]], max_cost),
               "oracle": rm.aiq([(p["cost"], p["quality"]) for p in oc] + oracle_pts, max_cost)}
        target_q, target_c = singles[models[best]]["quality"], singles[models[best]]["cost"]
        for name in ("knn", "selector"):
            c = rm.cost_to_reach(curves[name], target_q)
            share[name] = None if c is None or target_c <= 0 else c / target_c
        report["alternatives"] = {}
        for name in alternatives:
            c = rm.cost_to_reach(curves[name], target_q)
            report["alternatives"][name] = {"aiq": rm.aiq([(p["cost"], p["quality"]) for p in curves[name]], max_cost),
                                            "cost_share_at_best_single_quality": None if c is None else c / target_c}
        # Transparency: the kNN baseline given the selector's cost model (not in the summary).
        knn_cm = rm.sweep(knn_pred, S, C, sel_cost)
        c = rm.cost_to_reach(knn_cm, target_q)
        report["knn_with_cost_model"] = {"aiq": rm.aiq([(p["cost"], p["quality"]) for p in knn_cm], max_cost),
                                         "cost_share_at_best_single_quality": None if c is None else c / target_c}
        report["max_cost"] = max_cost
    report["curves"] = curves

    # ---- the app's training strategies (training/pipeline/strategies.py), side by side on the same data
    strategy_report: dict[str, Any] = {}
    for name in strategies:
        same = (variant, emb_pred, t_head) if name == selector_strategy else None   # fitted once, above
        strategy_report[name] = _strategy_result(name, Xtr, train, Xte, test, sel_cost, report.get("max_cost"),
                                                 routers["best_single"], seed, same)
    report["strategies"] = strategy_report
    aiq_ci = None
    if has_cost:
        aiq_ci = rm.aiq_diff_ci(sel_pred, sel_cost, knn_pred, np.broadcast_to(model_cost, S.shape).copy(), S, C,
                                report["max_cost"], seed=seed)

    onboarding = None
    if leave_one_model_out:
        onboarding = _leave_one_model_out(Xtr, train, Xte, test, sel_cost, report.get("max_cost"),
                                          aiq["knn"], onboarding_ks, seed)
        report["leave_one_model_out"] = onboarding

    # ---- two-model metrics
    apgr = {"random": None, "knn": None, "selector": None, "oracle": None}
    cpt50 = {"knn": None, "selector": None}
    cpt80 = {"knn": None, "selector": None}
    if K == 2:
        strong, weak = best, 1 - best
        ranks = {"knn": knn_pred[:, strong] - knn_pred[:, weak], "selector": sel_pred[:, strong] - sel_pred[:, weak],
                 "oracle": S[:, strong] - S[:, weak]}
        apgr = {"random": rm.random_apgr(S, strong, weak), **{n: rm.apgr(r, S, strong, weak) for n, r in ranks.items()}}
        for name in ("knn", "selector"):
            cpt50[name] = rm.cpt(ranks[name], S, strong, weak, 0.5)
            cpt80[name] = rm.cpt(ranks[name], S, strong, weak, 0.8)

    summary = {
        "n_train": len(train), "n_test": len(test), "models": models,
        "quality": {"random": random_q, "best_single": routers["best_single"]["quality"],
                    "oracle": routers["oracle"]["quality"], "knn": routers["knn"]["quality"],
                    "selector": routers["selector"]["quality"]},
        "ci95": {"best_single": routers["best_single"]["ci95"], "knn": routers["knn"]["ci95"],
                 "selector": routers["selector"]["ci95"]},
        "diff_ci95": {"selector_vs_best_single": rm.paired_diff_ci(sel_q, best_q),
                      "selector_vs_knn": rm.paired_diff_ci(sel_q, knn_q),
                      "aiq_selector_vs_knn": aiq_ci},
        "strategies": {n: {k: v for k, v in r.items() if k in ("quality", "aiq", "cost_share", "diff_vs_best_single")}
                       for n, r in strategy_report.items()},
        "onboarding": None if onboarding is None else onboarding["by_k"],
        "aiq": aiq, "cost_share_at_best_single_quality": share,
        "apgr": apgr, "cpt50": cpt50, "cpt80": cpt80,
    }
    report["summary"] = summary
    report["timing_s"]["total"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    _plot(report, out / "cost_quality.html")
    return report


def _leave_one_model_out(Xtr: np.ndarray, train: OutcomeTable, Xte: np.ndarray, test: OutcomeTable,
                         knob_cost: np.ndarray, max_cost: float | None, knn_aiq: float | None,
                         ks: Sequence[int], seed: int) -> dict[str, Any]:
    """Hold each model out of the cluster head, add it back from k of its TRAIN rows (training.pipeline.add_model's
    way on a cluster head: its residuals against the other models' mean in the head's clusters), and
    compare with the head trained on everything."""
    from routing.selectors.heads import added_cluster_scores
    from training.pipeline.strategies import fit_one

    S, C = test.scores, test.costs
    T = train.scores
    strategy = "cluster"   # what --strategy auto picked on both shared data sets
    full = fit_one(strategy, Xtr, T, seed).predict(Xte)

    def measure(pred: np.ndarray) -> dict[str, float]:
        out = {"quality": float(rm.realised(S, rm.cost_aware_choice(pred, knob_cost, 0.0)).mean())}
        if C is not None and max_cost:
            out["aiq"] = rm.aiq([(p["cost"], p["quality"]) for p in rm.sweep(pred, S, C, knob_cost)], max_cost)
        return out

    base = measure(full)
    rng = np.random.default_rng(seed)
    per_model: dict[str, Any] = {}
    for j, model in enumerate(train.models):
        rest = [i for i in range(len(train.models)) if i != j]
        held_out = fit_one(strategy, Xtr, T[:, rest], seed)
        without = held_out.predict(Xte)
        rows = np.flatnonzero(~np.isnan(T[:, j]))
        per_model[model] = {}
        for k in ks:
            if len(rows) < k:
                continue
            pick = rng.choice(rows, size=k, replace=False)
            added = added_cluster_scores(held_out.levels, held_out.config.temperature, Xtr[pick], T[pick, j], Xte,
                                         anchor_at_added=held_out.predict(Xtr[pick]).mean(axis=1),
                                         anchor_at_X=without.mean(axis=1))
            pred = np.insert(without, j, added, axis=1)
            per_model[model][k] = measure(pred)
    by_k: dict[str, Any] = {}
    for k in ks:
        got = [m[k] for m in per_model.values() if k in m]
        if not got:
            continue
        entry = {"models": len(got), "quality": float(np.mean([g["quality"] for g in got]))}
        if "aiq" in base:
            entry["aiq"] = float(np.mean([g["aiq"] for g in got]))
            entry["aiq_lost_vs_full"] = base["aiq"] - entry["aiq"]
            gain = None if knn_aiq is None else base["aiq"] - knn_aiq
            entry["share_of_gain_over_knn_lost"] = (None if not gain or gain <= 0
                                                    else entry["aiq_lost_vs_full"] / gain)
        by_k[str(k)] = entry
    return {"strategy": strategy, "full": base, "knn_aiq": knn_aiq, "by_k": by_k,
            "per_model": {m: {str(k): v for k, v in r.items()} for m, r in per_model.items()}}


def _strategy_result(name: str, Xtr: np.ndarray, train: OutcomeTable, Xte: np.ndarray, test: OutcomeTable,
                     knob_cost: np.ndarray, max_cost: float | None, best_single: dict[str, Any],
                     seed: int, fitted: tuple[str, np.ndarray, float] | None = None) -> dict[str, Any]:
    """One training strategy fitted on TRAIN's embeddings, as ``training.pipeline.train --strategy`` fits it
    (``fitted``: ``(candidate, TEST predictions, fit seconds)`` where the selector is that fit)."""
    t0 = time.time()
    if fitted is None:
        chosen, head, _ = fit_selector(Xtr, train, seed, name)
        fitted = (chosen, head.predict(Xte), time.time() - t0)
    chosen, pred, seconds = fitted
    S, C = test.scores, test.costs
    choice = rm.cost_aware_choice(pred, knob_cost, 0.0)
    q = rm.realised(S, choice)
    out: dict[str, Any] = {"strategy": chosen, "quality": float(q.mean()), "ci95": rm.bootstrap_ci(q),
                           "seconds": round(seconds, 1)}
    best_q = S[:, train.models.index(best_single["name"])] if best_single["name"] in train.models else None
    if best_q is not None:
        out["diff_vs_best_single"] = rm.paired_diff_ci(q, best_q)
    if C is not None and max_cost:
        curve = rm.sweep(pred, S, C, knob_cost)
        out["aiq"] = rm.aiq([(p["cost"], p["quality"]) for p in curve], max_cost)
        c = rm.cost_to_reach(curve, best_single["quality"])
        out["cost_share"] = None if c is None or not best_single.get("cost") else c / best_single["cost"]
    return out


def _plot(report: dict[str, Any], path: Path) -> None:
    """Cost-quality curves as a self-contained plotly HTML (plotly.js inside, ~4.8 MB), so the
    report opens on a machine without internet."""
    if not report.get("curves"):
        return
    try:
        import plotly.graph_objects as go
    except ImportError:
        return
    fig = go.Figure()
    for name, pts in report["curves"].items():
        pts = sorted(pts, key=lambda p: p["cost"])
        fig.add_trace(go.Scatter(x=[p["cost"] for p in pts], y=[p["quality"] for p in pts], mode="lines+markers",
                                 name=name, marker={"size": 4}))
    singles = report["singles"]
    fig.add_trace(go.Scatter(x=[v["cost"] for v in singles.values()], y=[v["quality"] for v in singles.values()],
                             mode="markers+text", text=list(singles), textposition="top center",
                             name="single models", marker={"size": 9, "symbol": "diamond"}, cliponaxis=False))
    best = report["routers"]["best_single"]
    fig.add_hline(y=best["quality"], line_dash="dot", line_color="grey",
                  annotation_text=f"best single model ({best['name']}): {best['quality']:.3f}",
                  annotation_position="bottom right")
    fig.update_layout(title="Cost-quality over the cost knob", xaxis_title="mean cost per prompt (USD)",
                      yaxis_title="mean quality", template="plotly_white")
    fig.write_html(str(path), include_plotlyjs=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--train", nargs="+", help="TRAIN outcome table(s), pooled (optional with --zero-shot)")
    parser.add_argument("--test", nargs="+", help="TEST outcome table(s), pooled")
    parser.add_argument("--zero-shot", action="store_true",
                        help="route TEST's models from their public ratings only, with the evidence prior "
                             "(training/benchmark/zero_shot.py); with --public-sets, the five public sets "
                             "leave-one-dataset-out and the few-outcome curves")
    parser.add_argument("--public-sets", action="store_true", help="with --zero-shot: the five sets in ../shared")
    parser.add_argument("--ratings", help="with --zero-shot: the ratings CSV (default: ../shared/data/ratings/"
                                          "lmarena_text_category_ratings.csv)")
    parser.add_argument("--ratings-map", help="with --zero-shot: JSON object, outcome-table column -> rating name "
                                              "(null: no rating) for names the automatic match misses")
    parser.add_argument("--prior", help="with --zero-shot: the prior's folder (default: the app's selector folder)")
    parser.add_argument("--curve-ks", default="25,50,100,200,500",
                        help="with --zero-shot --public-sets: outcome counts for the few-outcome curves")
    parser.add_argument("--out", default="benchmarks/out/selector_benchmark")
    parser.add_argument("--prices", help="model -> price per million tokens (e.g. llmrouter/models.json)")
    parser.add_argument("--base-model", help="encoder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mlp-head", action="store_true", help="skip the MLP head comparison (faster)")
    parser.add_argument("--selector-strategy", default="auto", metavar="NAME",
                        help="the selector's training strategy: auto (default: the app's CV contest on TRAIN) or "
                             "a fixed head or pair (knn, cluster, linear, mlp, cluster+mlp, ...)")
    parser.add_argument("--finetune", action="store_true",
                        help="also fine-tune the encoder with the pipeline's train step (10-15 min on 2 CPU "
                             "cores for these data sets); the selector is then the fine-tuned model, the "
                             "embedding head or their average, whichever routes best on the val split")
    parser.add_argument("--epochs", type=int, default=3, help="with --finetune: epochs (early stopping on val)")
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--cache-dir", help="embedding cache (default: ROUTER_CACHE_DIR/embeddings)")
    parser.add_argument("--leave-one-model-out", action="store_true",
                        help="hold each model out, add it back from 50/100/200 of its TRAIN rows "
                             "(training.pipeline.add_model's way) and compare with training on everything and kNN")
    parser.add_argument("--strategies", default="",
                        help="comma-separated training strategies to report side by side (knn,cluster,linear,mlp,auto: "
                             "as python -m training.pipeline.train --strategy fits them)")
    parser.add_argument("--report-json", help="also write report.json here (e.g. benchmarks/results/...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.zero_shot:
        return zero_shot_main(args)
    if not args.train or not args.test:
        parser.error("--train and --test are required (or use --zero-shot)")
    ft_cfg = None if not args.finetune else TrainConfig(
        base_model=args.base_model, epochs=args.epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, seed=args.seed, max_length=args.max_length, evals_per_epoch=2)
    try:
        report = benchmark(args.train, args.test, args.out, args.prices, base_model=args.base_model,
                           seed=args.seed, max_length=args.max_length, cache_dir=args.cache_dir,
                           with_mlp_head=not args.no_mlp_head,
                           selector_strategy=args.selector_strategy, finetune_config=ft_cfg,
                           strategies=[x.strip() for x in args.strategies.split(",") if x.strip()],
                           leave_one_model_out=args.leave_one_model_out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = report["summary"]
    print(f"{'router':28s} quality  cost")
    print(f"{'random':28s} {report['random']['quality']:.4f}")
    for name, r in list(report["singles"].items()) + [(k, v) for k, v in report["routers"].items()]:
        cost = f"{r['cost']:.3g}" if r.get("cost") is not None else "-"
        print(f"{name[:28]:28s} {r['quality']:.4f}  {cost}")
    print(f"AIQ {s['aiq']}  cost share at best-single quality {s['cost_share_at_best_single_quality']}")
    print(f"wrote {Path(args.out) / 'report.json'}")
    _write_report_json(args.report_json, report)
    print(json.dumps(s))
    return 0


def _write_report_json(path: str | None, report: dict[str, Any]) -> None:
    """``--report-json``: a copy of the report where the results are kept (benchmarks/results/...)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1), encoding="utf-8")
        print(f"wrote {path}")


def zero_shot_main(args: argparse.Namespace) -> int:
    from training.benchmark import zero_shot as zs

    out = Path(args.out if args.out != "benchmarks/out/selector_benchmark" else "benchmarks/out/zero_shot")
    args.out = str(out)
    try:
        if args.public_sets:
            ks = tuple(int(k) for k in args.curve_ks.split(",") if k.strip())
            report = zs.public_sets(out, seed=args.seed, curve_ks=ks)
            line = {name: zs.summary_line(r) for name, r in report["sets"].items()}
            print(zs.format_public(report))
        else:
            if not args.test:
                print("error: --zero-shot needs --test TABLE (or --public-sets)", file=sys.stderr)
                return 2
            report = zs.one_table(args)
            line = zs.summary_line(report)
            print(zs.format_table(report))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'report.json'}")
    _write_report_json(args.report_json, report)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
