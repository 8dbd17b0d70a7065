"""Outcome tables: prompts with every model's quality on each, and optionally what it cost.

Read formats (see ``../shared/data/SOURCES.md``):

* RouterBench's wide CSV: an optional unnamed index column, a ``prompt`` column (plain text or a
  Python-literal list of turns), one column per model holding its score in [0, 1], optionally
  ``<model>|total_cost`` in USD; other ``<model>|...`` columns and known metadata are ignored.
* LLMRouter's JSON: ``[{"question": ..., "scores": {model: score}, "costs": {model: usd}?}]``.
* The same records as JSON Lines, or flat records (``{"prompt": ..., "<model>": score}``).
* The long ("tidy") layout many evaluation logs use, in CSV, Parquet, JSON or JSON Lines: one row
  per prompt and model, with a ``model`` column (or ``model_name``, ``model_id``, ``llm``), a
  ``score`` column (or ``performance``, ``quality``, ``correct``, ``is_correct``, ``accuracy``,
  ``reward``) and optionally ``cost`` (or ``total_cost``, ``cost_usd``). Repeated (prompt, model)
  pairs are averaged.

Missing cells stay NaN (a model not run on a prompt is not a failure); rows with no score at
all and rows with an empty prompt are dropped and counted.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from routing.errors import UserError
from training.files import read_data_file
from training.text import prompt_text

log = logging.getLogger(__name__)

PROMPT_COLUMNS = ("prompt", "text", "question", "query", "instruction")
COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"      # RouterBench / ZeroEval: the model's answer text
META_COLUMNS = {"sample_id", "eval_name", "oracle_model_to_route_to", "id", "category", "task",
                "task_name", "label", "index", "source", "ground_truth", "answer"}
MODEL_COLUMNS = ("model", "model_name", "model_id", "llm")                     # long layout
SCORE_COLUMNS = ("score", "performance", "quality", "correct", "is_correct", "correctness", "accuracy", "reward")
LONG_COST_COLUMNS = ("cost", "total_cost", "cost_usd")
CHARS_PER_TOKEN = 4.0          # rough input-token estimate where a table has no token counts
DEFAULT_OUTPUT_TOKENS = 200    # assumed answer length for per-prompt cost estimates


@dataclass
class OutcomeTable:
    """Prompts x models: ``scores`` in [0, 1] (NaN = missing), ``costs`` in USD or None;
    ``answer_chars``: each answer's length in characters where the table has the answers
    (``<model>|model_response``), else None (costs are then estimated with a stated length)."""

    prompts: list[str]
    models: list[str]
    scores: np.ndarray
    costs: np.ndarray | None = None
    source: str = "<memory>"
    dropped: dict[str, int] = field(default_factory=dict)
    answer_chars: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=float).reshape(len(self.prompts), len(self.models))
        if self.costs is not None:
            self.costs = np.asarray(self.costs, dtype=float).reshape(self.scores.shape)
        if self.answer_chars is not None:
            self.answer_chars = np.asarray(self.answer_chars, dtype=float).reshape(self.scores.shape)

    def __len__(self) -> int:
        return len(self.prompts)

    def select_models(self, keep: Sequence[str]) -> "OutcomeTable":
        """The table restricted to (and ordered as) ``keep``; models it lacks become NaN columns."""
        idx = {m: i for i, m in enumerate(self.models)}
        n = len(self.prompts)
        scores = np.full((n, len(keep)), np.nan)
        costs = None if self.costs is None else np.full((n, len(keep)), np.nan)
        chars = None if self.answer_chars is None else np.full((n, len(keep)), np.nan)
        for j, m in enumerate(keep):
            if m in idx:
                scores[:, j] = self.scores[:, idx[m]]
                if costs is not None:
                    costs[:, j] = self.costs[:, idx[m]]
                if chars is not None:
                    chars[:, j] = self.answer_chars[:, idx[m]]
        return OutcomeTable(list(self.prompts), list(keep), scores, costs, self.source, dict(self.dropped), chars)

    def rows(self, index: Iterable[int]) -> "OutcomeTable":
        index = list(index)
        costs = None if self.costs is None else self.costs[index]
        chars = None if self.answer_chars is None else self.answer_chars[index]
        return OutcomeTable([self.prompts[i] for i in index], list(self.models), self.scores[index], costs,
                            self.source, answer_chars=chars)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per prompt: text, per-model scores (missing omitted) and costs."""
        out = []
        for i, text in enumerate(self.prompts):
            rec: dict[str, Any] = {"text": text, "scores": {m: float(s) for m, s in zip(self.models, self.scores[i])
                                                            if not np.isnan(s)}}
            if self.costs is not None:
                rec["costs"] = {m: float(c) for m, c in zip(self.models, self.costs[i]) if not np.isnan(c)}
            out.append(rec)
        return out


