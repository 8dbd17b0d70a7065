"""All three steps: ``python -m training.pipeline --source rules|outcomes|feedback [--input ...]``.

:func:`run_pipeline` is the API the Training tab calls; it labels, prepares and trains in
``output_dir`` and returns metrics, the confusion matrix, the loss history and the release
gate's decision.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from routing.errors import UserError
from routing.pool import ModelPool
from training.pipeline.label import SOURCES, label, write_labels
from training.pipeline.prepare import prepare
from training.pipeline.prepare import TEST_SLICES
from training.pipeline.strategies import DEFAULT_STRATEGY, STRATEGIES, check_strategy
from training.pipeline.train import TrainConfig, train

Progress = Callable[[float, str], None]


def run_pipeline(source: str, input_path: str | Path | None, base_model: str | None, epochs: int,
                 learning_rate: float, batch_size: int, output_dir: Path,
                 progress: Progress | None = None, *, selector_dir: str | Path | None = None,
                 label_encoder_file: str | Path | None = None, pool: ModelPool | None = None,
                 seed: int = 42, max_steps: int | None = None, gate_against_rules: bool = False,
                 strategy: str = DEFAULT_STRATEGY, test_slice: str = "frozen",
                 strict_gate: bool = False, test_fraction: float = 0.15, live_dir: str | Path | None = None,
                 min_paired: int | None = None, min_gain: float | None = None,
                 rater_share: float | None = None) -> dict[str, Any]:
    """Label -> prepare -> train (with the release gate). Raises :class:`UserError` on bad input.

    Never writes the code checkout: a ``selector_dir`` naming the shipped ``selector_model/`` (the
    Training tab's default) trains into ``<ROUTER_DATA_DIR>/selector/`` and gates against the
    shipped model while that folder holds none (``training.pipeline.train.train``; ``live_dir`` names that
    fallback explicitly). ``min_paired`` / ``min_gain``: the strict gate's power rule;
    ``rater_share``: the most of the rows one rater's ratings weigh (``--source feedback``).

    Returns ``{"metrics", "confusion_matrix": {"labels", "matrix"}, "loss_history": [{"step",
    "train_loss", "val_loss"}], "gate": {"promoted", "reason", "old_metric", "new_metric",
    "metric"}, "label", "prepare", "model_dir", "seconds", "objective"}``.
    """
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise UserError("epochs and batch size must be at least 1 and the learning rate above 0.")
    say = progress or (lambda f, m: None)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    say(0.0, f"labelling ({source})")
    labelled = label(source, [input_path] if input_path else None, pool, rater_share=rater_share)
    labels_file = write_labels(labelled, output_dir / "labeled_prompts.json")
    say(0.05, f"labelled {len(labelled.records)} prompts; preparing splits")
    prepared = prepare(labels_file, output_dir, seed=seed, test_slice=test_slice, test_fraction=test_fraction)
    say(0.1, "splits ready: " + ", ".join(f"{k} {sum(v.values())}" for k, v in prepared.counts.items()))
    cfg = TrainConfig(base_model=base_model or None, epochs=int(epochs), learning_rate=float(learning_rate),
                      batch_size=int(batch_size), seed=seed, max_steps=max_steps, strategy=check_strategy(strategy))
    baseline = _rules_baseline(pool) if gate_against_rules else None
    result = train(output_dir, config=cfg, selector_dir=selector_dir, label_encoder_file=label_encoder_file,
                   progress=lambda f, m: say(0.1 + 0.9 * f, m), baseline=baseline, strict_gate=strict_gate,
                   live_dir=live_dir, min_paired=min_paired, min_gain=min_gain)
    metrics = {k: v for k, v in result.candidate_metrics.items() if k != "confusion_matrix"}
    return {
        "metrics": metrics,
        "confusion_matrix": result.candidate_metrics.get("confusion_matrix", {"labels": [], "matrix": []}),
        "loss_history": result.history,
        "gate": result.gate,
        "label": labelled.summary(),
        "prepare": prepared.summary(),
        "model_dir": str(result.model_dir),
        "objective": result.objective,
        "train_seconds": round(result.seconds, 1),
        "seconds": round(time.time() - t0, 1),
        "notes": labelled.notes + prepared.notes + result.notes,
        "test_split": {"frozen_from": prepared.frozen_from, "n": sum(prepared.counts.get("test", {}).values())},
    }


def _rules_baseline(pool: ModelPool | None):
    """The rule-based selector's scores per label: what the gate compares with when no model is live."""
    from routing.pool import load_pool
    from routing.selectors.rules import RuleSelector
    from routing.settings import get_settings, pool_files

    pool = pool or load_pool(pool_files(get_settings()).live)
    rules = RuleSelector(pool)

    def scores(texts: list[str], labels: list[str]):
        import numpy as np

        matrix = np.asarray(rules.score(texts), dtype=float)
        return matrix[:, [pool.ids.index(label) for label in labels]]

    return scores


def refusal_advice(result: dict[str, Any], *, epochs: int | None = None) -> list[str]:
    """What to try when the release gate kept the live model (empty when it promoted)."""
    gate = result.get("gate") or {}
    if gate.get("promoted"):
        return []
    tips = []
    if epochs is not None and epochs < 8:
        tips.append(f"more epochs (this run: {epochs}; the shipped model used 8)")
    tips.append("a learning rate between 5e-5 and 2e-4 (too high forgets the encoder, too low barely moves)")
    source = (result.get("label") or {}).get("source")
    if source == "rules":
        tips.append("labels from real outcomes (an uploaded RouterBench CSV, or the compare-all outcome log): "
                    "rule labels only teach the model to imitate the rules, and the live model already does")
    else:
        tips.append("more outcome rows: small tables give a noisy test split")
    tips.append("the same test split: it stays frozen, so runs are compared on the same prompts")
    return tips


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=SOURCES, default="rules")
    parser.add_argument("--input", help="prompt file (rules) or outcome table (outcomes/feedback)")
    parser.add_argument("--base-model", help="HF name or local path (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--out", default="data/training", help="working folder for labels and splits")
    parser.add_argument("--selector-dir", help="live model folder (default: selector_model)")
    parser.add_argument("--label-encoder", help="label encoder file (default: label_encoder.json)")
    parser.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY,
                        help="finetune the encoder (default), a head on the bundled encoder (knn, cluster, "
                             "linear), or auto: the head that routes best on the validation split")
    parser.add_argument("--test-slice", choices=TEST_SLICES, default="frozen",
                        help="frozen: the first run's test prompts, reused; hash: every prompt whose hash "
                             "falls in the test share, so the test slice grows with a log and a prompt "
                             "never changes sides")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="share of prompts in the test split")
    parser.add_argument("--strict-gate", action="store_true",
                        help="promote only a candidate that routes better than the live selector, not one that ties")
    parser.add_argument("--live-dir", help="the selector the app routes with while --selector-dir holds none "
                                           "(the gate compares with it; default: the shipped selector_model when "
                                           "training into ROUTER_DATA_DIR)")
    parser.add_argument("--min-paired", type=int, help="strict gate: never fewer paired test prompts than this "
                                                       "(default ROUTER_GATE_MIN_PAIRED, 30)")
    parser.add_argument("--min-gain", type=float, help="strict gate: the gain it must see with 80%% power "
                                                       "(default ROUTER_GATE_MIN_GAIN, 0.10)")
    parser.add_argument("--rater-share", type=float, help="feedback: the most of the rows one rater's ratings "
                                                          "weigh together (default ROUTER_RATER_SHARE, 0.05)")
    parser.add_argument("--gate-against-rules", action="store_true",
                        help="with no live model, promote only if better than the rule-based selector")
    args = parser.parse_args(argv)
    try:
        result = run_pipeline(args.source, args.input, args.base_model, args.epochs, args.learning_rate,
                              args.batch_size, Path(args.out),
                              progress=lambda f, m: print(f"[{f:5.1%}] {m}", flush=True),
                              selector_dir=args.selector_dir, label_encoder_file=args.label_encoder,
                              seed=args.seed, max_steps=args.max_steps, gate_against_rules=args.gate_against_rules,
                              strategy=args.strategy, test_slice=args.test_slice, strict_gate=args.strict_gate,
                              test_fraction=args.test_fraction, live_dir=args.live_dir, min_paired=args.min_paired,
                              min_gain=args.min_gain, rater_share=args.rater_share)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = result["metrics"]
    print(f"test accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
          f"gate: {'promoted' if result['gate']['promoted'] else 'kept'} ({result['gate']['reason']})")
    print(json.dumps({"metrics": {k: m.get(k) for k in ("n", "accuracy", "macro_f1", "routed_quality",
                                                        "routed_coverage")}, "gate": result["gate"],
                      "seconds": result["seconds"], "model_dir": result["model_dir"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
