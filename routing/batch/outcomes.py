"""Outcomes a batch is measured against (``python -m routing.batch ... --outcomes FILE``).

An outcome table gives, per prompt, how well each model answered it (0-1; RouterBench-style: a
prompt column and one column per model). With it, every routed row gets its ``regret``: the best
score any pool model has for that prompt minus the routed model's (0 when the router picked a
best one), and the summary gives the mean (issue 30, item 5). Columns are matched to the pool by
id or by the provider's model name; other columns are ignored. Prompts are matched by their text
(whitespace-normalised); rows without a match keep ``regret`` empty.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping

from routing.errors import UserError

PROMPT_COLUMNS = ("prompt", "text", "question", "input")
MAX_BYTES = 200 * 1024 * 1024


def _key(prompt: Any) -> str:
    return " ".join(str(prompt or "").split())


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            return data if isinstance(data, list) else data.get("rows") or data.get("data") or []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def read_outcome_scores(path: str | Path, pool: Any) -> dict[str, dict[str, float]]:
    """``{prompt text: {pool model id: score in [0, 1]}}``; UserError naming the file when it cannot
    be used (missing, too large, no prompt column, no column for any pool model, bad scores)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Outcome table {path} not found.")
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"Outcome table {path} is over {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        rows = _rows(path)
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise UserError(f"Outcome table {path} cannot be read: {exc}") from None
    if not rows:
        raise UserError(f"Outcome table {path} has no rows.")
    columns = list(rows[0])
    prompt_column = next((c for c in columns if c.lower() in PROMPT_COLUMNS), None)
    if prompt_column is None:
        raise UserError(f"Outcome table {path} has no prompt column (one of {', '.join(PROMPT_COLUMNS)}).")
    names = {m.id: m.id for m in pool.models}
    names.update({m.model_name: m.id for m in pool.models})
    model_columns = {c: names[c] for c in columns if c in names}
    if not model_columns:
        raise UserError(f"Outcome table {path} has no column for any pool model (columns named by pool id or "
                        f"model name: {', '.join(pool.ids)}).")
    out: dict[str, dict[str, float]] = {}
    for i, row in enumerate(rows):
        scores = {}
        for column, model_id in model_columns.items():
            value = row.get(column)
            if value in (None, ""):
                continue
            try:
                score = float(value)
            except (TypeError, ValueError):
                raise UserError(f"Outcome table {path}, row {i + 1}: {column} is {value!r}, not a score.") from None
            if math.isnan(score):
                continue
            if not 0.0 <= score <= 1.0:
                raise UserError(f"Outcome table {path}, row {i + 1}: {column} is {score}, outside 0-1.")
            scores[model_id] = score
        if scores:
            out[_key(row.get(prompt_column))] = scores
    return out


def with_regret(record: dict[str, Any], outcomes: Mapping[str, Mapping[str, float]] | None) -> dict[str, Any]:
    """``record`` with its ``regret`` from ``outcomes`` where it has none yet and the prompt and the
    routed model have scores there."""
    if not outcomes or record.get("regret") is not None or record.get("status") != "ok":
        return record
    scores = outcomes.get(_key(record.get("prompt")))
    routed = record.get("answered_by") or record.get("selected_model")
    if not scores or routed not in scores:
        return record
    return {**record, "regret": round(max(scores.values()) - scores[routed], 4)}


__all__ = ["read_outcome_scores", "with_regret"]
