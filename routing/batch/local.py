"""Batch routing, the local engine: run a file of prompts through the router, row by row, resumably.

Modes (:data:`MODES`):

``route``    the selector's decision only (no API calls, no key): selected model, confidence,
             runner-up and every model's score; one batched ``select_many`` per chunk.
``answer``   route and answer each row (``Router.ask``); a failing row records its error and
             the batch goes on.
``compare``  every pool model answers each row, scored by the evaluator (the compare-all of
             ``routing/compare/run.py``, which also appends each row to the outcome log).

Every finished row is appended to the results JSONL at once (``routing/batch/io.py``), so a
killed batch resumes where it stopped. Before a row's paid call (answer, compare) goes out it
is journalled as started; a resumed run never sends again a row whose call was in flight when
the run died (it may have been billed): it records it as ``interrupted``, saying so, unless
asked to (``retry_interrupted``, ``--retry-interrupted``). :func:`summarize` reads the results file back into
the summary (traffic per model, confidence histogram, estimated cost against the priciest
and the cheapest model).

Command line (large files, constant memory)::

    python -m routing.batch INPUT --out OUTPUT [--mode route|answer|compare] [--chunk-size N]
        [--engine local|ray [--address auto|ray://HOST:PORT] [--num-actors N] [--batch-size B]]

``--engine ray`` runs the same rows on a Ray Data actor pool (``routing/batch/ray_engine.py``).
"""

from __future__ import annotations

import csv
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator, Sequence


from routing.batch.io import (INTERRUPTED, BatchFile, InputRow, ResultsStore, interrupted_record, open_batch_file,
                              results_paths, started_path)
from routing.batch.money import dollars
from routing.errors import UserError
from routing.router import Router
from routing.batch.outcomes import read_outcome_scores
from routing.batch.rows import (BeforeCallFn, CompareFn, check_run_options, DEFAULT_CHUNK_SIZE, ProgressFn,
                                _input_name, answer_row, check_can_compare, check_mode, compare_row, csv_columns,
                                default_compare_fn, route_rows, summarize, write_csv, write_outputs)




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
    check_run_options(chunk_size, cost_weight, latency_weight)
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
    """(results CSV column, width in px) the preview shows: the user's columns, then the router's.

    The input's columns keep their place and order, before the result columns, as in the CSV
    (the prompt and up to :data:`PREVIEW_OTHER_INPUTS` others: an ``id`` stays first). A
    compare-mode CSV has six columns per model (45 for five models): the preview keeps the
    decision, the evaluator's verdict, each model's total score and the error; the download
    has everything. Names are the CSV's (an input column that clashes with a result column is
    ``input_<name>``).
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
    others = [c for c in input_columns if c != prompt_column][:PREVIEW_OTHER_INPUTS]
    inputs = [(_input_name(c, result_columns), _WIDE if c == prompt_column else _TEXT)
              for c in input_columns if c == prompt_column or c in others]
    return _fit_headers(inputs + widths)


def money_columns(mode: str, input_columns: Sequence[str], pool_ids: Sequence[str]) -> set[str]:
    """The results CSV's cost columns (the router's, never an input's): shown as dollars in the preview."""
    columns = csv_columns(check_mode(mode), input_columns, pool_ids)
    return {c for c in columns[len(input_columns):] if c == "cost_usd" or c.endswith("_cost_usd")}


def _fit_headers(columns: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Widen a column whose header would wrap (about 10 px per character of the table's bold header)."""
    return [(name, max(width, min(_WIDE, 10 * len(name) + 24))) for name, width in columns]


def input_preview_columns(columns: Sequence[str], prompt_column: str | None) -> list[tuple[str, int]]:
    """(column, width in px) of an input's preview: the prompt column wide, the others readable."""
    return _fit_headers([(c, _WIDE if c == prompt_column else _TEXT) for c in columns])


def preview_results(csv_path: str | Path, columns: Sequence[str], rows: int = PREVIEW_ROWS,
                    money: Collection[str] = ()) -> list[list[str]]:
    """The first ``rows`` rows of a results CSV, only ``columns``; long cells cut, errors kept whole,
    the ``money`` columns (:func:`money_columns`) as dollars (``$0.0000172``, not ``1.72e-05``)."""
    from routing.batch.io import PREVIEW_CELL_CHARS, preview_cell

    limits = [PREVIEW_ERROR_CHARS if c == "error" else PREVIEW_CELL_CHARS for c in columns]
    out: list[list[str]] = []
    with Path(csv_path).open("r", encoding="utf-8-sig", newline="") as fh:
        for record in csv.DictReader(fh):
            out.append([dollars(record.get(c)) if c in money else preview_cell(record.get(c) or "", n)
                        for c, n in zip(columns, limits)])
            if len(out) >= rows:
                break
    return out


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
             start_over: bool = False, latency_weight: float = 0.0, retry_interrupted: bool = False,
             charts: bool = True, outcomes: str | Path | None = None) -> dict[str, Any]:
    """Check the input, run (or resume) the batch, write the CSV, and return the summary.

    An existing results file for ``out`` is resumed; with ``start_over`` it is first moved
    aside (:func:`set_aside`: renamed beside it, not deleted) and every row runs again. The
    summary also names the files: ``results_jsonl`` and ``results_csv`` (and, after a start
    over, ``set_aside_jsonl``), and says ``started_over`` and ``set_aside_rows``. Beside them,
    as the Ray engine does (:func:`routing.batch.rows.write_outputs`): ``x.summary.json`` and,
    with ``charts``, ``x.charts.html`` (named in the summary as ``summary_json``, ``charts_html``).
    """
    from filelock import FileLock, Timeout

    mode = check_mode(mode)
    if mode == "compare" and compare_fn is None:
        check_can_compare(router)
    # --outcomes: an outcome table the rows' regret is measured against (read before any row runs)
    scores = read_outcome_scores(outcomes, router.pool) if outcomes else None
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
        write_csv(store, csv_path, mode, source.columns, router.pool.ids, outcomes=scores)
        summary = summarize(store, router.pool, mode=mode, total_rows=source.rows, outcomes=scores)
    finally:
        lock.release()
    summary.update(
        engine="local", input=str(source.path), prompt_column=source.prompt_column, columns=source.columns,
        resumed_rows=run.skipped, processed_this_run=run.processed, interrupted_this_run=run.interrupted, elapsed_s=round(run.elapsed_s, 3),
        rows_per_s=round(run.processed / run.elapsed_s, 1) if run.elapsed_s > 0 and run.processed else None,
        results_jsonl=str(jsonl_path), results_csv=str(csv_path),
        started_over=bool(start_over), set_aside_rows=set_aside_rows,
    )
    if set_aside_jsonl is not None:
        summary["set_aside_jsonl"] = str(set_aside_jsonl)
    return write_outputs(summary, router.pool, jsonl_path.with_suffix(""), charts=charts)
