"""The learning loop in a simulated world: routing quality after each automatic retraining.

    python benchmarks/learning_curve.py [--stream 800] [--test 200] [--every 200] [--holdout-share 0.15]
                                        [--strategy auto] [--out benchmarks/results/learning_curve.json]

The world (``training/collection/simulate.py``): five models whose chance of a good answer depends on the
prompt's kind, in a table hidden from the router; the local protocol server plays them. The app
starts from the rule-based selector and serves ``--stream`` prompts with shadow comparisons on
(rate 1; a held-out share of the prompts is asked of every model) and retraining every
``--every`` outcome rows (each prompt logs its answer and a shadow: two rows). Quality is
measured on ``--test`` other prompts from the hidden table; the oracle picks the best model of
every kind. A refused candidate's quality is reported too: what the gate's caution cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.harness import ProtocolServer
    from training.collection.simulate import run_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", type=int, default=800)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--holdout-share", type=float, default=0.15, help="ROUTER_HOLDOUT_SHARE")
    parser.add_argument("--strategy", default="auto", help="ROUTER_RETRAIN_STRATEGY")
    parser.add_argument("--epochs", type=int, default=3, help="with --strategy finetune")
    parser.add_argument("--base-model", default=None, help="default: the bundled MiniLM")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "learning_curve.json"))
    args = parser.parse_args(argv)
    train_args = ["--epochs", str(args.epochs)] + (["--base-model", args.base_model] if args.base_model else [])
    started = time.monotonic()
    with ProtocolServer() as server, tempfile.TemporaryDirectory(prefix="learning-curve-") as tmp:
        curve = run_world(server, Path(tmp), stream=args.stream, test=args.test, every=args.every,
                          train_args=train_args, progress=lambda line: print(line, flush=True),
                          settings_overrides={"holdout_share": args.holdout_share,
                                              "retrain_strategy": args.strategy})
    report = {"command": "python benchmarks/learning_curve.py " + " ".join(argv or sys.argv[1:]),
              "machine": f"{os.cpu_count()} CPUs", "seconds": round(time.monotonic() - started, 1),
              "stream": args.stream, "test": args.test, "every": args.every, "epochs": args.epochs,
              "holdout_share": args.holdout_share, "strategy": args.strategy,
              **curve.to_dict()}
    promoted = [p["quality"] for p in curve.points if p["promoted"]]
    print(f"start {curve.start:.3f} -> " + " -> ".join(f"{q:.3f}" for q in promoted or [curve.start])
          + f" (oracle {curve.oracle:.3f}); spend ${curve.points[-1]['spend_usd'] if curve.points else 0:.4f}")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
