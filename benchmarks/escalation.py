"""Escalation when unsure, measured on the public outcome sets that hold the models' real answers
(issue 30, item 2).

    python benchmarks/escalation.py [--sets math_l5,crux,routerbench,arena_bench] [--per-set 300]
        [--cost-weight 0.5] [--seed 0] [--out benchmarks/results/escalation.json] [--rows]
        [--train-sweep]

    # any wide outcome table with <model>|model_response columns (e.g. a small test table):
    python benchmarks/escalation.py --table TEST.csv [--train-table TRAIN.csv] [--pool a,b,c]
        [--prior DIR] [--ratings FILE] [--ratings-map FILE] [--prices FILE] ...

For each set, on up to ``--per-set`` prompts of its TEST split (a seeded sample; rows where a pool
model has no score are left out), with a pool of five of the set's models, four strategies:

1. **no escalation**: the evidence prior, run zero-shot as ``python -m training.benchmark
   --zero-shot --public-sets`` does (fitted on the *other* four public sets; ratings through
   ``benchmarks/ratings_maps/public_sets.json``), picks a model at ``--cost-weight`` (0.5: cheap
   models get picked); quality = that model's ground-truth score on the prompt, cost = its cost;
2. **escalation** with ``routing/escalation/policy.py``'s defaults, replaying what
   ``routing.router.Router._escalate`` does with the recorded answers: the *unsure* trigger on the
   prior's per-model chances, the *weak* trigger on ``policy.answer_score`` of the picked model's
   recorded answer; when either fires, ``policy.next_model_up`` answers too (its recorded answer
   and cost) and its answer is kept only if ``policy.keep_second``; cost = both calls;
   also the streamed rule (an unsure decision goes to the next model up *instead*; one call);
3. **always the best model**: the pool's best by ground-truth mean on the set's TRAIN split
   (and, as a second line, the pool's best by public rating);
4. the **oracle**: the best pool answer per prompt (the cheapest among ties).

The pool: of the models with a public rating, a price (the table's cost or a list price) and a
score on at least 95% of the train prompts, the train split's cost-quality Pareto frontier (no
other model both cheaper and better), thinned to five by cost rank when longer, filled up to five
with the best-rated remaining models when shorter. Only the train split and public ratings decide
it. Costs: the table's real cost (RouterBench), else list price x the answer's own length (as the
zero-shot benchmark does; Arena-Bench's answers come from ``judgments/arena_bench_v1_graded.csv``,
joined on prompt text and model name). LLMRouter has no answers and is not measured.

``--train-sweep`` replays other thresholds on the TRAIN split (never the test split) and reports
them as such. Prints a table per set and writes a JSON report. Needs ``../shared/data`` for the
public sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict, deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SETS_WITH_ANSWERS = ("math_l5", "crux", "routerbench", "arena_bench")
POOL_SIZE = 5
MIN_COVERAGE = 0.95
#: Models that bill hidden reasoning tokens: the recorded answer is only their visible text, so list
#: price x answer length would understate their cost several times over; left out of the pools.
HIDDEN_REASONING_PREFIXES = ("o1-", "o3-", "o4-", "deepseek-r1")
SWEEP_MARGINS = (0.0, 0.02, 0.05, 0.1, 0.2)
SWEEP_MIN_SCORES = (0.0, 0.3, 0.4, 0.45, 0.5, 0.6)


# ------------------------------------------------------------------------------------ answers
def _wide_answer_rows(path: str | Path, models: Sequence[str]) -> tuple[list[str], list[dict[str, str | None]]]:
    """(prompt, {model: answer}) for each row of a wide table that ``read_outcomes`` keeps (a prompt
    and at least one score), in file order; answers unwrapped as prompts are (RouterBench's cells
    are Python-literal lists)."""
    import pandas as pd

    from routing.errors import UserError
    from training.benchmark.outcomes import PROMPT_COLUMNS, RESPONSE_SUFFIX
    from training.files import read_data_file
    from training.text import prompt_text

    df = read_data_file(path, "Outcome table", ("data", "rows"))
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"{path}: only wide tables (CSV or Parquet with <model>|model_response columns) hold answers.")
    lower = {str(c).strip().lower(): c for c in df.columns}
    prompt_col = next(lower[n] for n in PROMPT_COLUMNS if n in lower)
    prompts = [prompt_text(p) for p in df[prompt_col].tolist()]
    scores = np.column_stack([pd.to_numeric(df[m], errors="coerce").to_numpy(dtype=float) if m in df.columns
                              else np.full(len(df), np.nan) for m in models])
    cols = {m: f"{m}{RESPONSE_SUFFIX}" for m in models}
    out_p, out_a = [], []
    for i, p in enumerate(prompts):
        if not p.strip() or np.all(np.isnan(scores[i])):
            continue
        row = {}
        for m, c in cols.items():
            v = df[c].iat[i] if c in df.columns else None
            row[m] = prompt_text(v) if isinstance(v, str) else None
        out_p.append(p)
        out_a.append(row)
    return out_p, out_a


def _align(prompts: Sequence[str], source: tuple[list[str], list[dict]], what: str) -> list[dict]:
    """The answer rows for ``prompts`` (a split of the table, in its order): duplicates of a prompt
    are taken in file order, which is how the splits keep them."""
    from routing.errors import UserError

    queue: dict[str, deque] = defaultdict(deque)
    for p, a in zip(*source):
        queue[p].append(a)
    out = []
    for p in prompts:
        if not queue[p]:
            raise UserError(f"{what}: no answers for a prompt of the table ({p[:60]!r}...).")
        out.append(queue[p].popleft())
    return out


def arena_answers(graded: Path) -> tuple[list[str], list[dict]]:
    """Arena-Bench v1's answers from the graded judgments file, one row per prompt."""
    import pandas as pd

    from training.text import prompt_text

    df = pd.read_csv(graded)
    by_prompt: dict[str, dict[str, str]] = {}
    for p, m, a in zip(df["prompt"], df["model"], df["answer"]):
        by_prompt.setdefault(prompt_text(p), {})[str(m)] = a if isinstance(a, str) else ""
    return list(by_prompt), list(by_prompt.values())


