"""Check the selector's int8 fast path: ``python -m training.fast_path [--selector-dir DIR] [--prompts FILE]``.

Scores the check prompts (default: the built-in corpus, 601 prompts) with the selector in fp32
and with int8 linear layers, writes the share of prompts on which both pick the same model to
``DIR/fast_path.json``, and enables the fast path there when it is at least 99%
(:mod:`routing.selectors.fast_path`). The train step runs the same check on every candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from routing.errors import UserError
from routing.selectors.fast_path import write_check
from routing.settings import get_settings

#: Check prompts the train step adds to the test split's (the built-in corpus, capped).
CHECK_PROMPTS = 400


def check_prompts(extra: Sequence[str] = (), limit: int = CHECK_PROMPTS) -> list[str]:
    from training.label import DEFAULT_CORPUS, read_prompts

    corpus = read_prompts(DEFAULT_CORPUS)
    return list(dict.fromkeys(list(extra) + corpus[:max(0, limit - len(extra))]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fast_path", description=__doc__.split("\n")[0])
    parser.add_argument("--selector-dir", help="selector folder (default: ROUTER_SELECTOR_DIR / selector_model)")
    parser.add_argument("--prompts", help="check prompts (JSON, JSONL, CSV or TXT; default: the built-in corpus)")
    args = parser.parse_args(argv)
    folder = Path(args.selector_dir or get_settings().selector_dir)
    try:
        if args.prompts:
            from training.label import read_prompts

            texts = read_prompts(args.prompts)
        else:
            texts = check_prompts(limit=10**6)
        info = write_check(folder, texts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"int8 picks the same model as fp32 on {info['agreement']:.2%} of {info['n']} prompts: fast path "
          f"{'on' if info['enabled'] else 'off'} (needs {info['min_agreement']:.0%})")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
