"""Batch rows, engine-independent: the modes, one row routed / answered / compared, the results' summary and CSV.

The local engine (:mod:`routing.batch.local`) and the Ray engine (:mod:`routing.batch.ray_engine`)
both run rows through these functions, so a row's record is the same whichever engine made it.
Imports only the core (router, pool, errors) and :mod:`routing.batch.io`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from routing.batch.io import (INTERRUPTED, InputRow, ResultsStore)
from routing.batch.money import dollars, tidy
from routing.batch.outcomes import with_regret
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
#: Called with a row just before its paid call is sent (the results store's ``mark_started``).
BeforeCallFn = Callable[[InputRow], None]


def check_run_options(chunk_size: int, cost_weight: float, latency_weight: float) -> None:
    """UserError unless the chunk size is at least 1 and both weights are from 0 to 1 (either engine)."""
    if chunk_size < 1:
        raise UserError(f"chunk size must be at least 1, got {chunk_size}.")
    if not 0.0 <= float(cost_weight) <= 1.0:
        raise UserError(f"cost_weight must be between 0 (pure quality) and 1 (cheapest), got {cost_weight}.")
    if not 0.0 <= float(latency_weight) <= 1.0:
        raise UserError(f"latency_weight must be between 0 (ignore latency) and 1 (fastest), got {latency_weight}.")


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


def default_compare_fn(router: Router, *, log_outcomes: bool = True) -> CompareFn:
    """Compare-all of the Compare tab (``routing.compare.run.compare_all``) for one row.

    Every comparison is appended to the outcome log in ``settings.data_dir`` (training data),
    as in the Compare all tab. No local-model stand-in: without a key the row fails and says so.
    """
    from routing.compare.run import compare_all
    from routing.learning.outcome_log import OutcomeLog

    outcome_log = OutcomeLog.for_settings(router.settings) if log_outcomes else None

    def compare(prompt: str) -> dict[str, Any]:
        return compare_all(router, prompt, outcome_log=outcome_log, local_fallback=False).to_dict()

    return compare


def _base_record(row: InputRow) -> dict[str, Any]:
    return {"row": row.index, "prompt_hash": row.hash, "prompt": row.prompt, "input": row.fields,
            "status": "ok", "error": None}


def _unlike(details: dict[str, Any] | None) -> bool | None:
    """Whether the selector flagged the prompt as unlike its training data (None: no such check)."""
    novelty = (details or {}).get("novelty")
    return bool(novelty["unlike_training_data"]) if isinstance(novelty, dict) else None


def _selection_fields(sel) -> dict[str, Any]:
    return {"selected_model": sel.selected_model, "confidence": round(float(sel.confidence), 4),
            "runner_up": sel.runner_up, "selector": sel.selector,
            "scores": {k: round(float(v), 4) for k, v in sel.scores.items()},
            "unlike_training_data": _unlike(sel.details)}


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
        records[i].update(row_savings(records[i], router.pool))
    return records


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
                  fallbacks=len([f for f in result.fallbacks if not f.get("skipped")]), notice=result.notice,
                  unlike_training_data=_unlike(result.evidence))
    record.update(row_savings(record, router.pool))
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
                  tied=", ".join(result.get("tied") or []) or None, router_correct=result.get("router_correct"))
    scores = {m: r.get("normalized") for m, r in (result.get("results") or {}).items()
              if r.get("error") is None and r.get("normalized") is not None}
    chosen = record.get("selected_model")
    record["regret"] = round(max(scores.values()) - scores[chosen], 4) if scores and chosen in scores else None
    record.update(row_savings(record, router.pool))
    if not any(r["error"] is None for r in per_model.values()):
        errors = "; ".join(f"{m}: {r['error']}" for m, r in per_model.items())
        _failed(record, f"no model answered ({errors})")
    return record


def estimate_tokens(prompt: str) -> int:
    """Rough token count of a prompt (~4 characters per token)."""
    return max(1, math.ceil(len(prompt) / CHARS_PER_TOKEN))


def _price(pool: ModelPool, model_id: str, tokens_in: int, tokens_out: int) -> float:
    try:
        spec = pool.get(model_id)
    except Exception:  # noqa: BLE001 - e.g. the local answerer is not a pool model: free
        return 0.0
    return (tokens_in * spec.input_price_per_m + tokens_out * spec.output_price_per_m) / 1e6


def priciest_model(pool: ModelPool) -> str:
    ids, prices = pool.ids, pool.prices()
    return max(ids, key=lambda m: (prices[m], -ids.index(m)))


def cheapest_model(pool: ModelPool) -> str:
    ids, prices = pool.ids, pool.prices()
    return min(ids, key=lambda m: (prices[m], ids.index(m)))


def _tokens(record: dict[str, Any], answer_tokens: int) -> tuple[int, int, bool]:
    """(tokens in, tokens out, estimated): the row's real usage where it was answered, else the
    prompt's length / 4 and ``answer_tokens``."""
    usage = record.get("usage") or {}
    if usage.get("prompt_tokens") is not None and usage.get("completion_tokens") is not None:
        return int(usage["prompt_tokens"]), int(usage["completion_tokens"]), False
    return estimate_tokens(record.get("prompt") or ""), answer_tokens, True


