"""Batch routing: run a file of prompts through the router, row by row, resumably.

Modes (:data:`MODES`):

``route``    the selector's decision only (no API calls, no key): selected model, confidence,
             runner-up and every model's score; one batched ``select_many`` per chunk.
``answer``   route and answer each row (``Router.ask``); a failing row records its error and
             the batch goes on.
``compare``  every pool model answers each row, scored by the evaluator (the compare-all of
             ``routing/compare.py``, which also appends each row to the outcome log).

Every finished row is appended to the results JSONL at once (``routing/batch_io.py``), so a
killed batch resumes where it stopped. Before a row's paid call (answer, compare) goes out it
is journalled as started; a resumed run never sends again a row whose call was in flight when
the run died (it may have been billed): it records it as ``interrupted``, saying so, unless
asked to (``retry_interrupted``, ``--retry-interrupted``). :func:`summarize` reads the results file back into
the summary (traffic per model, confidence histogram, estimated cost against the priciest
and the cheapest model).

Command line (large files, constant memory)::

    python -m routing.batch INPUT --out OUTPUT [--mode route|answer|compare] [--chunk-size N]
        [--engine local|ray [--address auto|ray://HOST:PORT] [--num-actors N] [--batch-size B]]

``--engine ray`` runs the same rows on a Ray Data actor pool (``routing/batch_ray.py``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from routing.batch_io import (INTERRUPTED, BatchFile, InputRow, ResultsStore, interrupted_record, open_batch_file,
                              results_paths, started_path)
from routing.errors import UserError
from routing.pool import ModelPool
from routing.router import Router

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("route", "answer", "compare")
DEFAULT_CHUNK_SIZE = 64
#: Cost estimates: characters per token of a prompt, and the answer length assumed when a
#: row was not answered (route mode).
CHARS_PER_TOKEN = 4
ASSUMED_ANSWER_TOKENS = 300
HISTOGRAM_BINS = 10

#: (rows done so far, including resumed ones; rows in the input)
ProgressFn = Callable[[int, int], None]
#: prompt -> compare-all result in the /query-compare shape
CompareFn = Callable[[str], dict[str, Any]]


def check_mode(mode: str) -> str:
    mode = (mode or "route").strip().lower()
    if mode not in MODES:
        raise UserError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    return mode


#: Why compare mode is refused when no pool model can be called.
COMPARE_NEEDS_KEY = ("Compare mode needs an OpenRouter key: every pool model answers every row, and without "
                     "OPENROUTER_API_KEY none can. Set it and restart, or choose Route only (no key needed). "
                     "Nothing was run.")


def compare_unavailable(router: Router) -> bool:
    """True when no pool model can be called (no key): compare would only fill rows with errors.

    Compare uses no local stand-in (``default_compare_fn``), so this is the Compare tab's
    check: every pool model lacks its key (``ProviderHub.missing_key``).
    """
    return all(router.hub.missing_key(spec) for spec in router.pool.models)


def check_can_compare(router: Router) -> None:
    """UserError (:data:`COMPARE_NEEDS_KEY`) when :func:`compare_unavailable`; before any row runs."""
    if compare_unavailable(router):
        raise UserError(COMPARE_NEEDS_KEY)


# --------------------------------------------------------------------------- compare mode

def default_compare_fn(router: Router, *, log_outcomes: bool = True) -> CompareFn:
    """Compare-all of the Compare tab (``routing.compare.compare_all``) for one row.

    Every comparison is appended to the outcome log in ``settings.data_dir`` (training data),
    as in the Compare all tab. No local-model stand-in: without a key the row fails and says so.
    """
    from routing.compare import compare_all
    from routing.outcome_log import OutcomeLog

    outcome_log = OutcomeLog.for_settings(router.settings) if log_outcomes else None

    def compare(prompt: str) -> dict[str, Any]:
        return compare_all(router, prompt, outcome_log=outcome_log, local_fallback=False).to_dict()

    return compare


# --------------------------------------------------------------------------- rows

def _base_record(row: InputRow) -> dict[str, Any]:
    return {"row": row.index, "prompt_hash": row.hash, "prompt": row.prompt, "input": row.fields,
            "status": "ok", "error": None}


def _selection_fields(sel) -> dict[str, Any]:
    return {"selected_model": sel.selected_model, "confidence": round(float(sel.confidence), 4),
            "runner_up": sel.runner_up, "selector": sel.selector,
            "scores": {k: round(float(v), 4) for k, v in sel.scores.items()}}


def _failed(record: dict[str, Any], error: str) -> dict[str, Any]:
    record.update(status="failed", error=error)
    return record


def route_rows(router: Router, rows: Sequence[InputRow], *, cost_weight: float = 0.0,
               latency_weight: float = 0.0) -> list[dict[str, Any]]:
    """Route-only records for a chunk: one batched selector pass over the valid prompts."""
    records = [_base_record(r) for r in rows]
    valid: list[int] = []
    for i, row in enumerate(rows):
        try:
            router.validate_prompt(row.prompt)
            valid.append(i)
        except UserError as exc:
            _failed(records[i], str(exc))
    if not valid:
        return records
    try:
        selections = router.route_many([rows[i].prompt for i in valid], cost_weight=cost_weight,
                                       latency_weight=latency_weight)
    except Exception:  # noqa: BLE001 - retry one by one so only the bad rows fail
        log.exception("batched routing failed; routing the chunk row by row")
        for i in valid:
            try:
                records[i].update(_selection_fields(router.route(rows[i].prompt, cost_weight=cost_weight,
                                                                 latency_weight=latency_weight)))
            except Exception as exc:  # noqa: BLE001
                _failed(records[i], str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}")
        return records
    for i, sel in zip(valid, selections):
        records[i].update(_selection_fields(sel))
    return records


#: Called with a row just before its paid call is sent (the results store's ``mark_started``).
BeforeCallFn = Callable[[InputRow], None]


def answer_row(router: Router, row: InputRow, *, cost_weight: float = 0.0,
               latency_weight: float = 0.0, before_call: BeforeCallFn | None = None) -> dict[str, Any]:
    """Route and answer one row; any failure is recorded in the row, never raised.
    ``before_call(row)`` runs just before the paid call (a failure there fails the row unsent)."""
    record = _base_record(row)
    try:
        if before_call is not None:
            before_call(row)
        result = router.ask(row.prompt, cost_weight=cost_weight, latency_weight=latency_weight)
    except UserError as exc:
        return _failed(record, str(exc))
    except Exception as exc:  # noqa: BLE001 - one failing row never aborts the batch
        log.exception("batch row %s failed", row.index)
        return _failed(record, f"{type(exc).__name__}: {exc}")
    record.update(selected_model=result.selected_model, confidence=result.selection_confidence,
                  runner_up=(result.ranking[1] if len(result.ranking) > 1 else None), selector=result.selector,
                  scores=result.scores, response=result.response, answered_by=result.answered_by,
                  usage=result.usage, cost_usd=result.cost_usd, latency_ms=result.latency_ms,
                  fallbacks=len([f for f in result.fallbacks if not f.get("skipped")]), notice=result.notice)
    return record


def compare_row(router: Router, row: InputRow, compare_fn: CompareFn,
                before_call: BeforeCallFn | None = None) -> dict[str, Any]:
    """Every model answers one row; the row fails only when no model answered.
    ``before_call(row)`` runs just before the paid calls."""
    record = _base_record(row)
    try:
        router.validate_prompt(row.prompt)
        selection = router.route(row.prompt)
        record.update(_selection_fields(selection))
        if before_call is not None:
            before_call(row)
        result = compare_fn(row.prompt)
    except UserError as exc:
        return _failed(record, str(exc))
    except Exception as exc:  # noqa: BLE001
        log.exception("batch row %s failed", row.index)
        return _failed(record, f"{type(exc).__name__}: {exc}")
    per_model = {}
    for model_id, r in (result.get("results") or {}).items():
        usage = r.get("usage") or {}
        per_model[model_id] = {"response": r.get("response"), "total": r.get("total"),
                               "cost_usd": r.get("cost_usd"), "latency_ms": r.get("latency_ms"),
                               "tokens": usage.get("total_tokens"), "error": r.get("error")}
    record.update(compare=per_model, best_model=result.get("best_model"),
                  router_correct=result.get("router_correct"))
    if not any(r["error"] is None for r in per_model.values()):
        errors = "; ".join(f"{m}: {r['error']}" for m, r in per_model.items())
        _failed(record, f"no model answered ({errors})")
    return record


# --------------------------------------------------------------------------- runner

@dataclass
class BatchRun:
    """What one call of :func:`run_batch` did (the summary comes from :func:`summarize`)."""

    processed: int       # rows done by this run
    skipped: int         # rows already in the results file (resumed)
    elapsed_s: float
    interrupted: int = 0  # rows whose call an earlier run left in flight: recorded as interrupted, not re-sent


def _settle_in_flight(store: ResultsStore, source: BatchFile, done: dict[int, str], retry: bool) -> int:
    """Rows an earlier run sent but never finished: recorded as interrupted (their call may have been
    billed; never sent again by a resume), or, with ``retry``, left to run again, as are rows an
    earlier run recorded as interrupted. Returns the rows newly recorded as interrupted."""
    if retry:
        for row, statuses in store.statuses().items():
            if statuses == {INTERRUPTED}:
                done.pop(row, None)
        return 0
    in_flight = {i: h for i, h in store.started().items() if i not in done}
    if not in_flight:
        return 0
    records = []
    for row in source.iter_rows():
        if row.index in in_flight:
            if in_flight[row.index] != row.hash:
                raise UserError(f"{store.started_path} belongs to a different input (row {row.index + 1} has another "
                                "prompt). Choose another output file, or delete it to start over.")
            records.append(interrupted_record(row))
    store.append(records)
    done.update({r["row"]: r["prompt_hash"] for r in records})
    return len(records)


def run_batch(router: Router, source: BatchFile, store: ResultsStore, *, mode: str = "route",
              chunk_size: int = DEFAULT_CHUNK_SIZE, cost_weight: float = 0.0,
              progress: ProgressFn | None = None, workers: int | None = None,
              compare_fn: CompareFn | None = None, latency_weight: float = 0.0,
              retry_interrupted: bool = False) -> BatchRun:
    """Run every row of ``source`` not yet in ``store``; each finished row is appended at once.

    Answer and compare rows are journalled as started just before their paid call. A row an
    earlier run left in flight is recorded as interrupted, not sent again (it may have been
    billed); ``retry_interrupted`` asks those rows (and rows recorded as interrupted) again."""
    mode = check_mode(mode)
    if chunk_size < 1:
        raise UserError(f"chunk size must be at least 1, got {chunk_size}.")
    if not 0.0 <= float(cost_weight) <= 1.0:
        raise UserError(f"cost_weight must be between 0 (pure quality) and 1 (cheapest), got {cost_weight}.")
    if not 0.0 <= float(latency_weight) <= 1.0:
        raise UserError(f"latency_weight must be between 0 (ignore latency) and 1 (fastest), got {latency_weight}.")
    workers = max(1, workers or router.settings.compare_concurrency)
    if mode == "compare" and compare_fn is None:
        check_can_compare(router)
        compare_fn = default_compare_fn(router)
    done = store.check_matches(source)
    resumed = len(done)
    interrupted = _settle_in_flight(store, source, done, retry_interrupted)
    resumed = min(resumed, len(done))
    start = time.monotonic()
    finished = len(done)
    processed = 0
    if progress:
        progress(finished, source.rows)
    executor = ThreadPoolExecutor(max_workers=workers) if mode == "answer" else None
    try:
        for chunk in source.iter_chunks(chunk_size):
            todo = [r for r in chunk if r.index not in done]
            if not todo:
                continue
            if mode == "route":
                records = route_rows(router, todo, cost_weight=cost_weight, latency_weight=latency_weight)
                store.append(records)
                finished += len(records)
                processed += len(records)
                if progress:
                    progress(finished, source.rows)
                continue
            for record in _run_rows(router, todo, mode, cost_weight, executor, compare_fn, latency_weight,
                                    store.mark_started):
                store.append([record])
                finished += 1
                processed += 1
                if progress:
                    progress(finished, source.rows)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return BatchRun(processed=processed, skipped=resumed, elapsed_s=time.monotonic() - start,
                    interrupted=interrupted)


def _run_rows(router: Router, rows: list[InputRow], mode: str, cost_weight: float,
              executor: ThreadPoolExecutor | None, compare_fn: CompareFn | None,
              latency_weight: float = 0.0, before_call: BeforeCallFn | None = None) -> Iterator[dict[str, Any]]:
    """Records as rows finish (answer: concurrently, in completion order; compare: one by one)."""
    if mode == "compare":
        assert compare_fn is not None
        for row in rows:
            yield compare_row(router, row, compare_fn, before_call)
        return
    assert executor is not None
    futures = [executor.submit(answer_row, router, row, cost_weight=cost_weight, latency_weight=latency_weight,
                               before_call=before_call)
               for row in rows]
    for future in as_completed(futures):
        yield future.result()


# --------------------------------------------------------------------------- summary

def estimate_tokens(prompt: str) -> int:
    """Rough token count of a prompt (~4 characters per token)."""
    return max(1, math.ceil(len(prompt) / CHARS_PER_TOKEN))


def _price(pool: ModelPool, model_id: str, tokens_in: int, tokens_out: int) -> float:
    try:
        spec = pool.get(model_id)
    except Exception:  # noqa: BLE001 - e.g. the local answerer is not a pool model: free
        return 0.0
    return (tokens_in * spec.input_price_per_m + tokens_out * spec.output_price_per_m) / 1e6


def summarize(store: ResultsStore, pool: ModelPool, *, mode: str = "route", total_rows: int | None = None,
              answer_tokens: int = ASSUMED_ANSWER_TOKENS) -> dict[str, Any]:
    """Summary of a results file (streamed): counts, traffic share, confidence histogram, cost.

    Cost compares the routed batch with sending every row to the priciest and to the
    cheapest pool model (blended price), with the same token counts for all three: the real
    usage where a row was answered, else prompt length / 4 and ``answer_tokens``.
    """
    ids = pool.ids
    prices = pool.prices()
    priciest = max(ids, key=lambda m: (prices[m], -ids.index(m)))
    cheapest = min(ids, key=lambda m: (prices[m], ids.index(m)))
    traffic: Counter[str] = Counter()
    answered_by: Counter[str] = Counter()
    confidences: list[float] = []
    processed = ok = failed = interrupted = 0
    real_cost = 0.0
    real_cost_rows = 0
    cost = {"routed": 0.0, "all_priciest": 0.0, "all_cheapest": 0.0}
    tokens_estimated = 0
    errors: list[dict[str, Any]] = []
    router_correct = compared = 0
    best_counts: Counter[str] = Counter()
    for record in store.iter_records():
        processed += 1
        if record.get("status") != "ok":
            failed += 1
            interrupted += record.get("status") == INTERRUPTED
            if len(errors) < 10:
                errors.append({"row": record.get("row"), "error": record.get("error")})
            continue
        ok += 1
        chosen = record.get("selected_model")
        if chosen:
            traffic[chosen] += 1
            confidences.append(float(record.get("confidence") or 0.0))
        usage = record.get("usage") or {}
        if usage.get("prompt_tokens") is not None and usage.get("completion_tokens") is not None:
            t_in, t_out = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        else:
            t_in, t_out = estimate_tokens(record.get("prompt") or ""), answer_tokens
            tokens_estimated += 1
        routed_to = record.get("answered_by") or chosen
        if record.get("answered_by"):
            answered_by[record["answered_by"]] += 1
        if record.get("cost_usd") is not None:
            real_cost += float(record["cost_usd"])
            real_cost_rows += 1
        if routed_to:
            cost["routed"] += _price(pool, routed_to, t_in, t_out)
        cost["all_priciest"] += _price(pool, priciest, t_in, t_out)
        cost["all_cheapest"] += _price(pool, cheapest, t_in, t_out)
        if record.get("best_model"):
            compared += 1
            best_counts[record["best_model"]] += 1
            router_correct += bool(record.get("router_correct"))
    counts, edges = np.histogram(confidences, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    routed_total = sum(traffic.values())
    summary: dict[str, Any] = {
        "mode": mode,
        "rows": total_rows if total_rows is not None else processed,
        "processed": processed,
        "ok": ok,
        "failed": failed,
        "interrupted": interrupted,
        "traffic": {m: traffic.get(m, 0) for m in ids},
        "traffic_share": {m: round(traffic.get(m, 0) / routed_total, 4) if routed_total else 0.0 for m in ids},
        "confidence": {
            "mean": round(float(np.mean(confidences)), 4) if confidences else None,
            "bin_edges": [round(float(e), 2) for e in edges],
            "counts": [int(c) for c in counts],
        },
        "cost_estimate_usd": {
            **{k: round(v, 6) for k, v in cost.items()},
            "priciest_model": priciest,
            "cheapest_model": cheapest,
            "rows_with_estimated_tokens": tokens_estimated,
            "assumed_answer_tokens": answer_tokens,
            "chars_per_token": CHARS_PER_TOKEN,
        },
        "errors": errors,
    }
    if answered_by:
        summary["answered_by"] = dict(answered_by)
    if real_cost_rows:
        summary["actual_cost_usd"] = round(real_cost, 6)
    if compared:
        summary["compare"] = {"rows": compared, "best_model": dict(best_counts),
                              "router_agrees": round(router_correct / compared, 4)}
    return summary


# --------------------------------------------------------------------------- CSV

def csv_columns(mode: str, input_columns: Sequence[str], pool_ids: Sequence[str]) -> list[str]:
    """Columns of the results CSV: the input's columns, then the mode's result columns."""
    out = ["row", "status", "selected_model", "confidence", "runner_up", "selector"]
    out += [f"score_{m}" for m in pool_ids]
    if mode == "answer":
        out += ["response", "answered_by", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
                "latency_ms", "fallbacks", "notice"]
    elif mode == "compare":
        for m in pool_ids:
            out += [f"{m}_total", f"{m}_cost_usd", f"{m}_latency_ms", f"{m}_tokens", f"{m}_error", f"{m}_response"]
        out += ["best_model", "router_correct"]
    out.append("error")
    return [_input_name(c, out) for c in input_columns] + out


def _input_name(column: str, taken: Sequence[str]) -> str:
    return f"input_{column}" if column in taken else column


def flatten_record(record: dict[str, Any], result_columns: Sequence[str]) -> dict[str, Any]:
    """One CSV row from a results record (input columns keep their names unless they clash)."""
    flat: dict[str, Any] = {_input_name(k, result_columns): v for k, v in (record.get("input") or {}).items()}
    for key in ("row", "status", "selected_model", "confidence", "runner_up", "selector", "response",
                "answered_by", "cost_usd", "latency_ms", "fallbacks", "notice", "best_model", "router_correct",
                "error"):
        if key in record:
            flat[key] = record[key]
    for model_id, score in (record.get("scores") or {}).items():
        flat[f"score_{model_id}"] = score
    for key, value in (record.get("usage") or {}).items():
        flat[key] = value
    for model_id, r in (record.get("compare") or {}).items():
        for key, value in r.items():
            flat[f"{model_id}_{key}"] = value
    return flat


def write_csv(store: ResultsStore, csv_path: str | Path, mode: str, input_columns: Sequence[str],
              pool_ids: Sequence[str]) -> Path:
    """The downloadable CSV (formulas neutralised) made from the JSONL results."""
    columns = csv_columns(mode, input_columns, pool_ids)
    result_columns = columns[len(input_columns):]
    return store.to_csv(csv_path, columns, lambda r: flatten_record(r, result_columns))


# --------------------------------------------------------------------------- preview

#: Rows of results the app previews (the CSV holds them all).
PREVIEW_ROWS = 50
#: Characters of an error the preview shows (other cells: ``batch_io.PREVIEW_CELL_CHARS``).
PREVIEW_ERROR_CHARS = 2000
#: Input columns besides the prompt the preview shows (the CSV keeps every one).
PREVIEW_OTHER_INPUTS = 3
#: Pixel widths of the preview's columns; text columns are wide enough to read.
_NARROW, _MODEL, _TEXT, _WIDE = 90, 140, 180, 320
_PREVIEW_WIDTHS = {"status": _NARROW, "selected_model": _MODEL, "confidence": 100, "runner_up": _MODEL,
                   "answered_by": _MODEL, "response": _WIDE, "cost_usd": _NARROW, "latency_ms": 100,
                   "best_model": _MODEL, "router_correct": 120, "error": _WIDE}


def preview_columns(mode: str, input_columns: Sequence[str], prompt_column: str,
                    pool_ids: Sequence[str]) -> list[tuple[str, int]]:
    """(results CSV column, width in px) the preview shows, the routing decision first.

    A compare-mode CSV has six columns per model (45 for five models): the preview keeps the
    decision, the evaluator's verdict, each model's total score, the error, the prompt and
    a few input columns; the download has everything. Names are the CSV's (an input column
    that clashes with a result column is ``input_<name>``).
    """
    mode = check_mode(mode)
    columns = csv_columns(mode, input_columns, pool_ids)
    result_columns = columns[len(input_columns):]
    picked = ["status", "selected_model", "confidence", "runner_up"]
    if mode == "answer":
        picked += ["answered_by", "response", "cost_usd", "latency_ms"]
    elif mode == "compare":
        picked += ["best_model", "router_correct"] + [f"{m}_total" for m in pool_ids]
    picked.append("error")
    widths = [(c, _PREVIEW_WIDTHS.get(c, 110)) for c in picked if c in result_columns]
    prompt = _input_name(prompt_column, result_columns)
    others = [_input_name(c, result_columns) for c in input_columns if c != prompt_column][:PREVIEW_OTHER_INPUTS]
    return _fit_headers(widths + [(prompt, _WIDE)] + [(c, _TEXT) for c in others])


def _fit_headers(columns: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Widen a column whose header would wrap (about 10 px per character of the table's bold header)."""
    return [(name, max(width, min(_WIDE, 10 * len(name) + 24))) for name, width in columns]


