"""``python -m training.prior``: fit the evidence prior on the public data and write its folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from routing.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.prior", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the folder to write (e.g. selector_model)")
    parser.add_argument("--sets", default="all", help="outcome sets to fit the link on (comma-separated; "
                        "routerbench, llmrouter, arena_bench, math_l5, crux) or all")
    parser.add_argument("--data", help="the public data folder (default: ../shared/data)")
    parser.add_argument("--novelty-only", action="store_true",
                        help="only (re)fit the novelty check of the prior already in --out (its other parameters "
                             "are left as they are)")
    args = parser.parse_args(argv)
    from routing.settings import get_settings
    from training.benchmark.zero_shot import PUBLIC_SETS_MAP, read_ratings_map, table_ratings
    from training.embeddings import embed
    from training.prior.data import SET_NAMES, outcome_sets, shared_data, topic_examples
    from training.prior.fit import fit_novelty, fit_prior, link_data

    t0 = time.time()
    try:
        data = Path(args.data) if args.data else shared_data()
        names = SET_NAMES if args.sets == "all" else tuple(x.strip() for x in args.sets.split(",") if x.strip())
        cache = get_settings().cache_dir / "embeddings"
        texts, labels, _ = topic_examples(data)
        topic_X = embed(texts, None, max_length=256, cache_dir=cache)
        ratings_file = data / "ratings" / "lmarena_text_category_ratings.csv"
        mapping = read_ratings_map(PUBLIC_SETS_MAP)
        items = []
        for s in outcome_sets(data, names):
            ratings, _ = table_ratings(s.train.models, ratings_file, mapping)
            item = link_data(s.name, s.train, embed(s.train.prompts, None, max_length=256, cache_dir=cache), ratings)
            if item is not None:
                items.append(item)
        # The novelty check: every prompt the prior learned from (topics, and the tables' train splits).
        train_X = np.vstack([topic_X] + [embed(s.train.prompts, None, max_length=256, cache_dir=cache)
                                          for s in outcome_sets(data, names)])
        if not args.novelty_only:
            params = fit_prior(topic_X, labels, items, {"ratings_file": ratings_file.name,
                                                         "command": "python -m training.prior --out " + args.out})
            params.save(args.out)
        novelty = fit_novelty(train_X)
        novelty.save(args.out)
        if args.novelty_only:
            print(json.dumps({"novelty": novelty.info, "threshold": novelty.threshold}, indent=1))
            print(f"wrote {args.out}/novelty.safetensors in {time.time() - t0:.0f} s")
            return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(params.info, indent=1))
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