def with_answer_chars(table, answers: Sequence[Mapping[str, str | None]]):
    """The table with ``answer_chars`` from the answers (so list-price costs use the real length)."""
    chars = np.array([[float(len(a[m])) if a.get(m) is not None else np.nan for m in table.models]
                      for a in answers]).reshape(len(table), len(table.models))
    table.answer_chars = chars
    return table


# --------------------------------------------------------------------------------------- pool
def hidden_reasoning(model: str) -> bool:
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(HIDDEN_REASONING_PREFIXES)

def choose_pool(train, ratings, size: int = POOL_SIZE) -> tuple[list[str], dict[str, Any]]:
    """Five models spanning price and quality, decided on the train split and public ratings only
    (see the module docstring)."""
    from routing.selectors import prior as pr

    full = pr.RATING_CATEGORIES.index("full")
    info = {}
    for j, m in enumerate(train.models):
        cov = float(np.mean(~np.isnan(train.scores[:, j])))
        cost = float(np.nanmean(train.costs[:, j])) if train.costs is not None else float("nan")
        info[m] = {"rated": bool(ratings.known[j]), "rating_full": round(float(ratings.R[j, full]), 1),
                   "train_quality": round(float(np.nanmean(train.scores[:, j])), 4),
                   "train_cost_per_1000": round(cost * 1000, 6), "coverage": round(cov, 3)}
    hidden = [m for m in train.models if hidden_reasoning(m)]
    cands = [m for m, v in info.items() if v["rated"] and v["coverage"] >= MIN_COVERAGE
             and np.isfinite(v["train_cost_per_1000"]) and m not in hidden]
    order = sorted(cands, key=lambda m: (info[m]["train_cost_per_1000"], -info[m]["train_quality"]))
    frontier, best = [], -1.0
    for m in order:
        if info[m]["train_quality"] > best:
            frontier.append(m)
            best = info[m]["train_quality"]
    if len(frontier) > size:
        # thinned to the models nearest to costs spaced evenly on a log scale (cheapest and best kept)
        logc = {m: np.log(max(info[m]["train_cost_per_1000"], 1e-12)) for m in frontier}
        pool = [frontier[0], frontier[-1]]
        for target in np.linspace(logc[frontier[0]], logc[frontier[-1]], size)[1:-1]:
            pool.append(min((m for m in frontier if m not in pool), key=lambda m: abs(logc[m] - target)))
        how = f"train Pareto frontier of {len(frontier)}, thinned to costs evenly spaced on a log scale"
    else:
        rest = sorted((m for m in cands if m not in frontier),
                      key=lambda m: (-info[m]["rating_full"], -info[m]["train_quality"]))
        added = rest[:size - len(frontier)]
        pool = frontier + added
        how = (f"train Pareto frontier ({len(frontier)})" +
               (f" + best-rated others ({', '.join(added)})" if added else ""))
    pool = sorted(pool, key=lambda m: info[m]["train_cost_per_1000"])
    return pool, {"rule": how, "frontier": frontier, "candidates": len(cands),
                  "left_out_hidden_reasoning": hidden,
                  "models": {m: info[m] for m in pool}}


# ---------------------------------------------------------------------------------- simulation
def evaluator_scores(prompts: Sequence[str], answers: Sequence[Mapping[str, str | None]], pool: Sequence[str]
                     ) -> np.ndarray:
    """``policy.answer_score`` of every pool model's recorded answer (n, K): what the router would
    compute for whichever answers it asks for (deterministic, so computing all of them changes
    nothing but allows the diagnostics)."""
    from routing.escalation.policy import answer_score

    return np.array([[answer_score(p, a.get(m) or "") for m in pool] for p, a in zip(prompts, answers)])


