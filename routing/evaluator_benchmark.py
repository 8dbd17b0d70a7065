"""How well does the heuristic evaluator separate correct from incorrect real answers?

Reads RouterBench slices (``<dataset>_<split>.csv``: a prompt, each model's real answer in
``<model>|model_response`` and its 0/1 correctness in the column named by the model),
scores every answer with :func:`routing.evaluator.evaluate` (no reference given: the
evaluator must judge from the prompt and the answer) in two modes, and reports per dataset:

- ``alone`` (top-level figures): each answer judged on its own;
- ``with_peers``: each answer judged with the other models' answers to the same prompt as
  peers (leave-one-out, :func:`routing.evaluator.evaluate_group`), as compare-all does;

and for each mode:

- ``auc``: ROC AUC of ``normalized`` for correct vs incorrect answers;
- ``pairwise_accuracy``: over all (correct, incorrect) answer pairs to the same prompt,
  how often the correct one scores higher (ties count 0.5), with ``tie_rate``;
- 95% bootstrap intervals of both (resampling whole prompts);
- the same two figures for a length-only baseline (longer answer = better), for context
  (alone mode only).

Usage::

    python -m routing.evaluator_benchmark [--data-dir ../shared/data/outcomes/routerbench]
        [--out benchmarks/results/evaluator.json] [--split test] [--no-run-code]

Exits 0 with a "skipped" message when the data folder is missing.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from routing.evaluator import evaluate, evaluate_group
from routing.settings import REPO_ROOT, SHARED_DATA_DIR

DEFAULT_DATA_DIR = SHARED_DATA_DIR / "outcomes" / "routerbench"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "evaluator.json"
DATASETS: tuple[str, ...] = ("arc_challenge", "mbpp", "winograde")
RESPONSE_SUFFIX = "|model_response"


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


def _turns_text(raw: str) -> str:
    """A Python-literal list of turns (or a plain string) as one text."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return str(raw)
    if isinstance(value, (list, tuple)):
        return "\n\n".join(str(v) for v in value)
    return str(value)


def load_answers(path: Path) -> pd.DataFrame:
    """One row per (prompt, model) with a real answer and a 0/1 score.

    Columns: ``prompt_id``, ``model``, ``prompt``, ``answer``, ``correct``. Rows whose
    score is missing are dropped.
    """
    frame = pd.read_csv(path)
    models = [c[: -len(RESPONSE_SUFFIX)] for c in frame.columns if c.endswith(RESPONSE_SUFFIX)]
    models = [m for m in models if m in frame.columns]
    id_column = "sample_id" if "sample_id" in frame.columns else frame.columns[0]
    prompts = frame["prompt"].map(_turns_text)
    rows = []
    for model in models:
        for idx in range(len(frame)):
            score = frame[model].iat[idx]
            response = frame[model + RESPONSE_SUFFIX].iat[idx]
            if pd.isna(score):
                continue
            rows.append({
                "prompt_id": frame[id_column].iat[idx],
                "model": model,
                "prompt": prompts.iat[idx],
                "answer": _turns_text(response) if isinstance(response, str) else "",
                "correct": int(float(score) >= 0.5),
            })
    return pd.DataFrame(rows, columns=["prompt_id", "model", "prompt", "answer", "correct"])


def score_answers(answers: pd.DataFrame, *, run_code: bool = True, workers: int = 2) -> list[float]:
    """``normalized`` evaluator score of every answer (threads: code runs in subprocesses)."""
    pairs = list(zip(answers["prompt"], answers["answer"]))

    def one(pair: tuple[str, str]) -> float:
        return float(evaluate(pair[0], pair[1], run_code=run_code)["normalized"])

    if workers <= 1:
        return [one(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, pairs))


def score_answers_with_peers(answers: pd.DataFrame, *, run_code: bool = True, workers: int = 2) -> list[float]:
    """``normalized`` score of every answer with the other answers to its prompt as peers."""
    groups = [part for _, part in answers.groupby("prompt_id", sort=False)]

    def one(part: pd.DataFrame) -> dict[int, float]:
        evaluations = evaluate_group(part["prompt"].iat[0], dict(zip(part.index, part["answer"])),
                                     run_code=run_code)
        return {index: float(ev["normalized"]) for index, ev in evaluations.items()}

    by_index: dict[int, float] = {}
    if workers <= 1:
        for part in groups:
            by_index.update(one(part))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for found in pool.map(one, groups):
                by_index.update(found)
    return [by_index[index] for index in answers.index]


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
            scores = score_answers(answers, run_code=run_code, workers=workers)
            report = dataset_report(answers, scores)
            report["seconds"] = round(time.perf_counter() - started, 1)
            if peers:
                started = time.perf_counter()
                peer_scores = score_answers_with_peers(answers, run_code=run_code, workers=workers)
                report["with_peers"] = mode_report(answers, peer_scores)
                report["with_peers"]["seconds"] = round(time.perf_counter() - started, 1)
            results[path.stem] = report
    return results


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
    args = parser.parse_args(argv)

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
        "command": "python -m routing.evaluator_benchmark " + " ".join(sys.argv[1:] if argv is None else argv),
        "data_dir": str(args.data_dir),
        "run_code": not args.no_run_code,
        "metrics": {
            "auc": "ROC AUC of evaluate()['normalized'] for correct (1) vs incorrect (0) answers",
            "pairwise_accuracy": "share of (correct, incorrect) answer pairs to the same prompt where the "
                                 "correct one scores higher; ties count 0.5",
            "length_baseline_*": "the same with answer length as the score",
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
