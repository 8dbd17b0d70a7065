"""Step 1 - label prompts: ``python -m training.pipeline.label --source rules|outcomes|feedback``.

Writes ``labeled_prompts.json``: ``[{"text", "label", "scores": {model: score}, "costs"?: {...}}]``.

* ``rules``: the rule-based selector labels a prompt corpus (default: the built-in
  ``assets/prompt_corpus.jsonl``; any JSON / JSONL / CSV / TXT prompt file works); ``scores``
  are the rules' soft scores.
* ``outcomes``: an outcome table (RouterBench CSV or LLMRouter JSON, see
  :mod:`training.benchmark.outcomes`); the label is the best-scoring model, ties going to the cheaper one;
  ``scores`` keep every model's real quality so training can learn who else was good enough.
* ``feedback``: the outcome log exported by compare-all and user feedback, in the same outcome
  layout (default ``<ROUTER_DATA_DIR>/outcome_log.csv``), each rater's ratings capped and the
  release gate's test outcomes beside it (:mod:`training.pipeline.feedback`).

With a pool, outcome columns for models outside the pool are dropped (and reported), so the
labels always match the pool the selector will serve.
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

import numpy as np
import pandas as pd

from routing.errors import UserError
from routing.pool import ModelPool, load_pool
from routing.settings import ASSETS_DIR, REPO_ROOT, get_settings, pool_files
from training.benchmark.outcomes import PROMPT_COLUMNS, OutcomeTable, read_many
from training.files import read_data_file
from training.text import prompt_text

log = logging.getLogger(__name__)

SOURCES = ("rules", "outcomes", "feedback")
DEFAULT_CORPUS = ASSETS_DIR / "prompt_corpus.jsonl"
FEEDBACK_FILE = "outcome_log.csv"
META_SUFFIX = ".meta.json"   # labeled_prompts.meta.json: source, label set (pool order), counts


@dataclass
class LabelResult:
    """Labelled records plus what happened on the way (for the CLI and the Training tab)."""

    records: list[dict[str, Any]]
    labels: list[str]                 # the label set, in pool / table order
    source: str
    inputs: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "inputs": self.inputs, "rows": len(self.records),
                "labels": self.labels, "class_counts": self.counts, "notes": self.notes}


def default_feedback_file(rater_share: float | None = None) -> Path:
    """The outcome log, freshly exported to the RouterBench layout (when there is a log) with each
    rater's say capped (:mod:`training.pipeline.feedback`; ``rater_share`` defaults to ROUTER_RATER_SHARE),
    and the release gate's test outcomes beside it (``outcome_log.gate.json``)."""
    from routing.learning.outcome_log import OutcomeLog, log_path
    from training.pipeline.feedback import write_export

    settings = get_settings()
    data_dir = settings.data_dir
    out = data_dir / FEEDBACK_FILE
    if log_path(data_dir).exists():
        write_export(OutcomeLog(data_dir), out, share=settings.rater_share if rater_share is None else rater_share)
    return out


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a JSON list (strings or objects), JSON Lines, CSV or plain text (one per line)."""
    path = Path(path)
    rows = read_data_file(path, "Prompt file", ("prompts", "data"))
    if isinstance(rows, pd.DataFrame):
        return [prompt_text(v) for v in rows[_column(rows.columns, path)].tolist()]
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append(prompt_text(row.get(_column(row.keys(), path))))
        else:
            out.append(prompt_text(row))
    return out


def _column(columns: Any, path: Path) -> str:
    lower = {str(c).strip().lower(): c for c in columns}
    for name in PROMPT_COLUMNS:
        if name in lower:
            return lower[name]
    raise UserError(f"{path}: no prompt column; name one of {', '.join(PROMPT_COLUMNS)}.")


def label_with_rules(prompts: Sequence[str], pool: ModelPool) -> list[dict[str, Any]]:
    """Rule-selector labels (pure quality setting) with its soft scores per model."""
    from routing.selectors.rules import RuleSelector

    prompts = [p for p in prompts if p and p.strip()]
    selector = RuleSelector(pool)
    matrix = selector.score(prompts)
    picks = selector.select_many(prompts)
    return [{"text": p, "label": s.selected_model,
             "scores": {m: round(float(v), 6) for m, v in zip(pool.ids, row)}}
            for p, s, row in zip(prompts, picks, matrix)]


def best_models(table: OutcomeTable, tie_prices: Sequence[float] | None = None) -> list[str]:
    """Per row, the best-scoring model; ties go to the cheaper (row cost, else ``tie_prices``,
    else table order). Missing cells never win."""
    labels = []
    for i in range(len(table)):
        row = table.scores[i]
        top = np.nanmax(row)
        tied = [j for j in range(len(row)) if not np.isnan(row[j]) and row[j] >= top - 1e-12]
        def price(j: int) -> float:
            if table.costs is not None and not np.isnan(table.costs[i, j]):
                return float(table.costs[i, j])
            return float(tie_prices[j]) if tie_prices is not None else 0.0
        labels.append(table.models[min(tied, key=lambda j: (price(j), j))])
    return labels


def label_outcomes(table: OutcomeTable, pool: ModelPool | None = None) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Records from an outcome table; with a pool, restricted to pool models. Returns
    (records, label set, notes)."""
    notes: list[str] = []
    tie_prices = None
    if pool is not None:
        unknown = [m for m in table.models if m not in pool.ids]
        if unknown:
            notes.append(f"ignored {len(unknown)} model(s) not in the pool: {', '.join(unknown)}")
        known = [m for m in pool.ids if m in table.models]
        if not known:
            raise UserError(f"{table.source}: none of its models ({', '.join(table.models)}) is in the pool "
                            f"({', '.join(pool.ids)}).")
        absent = [m for m in pool.ids if m not in table.models]
        if absent:
            notes.append(f"no outcomes for pool model(s): {', '.join(absent)}")
        table = table.select_models(pool.ids)
        tie_prices = [m.blended_price_per_m for m in pool.models]
        keep = [i for i in range(len(table)) if not np.all(np.isnan(table.scores[i]))]
        if len(keep) < len(table):
            notes.append(f"dropped {len(table) - len(keep)} row(s) with scores only for models outside the pool")
        table = table.rows(keep)
        if len(table) == 0:
            raise UserError(f"{table.source}: no row scores a pool model.")
    for reason, count in table.dropped.items():
        if count:
            notes.append(f"dropped {count} row(s): {reason.replace('_', ' ')}")
    records = table.to_records()
    for rec, lab in zip(records, best_models(table, tie_prices)):
        rec["label"] = lab
    return records, list(table.models), notes


