"""How often the shipped prior's novelty check flags prompts as unlike its training data.

    python benchmarks/novelty.py [--out benchmarks/results/novelty.json] [--per-set 400]

Flag rates, with the shipped selector (its int8 encoder, as the app runs it), on: each public
outcome table's test split (prompts of the kinds it learned from, never fitted on), the app's own
built-in prompts (assets/prompt_corpus.jsonl), and 200 made-up prompts that are not language
(random letters, digits, symbols: seeded, so every run draws the same). Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def junk_prompts(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabets = [string.ascii_lowercase, string.ascii_lowercase + string.digits, string.punctuation, "01 ",
                 string.ascii_letters + string.digits + string.punctuation]
    out = []
    for i in range(n):
        chars = alphabets[i % len(alphabets)]
        words = [''.join(rng.choice(chars) for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(3, 12))]
        out.append(" ".join(words))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "novelty.json"))
    parser.add_argument("--per-set", type=int, default=400, help="test prompts per outcome table")
    args = parser.parse_args(argv)

    from routing.pool import load_pool
    from routing.selectors import load_selector
    from routing.settings import get_settings
    from training.prior.data import SET_NAMES, outcome_sets

    settings = get_settings()
    selector, _ = load_selector(settings, load_pool(settings.models_file))
    if getattr(selector, "novelty", None) is None:
        print("the live selector has no novelty check", file=sys.stderr)
        return 2

    def flagged(prompts: list[str]) -> dict:
        start = time.perf_counter()
        fam = selector.predict_texts(prompts).familiarity
        return {"prompts": len(prompts), "flagged": round(float((fam < selector.novelty.threshold).mean()), 4),
                "familiarity_median": round(float(sorted(fam)[len(fam) // 2]), 4),
                "seconds": round(time.perf_counter() - start, 2)}

    report = {"threshold": round(selector.novelty.threshold, 4), "fit": selector.novelty.info,
              "precision": selector.precision, "sets": {}}
    for s in outcome_sets(None, SET_NAMES):
        report["sets"][f"{s.name} (test split)"] = flagged(list(s.test.prompts[:args.per_set]))
    corpus = [json.loads(line)["text"] for line in open(REPO / "assets" / "prompt_corpus.jsonl", encoding="utf-8")]
    report["sets"]["built-in prompt corpus"] = flagged(corpus)
    report["sets"]["made-up non-language (200)"] = flagged(junk_prompts())
    for name, row in report["sets"].items():
        print(f"{name:34s} {row['prompts']:5d} prompts  flagged {row['flagged']:6.1%}  "
              f"median familiarity {row['familiarity_median']:.3f}")
    print(f"threshold {report['threshold']} (1% of held-out training prompts fall below it)")
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v["flagged"] for k, v in report["sets"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