def replay(pool: Sequence[str], P: np.ndarray, first: np.ndarray, E: np.ndarray, G: np.ndarray, C: np.ndarray,
           policy) -> dict[str, Any]:
    """Replay the router's escalation (routing.router.Router._escalate) on recorded answers.

    P: the prior's chance per model, first: the picked column, E: evaluator scores, G: ground truth,
    C: costs (all (n, K) but first). Returns per-row arrays and records."""
    from routing.escalation.policy import keep_second, next_model_up, unsure, weak

    n = len(first)
    col = {m: j for j, m in enumerate(pool)}
    rows = []
    q = np.zeros(n)
    cost = np.zeros(n)
    q_stream = np.zeros(n)
    cost_stream = np.zeros(n)
    for i in range(n):
        sel = SimpleNamespace(scores={m: float(P[i, j]) for j, m in enumerate(pool)})
        a = int(first[i])
        s1 = float(E[i, a])
        why_u = unsure(sel, policy)
        why_w = weak(s1, policy)
        up = next_model_up(sel, pool[a]) if (why_u or why_w) else None
        rec = {"first": pool[a], "first_score": round(s1, 4), "unsure": why_u is not None, "weak": why_w is not None,
               "second": up, "scores": {m: round(float(P[i, j]), 4) for j, m in enumerate(pool)},
               "truth_first": float(G[i, a])}
        kept = a
        c = float(C[i, a])
        if up is not None:
            b = col[up]
            s2 = float(E[i, b])
            c += float(C[i, b])
            if keep_second(s1, s2):
                kept = b
            rec.update(second_score=round(s2, 4), truth_second=float(G[i, b]))
        rec["kept"] = pool[kept]
        q[i], cost[i] = G[i, kept], c
        # the streamed rule: an unsure decision goes up before answering (one call, no weak trigger)
        s_up = next_model_up(sel, pool[a]) if why_u else None
        k = col[s_up] if s_up is not None else a
        q_stream[i], cost_stream[i] = G[i, k], C[i, k]
        rows.append(rec)
    return {"quality": q, "cost": cost, "quality_streamed": q_stream, "cost_streamed": cost_stream, "rows": rows}


def _auc(scores: np.ndarray, good: np.ndarray) -> float | None:
    """P(score of a good answer > score of a bad one), ties half."""
    pos, neg = scores[good], scores[~good]
    if not len(pos) or not len(neg):
        return None
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _pairwise_agreement(E: np.ndarray, G: np.ndarray) -> tuple[float | None, int]:
    """Within a prompt, over pairs of pool answers whose ground truth differs: the share the evaluator
    orders as the ground truth does (an evaluator tie counts half)."""
    agree, total = 0.0, 0
    K = E.shape[1]
    for a in range(K):
        for b in range(a + 1, K):
            d = np.sign(G[:, a] - G[:, b])
            mask = d != 0
            e = np.sign(E[mask, a] - E[mask, b])
            agree += float((e == d[mask]).sum() + 0.5 * (e == 0).sum())
            total += int(mask.sum())
    return (agree / total if total else None), total


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def same_spend(P: np.ndarray, knob: np.ndarray, G: np.ndarray, C: np.ndarray, budget: float) -> dict[str, Any]:
    """The prior alone (no escalation) at the cost weight whose spend comes closest to ``budget`` (mean
    cost per prompt) without exceeding it: what the same money buys when spent up front. The weight
    is matched on cost only, never chosen by quality."""
    from training.benchmark import metrics as rm

    idx = np.arange(len(P))
    best = None
    for lam in rm.DEFAULT_LAMBDAS:
        choice = rm.cost_aware_choice(P, knob, float(lam))
        cost = float(C[idx, choice].mean())
        if cost <= budget + 1e-12 and (best is None or cost > best[1] + 1e-12):
            best = (float(lam), cost, float(G[idx, choice].mean()))
    if best is None:
        return {"cost_weight": None, "quality": None, "cost_per_1000": None}
    return {"cost_weight": _r(best[0], 5), "quality": _r(best[2]), "cost_per_1000": _r(best[1] * 1000, 6)}


