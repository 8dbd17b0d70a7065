"""Check the selector's int8 fast path: ``python -m training.pipeline.fast_path [--selector-dir DIR] [--prompts FILE]``.

Scores the check prompts (default: the built-in corpus, 601 prompts) with the selector in fp32
and with int8 linear layers, writes the share of prompts on which both pick the same model (at
every cost weight, where the selector's models are the pool's) to ``DIR/fast_path.json``, and
enables the fast path there when it is at least 99%
(:mod:`routing.selectors.fast_path`). The train step runs the same check on every candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from routing.errors import UserError
from routing.selectors.fast_path import FAST_PATH_FILE, MIN_AGREEMENT, agreement
from routing.settings import get_settings, pool_files

#: Check prompts the train step adds to the test split's (the built-in corpus, capped).
CHECK_PROMPTS = 400


def check_prompts(extra: Sequence[str] = (), limit: int = CHECK_PROMPTS) -> list[str]:
    from training.pipeline.label import DEFAULT_CORPUS, read_prompts

    corpus = read_prompts(DEFAULT_CORPUS)
    return list(dict.fromkeys(list(extra) + corpus[:max(0, limit - len(extra))]))


def _label_prices(labels: Sequence[str]) -> list[float] | None:
    """The app's pool prices in the selector's label order, so that picks are compared at every
    cost weight (:func:`routing.selectors.fast_path.agreement`); None when a label is not a pool
    model (then at cost weight 0 only)."""
    from routing.pool import load_pool

    try:
        prices = load_pool(pool_files(get_settings()).live).prices()
    except UserError:
        return None
    return [prices[m] for m in labels] if all(m in prices for m in labels) else None


def write_check(model_dir: str | Path, texts: Sequence[str]) -> dict[str, Any]:
    """Score ``texts`` with the folder's selector in fp32 and int8; record the agreement."""
    import torch

    from routing.selectors.heads import load_scorer  # torch and the model load only when checking

    fp32 = load_scorer(model_dir, fast_path="off")
    fast = load_scorer(model_dir, fast_path="force")
    info = agreement(fp32.predict, fast.predict, texts, _label_prices(fp32.labels))
    info.update(enabled=bool(info["agreement"] is not None and info["agreement"] >= MIN_AGREEMENT),
                checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), torch=torch.__version__)
    (Path(model_dir) / FAST_PATH_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pipeline.fast_path", description=__doc__.split("\n")[0])
    parser.add_argument("--selector-dir", help="selector folder (default: ROUTER_SELECTOR_DIR / selector_model)")
    parser.add_argument("--prompts", help="check prompts (JSON, JSONL, CSV or TXT; default: the built-in corpus)")
    args = parser.parse_args(argv)
    folder = Path(args.selector_dir or get_settings().selector_dir)
    try:
        if args.prompts:
            from training.pipeline.label import read_prompts

            texts = read_prompts(args.prompts)
        else:
            texts = check_prompts(limit=10**6)
        info = write_check(folder, texts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "exact_by_cost_weight" in info:
        print(f"int8 picks fp32's model, or one within {info['tie_tolerance']} of its utility, on "
              f"{info['agreement']:.2%} of {info['n']} prompts at the worst cost weight (exactly the same: "
              f"{min(info['exact_by_cost_weight'].values()):.2%}; mean utility lost at most "
              f"{max(info['mean_regret'].values()):.5f}): fast path {'on' if info['enabled'] else 'off'} "
              f"(needs {info['min_agreement']:.0%})")
    else:
        print(f"int8 picks the same model as fp32 on {info['agreement']:.2%} of {info['n']} prompts: fast path "
              f"{'on' if info['enabled'] else 'off'} (needs {info['min_agreement']:.0%})")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