#: Per-row columns: what routing cost this row, what it would have cost at the priciest and at the
#: best-rated pool model, and (compare mode) the regret against the row's best answer.
SAVINGS_COLUMNS = ("cost_routed_usd", "cost_if_priciest_usd", "cost_if_best_rated_usd", "regret")


def row_savings(record: dict[str, Any], pool: ModelPool, *, answer_tokens: int = ASSUMED_ANSWER_TOKENS
                ) -> dict[str, Any]:
    """What routing saved or cost on one row, in :data:`SAVINGS_COLUMNS`.

    Route and answer rows: the same token counts priced at the model that answered (or was
    picked), at the priciest pool model and at the best-rated one (``ModelPool.best_rated``), so
    the three compare like with like (``cost_usd`` keeps what the provider billed). Compare rows:
    what each of those models really cost on this row, and ``regret``: the best evaluator score
    among the answers minus the routed model's (0 when it gave the best answer or tied; None when
    it did not answer)."""
    best_rated = pool.best_rated()
    priciest = priciest_model(pool)
    per_model = record.get("compare")
    if per_model:
        def billed(model_id: str | None) -> float | None:
            row = per_model.get(model_id or "") or {}
            return None if row.get("error") or row.get("cost_usd") is None else float(row["cost_usd"])

        return {"cost_routed_usd": billed(record.get("selected_model")), "cost_if_priciest_usd": billed(priciest),
                "cost_if_best_rated_usd": billed(best_rated), "regret": record.get("regret")}
    t_in, t_out, _ = _tokens(record, answer_tokens)
    routed_to = record.get("answered_by") or record.get("selected_model")
    return {"cost_routed_usd": _price(pool, routed_to, t_in, t_out) if routed_to else None,
            "cost_if_priciest_usd": _price(pool, priciest, t_in, t_out),
            "cost_if_best_rated_usd": _price(pool, best_rated, t_in, t_out) if best_rated else None,
            "regret": None}


def summarize(store: ResultsStore, pool: ModelPool, *, mode: str = "route", total_rows: int | None = None,
              answer_tokens: int = ASSUMED_ANSWER_TOKENS,
              outcomes: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    """Summary of a results file (streamed): counts, traffic share, confidence histogram, cost.

    Cost compares the routed batch with sending every row to the priciest and to the
    cheapest pool model (blended price), with the same token counts for all three: the real
    usage where a row was answered, else prompt length / 4 and ``answer_tokens``.
    """
    ids = pool.ids
    priciest, cheapest, best_rated = priciest_model(pool), cheapest_model(pool), pool.best_rated()
    traffic: Counter[str] = Counter()
    answered_by: Counter[str] = Counter()
    confidences: list[float] = []
    processed = ok = failed = interrupted = 0
    real_cost = 0.0
    real_cost_rows = 0
    cost = {"routed": 0.0, "all_priciest": 0.0, "all_cheapest": 0.0, "all_best_rated": 0.0}
    tokens_estimated = 0
    regrets: list[float] = []
    unlike = checked = 0
    errors: list[dict[str, Any]] = []
    router_correct = compared = ties = 0
    best_counts: Counter[str] = Counter()
    for record in store.iter_records():
        record = with_regret(record, outcomes)   # --outcomes: the regret of rows the table scores
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
        t_in, t_out, estimated = _tokens(record, answer_tokens)
        tokens_estimated += estimated
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
        if best_rated:
            cost["all_best_rated"] += _price(pool, best_rated, t_in, t_out)
        if record.get("regret") is not None:
            regrets.append(float(record["regret"]))
        if record.get("unlike_training_data") is not None:
            checked += 1
            unlike += bool(record["unlike_training_data"])
        if record.get("best_model"):
            compared += 1
            best_counts[record["best_model"]] += 1
            router_correct += bool(record.get("router_correct"))
        elif record.get("tied"):
            ties += 1
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
            **{k: tidy(v) for k, v in cost.items() if k != "all_best_rated" or best_rated},
            "priciest_model": priciest,
            "cheapest_model": cheapest,
            "best_rated_model": best_rated,
            "rows_with_estimated_tokens": tokens_estimated,
            "assumed_answer_tokens": answer_tokens,
            "chars_per_token": CHARS_PER_TOKEN,
        },
        "errors": errors,
    }
    if answered_by:
        summary["answered_by"] = dict(answered_by)
    if checked:   # the selector's novelty check (routing/selectors/novelty.py)
        summary["unlike_training_data"] = {"rows": unlike, "of": checked, "share": round(unlike / checked, 4)}
    if real_cost_rows:
        summary["actual_cost_usd"] = tidy(real_cost)
    if regrets and not (compared or ties):   # regret from an outcome table (--outcomes), not a comparison
        summary["outcomes"] = {"rows_with_regret": len(regrets), "mean_regret": round(float(np.mean(regrets)), 4)}
    if compared or ties:
        # A tie (scores within the evaluator's noise) has no winner: it counts as compared, not as
        # the router right or wrong.
        summary["compare"] = {"rows": compared + ties, "with_winner": compared, "ties": ties,
                              "best_model": dict(best_counts),
                              "router_agrees": round(router_correct / compared, 4) if compared else None,
                              "mean_regret": round(float(np.mean(regrets)), 4) if regrets else None,
                              "rows_with_regret": len(regrets)}
    return summary


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
        out += ["best_model", "tied", "router_correct"]
    out += list(SAVINGS_COLUMNS)
    out += ["unlike_training_data", "error"]
    return [_input_name(c, out) for c in input_columns] + out