def concat(tables: Sequence[OutcomeTable]) -> OutcomeTable:
    """Rows of several tables pooled; the model set is the union, in first-seen order."""
    if not tables:
        raise UserError("No outcome table given.")
    models: list[str] = []
    for t in tables:
        models += [m for m in t.models if m not in models]
    parts = [t.select_models(models) for t in tables]
    has_costs = all(p.costs is not None for p in parts)
    has_chars = all(p.answer_chars is not None for p in parts)
    dropped: dict[str, int] = {}
    for t in tables:
        for k, v in t.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
    return OutcomeTable(
        [p for t in parts for p in t.prompts], models, np.vstack([p.scores for p in parts]),
        np.vstack([p.costs for p in parts]) if has_costs else None,
        "+".join(t.source for t in tables), dropped,
        np.vstack([p.answer_chars for p in parts]) if has_chars else None,
    )


def _find_column(columns: Iterable[str], names: Sequence[str]) -> Any:
    lower = {str(c).strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _prompt_column(columns: Iterable[str], source: str) -> str:
    col = _find_column(columns, PROMPT_COLUMNS)
    if col is None:
        raise UserError(f"{source}: no prompt column; name one of {', '.join(PROMPT_COLUMNS)}.")
    return col


def _numbers(values: pd.Series) -> np.ndarray:
    if values.dtype == bool:
        return values.astype(float).to_numpy()
    return pd.to_numeric(values.map(lambda v: float(v) if isinstance(v, bool) else v),
                         errors="coerce").to_numpy(dtype=float)


def from_long_frame(df: pd.DataFrame, prompt_col: Any, model_col: Any, score_col: Any,
                    source: str = "<frame>") -> OutcomeTable:
    """An outcome table from one row per (prompt, model): pivoted to prompts x models, prompts and
    models in order of first appearance, repeated pairs averaged."""
    cost_col = _find_column(df.columns, LONG_COST_COLUMNS)
    prompts = [prompt_text(p) for p in df[prompt_col].tolist()]
    names = ["" if pd.isna(m) else str(m).strip() for m in df[model_col].tolist()]
    score = _numbers(df[score_col])
    bad = ~np.isnan(score) & ((score < 0) | (score > 1))
    if bad.any():
        log.warning("%s: %d scores outside [0, 1] treated as missing", source, int(bad.sum()))
        score = np.where(bad, np.nan, score)
    long = pd.DataFrame({"prompt": prompts, "model": names, "score": score,
                         "cost": _numbers(df[cost_col]) if cost_col is not None else np.nan})
    long = long[long["model"] != ""]
    if long.empty:
        raise UserError(f"{source}: the {model_col!r} column names no model.")
    order_p = list(dict.fromkeys(long["prompt"]))
    order_m = list(dict.fromkeys(long["model"]))
    grouped = long.groupby(["prompt", "model"], sort=False)[["score", "cost"]].mean()
    scores = grouped["score"].unstack("model").reindex(index=order_p, columns=order_m).to_numpy(dtype=float)
    costs = None
    if cost_col is not None:
        costs = grouped["cost"].unstack("model").reindex(index=order_p, columns=order_m).to_numpy(dtype=float)
    return _clean(OutcomeTable(order_p, order_m, scores, costs, source))


def _is_index(name: Any) -> bool:
    s = str(name).strip()
    return s == "" or s.lower().startswith("unnamed:")


def from_frame(df: pd.DataFrame, source: str = "<frame>") -> OutcomeTable:
    """An outcome table from a wide DataFrame (RouterBench layout) or a long one (see module doc)."""
    prompt_col = _prompt_column(df.columns, source)
    model_col, score_col = _find_column(df.columns, MODEL_COLUMNS), _find_column(df.columns, SCORE_COLUMNS)
    if model_col is not None and score_col is not None:
        return from_long_frame(df, prompt_col, model_col, score_col, source)
    models: list[str] = []
    for col in df.columns:
        name = str(col)
        if col == prompt_col or _is_index(col) or "|" in name or name.strip().lower() in META_COLUMNS:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        raw_present = df[col].notna()
        if raw_present.any() and values[raw_present].isna().mean() > 0.5:
            continue  # a text column, not scores
        present = values.dropna()
        if present.empty:
            log.warning("%s: column %r has no scores; ignored", source, name)
            continue
        if present.min() < 0 or present.max() > 1:
            log.warning("%s: column %r is not a score in [0, 1]; ignored", source, name)
            continue
        models.append(name)
    if not models:
        raise UserError(f"{source}: no model score columns (numbers in [0, 1]) next to {prompt_col!r}.")
    scores = np.column_stack([pd.to_numeric(df[m], errors="coerce").to_numpy(dtype=float) for m in models])
    cost_cols = [f"{m}{COST_SUFFIX}" for m in models]
    costs = None
    if any(c in df.columns for c in cost_cols):
        costs = np.column_stack([
            pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) if c in df.columns
            else np.full(len(df), np.nan) for c in cost_cols])
    answer_cols = [f"{m}{RESPONSE_SUFFIX}" for m in models]
    chars = None
    if any(c in df.columns for c in answer_cols):
        chars = np.column_stack([
            df[c].map(lambda v: float(len(v)) if isinstance(v, str) else np.nan).to_numpy(dtype=float)
            if c in df.columns else np.full(len(df), np.nan) for c in answer_cols])
    prompts = [prompt_text(p) for p in df[prompt_col].tolist()]
    return _clean(OutcomeTable(prompts, models, scores, costs, source, answer_chars=chars))