def input_preview_columns(columns: Sequence[str], prompt_column: str | None) -> list[tuple[str, int]]:
    """(column, width in px) of an input's preview: the prompt column wide, the others readable."""
    return _fit_headers([(c, _WIDE if c == prompt_column else _TEXT) for c in columns])


def preview_results(csv_path: str | Path, columns: Sequence[str], rows: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first ``rows`` rows of a results CSV, only ``columns``; long cells cut, errors kept whole."""
    from routing.batch_io import PREVIEW_CELL_CHARS, preview_cell

    limits = [PREVIEW_ERROR_CHARS if c == "error" else PREVIEW_CELL_CHARS for c in columns]
    out: list[list[str]] = []
    with Path(csv_path).open("r", encoding="utf-8-sig", newline="") as fh:
        for record in csv.DictReader(fh):
            out.append([preview_cell(record.get(c) or "", n) for c, n in zip(columns, limits)])
            if len(out) >= rows:
                break
    return out


# --------------------------------------------------------------------------- one call

def job_results_path(data_dir: str | Path, input_path: str | Path, mode: str, prompt_column: str | None) -> Path:
    """Where the app keeps one batch's results: named by the input's content, mode and column.

    Uploading the same file again with the same choices finds the same results file, so a
    batch interrupted by a closed browser or a restart resumes instead of starting over.
    """
    digest = hashlib.sha256()
    with Path(input_path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"\0{check_mode(mode)}\0{prompt_column or ''}".encode("utf-8"))
    return Path(data_dir) / "batch" / digest.hexdigest()[:20] / "results.jsonl"


def previous_rows(out: str | Path) -> int:
    """Rows already in the results of ``out`` (0: no previous run): what a run would resume."""
    jsonl_path, _ = results_paths(out)
    return ResultsStore(jsonl_path).count() if jsonl_path.is_file() else 0


def set_aside(out: str | Path) -> tuple[int, Path | None]:
    """Move the results of ``out`` aside (renamed, never deleted) so the next run starts over.

    Returns (rows set aside, where the JSONL went); (0, None) when there was nothing. The
    caller holds the batch's lock.
    """
    jsonl_path, csv_path = results_paths(out)
    rows = previous_rows(out)
    if not jsonl_path.is_file():
        return 0, None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1_000_000_000:09d}"
    kept = jsonl_path.with_name(f"{jsonl_path.stem}.before-{stamp}.jsonl")
    jsonl_path.replace(kept)
    if csv_path.is_file():
        csv_path.replace(kept.with_suffix(".csv"))
    journal = started_path(jsonl_path)
    if journal.is_file():  # x.started.before-STAMP.jsonl: beside the results, not one of them
        journal.replace(journal.with_name(f"{journal.stem}.before-{stamp}.jsonl"))
    return rows, kept


def job_previous_rows(data_dir: str | Path, input_path: str | Path, mode: str, prompt_column: str | None) -> int:
    """Rows an earlier run of this input (same mode and column) left in the app's results (0: none)."""
    return previous_rows(job_results_path(data_dir, input_path, mode, prompt_column))


def run_file(router: Router, input_path: str | Path, out: str | Path, *, mode: str = "route",
             prompt_column: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE, cost_weight: float = 0.0,
             max_rows: int | None = None, max_mb: float | None = None, progress: ProgressFn | None = None,
             workers: int | None = None, compare_fn: CompareFn | None = None,
             start_over: bool = False, latency_weight: float = 0.0, retry_interrupted: bool = False) -> dict[str, Any]:
    """Check the input, run (or resume) the batch, write the CSV, and return the summary.

    An existing results file for ``out`` is resumed; with ``start_over`` it is first moved
    aside (:func:`set_aside`: renamed beside it, not deleted) and every row runs again. The
    summary also names the files: ``results_jsonl`` and ``results_csv`` (and, after a start
    over, ``set_aside_jsonl``), and says ``started_over`` and ``set_aside_rows``.
    """
    from filelock import FileLock, Timeout

    mode = check_mode(mode)
    if mode == "compare" and compare_fn is None:
        check_can_compare(router)
    source = open_batch_file(input_path, prompt_column=prompt_column, max_rows=max_rows, max_mb=max_mb)
    jsonl_path, csv_path = results_paths(out)
    jsonl_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(jsonl_path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"This batch is already running ({jsonl_path.name}); wait for it to finish.") from None
    set_aside_rows, set_aside_jsonl = 0, None
    try:
        if start_over:
            set_aside_rows, set_aside_jsonl = set_aside(out)
        store = ResultsStore(jsonl_path)
        run = run_batch(router, source, store, mode=mode, chunk_size=chunk_size, cost_weight=cost_weight,
                        progress=progress, workers=workers, compare_fn=compare_fn, latency_weight=latency_weight,
                        retry_interrupted=retry_interrupted)
        write_csv(store, csv_path, mode, source.columns, router.pool.ids)
        summary = summarize(store, router.pool, mode=mode, total_rows=source.rows)
    finally:
        lock.release()
    summary.update(
        input=str(source.path), prompt_column=source.prompt_column, columns=source.columns,
        resumed_rows=run.skipped, processed_this_run=run.processed, interrupted_this_run=run.interrupted, elapsed_s=round(run.elapsed_s, 3),
        rows_per_s=round(run.processed / run.elapsed_s, 1) if run.elapsed_s > 0 and run.processed else None,
        results_jsonl=str(jsonl_path), results_csv=str(csv_path),
        started_over=bool(start_over), set_aside_rows=set_aside_rows,
    )
    if set_aside_jsonl is not None:
        summary["set_aside_jsonl"] = str(set_aside_jsonl)
    return summary


# --------------------------------------------------------------------------- command line

def _format_summary(summary: dict[str, Any]) -> str:
    lines = [f"rows: {summary['rows']}  ok: {summary['ok']}  failed: {summary['failed']}  "
             f"resumed: {summary['resumed_rows']}  this run: {summary['processed_this_run']} in "
             f"{summary['elapsed_s']:.1f} s" + (f" ({summary['rows_per_s']} rows/s)" if summary.get("rows_per_s") else "")]
    lines.append("traffic: " + ", ".join(f"{m} {s:.0%}" for m, s in summary["traffic_share"].items()))
    if summary["confidence"]["mean"] is not None:
        lines.append(f"mean confidence: {summary['confidence']['mean']:.2f}")
    c = summary["cost_estimate_usd"]
    lines.append(f"estimated cost: routed ${c['routed']:.4f} vs all-{c['priciest_model']} ${c['all_priciest']:.4f} "
                 f"vs all-{c['cheapest_model']} ${c['all_cheapest']:.4f}")
    if "actual_cost_usd" in summary:
        lines.append(f"actual cost reported by providers: ${summary['actual_cost_usd']:.4f}")
    if summary.get("interrupted"):
        lines.append(f"interrupted: {summary['interrupted']} rows were in flight when an earlier run stopped; they "
                     "may have been billed and were not sent again (--retry-interrupted asks them again)")
    for e in summary["errors"][:5]:
        lines.append(f"row {e['row']} failed: {e['error']}")
    if summary.get("set_aside_jsonl"):
        lines.append(f"started over: the previous {summary['set_aside_rows']} rows were moved to "
                     f"{summary['set_aside_jsonl']}")
    lines.append(f"results: {summary['results_csv']} (and {summary['results_jsonl']})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from tqdm import tqdm

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
        from routing.batch_ray import main_ray

        return main_ray(args, settings)
    bar = None
    try:
        service = RouterService(settings, background=False)
        for warning in service.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        bar = tqdm(unit="row", desc=args.mode, dynamic_ncols=True)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        summary = run_file(
            service.router, args.input, args.out, mode=args.mode, prompt_column=args.column,
            chunk_size=args.chunk_size, cost_weight=args.cost_weight, workers=args.workers, progress=progress,
            latency_weight=args.latency_weight,
            start_over=args.start_over, retry_interrupted=args.retry_interrupted,
            max_rows=settings.batch_max_rows if args.max_rows is None else args.max_rows,
            max_mb=settings.batch_max_mb if args.max_mb is None else args.max_mb,
        )
    except UserError as exc:
        if bar is not None:
            bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("interrupted: rerun the same command to resume where it stopped", file=sys.stderr)
        return 130
    bar.close()
    print(json.dumps(summary, indent=2) if args.json else _format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
