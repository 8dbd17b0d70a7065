"""Out-of-domain routing on the shared data: ``python -m training.benchmark.ood``.

Two-model routing (RouteLLM's setting): a strong model (GPT-4) and a weak one (Mixtral 8x7B),
a router ranks the prompts by how much the strong model is needed, and APGR (average
performance gap recovered over every share of calls sent to the strong model; random 0.5) says
how well that ranking recovers the gap between the two models. Each router is trained on
RouterBench outcome rows of these two models only and tested where it never trained:

* ``arena_bench``: the 300 open-ended Arena-Bench prompts (gpt-4-0314 vs
  Mixtral-8x7B-Instruct-v0.1, GPT-4's graded answers): another domain, another judge, other
  model versions;
* ``<task>_held_out``: one RouterBench task (arc_challenge, mbpp, winograde) trained on the
  other two tasks' TRAIN rows and tested on its own TEST rows.

Routers: the selector's heads (``knn``, ``cluster``, ``linear``, ``mlp``; the rank score is
the strong model's predicted score minus the weak one's; ``knn`` is the plain kNN router on
these complete tables, k by CV on TRAIN), and the baseline of the issue: a logistic regression on the same embeddings predicting "the strong
model does strictly better". Prints a table and, last, one JSON line; writes a JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.errors import UserError
from training.benchmark import metrics as rm
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "outcomes"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ood_routing.json"
TASKS = ("arc_challenge", "mbpp", "winograde")
ROUTERBENCH_PAIR = ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat")
ARENA_PAIR = ("gpt-4-0314", "Mixtral-8x7B-Instruct-v0.1")
HEADS = ("knn", "cluster", "linear", "mlp")


@dataclass
class PairSet:
    """Prompts and the (strong, weak) scores of one two-model set."""

    name: str
    prompts: list[str]
    scores: np.ndarray            # (n, 2): strong, weak


def pair_set(paths: Sequence[str | Path], pair: tuple[str, str], name: str) -> PairSet:
    """The rows of the outcome tables where both models of ``pair`` have a score."""
    from training.benchmark.outcomes import read_many

    table = read_many([str(p) for p in paths])
    missing = [m for m in pair if m not in table.models]
    if missing:
        raise UserError(f"{name}: no column for {', '.join(missing)} (it has {', '.join(table.models)}).")
    S = table.scores[:, [table.models.index(m) for m in pair]]
    keep = ~np.isnan(S).any(axis=1)
    return PairSet(name, [p for p, k in zip(table.prompts, keep) if k], S[keep])


def logistic_router(X: np.ndarray, S: np.ndarray) -> Any:
    """The baseline: P(strong strictly better than weak) from the embedding."""
    from sklearn.linear_model import LogisticRegression

    y = (S[:, 0] > S[:, 1]).astype(int)
    if y.min() == y.max():
        raise UserError("The training rows never (or always) favour the strong model: nothing to learn.")
    return LogisticRegression(C=1.0, max_iter=2000).fit(X, y)


def rank_scores(X_train: np.ndarray, S_train: np.ndarray, X_test: np.ndarray, seed: int = 0
                ) -> dict[str, np.ndarray]:
    """Every router's rank score on the test prompts (higher: send to the strong model)."""
    from training.pipeline.strategies import fit_one

    out: dict[str, np.ndarray] = {}
    for name in HEADS:
        pred = fit_one(name, X_train, S_train, seed).predict(X_test)
        out[name] = pred[:, 0] - pred[:, 1]
    out["logistic"] = logistic_router(X_train, S_train).predict_proba(X_test)[:, 1]
    return out