def _input_name(column: str, taken: Sequence[str]) -> str:
    return f"input_{column}" if column in taken else column


def flatten_record(record: dict[str, Any], result_columns: Sequence[str]) -> dict[str, Any]:
    """One CSV row from a results record (input columns keep their names unless they clash).

    The router's numbers are cut to 10 significant digits (:func:`routing.batch.money.tidy`: a cost
    of ``1.7199999999999998e-05`` is ``1.72e-05``); the input's cells are kept as they are."""
    results: dict[str, Any] = {}
    for key in ("row", "status", "selected_model", "confidence", "runner_up", "selector", "response",
                "answered_by", "cost_usd", "latency_ms", "fallbacks", "notice", "best_model", "tied", "router_correct",
                *SAVINGS_COLUMNS, "unlike_training_data", "error"):
        if key in record:
            results[key] = record[key]
    for model_id, score in (record.get("scores") or {}).items():
        results[f"score_{model_id}"] = score
    for key, value in (record.get("usage") or {}).items():
        results[key] = value
    for model_id, r in (record.get("compare") or {}).items():
        for key, value in r.items():
            results[f"{model_id}_{key}"] = value
    flat: dict[str, Any] = {_input_name(k, result_columns): v for k, v in (record.get("input") or {}).items()}
    flat.update({k: tidy(v) if isinstance(v, float) else v for k, v in results.items()})
    return flat


def write_csv(store: ResultsStore, csv_path: str | Path, mode: str, input_columns: Sequence[str],
              pool_ids: Sequence[str], outcomes: Mapping[str, Mapping[str, float]] | None = None) -> Path:
    """The downloadable CSV (formulas neutralised) made from the JSONL results; with ``outcomes``
    (an outcome table, :mod:`routing.batch.outcomes`) each scored row's ``regret`` is filled in."""
    columns = csv_columns(mode, input_columns, pool_ids)
    result_columns = columns[len(input_columns):]
    return store.to_csv(csv_path, columns, lambda r: flatten_record(with_regret(r, outcomes), result_columns))


def write_charts(summary: dict[str, Any], pool: ModelPool, path: Path) -> Path:
    """The Batch tab's three figures (traffic, confidence, cost) in one self-contained HTML file."""
    from routing.charts.batch import confidence_histogram_figure, cost_comparison_figure, traffic_share_figure

    figures = [traffic_share_figure(summary, pool), confidence_histogram_figure(summary),
               cost_comparison_figure(summary, pool)]
    body = "\n".join(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Batch summary</title></head>"
                   f"<body>{body}</body></html>", encoding="utf-8")
    tmp.replace(path)
    return path


