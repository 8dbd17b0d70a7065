"""``python -m routing.evidence refresh|show``: public evidence in the pool file, written and shown.

``refresh --pool assets/models.json --ratings FILE [--prices FILE] [--map FILE] [--variant V]
[--snapshot YYYY-MM-DD] [--write]`` matches every pool model to the ratings file and prints what
matched, what did not and what would change; only ``--write`` rewrites the pool file.
``show --pool FILE`` prints each model's full / coding / math / creative_writing rating.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from routing.errors import UserError
from routing.evidence.ratings import RATINGS_FILE_DEFAULT_VARIANT, read_price_table, read_ratings
from routing.evidence.refresh import dump_pool_json, format_report, refresh_pool
from routing.pool import load_pool

DEFAULT_SOURCE = "LMArena text arena"
SHOWN_CATEGORIES = ("full", "coding", "math", "creative_writing")


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise UserError(f"{what} {path} not found.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc}.") from exc


def _read_map(path: Path) -> dict[str, str | None]:
    data = _read_json(path, "Map file")
    if not isinstance(data, dict) or not all(v is None or isinstance(v, str) for v in data.values()):
        raise UserError(f"Map file {path} must be a JSON object: pool id or model_name -> rating name (or null).")
    return data


def _snapshot(args: argparse.Namespace) -> tuple[str, str]:
    if args.snapshot:
        try:
            return dt.date.fromisoformat(args.snapshot).isoformat(), "given with --snapshot"
        except ValueError:
            raise UserError(f"--snapshot {args.snapshot!r} is not a date (YYYY-MM-DD).") from None
    mtime = Path(args.ratings).stat().st_mtime
    day = dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc).date().isoformat()
    return day, "the ratings file's modification date, not necessarily the data's: give --snapshot"


def refresh(args: argparse.Namespace) -> int:
    pool_path = Path(args.pool)
    load_pool(pool_path)                                  # the pool file must be valid to begin with
    pool_text = pool_path.read_text(encoding="utf-8")
    ratings = read_ratings(args.ratings, args.variant)
    prices = read_price_table(args.prices) if args.prices else None
    mapping = _read_map(Path(args.map)) if args.map else None
    snapshot, said = _snapshot(args)
    new_data, report = refresh_pool(json.loads(pool_text), ratings, prices, mapping, variant=args.variant,
                                    source=args.source, snapshot=snapshot,
                                    ratings_file_name=Path(args.ratings).name)
    print(format_report(report))
    print(f"\nSnapshot {snapshot}: {said}.")
    new_text = dump_pool_json(new_data)
    if new_text == pool_text:
        print(f"{pool_path} already holds this evidence: nothing to write.")
    elif args.write:
        tmp = pool_path.with_name(pool_path.name + ".tmp")
        tmp.write_text(new_text, encoding="utf-8")
        os.replace(tmp, pool_path)
        print(f"Wrote {pool_path}.")
    else:
        print(f"Dry run: nothing written. Add --write to rewrite {pool_path}.")
    return 0


def _cell(per_category: dict, category: str) -> str:
    value = per_category.get(category)
    return f"{value[0]:.0f} ±{(value[2] - value[1]) / 2:.0f}" if value else "-"


def show(args: argparse.Namespace) -> int:
    pool = load_pool(args.pool)
    header = ["id", "rating name", *SHOWN_CATEGORIES]
    table = [header]
    for m in pool:
        ratings = (m.evidence or {}).get("ratings")
        if isinstance(ratings, dict) and isinstance(ratings.get("categories"), dict):
            cats = ratings["categories"]
            table.append([m.id, str(ratings.get("name", "?")), *(_cell(cats, c) for c in SHOWN_CATEGORIES)])
        else:
            table.append([m.id, "unknown" if m.evidence else "no evidence", *("unknown" for _ in SHOWN_CATEGORIES)])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    sources = {(m.evidence or {}).get("ratings", {}).get("source") for m in pool
               if isinstance((m.evidence or {}).get("ratings"), dict)}
    snapshots = {(m.evidence or {}).get("ratings", {}).get("snapshot") for m in pool
                 if isinstance((m.evidence or {}).get("ratings"), dict)}
    if sources:
        print(f"\nSource: {'; '.join(sorted(map(str, sources)))}; snapshot {', '.join(sorted(map(str, snapshots)))}"
              " (rating ± half its 95% interval)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m routing.evidence",
                                     description="Public evidence (ratings, list prices) in the model pool file.")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("refresh", help="match the pool's models to a public ratings file and write their evidence")
    r.add_argument("--pool", required=True, help="the pool file (e.g. assets/models.json)")
    r.add_argument("--ratings", required=True, help="CSV: variant,category,model,rating,ci95_low,ci95_high")
    r.add_argument("--prices", help="CSV: name,model,input_usd_per_mtok,output_usd_per_mtok,organization,price_source")
    r.add_argument("--map", help="JSON object: pool id or model_name -> rating name (null: no public rating)")
    r.add_argument("--variant", default=RATINGS_FILE_DEFAULT_VARIANT, help="the ratings variant (default: %(default)s)")
    r.add_argument("--source", default=DEFAULT_SOURCE, help="what the ratings are (default: %(default)s)")
    r.add_argument("--snapshot", help="the data's date, YYYY-MM-DD (default: the ratings file's modification date)")
    r.add_argument("--write", action="store_true", help="rewrite the pool file (without it: print, write nothing)")
    r.set_defaults(run=refresh)
    s = sub.add_parser("show", help="each model's full/coding/math/creative_writing rating, or unknown")
    s.add_argument("--pool", required=True, help="the pool file")
    s.set_defaults(run=show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