def evaluate_set(ranks: dict[str, np.ndarray], S: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """APGR of each router on one test set, with random's and the test set's gap."""
    return {"n": int(len(S)), "strong_mean": float(S[:, 0].mean()), "weak_mean": float(S[:, 1].mean()),
            "random": rm.random_apgr(S, 0, 1, seed=seed),
            "apgr": {name: rm.apgr(r, S, 0, 1) for name, r in ranks.items()}}


def run(data_dir: Path, out: Path, *, cache_dir: Path | None = None, seed: int = 0,
        base_model: str | None = None) -> dict[str, Any]:
    from routing.settings import get_settings
    from training.embeddings import default_base_model, embed

    t0 = time.time()
    rb = Path(data_dir) / "routerbench"
    arena = Path(data_dir) / "arena_bench" / "arena_bench_v1.csv"
    if not rb.is_dir():
        raise UserError(f"{rb} not found: the shared routing data is needed (see ../shared/data/SOURCES.md).")
    base = base_model or default_base_model()
    cache = Path(cache_dir) if cache_dir else get_settings().cache_dir / "embeddings"

    def emb(prompts: list[str]) -> np.ndarray:
        return embed(prompts, base, max_length=256, cache_dir=cache)

    train_sets = {t: pair_set([rb / f"{t}_train.csv"], ROUTERBENCH_PAIR, f"{t}_train") for t in TASKS}
    test_sets = {t: pair_set([rb / f"{t}_test.csv"], ROUTERBENCH_PAIR, f"{t}_test") for t in TASKS}
    X_train = {t: emb(s.prompts) for t, s in train_sets.items()}
    X_test = {t: emb(s.prompts) for t, s in test_sets.items()}
    results: dict[str, Any] = {}
    if arena.is_file():
        target = pair_set([arena], ARENA_PAIR, "arena_bench")
        X = np.concatenate([X_train[t] for t in TASKS])
        S = np.concatenate([train_sets[t].scores for t in TASKS])
        results["arena_bench"] = {"trained_on": "RouterBench train, all three tasks",
                                  **evaluate_set(rank_scores(X, S, emb(target.prompts), seed), target.scores, seed)}
    for held in TASKS:
        rest = [t for t in TASKS if t != held]
        X = np.concatenate([X_train[t] for t in rest])
        S = np.concatenate([train_sets[t].scores for t in rest])
        results[f"{held}_held_out"] = {"trained_on": f"RouterBench train, {' + '.join(rest)}",
                                       **evaluate_set(rank_scores(X, S, X_test[held], seed), test_sets[held].scores, seed)}
    routers = list(next(iter(results.values()))["apgr"])
    summary = {
        "sets": list(results),
        "apgr": {name: {s: round(r["apgr"][name], 4) for s, r in results.items()} for name in routers},
        "random": {s: round(r["random"], 4) for s, r in results.items()},
        # the target: above both kNN and the logistic baseline on every set
        "beats_knn_and_logistic_everywhere": {
            name: all(r["apgr"][name] > max(r["apgr"]["knn"], r["apgr"]["logistic"]) for r in results.values())
            for name in HEADS if name != "knn"},
    }
    report = {"command": "python -m training.benchmark.ood", "pairs": {"routerbench": ROUTERBENCH_PAIR, "arena_bench": ARENA_PAIR},
              "encoder": base, "seconds": round(time.time() - t0, 1), "sets": results, "summary": summary}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def format_table(report: dict[str, Any]) -> str:
    sets = report["summary"]["sets"]
    lines = [f"{'router':<12}" + "".join(f"{s:>24}" for s in sets), "-" * (12 + 24 * len(sets))]
    for name, row in report["summary"]["apgr"].items():
        lines.append(f"{name:<12}" + "".join(f"{row[s]:>24.3f}" for s in sets))
    lines.append(f"{'random':<12}" + "".join(f"{report['summary']['random'][s]:>24.3f}" for s in sets))
    lines.append(f"{'n':<12}" + "".join(f"{report['sets'][s]['n']:>24d}" for s in sets))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.benchmark.ood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the shared outcomes folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default ROUTER_CACHE_DIR)")
    parser.add_argument("--base-model", default=None, help="sentence encoder (default: the bundled MiniLM)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        report = run(args.data_dir, args.out, cache_dir=args.cache_dir, seed=args.seed, base_model=args.base_model)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"wrote {args.out}")
    print(json.dumps(report["summary"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
