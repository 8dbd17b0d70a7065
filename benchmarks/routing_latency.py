"""Single-prompt routing latency on one CPU thread: the app's selector against a DistilBERT classifier.

    python benchmarks/routing_latency.py [--reps 40] [--out benchmarks/results/routing_latency.json]

The original design routed with a DistilBERT-size text classifier. This times, interleaved in a
random order each round, one routing decision (``selector.select(prompt)``: tokenise, encode,
score, decide) of the app's selector as it loads (the int8 fast path where its check passed),
the same selector in fp32, and a randomly initialised ``DistilBertForSequenceClassification``
(5 labels, the selector's tokenizer) run through ``transformers.pipeline`` in fp32, on a short
(~22 tokens) and a long (~250 tokens) prompt. Medians (p50) of ``--reps`` rounds; the last line
is JSON with ``ratio_vs_distilbert_fp32`` (``short``, ``long``) and ``agreement`` (the fast
path's check: the share of check prompts where int8 picks the same model as fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHORT = "Write a short Python function that checks whether a given string is a palindrome, ignoring case."
LONG = ("I am planning a two-week trip through northern Italy in late September with my partner and "
        "our two children, aged seven and eleven. We will fly into Milan and want to see Lake Como, "
        "Verona, Venice and the Dolomites, travelling mostly by train, with one or two days of "
        "hiking that the kids can manage. We prefer small family-run hotels, we do not eat meat, "
        "and our budget is moderate. Could you suggest a day-by-day itinerary that keeps travel "
        "time short, names the train connections between the towns, points out which sights need "
        "tickets booked in advance, and suggests a rainy-day alternative for each stop? Please "
        "also tell us which of the hikes are safe for children, how long each takes, and what we "
        "should pack for mountain weather at that time of year, and finish with a rough budget. "
        "One more thing: my partner gets seasick, so if a boat trip on the lake is worth it, tell us "
        "how long the crossing takes and whether a shorter ferry or a road alternative exists, and "
        "whether the Venice water buses are crowded in the evening. We would also like one evening "
        "concert or opera that children are welcome at, and a quiet town to rest in near the end.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "routing_latency.json"))
    args = parser.parse_args(argv)

    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, pipeline

    torch.set_num_threads(1)
    from routing.pool import load_pool
    from routing.selectors import fast_path
    from routing.selectors.learned import LearnedSelector
    from routing.selectors.prior import PriorSelector, is_prior_dir
    from routing.settings import get_settings

    settings = get_settings()
    pool = load_pool(settings.models_file)
    if is_prior_dir(settings.selector_dir):      # the shipped evidence prior
        app = PriorSelector(pool, settings.selector_dir, fast_path=settings.fast_path)
        fp32 = PriorSelector(pool, settings.selector_dir, fast_path="off")
        tokenizer = fp32.encoder.tokenizer
    else:
        app = LearnedSelector(pool, settings.selector_dir, settings.label_encoder_file, fast_path=settings.fast_path)
        fp32 = LearnedSelector(pool, settings.selector_dir, settings.label_encoder_file, fast_path="off")
        tokenizer = fp32.scorer.tokenizer if hasattr(fp32.scorer, "tokenizer") else fp32.scorer.encoder.tokenizer
    torch.manual_seed(0)
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=len(tokenizer), num_labels=5)).eval()
    classify = pipeline("text-classification", model=distil, tokenizer=tokenizer, top_k=None, truncation=True,
                        device="cpu")
    tokens = {name: len(tokenizer(text)["input_ids"]) for name, text in (("short", SHORT), ("long", LONG))}
    runners = {"selector": lambda t: app.select(t), "selector_fp32": lambda t: fp32.select(t),
               "distilbert_fp32": lambda t: classify(t)}
    for text in (SHORT, LONG):      # warm up every path
        for run in runners.values():
            for _ in range(3):
                run(text)
    times: dict[str, dict[str, list[float]]] = {length: {n: [] for n in runners} for length in ("short", "long")}
    rng = random.Random(0)
    for _ in range(args.reps):
        for length, text in (("short", SHORT), ("long", LONG)):
            order = list(runners)
            rng.shuffle(order)
            for name in order:
                started = time.perf_counter()
                runners[name](text)
                times[length][name].append((time.perf_counter() - started) * 1000)
    p50 = {length: {n: round(statistics.median(v), 2) for n, v in by.items()} for length, by in times.items()}
    ratio = {length: round(p50[length]["distilbert_fp32"] / p50[length]["selector"], 2) for length in p50}
    ratio_fp32 = {length: round(p50[length]["distilbert_fp32"] / p50[length]["selector_fp32"], 2) for length in p50}
    check = fast_path.read(settings.selector_dir) or {}
    report = {"command": "python benchmarks/routing_latency.py " + " ".join(argv or sys.argv[1:]),
              "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread", "reps": args.reps,
              "tokens": tokens, "selector_precision": getattr(getattr(app, "scorer", app), "precision", "fp32"),
              "selector": app.name,
              "selector_dir": str(settings.selector_dir), "p50_ms": p50,
              "ratio_vs_distilbert_fp32": ratio, "ratio_fp32_selector_vs_distilbert_fp32": ratio_fp32,
              "agreement": check.get("agreement"), "agreement_n": check.get("n")}
    for length in ("short", "long"):
        print(f"{length} ({tokens[length]} tokens): " + ", ".join(f"{n} {v:.1f} ms" for n, v in p50[length].items())
              + f"; DistilBERT / selector {ratio[length]:.2f}x (fp32 selector {ratio_fp32[length]:.2f}x)")
    print(f"fast path: {report['selector_precision']}, agreement {check.get('agreement')} on {check.get('n')} prompts")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"ratio_vs_distilbert_fp32": ratio, "agreement": check.get("agreement"),
                      "p50_ms": p50, "tokens": tokens}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
