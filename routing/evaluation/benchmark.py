"""How well does the heuristic evaluator separate correct from incorrect real answers?

Reads RouterBench slices (``<dataset>_<split>.csv``: a prompt, each model's real answer in
``<model>|model_response`` and its 0/1 correctness in the column named by the model),
scores every answer with :func:`routing.evaluation.evaluator.evaluate` (no reference given: the
evaluator must judge from the prompt and the answer) in two modes, and reports per dataset:

- ``alone`` (top-level figures): each answer judged on its own;
- ``with_peers``: each answer judged with the other models' answers to the same prompt as
  peers (leave-one-out, :func:`routing.evaluation.evaluator.evaluate_group`), as compare-all does;

and for each mode:

- ``auc``: ROC AUC of ``normalized`` for correct vs incorrect answers;
- ``pairwise_accuracy``: over all (correct, incorrect) answer pairs to the same prompt,
  how often the correct one scores higher (ties count 0.5), with ``tie_rate``;
- 95% bootstrap intervals of both (resampling whole prompts);
- the same two figures for a length-only baseline (longer answer = better), for context
  (alone mode only).

Usage::

    python -m routing.evaluation.benchmark [--data-dir ../shared/data/outcomes/routerbench]
        [--out benchmarks/results/evaluator.json] [--split test] [--no-run-code]

Exits 0 with a "skipped" message when the data folder is missing.

``--graded FILE`` (e.g. ``../shared/data/judgments/arena_bench_v1_graded.csv``: answers with a
strong judge's 1-10 grade) measures agreement with the judge instead, written to
``benchmarks/results/evaluator_graded.json`` by default:

- ``pairwise``: over non-tied (by grade) pairs of answers to the same prompt, the share the score
  orders as the judge does (score ties count 0.5), with a 95% bootstrap interval over prompts;
- ``spearman``: Spearman's rho between grade and score within each prompt, averaged;

for answer length (the baseline), the heuristics alone, the learned quality score and the
evaluator's blend, each alone and with peers, under 5-fold prompt-disjoint cross-validation of
the whole training recipe (:mod:`training.quality`: heads and blend refitted on four folds,
scored on the fifth); plus the shipped ``quality_model/`` through :func:`evaluate` end to end
on its own held-out prompts, and the time to score one answer (median, one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from routing.evaluation.answers import load_answers
from routing.evaluation.sandbox import measuring_refusal
from routing.evaluation.evaluator import evaluate, evaluate_group
from routing.settings import REPO_ROOT, SHARED_DATA_DIR

DEFAULT_DATA_DIR = SHARED_DATA_DIR / "outcomes" / "routerbench"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "evaluator.json"
DEFAULT_GRADED_OUT = REPO_ROOT / "benchmarks" / "results" / "evaluator_graded.json"
DEFAULT_GRADED = SHARED_DATA_DIR / "judgments" / "arena_bench_v1_graded.csv"
DATASETS: tuple[str, ...] = ("arc_challenge", "mbpp", "winograde")


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC AUC of ``scores`` for 0/1 ``labels``; NaN when only one class is present."""
    labels_arr = np.asarray(labels, dtype=int)
    if labels_arr.size == 0 or len(set(labels_arr.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(labels_arr, np.asarray(scores, dtype=float)))


def pairwise_accuracy(groups: Sequence[object], labels: Sequence[int],
                      scores: Sequence[float]) -> tuple[float, int, float]:
    """Over all (correct, incorrect) pairs within each group: share where the correct one
    scores higher, ties counting 0.5. Returns (accuracy, number of pairs, tie rate);
    accuracy is NaN when there is no pair."""
    frame = pd.DataFrame({"group": list(groups), "label": list(labels), "score": list(scores)})
    wins = ties = pairs = 0.0
    for _, part in frame.groupby("group", sort=False):
        good = part.loc[part["label"] == 1, "score"].to_numpy(dtype=float)
        bad = part.loc[part["label"] == 0, "score"].to_numpy(dtype=float)
        if good.size == 0 or bad.size == 0:
            continue
        diff = good[:, None] - bad[None, :]
        wins += float((diff > 0).sum())
        ties += float((diff == 0).sum())
        pairs += float(diff.size)
    if pairs == 0:
        return float("nan"), 0, float("nan")
    return (wins + 0.5 * ties) / pairs, int(pairs), ties / pairs


def bootstrap_ci(groups: Sequence[object], labels: Sequence[int], scores: Sequence[float], *,
                 resamples: int = 200, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% intervals of AUC and pairwise accuracy, resampling whole prompts (groups)."""
    frame = pd.DataFrame({"group": list(groups), "label": list(labels), "score": list(scores)})
    parts = [part for _, part in frame.groupby("group", sort=False)]
    per_group = []
    for part in parts:
        good = part.loc[part["label"] == 1, "score"].to_numpy(dtype=float)
        bad = part.loc[part["label"] == 0, "score"].to_numpy(dtype=float)
        diff = good[:, None] - bad[None, :]
        per_group.append(((diff > 0).sum() + 0.5 * (diff == 0).sum(), diff.size))
    wins = np.array([w for w, _ in per_group], dtype=float)
    sizes = np.array([n for _, n in per_group], dtype=float)
    rng = np.random.default_rng(seed)
    aucs, accs = [], []
    for _ in range(resamples):
        pick = rng.integers(0, len(parts), len(parts))
        sample = pd.concat([parts[i] for i in pick])
        if sample["label"].nunique() == 2:
            aucs.append(roc_auc_score(sample["label"], sample["score"]))
        if sizes[pick].sum():
            accs.append(wins[pick].sum() / sizes[pick].sum())

    def interval(values: list[float]) -> tuple[float, float]:
        if not values:
            return float("nan"), float("nan")
        low, high = np.percentile(values, [2.5, 97.5])
        return round(float(low), 4), round(float(high), 4)

    return {"auc_ci95": interval(aucs), "pairwise_accuracy_ci95": interval(accs)}


def _scores(answers: pd.DataFrame, *, peers: bool, run_code: bool, workers: int) -> tuple[list[float], list[float]]:
    """(``normalized``, ``heuristic_normalized``) of every answer, alone or with the other answers
    to its prompt as peers; one evaluation gives both (threads: code runs in subprocesses)."""
    if not peers:
        def one_alone(pair: tuple[str, str]) -> tuple[float, float]:
            ev = evaluate(pair[0], pair[1], run_code=run_code)
            return float(ev["normalized"]), float(ev["heuristic_normalized"])

        pairs = list(zip(answers["prompt"], answers["answer"]))
        if workers <= 1:
            found = [one_alone(p) for p in pairs]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                found = list(pool.map(one_alone, pairs))
        return [f[0] for f in found], [f[1] for f in found]

    groups = [part for _, part in answers.groupby("prompt_id", sort=False)]

    def one(part: pd.DataFrame) -> dict[int, tuple[float, float]]:
        evaluations = evaluate_group(part["prompt"].iat[0], dict(zip(part.index, part["answer"])),
                                     run_code=run_code)
        return {index: (float(ev["normalized"]), float(ev["heuristic_normalized"]))
                for index, ev in evaluations.items()}

    by_index: dict[int, tuple[float, float]] = {}
    if workers <= 1:
        for part in groups:
            by_index.update(one(part))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(one, groups):
                by_index.update(result)
    return [by_index[i][0] for i in answers.index], [by_index[i][1] for i in answers.index]


def score_answers(answers: pd.DataFrame, *, run_code: bool = True, workers: int = 2) -> list[float]:
    """``normalized`` evaluator score of every answer (threads: code runs in subprocesses)."""
    return _scores(answers, peers=False, run_code=run_code, workers=workers)[0]


def score_answers_with_peers(answers: pd.DataFrame, *, run_code: bool = True, workers: int = 2) -> list[float]:
    """``normalized`` score of every answer with the other answers to its prompt as peers."""
    return _scores(answers, peers=True, run_code=run_code, workers=workers)[0]


def paired_auc_difference(groups: Sequence[object], labels: Sequence[int], scores: Sequence[float],
                          baseline: Sequence[float], *, resamples: int = 1000, seed: int = 0
                          ) -> dict[str, float | tuple[float, float]]:
    """ROC AUC of ``scores`` minus that of ``baseline`` on the same answers, with a 95% paired
    bootstrap interval (whole prompts resampled, both scorers on the same resample)."""
    labels_arr = np.asarray(labels, int)
    a, b = np.asarray(scores, float), np.asarray(baseline, float)
    diff = roc_auc(labels_arr, a) - roc_auc(labels_arr, b)
    index_of: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        index_of.setdefault(g, []).append(i)
    parts = [np.asarray(v) for v in index_of.values()]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        rows = np.concatenate([parts[i] for i in rng.integers(0, len(parts), len(parts))])
        if len(set(labels_arr[rows].tolist())) == 2:
            values.append(roc_auc_score(labels_arr[rows], a[rows]) - roc_auc_score(labels_arr[rows], b[rows]))
    low, high = np.percentile(values, [2.5, 97.5]) if values else (float("nan"), float("nan"))
    return {"auc_difference": round(float(diff), 4), "auc_difference_ci95": (round(float(low), 4), round(float(high), 4))}


def heuristics_comparison(answers: pd.DataFrame, scores: Sequence[float], heuristics: Sequence[float]) -> dict[str, Any]:
    """The heuristics' own figure (``heuristic_normalized``: the evaluator before the learned
    score) on the same answers, and the paired difference of the evaluator's AUC from it."""
    labels, groups = answers["correct"].tolist(), answers["prompt_id"].tolist()
    return {"auc": roc_auc(labels, heuristics), "pairwise_accuracy": pairwise_accuracy(groups, labels, heuristics)[0],
            **paired_auc_difference(groups, labels, scores, heuristics)}


def mode_report(answers: pd.DataFrame, scores: Sequence[float]) -> dict[str, float | int]:
    """AUC and pairwise accuracy of ``scores`` on ``answers``, with 95% bootstrap intervals."""
    labels = answers["correct"].tolist()
    groups = answers["prompt_id"].tolist()
    pair_acc, _, tie_rate = pairwise_accuracy(groups, labels, scores)
    return {
        "auc": roc_auc(labels, scores),
        "pairwise_accuracy": pair_acc,
        "tie_rate": tie_rate,
        **bootstrap_ci(groups, labels, scores),
    }


def dataset_report(answers: pd.DataFrame, scores: Sequence[float]) -> dict[str, float | int]:
    """:func:`mode_report` of ``scores`` plus counts and a length baseline on ``answers``."""
    labels = answers["correct"].tolist()
    groups = answers["prompt_id"].tolist()
    lengths = answers["answer"].str.len().fillna(0).tolist()
    _, n_pairs, _ = pairwise_accuracy(groups, labels, scores)
    base_acc, _, _ = pairwise_accuracy(groups, labels, lengths)
    return {
        **mode_report(answers, scores),
        "answers": len(labels),
        "prompts": int(answers["prompt_id"].nunique()),
        "correct_rate": float(np.mean(labels)) if labels else float("nan"),
        "pairs": n_pairs,
        "length_baseline_auc": roc_auc(labels, lengths),
        "length_baseline_pairwise_accuracy": base_acc,
    }


def _format_table(results: dict[str, dict]) -> str:
    header = (f"{'dataset':<22}{'mode':<12}{'answers':>8}{'AUC':>7}{'AUC 95% CI':>15}{'pairwise':>10}"
              f"{'pair 95% CI':>15}{'ties':>6}")
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        modes = [("alone", r)] + ([("with peers", r["with_peers"])] if "with_peers" in r else [])
        for mode, m in modes:
            auc_ci = "{:.3f}-{:.3f}".format(*m["auc_ci95"])
            pair_ci = "{:.3f}-{:.3f}".format(*m["pairwise_accuracy_ci95"])
            lines.append(f"{name if mode == 'alone' else '':<22}{mode:<12}{r['answers']:>8}{m['auc']:>7.3f}"
                         f"{auc_ci:>15}{m['pairwise_accuracy']:>10.3f}{pair_ci:>15}{m['tie_rate']:>6.2f}")
            if "heuristics" in m:
                h = m["heuristics"]
                diff = "{:+.3f} ({:+.3f} to {:+.3f})".format(h["auc_difference"], *h["auc_difference_ci95"])
                lines.append(f"{'':<22}{'  heuristics':<12}{r['answers']:>8}{h['auc']:>7.3f}{'':>15}"
                             f"{h['pairwise_accuracy']:>10.3f}   evaluator - heuristics AUC {diff}")
        lines.append(f"{'':<22}{'length only':<12}{r['answers']:>8}{r['length_baseline_auc']:>7.3f}{'':>15}"
                     f"{r['length_baseline_pairwise_accuracy']:>10.3f}")
    return "\n".join(lines)


def run(data_dir: Path, splits: Iterable[str], datasets: Iterable[str], *, run_code: bool = True,
        limit: int | None = None, workers: int = 2, peers: bool = True) -> dict[str, dict]:
    """Score every available ``<dataset>_<split>.csv``; returns results keyed by file stem
    (alone figures at the top level, ``with_peers`` nested when ``peers``)."""
    results: dict[str, dict[str, float | int]] = {}
    for split in splits:
        for dataset in datasets:
            path = data_dir / f"{dataset}_{split}.csv"
            if not path.is_file():
                print(f"skipped {path.name}: not found in {data_dir}", file=sys.stderr)
                continue
            answers = load_answers(path)
            if limit:
                keep = answers["prompt_id"].drop_duplicates().head(limit)
                answers = answers[answers["prompt_id"].isin(keep)].reset_index(drop=True)
            started = time.perf_counter()
            scores, heuristics = _scores(answers, peers=False, run_code=run_code, workers=workers)
            report = dataset_report(answers, scores)
            report["heuristics"] = heuristics_comparison(answers, scores, heuristics)
            report["seconds"] = round(time.perf_counter() - started, 1)
            if peers:
                started = time.perf_counter()
                peer_scores, peer_heuristics = _scores(answers, peers=True, run_code=run_code, workers=workers)
                report["with_peers"] = mode_report(answers, peer_scores)
                report["with_peers"]["heuristics"] = heuristics_comparison(answers, peer_scores, peer_heuristics)
                report["with_peers"]["seconds"] = round(time.perf_counter() - started, 1)
            results[path.stem] = report
    return results


# --------------------------------------------------------------------------- graded mode


def graded_pairwise(groups: Sequence[object], grades: Sequence[float], scores: Sequence[float]) -> tuple[float, int]:
    """Over non-tied (by grade) pairs within each group: share the scores order as the grades
    (score ties count 0.5). Returns (agreement, pairs); NaN when there is no pair."""
    from training.quality.model import pairwise_agreement

    return pairwise_agreement(groups, grades, scores)


def graded_spearman(groups: Sequence[object], grades: Sequence[float], scores: Sequence[float]) -> tuple[float, int]:
    """Mean within-group Spearman rho (groups where grades or scores are constant skipped)."""
    from training.quality.model import spearman_per_prompt

    return spearman_per_prompt(groups, grades, scores)


def graded_pairwise_ci(groups: Sequence[object], grades: Sequence[float], scores: Sequence[float], *,
                       resamples: int = 500, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of :func:`graded_pairwise`, resampling whole groups."""
    frame = pd.DataFrame({"g": list(groups), "y": np.asarray(grades, float), "s": np.asarray(scores, float)})
    wins, sizes = [], []
    for _, part in frame.groupby("g", sort=False):
        y, x = part["y"].to_numpy(), part["s"].to_numpy()
        better = (y[:, None] - y[None, :]) > 0
        diff = (x[:, None] - x[None, :])[better]
        wins.append(float((diff > 0).sum() + 0.5 * (diff == 0).sum()))
        sizes.append(float(better.sum()))
    wins_arr, sizes_arr = np.array(wins), np.array(sizes)
    if not sizes_arr.sum():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(wins_arr), len(wins_arr))
        if sizes_arr[pick].sum():
            values.append(wins_arr[pick].sum() / sizes_arr[pick].sum())
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


#: Two answers count as length-matched when the longer has at most this many times the characters.
LENGTH_MATCH_RATIO = 1.1


def length_matched_pairwise(groups: Sequence[object], grades: Sequence[float], scores: Sequence[float],
                            lengths: Sequence[float], ratio: float = LENGTH_MATCH_RATIO) -> tuple[float, int]:
    """:func:`graded_pairwise` over the non-tied pairs whose lengths are within ``ratio`` of each
    other, where answer length cannot order them (a stand-in, on the shared file, for the
    length-matched instruction pairs of issue 14's external check). Returns (agreement, pairs)."""
    frame = pd.DataFrame({"g": list(groups), "y": np.asarray(grades, float), "s": np.asarray(scores, float),
                          "n": np.maximum(np.asarray(lengths, float), 1.0)})
    wins = pairs = 0.0
    for _, part in frame.groupby("g", sort=False):
        y, x, n = part["y"].to_numpy(), part["s"].to_numpy(), part["n"].to_numpy()
        keep = ((y[:, None] - y[None, :]) > 0) & (np.maximum(n[:, None], n[None, :])
                                                  <= ratio * np.minimum(n[:, None], n[None, :]))
        diff = (x[:, None] - x[None, :])[keep]
        wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
        pairs += float(keep.sum())
    return (wins / pairs if pairs else float("nan")), int(pairs)


def graded_metrics(groups: Sequence[object], grades: Sequence[float], scores: Sequence[float]) -> dict[str, float]:
    pair, n_pairs = graded_pairwise(groups, grades, scores)
    rho, n_prompts = graded_spearman(groups, grades, scores)
    return {"pairwise": pair, "pairwise_ci95": graded_pairwise_ci(groups, grades, scores), "pairs": n_pairs,
            "spearman": rho, "spearman_prompts": n_prompts}


def graded_cross_validation(frame: pd.DataFrame, folds: int = 5, seed: int = 0, workers: int = 2,
                            outcome_dir: Path | None = None, tilt_blend: bool = False, run_code: bool = True
                            ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Out-of-fold scores of every scorer on a graded table (prompt-disjoint folds), and each
    row's regime (open, code, program, math, choice). With ``outcome_dir`` (the RouterBench folder), its
    *train* slices join every fold's blend fit as the shipped model's training does (they share
    no prompt with the graded table); ``run_code``: code answers (graded and RouterBench) run in
    the sandbox, as in training and in the app."""
    from training.quality import model as T
    config = T.QualityConfig(folds=folds, seed=seed, tilt_blend=tilt_blend, run_code=run_code)
    outcome_rows = None
    if outcome_dir is not None and Path(outcome_dir).is_dir():
        outcome_rows = T.routerbench_rows(Path(outcome_dir), config)
    X_a, X_p = T.features(frame)
    h_a, k_a = T.heuristic_scores(frame, run_code=run_code, workers=workers)
    h_p, k_p = T.heuristic_scores(frame, run_code=run_code, peers=True, workers=workers)
    k_p = T.graded_peer_keys(frame, k_p)
    fold = T.prompt_folds(frame["question_id"].tolist(), folds, seed + 7)
    out = {name: np.zeros(len(frame)) for name in ("quality_alone", "quality_peers", "combined_alone",
                                                  "combined_peers")}
    for f in range(folds):
        tr, te = fold != f, fold == f
        if not te.any() or not tr.any():
            continue
        fitted = T.fit_pipeline(frame[tr].reset_index(drop=True), X_a[tr], X_p[tr], h_a[tr], h_p[tr],
                                [k for k, m in zip(k_a, tr) if m], [k for k, m in zip(k_p, tr) if m], config,
                                outcome_rows=outcome_rows)
        pred = T.predict(fitted, X_a[te], X_p[te], h_a[te], h_p[te], [k for k, m in zip(k_a, te) if m],
                         [k for k, m in zip(k_p, te) if m])
        for name, values in pred.items():
            out[name][te] = values
    return ({"length": frame["answer"].str.len().to_numpy(float), "heuristic_alone": h_a[:, 0],
             "heuristic_peers": h_p[:, 0], **out}, [k.split("/")[0] for k in k_a])


def by_regime(groups: Sequence[Any], grades: np.ndarray, scores: dict[str, np.ndarray], regimes: Sequence[str],
              names: Sequence[str] = ("length", "quality_peers", "combined_peers")) -> dict[str, dict[str, Any]]:
    """Pairwise agreement of some scorers within each regime's prompts (where the misses are)."""
    regimes = np.asarray(regimes)
    groups_arr = np.asarray(groups, dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for regime in sorted(set(regimes.tolist())):
        rows = regimes == regime
        entry: dict[str, Any] = {"prompts": int(len(set(groups_arr[rows].tolist())))}
        for name in names:
            entry[name] = graded_metrics(groups_arr[rows].tolist(), grades[rows], np.asarray(scores[name])[rows])["pairwise"]
        out[regime] = entry
    return out


def shipped_model_on_test(frame: pd.DataFrame, model_dir: Path | None = None, run_code: bool = True) -> dict[str, Any]:
    """The shipped quality model through :func:`evaluate` on the prompts its training held out."""
    from routing.evaluation import quality as Q
    from training.quality.model import is_test_prompt

    folder = Path(model_dir) if model_dir else Q.DEFAULT_MODEL_DIR
    split_file = folder / "test_split.json"
    if not split_file.is_file():
        return {"skipped": f"{split_file} not found"}
    test_ids = set(json.loads(split_file.read_text(encoding="utf-8")).get("test_question_ids", []))
    test = frame[frame["question_id"].isin(test_ids)].reset_index(drop=True)
    if test.empty:
        return {"skipped": "none of the model's test prompts is in this file"}
    alone = [evaluate(p, a, run_code=run_code) for p, a in zip(test["prompt"], test["answer"])]
    grouped: dict[int, dict] = {}
    for _, part in test.groupby("question_id", sort=False):
        grouped.update(evaluate_group(part["prompt"].iat[0], dict(zip(part.index, part["answer"])),
                                      run_code=run_code))
    with_peers = [grouped[i] for i in test.index]
    groups, grades = test["question_id"].tolist(), test["grade"].to_numpy(float)
    notices = sorted({r["notice"] for r in alone if r.get("notice")})
    return {
        "prompts": int(test["question_id"].nunique()), "answers": len(test),
        "split": "the prompts listed in quality_model/test_split.json (never seen in training)",
        "evaluate_alone": graded_metrics(groups, grades, [r["normalized"] for r in alone]),
        "evaluate_with_peers": graded_metrics(groups, grades, [r["normalized"] for r in with_peers]),
        "heuristic_alone": graded_metrics(groups, grades, [r["heuristic_normalized"] for r in alone]),
        "length": graded_metrics(groups, grades, test["answer"].str.len().to_numpy(float)),
        "notices": notices,
        "check_rule": f"is_test_prompt(question_id, {json.loads(split_file.read_text())['test_fraction']})",
        "rule_agrees": bool(all(is_test_prompt(q, json.loads(split_file.read_text())["test_fraction"])
                                for q in test_ids)),
    }


def scoring_speed(frame: pd.DataFrame, samples: int = 60) -> dict[str, Any]:
    """Median / p90 milliseconds of :func:`evaluate` on one thread for answers of about 400
    tokens (1,600-2,000 characters), alone and with 4 peers, and of the learned part alone."""
    from routing.evaluation import quality as Q

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency of the app
        pass
    chars = frame["answer"].str.len()
    pick = frame[(chars >= 1600) & (chars <= 2000)].head(samples)
    others = frame.groupby("question_id")["answer"].apply(list).to_dict()
    model = Q.get_model()
    alone, peered, learned = [], [], []
    for prompt, answer, qid in zip(pick["prompt"], pick["answer"], pick["question_id"]):
        peers = [a for a in others[qid] if a != answer][:4]
        t = time.perf_counter()
        evaluate(prompt, answer, run_code=False)
        alone.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        evaluate(prompt, answer, run_code=False, peers=peers)
        peered.append((time.perf_counter() - t) * 1000)
        if model is not None:
            t = time.perf_counter()
            model.score(prompt, answer, peers)
            learned.append((time.perf_counter() - t) * 1000)

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {"median_ms": round(float(np.median(values)), 2), "p90_ms": round(float(np.percentile(values, 90)), 2)}

    return {"answers": len(pick), "answer_chars": "1600-2000 (about 400 tokens)", "threads": 1,
            "model_loaded": model is not None, "evaluate_alone": summary(alone),
            "evaluate_with_4_peers": summary(peered), "learned_score_with_4_peers": summary(learned)}


def run_graded(path: Path, out: Path, *, folds: int = 5, workers: int = 2, limit: int | None = None,
               outcome_dir: Path | None = None, tilt_blend: bool = False, run_code: bool = True,
               seed: int = 0) -> dict[str, Any]:
    """The ``--graded`` mode: cross-validated figures, the shipped model on its test prompts, speed."""
    from training.quality.model import load_graded

    frame = load_graded(path)
    if limit:
        keep = frame["question_id"].drop_duplicates().head(limit)
        frame = frame[frame["question_id"].isin(keep)].reset_index(drop=True)
    started = time.perf_counter()
    scores, regimes = graded_cross_validation(frame, folds=folds, workers=workers, outcome_dir=outcome_dir,
                                              tilt_blend=tilt_blend, run_code=run_code, seed=seed)
    groups, grades = frame["question_id"].tolist(), frame["grade"].to_numpy(float)
    cv = {name: graded_metrics(groups, grades, values) for name, values in scores.items()}
    lengths = frame["answer"].str.len().to_numpy(float)
    matched = {name: length_matched_pairwise(groups, grades, values, lengths) for name, values in scores.items()}
    per_regime = by_regime(groups, grades, scores, regimes)
    seconds = round(time.perf_counter() - started, 1)
    shipped = shipped_model_on_test(frame, run_code=run_code)
    speed = scoring_speed(frame)
    lines = [f"{'scorer (5-fold prompt-disjoint CV)':<36}{'pairwise':>9}{'95% CI':>16}{'spearman':>10}",
             "-" * 71]
    for name, m in cv.items():
        ci = "{:.3f}-{:.3f}".format(*m["pairwise_ci95"])
        lines.append(f"{name:<36}{m['pairwise']:>9.3f}{ci:>16}{m['spearman']:>10.3f}")
    lines.append(f"length-matched pairs (lengths within {LENGTH_MATCH_RATIO:g}x; "
                 f"{next(iter(matched.values()))[1]} pairs), pairwise: " +
                 ", ".join(f"{name} {value:.3f}" for name, (value, _) in matched.items()))
    lines.append("pairwise by regime (CV): length / learned with peers / evaluator with peers")
    for regime, m in per_regime.items():
        lines.append(f"  {regime:<8}{m['prompts']:>4} prompts  {m['length']:.3f} / {m['quality_peers']:.3f} / "
                     f"{m['combined_peers']:.3f}")
    if "skipped" not in shipped:
        lines.append(f"shipped quality_model/ through evaluate() on its {shipped['prompts']} held-out prompts:")
        for name in ("length", "heuristic_alone", "evaluate_alone", "evaluate_with_peers"):
            m = shipped[name]
            ci = "{:.3f}-{:.3f}".format(*m["pairwise_ci95"])
            lines.append(f"  {name:<34}{m['pairwise']:>9.3f}{ci:>16}{m['spearman']:>10.3f}")
    else:
        lines.append(f"shipped model: skipped ({shipped['skipped']})")
    lines.append(f"scoring one ~400-token answer, one thread: evaluate() median "
                 f"{speed['evaluate_alone'].get('median_ms', float('nan')):.1f} ms alone, "
                 f"{speed['evaluate_with_4_peers'].get('median_ms', float('nan')):.1f} ms with 4 peers")
    print("\n".join(lines))
    report = {
        "command": "python -m routing.evaluation.benchmark --graded " + str(path) + (" --tilt-blend" if tilt_blend else "")
                   + (f" --seed {seed}" if seed else ""),
        "graded_file": str(path),
        "outcome_rows_for_the_blend": str(outcome_dir) if outcome_dir else None,
        "answers": len(frame), "prompts": int(frame["question_id"].nunique()),
        "metrics": {
            "pairwise": "over answer pairs to the same prompt with different judge grades, the share the score "
                        "orders as the judge does; score ties count 0.5; 95% CI: bootstrap over prompts",
            "spearman": "Spearman's rho between judge grade and score within a prompt, mean over prompts",
            "cross_validation": f"{folds}-fold, prompt-disjoint: heads and blend (training.quality.model.fit_pipeline) "
                                "refitted on the other folds' prompts; the blend's choice/binary/code regimes on the "
                                "RouterBench train slices (right/wrong outcomes) when --data-dir has them, as in "
                                "training",
            "cross_validation_length_matched": "pairwise over the pairs whose answers' lengths (characters) "
                                               "are within the ratio of each other",
            "*_alone / *_peers": "each answer scored on its own / with the other answers to its prompt as peers",
        },
        "cross_validation": cv,
        "cross_validation_by_regime": per_regime,
        "cross_validation_length_matched": {"ratio": LENGTH_MATCH_RATIO, **{
            name: {"pairwise": value, "pairs": n} for name, (value, n) in matched.items()}},
        "cv_seconds": seconds,
        "shipped_model_test_split": shipped,
        "speed": speed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--split", choices=("test", "train", "both"), default="test",
                        help="test for the headline figures, train for development")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--no-run-code", action="store_true", help="never execute code answers")
    parser.add_argument("--limit", type=int, default=None, help="first N prompts per file (quick runs)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true", help="skip the with-peers mode")
    parser.add_argument("--graded", type=Path, default=None, metavar="FILE",
                        help="agreement with a judge's grades on FILE (question_id, prompt, answer, gpt4_score) "
                             "instead of the RouterBench AUC table")
    parser.add_argument("--folds", type=int, default=5, help="prompt-disjoint folds of the --graded mode")
    parser.add_argument("--seed", type=int, default=0,
                        help="--graded mode: which prompts share a fold (and the training seed); the README "
                             "quotes seed 0 and the spread over seeds 0-3")
    parser.add_argument("--tilt-blend", action="store_true",
                        help="--graded mode: fit the blend as python -m training.quality --tilt-blend does")
    args = parser.parse_args(argv)
    refusal = None if args.no_run_code else measuring_refusal()
    if refusal:
        print(refusal, file=sys.stderr)
        return 2

    if args.graded is not None:
        if not args.graded.is_file():
            print(f"skipped: graded file {args.graded} not found", file=sys.stderr)
            return 0
        out = args.out if args.out != DEFAULT_OUT else DEFAULT_GRADED_OUT
        run_graded(args.graded, out, folds=args.folds, workers=args.workers, limit=args.limit,
                   outcome_dir=args.data_dir if args.data_dir.is_dir() else None, tilt_blend=args.tilt_blend,
                   run_code=not args.no_run_code, seed=args.seed)
        return 0

    if not args.data_dir.is_dir():
        print(f"skipped: data folder {args.data_dir} not found (the RouterBench slices live in "
              f"../shared/data/outcomes/routerbench; pass --data-dir)", file=sys.stderr)
        return 0
    splits = ("train", "test") if args.split == "both" else (args.split,)
    results = run(args.data_dir, splits, args.datasets, run_code=not args.no_run_code,
                  limit=args.limit, workers=args.workers, peers=not args.no_peers)
    if not results:
        print(f"skipped: no <dataset>_<split>.csv files in {args.data_dir}", file=sys.stderr)
        return 0
    print(_format_table(results))
    report = {
        "command": "python -m routing.evaluation.benchmark " + " ".join(sys.argv[1:] if argv is None else argv),
        "data_dir": str(args.data_dir),
        "run_code": not args.no_run_code,
        "metrics": {
            "auc": "ROC AUC of evaluate()['normalized'] for correct (1) vs incorrect (0) answers",
            "pairwise_accuracy": "share of (correct, incorrect) answer pairs to the same prompt where the "
                                 "correct one scores higher; ties count 0.5",
            "length_baseline_*": "the same with answer length as the score",
            "heuristics": "the same answers scored by the heuristics alone (heuristic_normalized, the evaluator "
                          "without its learned score, as before evaluator v2), and auc_difference = evaluator AUC "
                          "minus theirs with a 95% paired bootstrap interval (1000 resamples of whole prompts)",
            "with_peers": "auc, pairwise_accuracy, tie_rate and their intervals when every answer is scored with "
                          "the other models' answers to the same prompt as peers (leave-one-out, "
                          "evaluate_group); the top-level figures score each answer alone",
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