def from_records(records: Sequence[Mapping[str, Any]], source: str = "<records>") -> OutcomeTable:
    """An outcome table from LLMRouter-style records (``scores`` dict) or flat records."""
    if not records:
        raise UserError(f"{source}: the file holds no rows.")
    if not all(isinstance(r, Mapping) for r in records):
        raise UserError(f"{source}: every row must be an object.")
    if not any(isinstance(r.get("scores"), Mapping) for r in records):
        return from_frame(pd.DataFrame.from_records(list(records)), source)
    prompt_key = _prompt_column({k for r in records for k in r}, source)
    models: list[str] = []
    for r in records:
        for m in (r.get("scores") or {}):
            if m not in models:
                models.append(str(m))
    n, k = len(records), len(models)
    scores = np.full((n, k), np.nan)
    costs = np.full((n, k), np.nan)
    any_cost = False
    col = {m: j for j, m in enumerate(models)}
    bad = 0
    for i, r in enumerate(records):
        for m, s in (r.get("scores") or {}).items():
            try:
                v = float(s)
            except (TypeError, ValueError):
                bad += 1
                continue
            if not 0.0 <= v <= 1.0:
                bad += 1
                continue
            scores[i, col[str(m)]] = v
        for m, c in (r.get("costs") or {}).items():
            if str(m) in col:
                try:
                    costs[i, col[str(m)]] = float(c)
                    any_cost = True
                except (TypeError, ValueError):
                    pass
    if bad:
        log.warning("%s: %d score cells were not numbers in [0, 1]; treated as missing", source, bad)
    prompts = [prompt_text(r.get(prompt_key)) for r in records]
    return _clean(OutcomeTable(prompts, models, scores, costs if any_cost else None, source))


