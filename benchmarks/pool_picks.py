"""Who gets what share of traffic: the shipped pool's picks over public prompts, by selector.

    python benchmarks/pool_picks.py [--old-selector DIR --old-label-encoder FILE] \
        [--out benchmarks/results/pool_picks.json]

Routes the 750 Arena-Hard v2 prompts and the 80 Vicuna prompts (``../shared/data/prompts``) with
the shipped evidence prior, the keyword rules and, when given, the previous shipped selector (the
rule-imitating classifier: ``git archive 4eac384 selector_model label_encoder.json | tar -x -C
/tmp/old``), at cost weight 0 and 0.5. For each: the share of traffic per model, the expected
quality **as the evidence prior predicts it** (the mean predicted chance of a good answer of the
chosen model: no outcome of this pool exists here, so this is the prior's own estimate, not a
measurement) and the cost per 1,000 prompts at the pool file's prices (input tokens ~ prompt
characters / 4, and an assumed 500 output tokens; R1's reasoning tokens would add to its cost).
Prints Markdown tables; writes a JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUTPUT_TOKENS = 500
COST_WEIGHTS = (0.0, 0.5)


def prompts(data: Path) -> dict[str, list[str]]:
    arena = [json.loads(line)["prompt"] for line in (data / "prompts" / "arena_hard_v2_questions.jsonl").open()]
    vicuna = [json.loads(line)["turns"][0] for line in (data / "prompts" / "vicuna_bench_questions.jsonl").open()]
    return {"arena_hard_v2": arena, "vicuna": vicuna}


def main(argv=None) -> int:
    from routing.pool import load_pool
    from routing.selectors.learned import LearnedSelector
    from routing.selectors.prior import PriorSelector
    from routing.selectors.rules import RuleSelector
    from routing.settings import DEFAULT_MODELS_FILE, DEFAULT_SELECTOR_DIR
    from training.prior.data import shared_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-selector", help="the previous shipped selector folder, for comparison")
    parser.add_argument("--old-label-encoder", help="its label_encoder.json")
    parser.add_argument("--out", default="benchmarks/results/pool_picks.json")
    args = parser.parse_args(argv)
    pool = load_pool(DEFAULT_MODELS_FILE)
    prior = PriorSelector(pool, DEFAULT_SELECTOR_DIR, fast_path="off")
    selectors = {"evidence prior (shipped)": prior, "keyword rules": RuleSelector(pool)}
    if args.old_selector:
        selectors["rule-imitating classifier (before)"] = LearnedSelector(
            pool, args.old_selector, args.old_label_encoder or Path(args.old_selector).parent / "label_encoder.json",
            fast_path="off")
    sets = prompts(shared_data())
    texts = [t for ts in sets.values() for t in ts]
    t0 = time.time()
    expected = prior.score(texts)                      # the prior's chance for every model and prompt
    ids = pool.ids
    p_in = np.array([m.input_price_per_m for m in pool.models])
    p_out = np.array([m.output_price_per_m for m in pool.models])
    in_tokens = np.array([len(t) / 4 for t in texts])
    cost = (in_tokens[:, None] * p_in[None, :] + OUTPUT_TOKENS * p_out[None, :]) / 1e6
    report = {"command": "python benchmarks/pool_picks.py" + (" --old-selector ..." if args.old_selector else ""),
              "prompts": {k: len(v) for k, v in sets.items()}, "output_tokens_assumed": OUTPUT_TOKENS,
              "quality": "the evidence prior's predicted chance of a good answer (not measured)", "results": {}}
    lines = []
    for name, selector in selectors.items():
        for w in COST_WEIGHTS:
            picks = [s.selected_model for s in selector.select_many(texts, cost_weight=w)]
            idx = np.array([ids.index(m) for m in picks])
            rows = np.arange(len(texts))
            share = {m: round(float((idx == k).mean()), 4) for k, m in enumerate(ids)}
            by_set = {}
            start = 0
            for set_name, ts in sets.items():
                part = idx[start:start + len(ts)]
                by_set[set_name] = {m: round(float((part == k).mean()), 4) for k, m in enumerate(ids)}
                start += len(ts)
            result = {"share": share, "share_by_set": by_set,
                      "expected_quality": round(float(expected[rows, idx].mean()), 4),
                      "cost_per_1k_usd": round(float(cost[rows, idx].mean()) * 1000, 4)}
            report["results"][f"{name} @ {w}"] = result
            lines.append(f"| {name} | {w} | " + " | ".join(f"{share[m]:.0%}" for m in ids)
                         + f" | {result['expected_quality']:.3f} | ${result['cost_per_1k_usd']:.3f} |")
    best = expected.argmax(1)
    report["seconds"] = round(time.time() - t0, 1)
    header = ("| selector | cost weight | " + " | ".join(pool.get(m).display_name for m in ids)
              + " | expected quality (prior's estimate) | cost / 1,000 prompts |")
    print(header)
    print("|" + "---|" * (len(ids) + 4))
    print("\n".join(lines))
    print(f"\n{len(texts)} prompts; the prior's top model is {ids[int(np.bincount(best).argmax())]} on "
          f"{np.bincount(best, minlength=len(ids)).max() / len(texts):.0%} of them; {report['seconds']} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
