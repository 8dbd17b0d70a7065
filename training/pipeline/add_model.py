"""Add a model to the live selector from its outcomes: ``python -m training.pipeline.add_model --outcomes FILE --model ID``.

A new pool model needs no retraining of the others: its outcome rows (about 100 evaluated
prompts are enough to start; an outcome table in RouterBench or LLMRouter layout with a column
for ``ID``) are embedded with the selector's encoder and stored in the head as the model's own
profile. On a head with prompt clusters (``cluster``, or an ``ensemble`` with a cluster part)
its score on a new prompt is the other models' mean score there, shifted in logit space to its
level, plus its own residual in the head's clusters
(:func:`routing.selectors.heads.added_cluster_scores`); on a kNN, linear or MLP head, the
similarity-weighted mean of its outcomes on the most similar of those prompts
(:func:`routing.selectors.heads.added_scores`). Every other model's score is unchanged. Works on
an embedding-head selector (``--strategy knn|cluster|linear|mlp|auto``);
a fine-tuned classifier has no such slot (retrain it as a head first).

The updated selector replaces the live one (the previous one is kept: ``training.pipeline.release
.rollback``), and ``label_encoder.json`` gains the model; add the model to the pool
(``assets/models.json``) for the app to route to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.errors import UserError
from routing.selectors.heads import ADDED_K, HEAD_FILE, HeadScorer, is_head_dir
from routing.selectors.classifier import label_encoder_data
from routing.settings import get_settings
from training.pipeline import release
from training.benchmark.outcomes import read_many


def model_rows(outcomes: Sequence[str | Path], model: str, max_rows: int | None = None) -> tuple[list[str], np.ndarray]:
    """The prompts with an outcome for ``model`` and those outcomes."""
    table = read_many([str(p) for p in outcomes])
    if model not in table.models:
        raise UserError(f"The outcome table has no column for {model!r}; it has {', '.join(table.models)}.")
    col = table.scores[:, table.models.index(model)]
    rows = [i for i in range(len(table)) if not np.isnan(col[i])]
    if max_rows is not None:
        rows = rows[:max_rows]
    if len(rows) < 10:
        raise UserError(f"Only {len(rows)} outcome rows for {model!r}: give at least 10 (about 100 is a good start).")
    return [table.prompts[i] for i in rows], col[rows]


def add_to_head(folder: str | Path, model: str, prompts: Sequence[str], outcomes: np.ndarray, *,
                k: int = ADDED_K, target: Path | None = None) -> dict[str, Any]:
    """Write ``folder`` + ``model`` to ``target`` (default: ``folder``); returns what was added."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    if not is_head_dir(folder):
        raise UserError(f"{folder} is not an embedding-head selector (a fine-tuned classifier has no slot for an "
                        "added model): train one with python -m training.pipeline --strategy auto first.")
    scorer = HeadScorer(folder, fast_path="off")
    if model in scorer.labels:
        raise UserError(f"{model!r} is already one of the selector's models ({', '.join(scorer.labels)}).")
    X = scorer.encoder.embed(list(prompts))
    target = Path(target or folder)
    if target != folder:
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    router = config["router"]
    index = len(router.get("added") or [])
    router["added"] = [*(router.get("added") or []), model]
    router["added_k"] = int(k)
    router.setdefault("added_rows", {})[model] = len(prompts)
    arrays = dict(scorer.arrays)
    arrays[f"added_X_{index}"] = X.astype(np.float16)
    arrays[f"added_T_{index}"] = np.asarray(outcomes, np.float16)
    save_file({name: np.ascontiguousarray(a) for name, a in arrays.items()}, str(target / HEAD_FILE))
    (target / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    labels = scorer.labels + [model]
    (target / "label_encoder.json").write_text(json.dumps(label_encoder_data(labels), indent=1), encoding="utf-8")
    (target / "fast_path.json").unlink(missing_ok=True)   # a new model: the int8 check must be redone
    return {"model": model, "rows": len(prompts), "mean_outcome": round(float(np.mean(outcomes)), 4),
            "labels": labels, "k": int(k)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pipeline.add_model", description=__doc__.split("\n")[0])
    parser.add_argument("--outcomes", nargs="+", required=True, help="outcome table(s) with a column for the model")
    parser.add_argument("--model", required=True, help="the new model's id (its column in the table)")
    parser.add_argument("--max-rows", type=int, help="use at most this many of its rows")
    parser.add_argument("--k", type=int, default=ADDED_K, help="neighbours its score is read from")
    parser.add_argument("--selector-dir", help="live selector folder (default: ROUTER_SELECTOR_DIR / selector_model)")
    parser.add_argument("--label-encoder", help="label encoder file (default: label_encoder.json)")
    args = parser.parse_args(argv)
    settings = get_settings()
    live = Path(args.selector_dir or settings.selector_dir)
    encoder_file = Path(args.label_encoder or settings.label_encoder_file)
    try:
        prompts, outcomes = model_rows(args.outcomes, args.model, args.max_rows)
        release.clean_stale(live)
        info = add_to_head(live, args.model, prompts, outcomes, k=args.k, target=release.partial_dir(live))
        release.finish_candidate(live)
        release.promote(live, encoder_file)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"added {info['model']} from {info['rows']} outcome rows (mean outcome {info['mean_outcome']:.3f}); "
          f"the selector now scores {', '.join(info['labels'])}. The previous selector is kept (rollback). "
          f"Add {info['model']} to the pool (assets/models.json) for the app to route to it.")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