def _clean(table: OutcomeTable) -> OutcomeTable:
    keep = [i for i, p in enumerate(table.prompts) if p.strip() and not np.all(np.isnan(table.scores[i]))]
    empty = sum(1 for p in table.prompts if not p.strip())
    out = table.rows(keep)
    out.dropped = {"empty_prompt": empty, "no_scores": len(table) - len(keep) - empty}
    if len(out) == 0:
        raise UserError(f"{table.source}: no row has both a prompt and at least one score.")
    return out


def read_outcomes(path: str | Path) -> OutcomeTable:
    """Read one outcome table (CSV, Parquet, JSON or JSONL); problems are :class:`UserError` naming the file."""
    records = read_data_file(path, "Outcome table", ("data", "rows"))
    if isinstance(records, pd.DataFrame):
        return from_frame(records, str(path))
    suffix = Path(path).suffix.lower()
    if suffix == ".gz":
        suffix = Path(Path(path).stem).suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise UserError(f"Outcome table {path} must be CSV, Parquet, JSON or JSON Lines.")
    return from_records(records, str(path))


def read_many(paths: Sequence[str | Path]) -> OutcomeTable:
    """Several outcome tables pooled into one (e.g. the three RouterBench slices)."""
    return concat([read_outcomes(p) for p in paths])


def load_prices(path: str | Path) -> dict[str, tuple[float, float]]:
    """Model -> (input, output) USD per million tokens, from a price file.

    Accepts LLMRouter's ``models.json`` (``{model: {"input_price", "output_price"}}``), the pool
    file (``{"models": [{"id", "input_price_per_m", "output_price_per_m"}]}``) and the plain
    ``{model: price}`` form (one price for both).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"Price file {path} not found.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"Price file {path} is not valid JSON.") from exc
    prices: dict[str, tuple[float, float]] = {}
    if isinstance(data, dict) and isinstance(data.get("models"), list):
        for m in data["models"]:
            prices[str(m["id"])] = (float(m.get("input_price_per_m", 0)), float(m.get("output_price_per_m", 0)))
        return prices
    if not isinstance(data, dict):
        raise UserError(f"Price file {path} must map model names to prices.")
    for model, value in data.items():
        if isinstance(value, (int, float)):
            prices[model] = (float(value), float(value))
        elif isinstance(value, dict):
            p_in = value.get("input_price", value.get("input", value.get("input_price_per_m")))
            p_out = value.get("output_price", value.get("output", value.get("output_price_per_m", p_in)))
            if p_in is None:
                continue
            prices[model] = (float(p_in), float(p_out if p_out is not None else p_in))
    if not prices:
        raise UserError(f"Price file {path} names no model with a price.")
    return prices


def estimate_costs(table: OutcomeTable, prices: Mapping[str, tuple[float, float]],
                   output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> OutcomeTable:
    """The table with per-prompt USD costs estimated from prices: input tokens ~ prompt chars / 4;
    output tokens ~ the answer's chars / 4 where the table has the answers, else ``output_tokens``
    (and where a model's answer to a prompt is missing, that model's median answer length)."""
    missing = [m for m in table.models if m not in prices]
    if missing:
        raise UserError(f"The price file has no price for {', '.join(missing)}.")
    in_tokens = np.array([len(p) / CHARS_PER_TOKEN for p in table.prompts])[:, None]
    p_in = np.array([prices[m][0] for m in table.models])[None, :]
    p_out = np.array([prices[m][1] for m in table.models])[None, :]
    out_tokens: np.ndarray | float = float(output_tokens)
    if table.answer_chars is not None:
        chars = table.answer_chars
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(chars, axis=0)
        median = np.where(np.isnan(median), output_tokens * CHARS_PER_TOKEN, median)
        out_tokens = np.where(np.isnan(chars), median[None, :], chars) / CHARS_PER_TOKEN
    costs = (in_tokens * p_in + out_tokens * p_out) / 1e6
    return OutcomeTable(list(table.prompts), list(table.models), table.scores.copy(), costs, table.source,
                        dict(table.dropped), table.answer_chars)