def summarise(pool: Sequence[str], P: np.ndarray, knob: np.ndarray, first: np.ndarray, E: np.ndarray,
              G: np.ndarray, C: np.ndarray, rep: Mapping[str, Any], always: Mapping[str, int], seed: int = 0
              ) -> dict[str, Any]:
    """The per-set report from a replay."""
    from training.benchmark import metrics as rm

    n = len(first)
    idx = np.arange(n)
    rows = rep["rows"]
    q0, c0 = G[idx, first], C[idx, first]
    unsure_ = np.array([r["unsure"] for r in rows], bool)
    weak_ = np.array([r["weak"] for r in rows], bool)
    either = unsure_ | weak_
    asked = np.array([r["second"] is not None for r in rows], bool)
    changed = np.array([r["kept"] != r["first"] for r in rows], bool)
    wrong_first = q0 < 0.5
    triggers = {"unsure": _r(unsure_.mean()), "weak": _r(weak_.mean()), "either": _r(either.mean()),
                "asked_second": _r(asked.mean()),
                "fired_at_top": _r((either & ~asked).mean()),
                "kept_second": _r(changed.mean())}
    # the evaluator on the rows where a second answer was asked: did it keep the better one?
    t1 = np.array([r["truth_first"] for r in rows if r["second"] is not None])
    t2 = np.array([r["truth_second"] for r in rows if r["second"] is not None])
    kept2 = np.array([r["kept"] != r["first"] for r in rows if r["second"] is not None], bool)
    decided = t1 != t2
    kept_truth = np.where(kept2, t2, t1)
    other_truth = np.where(kept2, t1, t2)
    on_escalated = {"rows": int(asked.sum()),
                    "second_better_by_truth": _r((t2 > t1).mean()) if len(t1) else None,
                    "first_better_by_truth": _r((t1 > t2).mean()) if len(t1) else None,
                    "decided_pairs": int(decided.sum()),
                    "kept_the_better_on_decided": (_r((kept_truth > other_truth)[decided].mean())
                                                   if decided.any() else None),
                    "kept_at_least_as_good": _r((kept_truth >= other_truth).mean()) if len(t1) else None,
                    "changed_to_better": int((kept2 & (t2 > t1)).sum()),
                    "changed_to_worse": int((kept2 & (t2 < t1)).sum()),
                    "missed_better_second": int((~kept2 & (t2 > t1)).sum())}
    agreement, pairs = _pairwise_agreement(E, G)
    good_all = G >= 0.5
    evaluator = {"pairwise_agreement_pool_answers": _r(agreement), "pairs": pairs,
                 "auc_all_pool_answers": _r(_auc(E.ravel(), good_all.ravel())),
                 "auc_first_answers": _r(_auc(E[idx, first], ~wrong_first)),
                 "score_quartiles_first_answers": [_r(v, 3) for v in np.quantile(E[idx, first], [0.25, 0.5, 0.75])]}
    weak_check = {"first_wrong_rate": _r(wrong_first.mean()),
                  "wrong_when_weak_fired": _r(wrong_first[weak_].mean()) if weak_.any() else None,
                  "wrong_when_not_fired": _r(wrong_first[~weak_].mean()) if (~weak_).any() else None,
                  "wrong_first_caught": _r(weak_[wrong_first].mean()) if wrong_first.any() else None}
    unsure_check = {"wrong_when_unsure": _r(wrong_first[unsure_].mean()) if unsure_.any() else None,
                    "wrong_when_sure": _r(wrong_first[~unsure_].mean()) if (~unsure_).any() else None}

    def strat(q: np.ndarray, c: np.ndarray, **extra) -> dict[str, Any]:
        return {"quality": _r(q.mean()), "cost_per_1000": _r(c.mean() * 1000, 6), **extra}

    best_q = G.max(axis=1)
    oracle = np.array([min((j for j in range(G.shape[1]) if G[i, j] == best_q[i]), key=lambda j: C[i, j])
                       for i in range(n)])
    out = {
        "no_escalation": strat(q0, c0, picks={m: _r((first == j).mean()) for j, m in enumerate(pool)}),
        "escalation": strat(rep["quality"], rep["cost"], triggers=triggers,
                            quality_diff_vs_no_escalation_ci95=[_r(v) for v in
                                                                rm.paired_diff_ci(rep["quality"], q0, seed=seed)],
                            cost_ratio_vs_no_escalation=_r(rep["cost"].mean() / c0.mean()) if c0.mean() > 0 else None,
                            evaluator_on_escalated=on_escalated),
        "escalation_streamed": strat(rep["quality_streamed"], rep["cost_streamed"],
                                     rule="unsure: the next model up answers instead (one call); no weak trigger"),
    }
    for key, j in always.items():
        out[key] = strat(G[:, j], C[:, j], model=pool[j])
    out["oracle"] = strat(best_q, C[idx, oracle])
    out["no_escalation_same_spend"] = same_spend(P, knob, G, C, float(rep["cost"].mean()))
    ranked = np.argsort(-P, axis=1)
    gap = P[idx, ranked[:, 0]] - P[idx, ranked[:, 1]]
    pairs: dict[str, int] = defaultdict(int)
    for a, b in ranked[:, :2]:
        pairs[" & ".join(sorted((pool[a], pool[b])))] += 1
    out["prior"] = {"top_two_gap_quartiles": [_r(v, 3) for v in np.quantile(gap, [0.25, 0.5, 0.75])],
                    "top_two_most_often": max(pairs, key=pairs.get),
                    "top_two_most_often_share": _r(max(pairs.values()) / n),
                    "pick_in_top_two": _r(np.mean([first[i] in ranked[i, :2] for i in range(n)]))}
    out["trigger_rates"] = triggers
    out["evaluator"] = evaluator
    out["weak_trigger_check"] = weak_check
    out["unsure_trigger_check"] = unsure_check
    return out