def write_outputs(summary: dict[str, Any], pool: ModelPool, base: str | Path, *, charts: bool = True) -> dict[str, Any]:
    """What either engine writes beside its results: ``<base>.summary.json`` (the summary as it is) and,
    with ``charts``, ``<base>.charts.html`` (:func:`write_charts`). Adds their paths to ``summary``
    (``summary_json``, ``charts_html``) and returns it."""
    import json

    base = Path(base)
    summary_path = base.with_name(base.name + ".summary.json")
    tmp = summary_path.with_name(summary_path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    tmp.replace(summary_path)
    summary["summary_json"] = str(summary_path)
    if charts:
        summary["charts_html"] = str(write_charts(summary, pool, base.with_name(base.name + ".charts.html")))
    return summary


def run_with_progress_bar(desc: str, run: Callable[[Callable[[int, int], None]], dict[str, Any]],
                          format_summary: Callable[[dict[str, Any]], str], as_json: bool, *,
                          own_terminal: bool = False) -> int:
    """The batch command's run, either engine: ``run(progress)`` behind a tqdm bar on stderr, then
    the summary (text, or JSON with ``as_json``) on stdout. Exit code 0; 2 for a UserError (said
    in one line); 130 when interrupted (the run resumes when the same command is run again).

    ``own_terminal``: the bar writes to a copy of the terminal's stderr taken now, so that a run
    which sends this process's stderr elsewhere (the Ray engine's log file) keeps the bar here."""
    import json
    import os
    import sys

    from tqdm import tqdm

    terminal = None
    if own_terminal:
        try:
            sys.stderr.flush()
            terminal = os.fdopen(os.dup(2), "w", encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                                 errors="replace")
        except (OSError, ValueError):   # no usable stderr descriptor: the bar stays on sys.stderr
            terminal = None
    bar = tqdm(unit="row", desc=desc, dynamic_ncols=True, file=terminal or sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        try:
            summary = run(progress)
        finally:
            bar.close()
            if terminal is not None:
                terminal.close()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume where it stopped", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2) if as_json else format_summary(summary))
    return 0


def _format_summary(summary: dict[str, Any]) -> str:
    lines = [f"rows: {summary['rows']}  ok: {summary['ok']}  failed: {summary['failed']}  "
             f"resumed: {summary['resumed_rows']}  this run: {summary['processed_this_run']} in "
             f"{summary['elapsed_s']:.1f} s" + (f" ({summary['rows_per_s']} rows/s)" if summary.get("rows_per_s") else "")]
    lines.append("traffic: " + ", ".join(f"{m} {s:.0%}" for m, s in summary["traffic_share"].items()))
    if summary["confidence"]["mean"] is not None:
        lines.append(f"mean confidence: {summary['confidence']['mean']:.2f}")
    c = summary["cost_estimate_usd"]
    lines.append(f"estimated cost: routed {dollars(c['routed'])} vs all-{c['priciest_model']} "
                 f"{dollars(c['all_priciest'])} vs all-{c['cheapest_model']} {dollars(c['all_cheapest'])}"
                 + (f" vs all-{c['best_rated_model']} (best rated) {dollars(c['all_best_rated'])}"
                    if c.get("best_rated_model") else ""))
    if "actual_cost_usd" in summary:
        lines.append(f"actual cost reported by providers: {dollars(summary['actual_cost_usd'])}")
    if summary.get("unlike_training_data"):
        u = summary["unlike_training_data"]
        lines.append(f"unlike the selector's training data: {u['rows']} of {u['of']} rows ({u['share']:.1%}), "
                     "routed on the public ratings and the price")
    compared = summary.get("compare") or {}
    if summary.get("outcomes"):
        o = summary["outcomes"]
        lines.append(f"regret against the outcome table (its best score for the row minus the routed model's): "
                     f"mean {o['mean_regret']:.3f} over {o['rows_with_regret']} rows")
    if compared.get("mean_regret") is not None:
        agrees = compared.get("router_agrees")
        lines.append(f"regret (the row's best evaluator score minus the routed model's, 0-1): mean "
                     f"{compared['mean_regret']:.3f} over {compared['rows_with_regret']} rows"
                     + (f"; the router picked the winner on {agrees:.0%} of rows with one" if agrees is not None else ""))
    if summary.get("interrupted"):
        lines.append(f"interrupted: {summary['interrupted']} rows were in flight when an earlier run stopped; they "
                     "may have been billed and were not sent again (--retry-interrupted asks them again)")
    for e in summary["errors"][:5]:
        lines.append(f"row {e['row']} failed: {e['error']}")
    if summary.get("set_aside_jsonl"):
        lines.append(f"started over: the previous {summary['set_aside_rows']} rows were moved to "
                     f"{summary['set_aside_jsonl']}")
    lines.append(f"results: {summary['results_csv']}"
                 + (f" (and {summary['results_jsonl']})" if summary.get("results_jsonl") else ""))
    for key, name in (("summary_json", "summary"), ("charts_html", "charts")):
        if summary.get(key):
            lines.append(f"{name}: {summary[key]}")
    return "\n".join(lines)