def label(source: str, input_paths: Sequence[str | Path] | None = None, pool: ModelPool | None = None,
          use_pool: bool = True, *, rater_share: float | None = None) -> LabelResult:
    """Label prompts from ``source`` (see module doc). ``pool`` defaults to the configured pool.

    ``feedback`` from the log itself (no input file): each rater's ratings are capped
    (``rater_share``, :mod:`training.pipeline.feedback`) and every record carries ``gate_scores``, the
    outcomes the release gate judges it by when it falls in the test split."""
    if source not in SOURCES:
        raise UserError(f"Unknown label source {source!r}; use one of {', '.join(SOURCES)}.")
    paths = [Path(p) for p in (input_paths or [])]
    if pool is None and (use_pool or source == "rules"):
        pool = load_pool(pool_files(get_settings()).live)
    if source == "rules":
        paths = paths or [DEFAULT_CORPUS]
        prompts = [p for path in paths for p in read_prompts(path)]
        records = label_with_rules(prompts, pool)
        labels, notes = pool.ids, []
        if len(records) < len(prompts):
            notes.append(f"dropped {len(prompts) - len(records)} empty prompt(s)")
    else:
        if not paths:
            if source == "outcomes":
                raise UserError("The outcomes source needs an outcome table (--input).")
            paths = [default_feedback_file(rater_share)]
            if not paths[0].is_file():
                raise UserError(f"No feedback log yet at {paths[0]}: compare models or rate answers first.")
            from training.pipeline.feedback import read_gate

            gate = read_gate(paths[0])
        else:
            gate = None
        records, labels, notes = label_outcomes(read_many(paths), pool if use_pool else None)
        if gate is not None:
            outcomes = gate.get("gate_scores") or {}
            for rec in records:
                rec["gate_scores"] = {m: s for m, s in (outcomes.get(rec["text"]) or {}).items() if m in labels}
            notes += list(gate.get("notes") or [])
    if not records:
        raise UserError("Nothing to label: the input holds no prompt.")
    counts = Counter(r["label"] for r in records)
    return LabelResult(records, labels, source, [_display_path(p) for p in paths],
                       {m: counts.get(m, 0) for m in labels}, notes)


def _display_path(path: Path) -> str:
    """A path relative to the repository where it lies inside it (model cards stay portable)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def write_labels(result: LabelResult, out: str | Path) -> Path:
    """Write ``labeled_prompts.json`` (atomically) with the label set beside the records."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result.records, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out)
    meta = out.with_name(out.stem + META_SUFFIX)
    meta.write_text(json.dumps(result.summary(), indent=1), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pipeline.label", description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=SOURCES, default="rules")
    parser.add_argument("--input", action="append", help="prompt file or outcome table (repeatable)")
    parser.add_argument("--pool", help="model pool file (default: ROUTER_MODELS_FILE / assets/models.json)")
    parser.add_argument("--no-pool", action="store_true", help="outcomes: keep the table's own models")
    parser.add_argument("--out", default="labeled_prompts.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        pool = load_pool(args.pool) if args.pool else None
        result = label(args.source, args.input, pool, use_pool=not args.no_pool)
        path = write_labels(result, args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}")
    print(json.dumps({"out": str(path), **result.summary()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