def sweep(pool, P, knob, first, E, G, C) -> list[dict[str, Any]]:
    """Quality and cost of the escalation at other thresholds (run on a TRAIN split only), each with
    the prior alone at the same spend."""
    from routing.escalation.policy import EscalationPolicy

    out = []
    for margin in SWEEP_MARGINS:
        for min_score in SWEEP_MIN_SCORES:
            rep = replay(pool, P, first, E, G, C, EscalationPolicy(True, margin, min_score))
            asked = np.mean([r["second"] is not None for r in rep["rows"]])
            same = same_spend(P, knob, G, C, float(rep["cost"].mean()))
            out.append({"margin": margin, "min_score": min_score, "quality": _r(rep["quality"].mean()),
                        "cost_per_1000": _r(rep["cost"].mean() * 1000, 6), "asked_second": _r(asked),
                        "prior_alone_same_spend_quality": same["quality"]})
    return out


# ------------------------------------------------------------------------------------ one set
def _usable_rows(table, pool: Sequence[str]) -> list[int]:
    """Rows where every pool model has a score (and a cost)."""
    sub = table.select_models(list(pool))
    ok = ~np.isnan(sub.scores).any(axis=1)
    if sub.costs is not None:
        ok &= np.isfinite(sub.costs).all(axis=1)
    return [i for i in range(len(table)) if ok[i]]


def _sample(rows: Sequence[int], n: int, seed: int) -> list[int]:
    if n <= 0 or n >= len(rows):
        return list(rows)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.asarray(rows), size=n, replace=False).tolist())


