"""Step 2 - prepare datasets: ``python -m training.pipeline.prepare --input labeled_prompts.json --out DIR``.

Makes ``dataset_train.json``, ``dataset_val.json`` and ``dataset_test.json`` with the
``datasets`` library: empty prompts dropped, duplicates (same normalised text) dropped, split
stratified by label with a seed, class counts reported. The test split is **frozen**: the hashes
of its prompts are stored in ``test_split.json`` and reused by every later run, so a retrained
model is compared with the current one on exactly the same prompts (the release gate). Where no
frozen split exists in the output folder, the one shipped with the current model
(``selector_model/test_split.json``) is used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from routing.errors import UserError
from routing.settings import get_settings
from training.pipeline.label import META_SUFFIX
from routing.learning.slices import hash_in_share
from training.text import text_hash

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FROZEN_FILE = "test_split.json"
META_FILE = "dataset_meta.json"   # source and label order, read by training.pipeline.train
MIN_FROZEN_OVERLAP = 0.5  # below this share of the frozen prompts present, a new test split is made
TEST_SLICES = ("frozen", "hash")



@dataclass
class PrepareResult:
    paths: dict[str, Path]
    counts: dict[str, dict[str, int]]    # split -> label -> rows
    labels: list[str]
    frozen_file: Path
    notes: list[str] = field(default_factory=list)
    frozen_from: str | None = None       # the earlier split the test split came from; None: a new one

    def summary(self) -> dict[str, Any]:
        return {"paths": {k: str(v) for k, v in self.paths.items()}, "class_counts": self.counts,
                "labels": self.labels, "frozen_test": str(self.frozen_file), "frozen_from": self.frozen_from,
                "notes": self.notes}


def _load_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"Labelled prompts {path} not found: run python -m training.pipeline.label first.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"Labelled prompts {path} are not valid JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"{path} must hold a list of {{\"text\", \"label\"}} objects.")
    return data


def _split(ds: Any, fraction: float, seed: int, notes: list[str]) -> tuple[Any, Any]:
    """(rest, held) with ``fraction`` held out, stratified by label where every class allows it."""
    if len(ds) < 2 or fraction <= 0:
        return ds, ds.select([])
    n_held = max(1, round(fraction * len(ds)))
    if n_held >= len(ds):
        return ds, ds.select([])
    counts = Counter(ds["label"])
    if min(counts.values()) >= 2 and n_held >= len(counts) and len(ds) - n_held >= len(counts):
        from datasets import ClassLabel

        enc = ds if isinstance(ds.features["label_id"], ClassLabel) else ds.class_encode_column("label_id")
        parts = enc.train_test_split(test_size=n_held, seed=seed, stratify_by_column="label_id")
        return parts["train"], parts["test"]
    notes.append("a class has fewer than 2 rows: split without stratification")
    parts = ds.train_test_split(test_size=n_held, seed=seed)
    return parts["train"], parts["test"]


def default_frozen_sources(out_dir: Path) -> list[Path]:
    return [out_dir / FROZEN_FILE, get_settings().selector_dir / FROZEN_FILE]


def prepare(input_path: str | Path, out_dir: str | Path, *, val_fraction: float = 0.1,
            test_fraction: float = 0.15, seed: int = 42, frozen_test: str | Path | None = None,
            refreeze: bool = False, test_slice: str = "frozen") -> PrepareResult:
    """Clean, deduplicate and split labelled prompts; reuse (or create) the frozen test split.

    ``test_slice="hash"`` (for a growing log: automatic retraining) puts every prompt whose hash
    falls in ``test_fraction`` in the test split instead, so later runs test on more prompts and
    a prompt never moves between train and test."""
    if test_slice not in TEST_SLICES:
        raise UserError(f"Unknown test slice {test_slice!r}: use one of {', '.join(TEST_SLICES)}.")
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = _load_records(Path(input_path))
    notes: list[str] = []
    rows, seen = [], set()
    empty = dupes = 0
    for r in records:
        text = str(r.get("text") or "").strip()
        lab = str(r.get("label") or "").strip()
        if not text or not lab:
            empty += 1
            continue
        h = text_hash(text)
        if h in seen:
            dupes += 1
            continue
        seen.add(h)
        rows.append({"text": text, "label": lab, "hash": h, "label_id": lab,
                     "extra": json.dumps({k: v for k, v in r.items() if k not in ("text", "label")})})
    if empty:
        notes.append(f"dropped {empty} empty row(s)")
    if dupes:
        notes.append(f"dropped {dupes} duplicate prompt(s)")
    if len(rows) < 3:
        raise UserError(f"Only {len(rows)} usable prompt(s) in {input_path}: need at least 3 to split.")
    ds = Dataset.from_list(rows)

    frozen_out = out_dir / FROZEN_FILE
    sources = [Path(frozen_test)] if frozen_test else default_frozen_sources(out_dir)
    frozen: set[str] | None = None
    frozen_from: str | None = None
    if test_slice == "hash":
        frozen = {h for h in ds["hash"] if hash_in_share(h, test_fraction)}
        frozen_from = "hash"
        notes.append(f"test split: the {len(frozen)} prompts whose hash falls in the {test_fraction:.0%} test slice")
    elif not refreeze:
        for src in sources:
            if src.is_file():
                try:
                    frozen = set(json.loads(src.read_text(encoding="utf-8"))["hashes"])
                except (ValueError, KeyError, TypeError):
                    notes.append(f"ignored unreadable frozen split {src}")
                    continue
                present = sum(1 for h in ds["hash"] if h in frozen)
                if frozen and present >= MIN_FROZEN_OVERLAP * len(frozen):
                    notes.append(f"test split frozen by {src} ({present} of {len(frozen)} prompts present)")
                    frozen_from = str(src)
                    break
                notes.append(f"frozen split {src} matches only {present} of {len(frozen)} prompts: new test split")
                frozen = None
    if frozen is not None:
        test = ds.filter(lambda r: r["hash"] in frozen)
        rest = ds.filter(lambda r: r["hash"] not in frozen)
    else:
        rest, test = _split(ds, test_fraction, seed, notes)
    train, val = _split(rest, val_fraction / max(1e-9, 1 - test_fraction), seed, notes)
    frozen_out.write_text(json.dumps({"hashes": sorted(test["hash"]), "seed": seed,
                                      "source": str(input_path)}, indent=0), encoding="utf-8")

    labels = list(dict.fromkeys(r["label"] for r in rows))
    meta_in = Path(input_path).with_name(Path(input_path).stem + META_SUFFIX)
    meta: dict[str, Any] = {"source": "unknown"}
    if meta_in.is_file():
        meta = json.loads(meta_in.read_text(encoding="utf-8"))
        labels = list(meta.get("labels") or []) + [lab for lab in labels if lab not in (meta.get("labels") or [])]
    paths, counts = {}, {}
    for name, part in zip(SPLITS, (train, val, test)):
        recs = []
        for r in part.to_list():
            rec = {"text": r["text"], "label": r["label"], "hash": r["hash"]}
            rec.update(json.loads(r["extra"]))
            recs.append(rec)
        path = out_dir / f"dataset_{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(recs, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)
        paths[name] = path
        c = Counter(r["label"] for r in recs)
        counts[name] = {lab: c.get(lab, 0) for lab in labels}
    (out_dir / META_FILE).write_text(json.dumps({
        "source": meta.get("source", "unknown"), "inputs": meta.get("inputs", []), "labels": labels,
        "class_counts": counts, "seed": seed, "notes": notes}, indent=1), encoding="utf-8")
    if not counts["test"] or sum(counts["test"].values()) == 0:
        notes.append("the test split is empty")
    return PrepareResult(paths, counts, labels, frozen_out, notes, frozen_from)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pipeline.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--input", default="labeled_prompts.json")
    parser.add_argument("--out", default=".", help="folder for dataset_{train,val,test}.json")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--frozen-test", help="a test_split.json to reuse (default: OUT's, else the shipped model's)")
    parser.add_argument("--refreeze", action="store_true", help="make a new test split (breaks comparability)")
    args = parser.parse_args(argv)
    try:
        result = prepare(args.input, args.out, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                         seed=args.seed, frozen_test=args.frozen_test, refreeze=args.refreeze)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}")
    for split, c in result.counts.items():
        print(f"{split:5s} {sum(c.values()):5d}  " + "  ".join(f"{k}={v}" for k, v in c.items()))
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
