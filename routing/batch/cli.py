"""``python -m routing.batch``: the batch command line, for either engine.

``--engine local`` (default) runs :func:`routing.batch.local.run_file` in this process;
``--engine ray`` runs :func:`routing.batch.ray_engine.run_file_ray` on a Ray Data actor pool.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence


from routing.errors import UserError
from routing.batch.rows import DEFAULT_CHUNK_SIZE, MODES, _format_summary, run_with_progress_bar
from routing.batch.local import run_file


def main(argv: Sequence[str] | None = None) -> int:
    from routing.service import RouterService
    from routing.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m routing.batch",
                                     description="Route (and optionally answer) every prompt of a CSV or JSONL file.")
    parser.add_argument("input", help="CSV with a prompt/text/question column, or JSONL")
    parser.add_argument("--out", required=True, help="results file (x.csv or x.jsonl: both are written); "
                                                     "an existing one is resumed")
    parser.add_argument("--mode", choices=MODES, default="route")
    parser.add_argument("--column", default=None, help="the prompt column (default: found by name)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="rows per selector pass")
    parser.add_argument("--cost-weight", type=float, default=0.0, help="0 = best quality ... 1 = cheapest")
    parser.add_argument("--latency-weight", type=float, default=0.0,
                        help="0 = ignore latency ... 1 = fastest (recent median per model: from the outcome log's "
                             "latest answers, then, in answer mode, from the run's own calls)")
    parser.add_argument("--workers", type=int, default=None, help="rows answered at once (answer mode)")
    parser.add_argument("--max-rows", type=int, default=None, help="row limit (default ROUTER_BATCH_MAX_ROWS; 0: none)")
    parser.add_argument("--max-mb", type=float, default=None, help="size limit (default ROUTER_BATCH_MAX_MB; 0: none)")
    parser.add_argument("--start-over", action="store_true",
                        help="move an existing OUTPUT aside (renamed, not deleted) and run every row again "
                             "(default: resume it)")
    parser.add_argument("--retry-interrupted", action="store_true",
                        help="ask again the rows whose call was in flight when an earlier run stopped (they may "
                             "have been billed already; by default they are recorded as interrupted, not re-sent)")
    parser.add_argument("--outcomes", default=None,
                        help="an outcome table (CSV/JSONL: a prompt column and a 0-1 score column per pool model, "
                             "named by id or model name): each row's regret against its best model (local engine)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (default: this process) or ray (Ray Data actor pool; INPUT may be CSV, JSONL "
                             "or Parquet, a file, a folder or a glob; OUTPUT x.parquet or x.csv)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (auto, ray://HOST:PORT); default: start Ray on this machine")
    parser.add_argument("--num-actors", type=int, default=None, help="Ray actors, each with its own model (default 1)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per Ray block, the unit of resume (default 4096 route, 256 answer, 64 compare)")
    args = parser.parse_args(argv)
    if args.engine != "ray":
        given = [flag for flag, value in (("--address", args.address), ("--num-actors", args.num_actors),
                                          ("--batch-size", args.batch_size)) if value is not None]
        if given:
            parser.error(f"{', '.join(given)} only apply with --engine ray")
    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    if args.engine == "ray":
        if args.outcomes:
            parser.error("--outcomes applies with the local engine only")
        from routing.batch.ray_engine import main_ray

        return main_ray(args, settings)
    try:
        service = RouterService(settings, background=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in service.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return run_with_progress_bar(args.mode, lambda progress: run_file(
        service.router, args.input, args.out, mode=args.mode, prompt_column=args.column,
        chunk_size=args.chunk_size, cost_weight=args.cost_weight, workers=args.workers, progress=progress,
        latency_weight=args.latency_weight, start_over=args.start_over, retry_interrupted=args.retry_interrupted,
        max_rows=settings.batch_max_rows if args.max_rows is None else args.max_rows,
        max_mb=settings.batch_max_mb if args.max_mb is None else args.max_mb, outcomes=args.outcomes,
    ), _format_summary, args.json)