def run_set(name: str, params, test, test_answers, *, train=None, train_answers=None, ratings_file,
            mapping: Mapping[str, str | None], prices: str | None, pool: Sequence[str] | None, per_set: int,
            cost_weight: float, seed: int, cache_dir: Path | None, train_sweep: bool = False,
            with_rows: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Everything for one outcome table (its test split and, when given, its train split)."""
    from routing.errors import UserError
    from routing.escalation.policy import EscalationPolicy
    from routing.selectors import prior as pr
    from training.benchmark import metrics as rm
    from training.benchmark.zero_shot import priced, table_ratings
    from training.embeddings import embed

    t0 = time.time()
    test = with_answer_chars(test, test_answers)
    test_p, unpriced = priced(test, prices, mapping)
    train_p = None
    if train is not None:
        train = with_answer_chars(train, train_answers)
        train_p = priced(train, prices, mapping)[0].select_models(test_p.models)
    if pool:
        missing = [m for m in pool if m not in test_p.models]
        if missing:
            raise UserError(f"{name}: the pool names models the table has no (priced) column for: {', '.join(missing)}")
        pool_info = {"rule": "given (--pool)"}
    elif train_p is not None:
        r_all, _ = table_ratings(train_p.models, ratings_file, mapping)
        pool, pool_info = choose_pool(train_p, r_all)
    elif len(test_p.models) <= POOL_SIZE:
        pool, pool_info = list(test_p.models), {"rule": "all the table's models"}
    else:
        raise UserError(f"{name}: give --pool (or --train-table to choose one) for a table of "
                        f"{len(test_p.models)} models.")
    pool = list(pool)
    ratings, match = table_ratings(pool, ratings_file, mapping)
    # the cost knob's per-model price: the train split's mean cost (only the ratios matter)
    knob_src = train_p.select_models(pool) if train_p is not None else test_p.select_models(pool)
    knob = np.nan_to_num(np.nanmean(knob_src.costs, axis=0), nan=0.0)
    full = pr.RATING_CATEGORIES.index("full")

    def split(table, answers, n_cap, what):
        usable = _usable_rows(table, pool)
        rows = _sample(usable, n_cap, seed)
        sub = table.select_models(pool).rows(rows)
        ans = [answers[i] for i in rows]
        X = embed(sub.prompts, None, max_length=256, cache_dir=cache_dir)
        P = pr.predict(params, X, sub.prompts, ratings).p
        first = rm.cost_aware_choice(P, knob, cost_weight)
        t = time.time()
        E = evaluator_scores(sub.prompts, ans, pool)
        progress(f"{name} ({what}): {len(rows)} of {len(usable)} usable prompts ({len(table)} in the split); "
                 f"evaluator on {E.size} answers in {time.time() - t:.1f} s")
        return sub, P, first, E, sub.scores, sub.costs, len(usable)

    sub, P, first, E, G, C, usable = split(test_p, test_answers, per_set, "test split")
    policy = EscalationPolicy(True)
    rep = replay(pool, P, first, E, G, C, policy)
    always = {}
    if train_p is not None:
        tq = np.nanmean(train_p.select_models(pool).scores, axis=0)
        always["always_best"] = int(np.argmax(tq))
    always["always_best_rated"] = int(np.argmax(ratings.R[:, full]))
    if "always_best" not in always:
        always["always_best"] = always["always_best_rated"]
    report = summarise(pool, P, knob, first, E, G, C, rep, always, seed)
    report["always_best"]["by"] = ("ground-truth mean on the train split" if train_p is not None
                                   else "public rating (no train split given)")
    report["always_best_rated"]["by"] = "public rating (full, style-controlled)"
    report.update({"prompts": len(sub), "usable_test_prompts": usable, "test_split_prompts": len(test),
                   "pool": pool, "pool_choice": pool_info, "cost_weight": cost_weight,
                   "costs": ("real (the table's)" if test.costs is not None and not np.isnan(test.costs).all()
                             else "list price x the answer's length"),
                   "unpriced_models_left_out": unpriced,
                   "ratings_match": match.get("matched"),
                   "policy": {"margin": policy.margin, "min_score": policy.min_score}})
    if with_rows:
        report["rows"] = rep["rows"]
    if train_sweep and train_p is not None:
        s_sub, s_P, s_first, s_E, s_G, s_C, _ = split(train_p, train_answers, per_set, "train split, sweep")
        picked = np.arange(len(s_first)), s_first
        report["train_sweep"] = {"split": "train", "prompts": len(s_sub),
                                 "no_escalation": {"quality": _r(s_G[picked].mean()),
                                                   "cost_per_1000": _r(s_C[picked].mean() * 1000, 6)},
                                 "grid": sweep(pool, s_P, knob, s_first, s_E, s_G, s_C)}
    report["seconds"] = round(time.time() - t0, 1)
    return report


# ------------------------------------------------------------------------------------ printing
def format_set(name: str, r: Mapping[str, Any]) -> str:
    lines = [f"{name}: {r['prompts']} test prompts (of {r['usable_test_prompts']} usable), cost weight "
             f"{r['cost_weight']}, costs {r['costs']}",
             f"  pool ({r['pool_choice']['rule']}): {', '.join(r['pool'])}",
             f"  {'strategy':34s} {'quality':>8s} {'cost/1000 prompts':>18s}"]
    for key, label in (("no_escalation", "no escalation (prior picks)"), ("escalation", "escalation (policy defaults)"),
                       ("escalation_streamed", "escalation, streamed rule"),
                       ("always_best", f"always {r['always_best']['model']}"),
                       ("always_best_rated", f"always best-rated {r['always_best_rated']['model']}"),
                       ("oracle", "oracle (best per prompt)")):
        s = r[key]
        lines.append(f"  {label:34s} {s['quality']:8.4f} {'$%.4f' % s['cost_per_1000']:>18s}")
    ss = r["no_escalation_same_spend"]
    if ss["quality"] is not None:
        lines.append(f"  {'prior alone, same spend (w=%g)' % ss['cost_weight']:34s} {ss['quality']:8.4f} "
                     f"{'$%.4f' % ss['cost_per_1000']:>18s}")
    t = r["trigger_rates"]
    e = r["escalation"]
    pi = r["prior"]
    lines.append(f"  prior: top-two gap quartiles {pi['top_two_gap_quartiles']}, top two most often "
                 f"{pi['top_two_most_often']} ({pi['top_two_most_often_share']:.0%}); the pick is one of the top two "
                 f"on {pi['pick_in_top_two']:.0%}")
    ev = e["evaluator_on_escalated"]
    lines.append(f"  triggers: unsure {t['unsure']:.1%}, weak {t['weak']:.1%}, either {t['either']:.1%}; "
                 f"second model asked {t['asked_second']:.1%} (fired at the top model {t['fired_at_top']:.1%}); "
                 f"kept the second {t['kept_second']:.1%}")
    ci = e["quality_diff_vs_no_escalation_ci95"]
    lines.append(f"  escalation - no escalation: quality 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}], cost x"
                 f"{e['cost_ratio_vs_no_escalation']}")
    if ev["rows"]:
        kb = ev["kept_the_better_on_decided"]
        lines.append(f"  on the {ev['rows']} escalated rows: second better by truth "
                     f"{ev['second_better_by_truth']:.1%}, "
                     f"first better {ev['first_better_by_truth']:.1%}; the evaluator kept the better one on "
                     f"{'-' if kb is None else f'{kb:.1%}'} of {ev['decided_pairs']} decided pairs "
                     f"(changed to better {ev['changed_to_better']}, to worse {ev['changed_to_worse']}, "
                     f"missed a better second {ev['missed_better_second']})")
    w, u, v = r["weak_trigger_check"], r["unsure_trigger_check"], r["evaluator"]
    fmt = lambda x: "-" if x is None else f"{x:.1%}"   # noqa: E731
    lines.append(f"  first answer wrong: {fmt(w['first_wrong_rate'])} overall, {fmt(w['wrong_when_weak_fired'])} when "
                 f"weak fired, {fmt(w['wrong_when_not_fired'])} when not; {fmt(u['wrong_when_unsure'])} when unsure, "
                 f"{fmt(u['wrong_when_sure'])} when sure")
    lines.append(f"  evaluator vs truth: AUC {v['auc_all_pool_answers']} (all pool answers), "
                 f"{v['auc_first_answers']} (first answers); pairwise agreement {v['pairwise_agreement_pool_answers']} "
                 f"on {v['pairs']} pairs; first-answer score quartiles {v['score_quartiles_first_answers']}")
    if "train_sweep" in r:
        sw = r["train_sweep"]
        lines.append(f"  TRAIN split sweep ({sw['prompts']} prompts; no escalation "
                     f"{sw['no_escalation']['quality']:.4f} "
                     f"at ${sw['no_escalation']['cost_per_1000']:.4f}/1000): quality / $ per 1000 prompts "
                     f"(quality minus the prior alone's at the same spend)")
        lines.append("    margin \\ min_score " + "".join(f"{m:>22g}" for m in SWEEP_MIN_SCORES))
        for margin in SWEEP_MARGINS:
            cells = [g for g in sw["grid"] if g["margin"] == margin]
            lines.append(f"    {margin:<19g}" + "".join(
                f"{g['quality']:>7.3f}/{g['cost_per_1000']:<5.3g}" + (
                    f"({g['quality'] - g['prior_alone_same_spend_quality']:+.3f})"
                    if g['prior_alone_same_spend_quality'] is not None else "(  -   )") for g in cells))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- main
def _loo_priors(names: Sequence[str], data: Path, cache: Path, progress) -> dict[str, Any]:
    """The evidence prior for each named set, fitted on the other four public sets (as
    ``training.benchmark.zero_shot.public_sets`` does)."""
    from training.benchmark.zero_shot import PUBLIC_SETS_MAP, read_ratings_map, table_ratings
    from training.embeddings import embed
    from training.prior.data import outcome_sets, topic_examples
    from training.prior.fit import fit_prior, link_data

    ratings_file = data / "ratings" / "lmarena_text_category_ratings.csv"
    mapping = read_ratings_map(PUBLIC_SETS_MAP)
    texts, labels, _ = topic_examples(data)
    topic_X = embed(texts, None, max_length=256, cache_dir=cache)
    rated = {}
    for s in outcome_sets(data):
        X = embed(s.train.prompts, None, max_length=256, cache_dir=cache)
        r, _ = table_ratings(s.train.models, ratings_file, mapping)
        rated[s.name] = link_data(s.name, s.train, X, r)
    out = {}
    for name in names:
        others = [v for k, v in rated.items() if k != name and v is not None]
        out[name] = fit_prior(topic_X, labels, others, {"left_out": name})
        progress(f"prior for {name} fitted on {', '.join(k for k in rated if k != name)}")
    return out


def public_set_tables(name: str, data: Path):
    """(train, test, train answers, test answers, price file) of one public set."""
    from training.benchmark.outcomes import read_outcomes
    from training.prior.data import outcome_sets

    s = outcome_sets(data, (name,))[0]
    out = data / "outcomes"
    if name == "routerbench":
        slices = ("arc_challenge", "mbpp", "winograde")
        parts = {}
        for split in ("train", "test"):
            ps, ans = [], []
            for sl in slices:
                path = out / "routerbench" / f"{sl}_{split}.csv"
                p, a = _wide_answer_rows(path, read_outcomes(path).models)
                ps += p
                ans += a
            parts[split] = (ps, ans)
        tr = _align(s.train.prompts, parts["train"], name)
        te = _align(s.test.prompts, parts["test"], name)
    elif name == "arena_bench":
        src = arena_answers(data / "judgments" / "arena_bench_v1_graded.csv")
        tr, te = _align(s.train.prompts, src, name), _align(s.test.prompts, src, name)
    else:
        path = out / "zeroeval" / f"{name}.csv.gz"
        src = _wide_answer_rows(path, s.train.models)
        tr, te = _align(s.train.prompts, src, name), _align(s.test.prompts, src, name)
    return s.train, s.test, tr, te, s.prices


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS_WITH_ANSWERS),
                        help=f"public sets with answers (default: {','.join(SETS_WITH_ANSWERS)})")
    parser.add_argument("--table", help="instead of the public sets: one wide outcome table with answers (test)")
    parser.add_argument("--train-table", help="its train table (chooses the pool and the always-best model)")
    parser.add_argument("--pool", help="comma-separated pool models (default: chosen from the train split)")
    parser.add_argument("--prior", help="an evidence-prior folder (default: fitted leave-one-set-out for the "
                                        "public sets; the shipped selector_model/ for --table)")
    parser.add_argument("--ratings",
                        help="ratings CSV (default ../shared/data/ratings/lmarena_text_category_ratings.csv)")
    parser.add_argument("--ratings-map", help="outcome-table name -> rating name JSON (default for the public "
                                              "sets: benchmarks/ratings_maps/public_sets.json)")
    parser.add_argument("--prices", help="price file for --table without cost columns")
    parser.add_argument("--per-set", type=int, default=300, help="test prompts per set, seeded sample (0: all)")
    parser.add_argument("--cost-weight", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", help="embedding cache (default ~/.cache/llm-router/embeddings)")
    parser.add_argument("--rows", action="store_true", help="write every row's decision to the report")
    parser.add_argument("--train-sweep", action="store_true",
                        help="also replay other thresholds on the TRAIN split (never the test split)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "escalation.json"))
    args = parser.parse_args(argv)

    from routing.escalation.policy import DEFAULT_MARGIN, DEFAULT_MIN_SCORE
    from routing.selectors import prior as pr
    from routing.settings import get_settings
    from training.benchmark.outcomes import read_outcomes
    from training.benchmark.zero_shot import PUBLIC_SETS_MAP, read_ratings_map
    from training.prior.data import shared_data

    t0 = time.time()
    cache = Path(args.cache_dir) if args.cache_dir else get_settings().cache_dir / "embeddings"
    data = shared_data()
    ratings_file = Path(args.ratings) if args.ratings else data / "ratings" / "lmarena_text_category_ratings.csv"
    pool = [m.strip() for m in args.pool.split(",") if m.strip()] if args.pool else None
    report: dict[str, Any] = {
        "command": "python benchmarks/escalation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "policy_defaults": {"margin": DEFAULT_MARGIN, "min_score": DEFAULT_MIN_SCORE},
        "cost_weight": args.cost_weight, "per_set": args.per_set, "seed": args.seed, "sets": {}}
    if args.table:
        params = pr.PriorParams.load(args.prior or get_settings().selector_dir)
        mapping = read_ratings_map(args.ratings_map)
        test = read_outcomes(args.table)
        test_ans = _align(test.prompts, _wide_answer_rows(args.table, test.models), args.table)
        train = train_ans = None
        if args.train_table:
            train = read_outcomes(args.train_table)
            train_ans = _align(train.prompts, _wide_answer_rows(args.train_table, train.models), args.train_table)
        report["prior"] = "given" if args.prior else "shipped selector_model/"
        report["sets"][Path(args.table).name] = run_set(
            Path(args.table).name, params, test, test_ans, train=train, train_answers=train_ans,
            ratings_file=ratings_file, mapping=mapping, prices=args.prices, pool=pool, per_set=args.per_set,
            cost_weight=args.cost_weight, seed=args.seed, cache_dir=cache, train_sweep=args.train_sweep,
            with_rows=args.rows)
    else:
        names = [n.strip() for n in args.sets.split(",") if n.strip()]
        bad = [n for n in names if n not in SETS_WITH_ANSWERS]
        if bad:
            print(f"no answers to replay in {', '.join(bad)} (sets with answers: {', '.join(SETS_WITH_ANSWERS)})",
                  file=sys.stderr)
            return 2
        if not (data / "outcomes").is_dir():
            print(f"no outcome tables at {data / 'outcomes'} (see ../shared/data/SOURCES.md)", file=sys.stderr)
            return 2
        mapping = read_ratings_map(args.ratings_map or PUBLIC_SETS_MAP)
        if args.prior:
            params_for = {n: pr.PriorParams.load(args.prior) for n in names}
            report["prior"] = f"given: {args.prior}"
        else:
            params_for = _loo_priors(names, data, cache, print)
            report["prior"] = "zero-shot: fitted on the other four public sets (leave one set out)"
        for name in names:
            train, test, tr_ans, te_ans, prices = public_set_tables(name, data)
            report["sets"][name] = run_set(
                name, params_for[name], test, te_ans, train=train, train_answers=tr_ans, ratings_file=ratings_file,
                mapping=mapping, prices=prices, pool=pool, per_set=args.per_set, cost_weight=args.cost_weight,
                seed=args.seed, cache_dir=cache, train_sweep=args.train_sweep, with_rows=args.rows)
            print(format_set(name, report["sets"][name]))
    if args.table:
        for name, r in report["sets"].items():
            print(format_set(name, r))
    report["seconds"] = round(time.time() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{report['seconds']} s; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
