"""Collect outcomes in bulk: every chosen pool model answers every prompt, into an outcome table.

``python -m training.collection.collect PROMPTS --out TABLE.csv --budget-usd X [--models a,b] [--max-tokens N]
[--concurrency N] [--column NAME] [--dry-run] [--no-run-code]``

1. **Estimate first.** Before anything is sent it prints the calls to make and what they could
   cost at most (per model and in total: every byte of the prompt a token in and ``max_tokens`` out
   at the pool's prices, :func:`routing.budget.cost_bound`), plus what this table already spent. When
   that is above ``--budget-usd`` it refuses (exit code 2) and sends nothing. It also refuses
   when a chosen model cannot be called (no OpenRouter key).
2. **Ask with bounded concurrency.** Each (prompt, model) pair is one call of
   :meth:`routing.router.Router.ask_model` (one model, the app's retries, no fallback), at most
   ``--concurrency`` at once (default ``ROUTER_COMPARE_CONCURRENCY``). Every call is first
   reserved in the table's own :class:`routing.budget.SpendLedger` (``--budget-usd`` is its
   limit) and settled with the real cost, so concurrent calls cannot pass the budget together;
   it also passes through the app's daily ledger (``ROUTER_DAILY_BUDGET_USD``). When either
   limit (or a refused key) stops a call, the run stops cleanly (exit code 3): the answers so far
   are kept, the table is written, and the message says how to go on.
3. **Resume.** Each answer is appended to a JSON Lines file per model as soon as it arrives
   (``routing.batch.io.ResultsStore``: row index + prompt hash). Rerunning the same command after
   a kill (or with a higher budget) skips the pairs already answered; failed pairs are asked
   again. The budget counts the table's whole spend, reruns included.
4. **The table.** RouterBench's wide layout, as ``routing.learning.outcome_log.export_routerbench_csv``
   writes it (``sample_id, prompt, eval_name, <model>..., <model>|model_response...,
   <model>|total_cost..., oracle_model_to_route_to``), one row per prompt, which
   ``python -m training.pipeline.label --source outcomes --input TABLE.csv`` reads. A model's score is the
   evaluator's normalised score in [0, 1], each answer scored with the other models' answers to
   the same prompt as its peers (:func:`routing.evaluation.evaluator.evaluate_group`, as compare-all does). A
   failed call leaves its score and cost empty (an outage says nothing about quality).

The work folder ``TABLE.collect/`` beside the table holds the answers (``answers/*.jsonl``), the
table's spend ledger (``spend.sqlite3``), cached scores and a lock (one run per table at a time).
Keep it to resume or to add models later (a later run with other ``--models`` adds their columns).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from routing.batch.io import BatchFile, InputRow, ResultsStore, open_batch_file
from routing.budget import SpendLedger, cost_bound, input_token_bound, is_paid, usd
from routing.errors import ProviderError, SpendLimitError, UserError
from routing.learning.outcome_log import COST_SUFFIX, RESPONSE_SUFFIX

log = logging.getLogger(__name__)

EVAL_NAME = "llm-router-collect"
WORK_SUFFIX = ".collect"
ANSWERS_DIR = "answers"
SCORES_FILE = "scores.jsonl"
LOCK_FILE = "collect.lock"
#: Exit codes of the command: refused up front (nothing sent), stopped by a limit (resumable).
EXIT_REFUSED = 2
EXIT_STOPPED = 3
#: Pairs queued per worker beyond those running (keeps memory flat on long files).
QUEUE_PER_WORKER = 2

#: (pairs done this run, pairs to do this run)
ProgressFn = Callable[[int, int], None]

NEEDS_KEY = ("Collecting outcomes needs the chosen models to be callable: {models} cannot be called "
             "({reason}). Set OPENROUTER_API_KEY (or the model's key), or leave them out with --models. "
             "Nothing was sent.")


# --------------------------------------------------------------------------- files

def work_dir(table: str | Path) -> Path:
    """The folder beside ``table`` that holds a collection's answers, ledger and lock."""
    table = Path(table)
    return table.with_name(table.name + WORK_SUFFIX)


def check_table_path(table: str | Path) -> Path:
    table = Path(table)
    if table.suffix.lower() != ".csv":
        raise UserError(f"The outcome table must be a .csv file (got {table.name!r}): "
                        "`--out outcomes.csv`.")
    if table.is_dir():
        raise UserError(f"{table} is a folder; give a file name ending in .csv.")
    return table


def check_ours(table: Path, input_path: str | Path) -> None:
    """UserError when ``table`` is the input, or exists but no collection wrote it (no work folder)."""
    if table.exists() and Path(input_path).exists() and table.resolve() == Path(input_path).resolve():
        raise UserError(f"--out {table.name} is the prompt file itself; give the outcome table another name.")
    if table.exists() and not (work_dir(table) / ANSWERS_DIR).is_dir():
        raise UserError(f"{table} exists and was not written by training.collection.collect (there is no "
                        f"{work_dir(table).name}/ beside it); choose another --out or move the file away. "
                        "Nothing was sent.")


def _slug(model_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._") or "model"
    return f"{safe[:60]}-{hashlib.sha256(model_id.encode('utf-8')).hexdigest()[:8]}"


def answers_path(folder: Path, model_id: str) -> Path:
    return folder / ANSWERS_DIR / f"{_slug(model_id)}.jsonl"


def _collected_models(folder: Path) -> list[str]:
    """Model ids that have an answers file in ``folder`` (from each file's first record)."""
    found = []
    for path in sorted((folder / ANSWERS_DIR).glob("*.jsonl")):
        try:
            with path.open("rb") as fh:
                for line in fh:
                    try:
                        found.append(str(json.loads(line)["model"]))
                        break
                    except (ValueError, KeyError, TypeError):
                        continue
        except OSError:
            continue
    return found


def run_ledger(folder: Path, budget_usd: float) -> SpendLedger:
    """The table's own ledger: ``budget_usd`` caps its whole spend (every day and every rerun)."""
    return SpendLedger(folder, float(budget_usd), per_day=False, setting="--budget-usd")


class ModelAnswers:
    """One model's answers file: which rows are answered, and each row's record."""

    def __init__(self, folder: Path, model_id: str):
        self.model = model_id
        self.store = ResultsStore(answers_path(folder, model_id))

    def check(self, source: BatchFile) -> None:
        """UserError when the file holds another input's answers (also cuts a half-written line)."""
        self.store.check_matches(source)

    def index(self) -> dict[int, int]:
        """Row -> byte offset of the record the table uses: the first answer, else the last failure."""
        ok: dict[int, int] = {}
        failed: dict[int, int] = {}
        path = self.store.path
        if not path.exists():
            return {}
        with path.open("rb") as fh:
            offset = 0
            for line in fh:
                start, offset = offset, offset + len(line)
                try:
                    record = json.loads(line)
                    row = int(record["row"])
                except (ValueError, KeyError, TypeError):
                    continue
                if record.get("status") == "ok":
                    ok.setdefault(row, start)
                else:
                    failed[row] = start
        return {**failed, **ok}

    def answered(self) -> set[int]:
        return {row for row, status in self._statuses() if status == "ok"}

    def _statuses(self) -> Iterator[tuple[int, str]]:
        path = self.store.path
        if not path.exists():
            return
        with path.open("rb") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    yield int(record["row"]), str(record.get("status"))
                except (ValueError, KeyError, TypeError):
                    continue

    def read(self, offset: int) -> dict[str, Any]:
        with self.store.path.open("rb") as fh:
            fh.seek(offset)
            return json.loads(fh.readline())


# --------------------------------------------------------------------------- the plan

@dataclass
class ModelPlan:
    model: str
    calls: int          # pairs still to ask
    done: int           # pairs already answered (resumed)
    estimate_usd: float  # upper bound for ``calls``
    paid: bool


@dataclass
class CollectPlan:
    """What a run would do, before anything is sent (:func:`plan_collect`)."""

    source: BatchFile
    table: Path
    folder: Path
    models: list[str]
    per_model: list[ModelPlan]
    max_tokens: int
    budget_usd: float
    spent_usd: float              # already spent on this table (its ledger)
    prompts: int                  # rows with a valid prompt
    invalid_rows: list[tuple[int, str]] = field(default_factory=list)  # (row, why) not asked

    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.per_model)

    @property
    def done(self) -> int:
        return sum(m.done for m in self.per_model)

    @property
    def estimate_usd(self) -> float:
        return round(sum(m.estimate_usd for m in self.per_model), 10)

    @property
    def fits(self) -> bool:
        return self.spent_usd + self.estimate_usd <= self.budget_usd + 1e-12

    def to_dict(self) -> dict[str, Any]:
        return {"input": str(self.source.path), "prompt_column": self.source.prompt_column, "table": str(self.table),
                "prompts": self.prompts, "invalid_rows": len(self.invalid_rows), "models": self.models,
                "max_tokens": self.max_tokens, "calls": self.calls, "already_done": self.done,
                "estimate_usd": round(self.estimate_usd, 6), "spent_usd": round(self.spent_usd, 6),
                "budget_usd": self.budget_usd, "fits_budget": self.fits,
                "per_model": [{"model": m.model, "calls": m.calls, "done": m.done,
                               "estimate_usd": round(m.estimate_usd, 6)} for m in self.per_model]}


def resolve_models(router: Any, models: Sequence[str] | str | None) -> list[str]:
    """Pool ids in pool order (default: the whole pool); UnknownModelError lists the valid ids."""
    if isinstance(models, str):
        models = [m for m in models.split(",")]
    wanted = [str(m).strip() for m in (models or []) if str(m).strip()]
    if not wanted:
        return list(router.pool.ids)
    chosen = {router.pool.get(m).id for m in wanted}
    return [m for m in router.pool.ids if m in chosen]


def check_callable(router: Any, models: Sequence[str]) -> None:
    """UserError (nothing sent) when a chosen model cannot be called, e.g. without an OpenRouter key."""
    missing = {m: router.hub.missing_key(router.pool.get(m)) for m in models}
    missing = {m: why for m, why in missing.items() if why}
    if missing:
        reasons = "; ".join(dict.fromkeys(missing.values()))
        raise UserError(NEEDS_KEY.format(models=", ".join(missing), reason=reasons))


def check_budget(budget_usd: Any) -> float:
    try:
        value = float(budget_usd)
    except (TypeError, ValueError):
        raise UserError(f"The budget must be a number of US dollars (got {budget_usd!r}).") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"The budget must be 0 or more US dollars (got {budget_usd!r}).")
    return value


def plan_collect(router: Any, input_path: str | Path, table: str | Path, *, budget_usd: float,
                 models: Sequence[str] | str | None = None, max_tokens: int | None = None,
                 prompt_column: str | None = None, max_rows: int | None = None,
                 max_mb: float | None = None) -> CollectPlan:
    """Check everything and work out the calls and their cost; sends nothing, writes nothing."""
    table = check_table_path(table)
    budget = check_budget(budget_usd)
    max_tokens = int(max_tokens or router.settings.max_tokens)
    if max_tokens < 1:
        raise UserError(f"max_tokens must be at least 1 (got {max_tokens}).")
    chosen = resolve_models(router, models)
    check_callable(router, chosen)
    source = open_batch_file(input_path, prompt_column=prompt_column, max_rows=max_rows, max_mb=max_mb)
    folder = work_dir(table)
    check_ours(table, source.path)
    stores = {m: ModelAnswers(folder, m) for m in chosen}
    answered: dict[str, set[int]] = {}
    for m, store in stores.items():
        if store.store.path.exists():
            store.check(source)
        answered[m] = store.answered()
    specs = {m: router.pool.get(m) for m in chosen}
    calls = dict.fromkeys(chosen, 0)
    done = dict.fromkeys(chosen, 0)
    cost = dict.fromkeys(chosen, 0.0)
    invalid: list[tuple[int, str]] = []
    prompts = 0
    for row in source.iter_rows():
        try:
            router.validate_prompt(row.prompt)
        except UserError as exc:
            invalid.append((row.index, str(exc)))
            continue
        prompts += 1
        for m in chosen:
            if row.index in answered[m]:
                done[m] += 1
                continue
            calls[m] += 1
            if is_paid(specs[m]):
                cost[m] += cost_bound(specs[m], input_token_bound(row.prompt), max_tokens)
    if prompts == 0:
        raise UserError(f"{source.path.name} has no usable prompt (every row is empty or too long).")
    spent = run_ledger(folder, budget).summary()["spent_usd"] if (folder / "spend.sqlite3").exists() else 0.0
    per_model = [ModelPlan(m, calls[m], done[m], round(cost[m], 10), is_paid(specs[m])) for m in chosen]
    return CollectPlan(source, table, folder, chosen, per_model, max_tokens, budget, float(spent), prompts, invalid)


def describe_plan(plan: CollectPlan) -> str:
    """The estimate, as the command prints it before anything is sent."""
    width = max(len(m) for m in plan.models + ["total"])
    lines = [f"{plan.prompts:,} prompts x {len(plan.models)} models: {plan.calls:,} calls to make"
             + (f" ({plan.done:,} already answered, skipped)" if plan.done else "")
             + f"; up to {plan.max_tokens:,} answer tokens each"]
    if plan.invalid_rows:
        lines.append(f"{len(plan.invalid_rows):,} rows are not asked (empty or too long prompt), "
                     f"e.g. row {plan.invalid_rows[0][0] + 1}: {plan.invalid_rows[0][1]}")
    lines.append(f"estimated cost (upper bound: every byte of the prompt a token in, "
                 f"{plan.max_tokens:,} tokens out, at the pool's prices):")
    for m in plan.per_model:
        lines.append(f"  {m.model:<{width}}  {m.calls:>7,} calls  up to {usd(m.estimate_usd)}"
                     + ("" if m.paid else "  (free)"))
    lines.append(f"  {'total':<{width}}  {plan.calls:>7,} calls  up to {usd(plan.estimate_usd)}")
    lines.append(f"already spent on this table: {usd(plan.spent_usd)}; budget {usd(plan.budget_usd)}")
    return "\n".join(lines)


def over_budget_message(plan: CollectPlan) -> str:
    spent = f" plus {usd(plan.spent_usd)} already spent on this table" if plan.spent_usd else ""
    return (f"The estimated cost, up to {usd(plan.estimate_usd)}{spent}, is above the budget of "
            f"{usd(plan.budget_usd)}. Nothing was sent. Raise --budget-usd, lower --max-tokens, choose fewer "
            "--models or split the prompt file.")


# --------------------------------------------------------------------------- asking

@dataclass
class Stop:
    """A call that was not made because a limit stops the run (``why`` says which)."""

    why: str
    kind: str  # "budget" (the table's), "daily" (the app's ledger), "key" (401/402 from the provider)


def _cost(spec: Any, result: Any) -> tuple[float | None, bool]:
    """(USD, estimated?) of a call: the provider's figure, else its usage at the pool's prices."""
    if result.cost_usd is not None:
        return float(result.cost_usd), False
    usage = result.usage or {}
    if usage.get("prompt_tokens") is not None and usage.get("completion_tokens") is not None:
        return round((usage["prompt_tokens"] * spec.input_price_per_m
                      + usage["completion_tokens"] * spec.output_price_per_m) / 1e6, 10), True
    return None, False


def ask_pair(router: Any, ledger: SpendLedger, spec: Any, row: InputRow, max_tokens: int) -> dict[str, Any] | Stop:
    """Ask one model one prompt; a record (``status`` ok or failed) or a :class:`Stop`. Never raises
    for a failed call."""
    record: dict[str, Any] = {"row": row.index, "prompt_hash": row.hash, "model": spec.id, "status": "ok",
                              "error": None}
    hold = None
    if is_paid(spec):
        try:
            hold = ledger.reserve(spec.id, cost_bound(spec, input_token_bound(row.prompt), max_tokens))
        except SpendLimitError:
            return Stop(f"the budget for this table ({usd(ledger.daily_limit or 0.0)}) is reached", "budget")
    start = time.monotonic()
    try:
        result = router.ask_model(spec.id, row.prompt, max_tokens=max_tokens)
    except ProviderError as exc:
        if hold is not None:
            ledger.settle(hold, None, failed=True)
        if exc.status in (401, 402):
            message = exc.message or str(exc)
            kind = "daily" if "ROUTER_DAILY_BUDGET_USD" in message else "key"
            return Stop(message, kind)
        record.update(status="failed", error=exc.message or str(exc), http_status=exc.status,
                      latency_ms=round((time.monotonic() - start) * 1000, 1))
        return record
    except Exception as exc:  # noqa: BLE001 - one broken call never stops the collection
        if hold is not None:
            ledger.settle(hold, None, failed=True)
        if not isinstance(exc, UserError):
            log.exception("collect: %s on row %s raised", spec.id, row.index)
        record.update(status="failed", error=str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}",
                      latency_ms=round((time.monotonic() - start) * 1000, 1))
        return record
    except BaseException:  # interrupted mid-call: tokens may have been spent
        if hold is not None:
            ledger.settle(hold, None)
        raise
    cost, estimated = _cost(spec, result)
    if hold is not None:
        ledger.settle(hold, cost)
    record.update(response=result.text or "", usage=dict(result.usage or {}), cost_usd=cost,
                  cost_estimated=estimated, latency_ms=round(result.latency_ms or (time.monotonic() - start) * 1000, 1))
    return record


@dataclass
class CollectRun:
    """What one run did, and the table it wrote."""

    plan: CollectPlan
    asked: int = 0
    ok: int = 0
    failed: int = 0
    stopped: Stop | None = None
    interrupted: bool = False
    elapsed_s: float = 0.0
    spent_usd: float = 0.0          # the table's whole spend after the run
    table: dict[str, Any] = field(default_factory=dict)   # write_table's summary
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.stopped is None and not self.interrupted

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(), "asked": self.asked, "ok": self.ok, "failed": self.failed,
                "stopped": None if self.stopped is None else {"kind": self.stopped.kind, "why": self.stopped.why},
                "complete": self.complete, "elapsed_s": round(self.elapsed_s, 3),
                "spent_usd": round(self.spent_usd, 6), "table": self.table, "errors": self.errors[:10]}


def _pairs(router: Any, plan: CollectPlan, answered: dict[str, set[int]]) -> Iterator[tuple[InputRow, Any]]:
    """Pairs still to ask, row by row (all models of a row together, so whole rows finish first)."""
    invalid = {i for i, _ in plan.invalid_rows}
    specs = [router.pool.get(m) for m in plan.models]
    for row in plan.source.iter_rows():
        if row.index in invalid:
            continue
        for spec in specs:
            if row.index not in answered[spec.id]:
                yield row, spec


def collect(router: Any, input_path: str | Path, table: str | Path, *, budget_usd: float,
            models: Sequence[str] | str | None = None, max_tokens: int | None = None,
            concurrency: int | None = None, prompt_column: str | None = None, max_rows: int | None = None,
            max_mb: float | None = None, run_code: bool = True, progress: ProgressFn | None = None,
            on_plan: Callable[[CollectPlan], None] | None = None, dry_run: bool = False) -> CollectRun:
    """Plan (under the table's lock), refuse over budget, ask the remaining pairs, write the table.

    ``on_plan`` sees the plan before anything is sent (the command prints it). Raises UserError
    (nothing sent) for bad input, an unknown or uncallable model, or an estimate above the budget.
    """
    from filelock import FileLock, Timeout

    table = check_table_path(table)
    check_ours(table, input_path)
    folder = work_dir(table)
    (folder / ANSWERS_DIR).mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"Outcomes for {table.name} are already being collected (another run holds "
                        f"{folder / LOCK_FILE}); wait for it to finish.") from None
    try:
        plan = plan_collect(router, input_path, table, budget_usd=budget_usd, models=models, max_tokens=max_tokens,
                            prompt_column=prompt_column, max_rows=max_rows, max_mb=max_mb)
        if on_plan is not None:
            on_plan(plan)
        if not plan.fits:
            raise UserError(over_budget_message(plan))
        run = CollectRun(plan)
        if dry_run:
            return run
        _ask_all(router, plan, run, concurrency, progress)
        run.spent_usd = run_ledger(folder, plan.budget_usd).summary()["spent_usd"]
        run.table = write_table(router, plan.source, table, run_code=run_code,
                                workers=max(1, int(concurrency or router.settings.compare_concurrency or 1)),
                                invalid_rows={i for i, _ in plan.invalid_rows}, models=plan.models)
        return run
    finally:
        lock.release()


def _ask_all(router: Any, plan: CollectPlan, run: CollectRun, concurrency: int | None,
             progress: ProgressFn | None) -> None:
    workers = max(1, int(concurrency or router.settings.compare_concurrency or 1))
    ledger = run_ledger(plan.folder, plan.budget_usd)
    stores = {m: ModelAnswers(plan.folder, m) for m in plan.models}
    answered = {m: s.answered() for m, s in stores.items()}
    total = plan.calls
    start = time.monotonic()
    if progress:
        progress(0, total)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect")
    pending: dict[Future, tuple[InputRow, Any]] = {}
    halt = threading.Event()

    def task(row: InputRow, spec: Any) -> dict[str, Any] | Stop:
        if halt.is_set():
            return Stop(run.stopped.why if run.stopped else "stopped", run.stopped.kind if run.stopped else "budget")
        return ask_pair(router, ledger, spec, row, plan.max_tokens)

    def drain(block_until: int) -> None:
        while len(pending) > block_until:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                pending.pop(future)
                if future.cancelled():
                    continue
                outcome = future.result()
                if isinstance(outcome, Stop):
                    if run.stopped is None:
                        run.stopped = outcome
                    halt.set()
                    continue
                stores[outcome["model"]].store.append([outcome])
                run.asked += 1
                if outcome["status"] == "ok":
                    run.ok += 1
                else:
                    run.failed += 1
                    if len(run.errors) < 10:
                        run.errors.append({"row": outcome["row"], "model": outcome["model"], "error": outcome["error"]})
                if progress:
                    progress(run.asked, total)
            if halt.is_set():
                for future in list(pending):
                    if future.cancel():
                        pending.pop(future)

    try:
        for row, spec in _pairs(router, plan, answered):
            if halt.is_set():
                break
            drain(workers * QUEUE_PER_WORKER - 1)
            if halt.is_set():
                break
            pending[executor.submit(task, row, spec)] = (row, spec)
        drain(0)
    except KeyboardInterrupt:
        run.interrupted = True  # the calls in flight finish on their own; their answers are not written
        halt.set()
        raise
    finally:
        executor.shutdown(wait=not run.interrupted, cancel_futures=True)
        run.elapsed_s = time.monotonic() - start


# --------------------------------------------------------------------------- the table

def _digest(answers: dict[str, str]) -> str:
    h = hashlib.sha256()
    for m in sorted(answers):
        h.update(m.encode("utf-8") + b"\0" + answers[m].encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def _read_score_cache(path: Path) -> dict[int, tuple[str, dict[str, float]]]:
    cache: dict[int, tuple[str, dict[str, float]]] = {}
    if not path.exists():
        return cache
    ResultsStore(path).repair()
    with path.open("rb") as fh:
        for line in fh:
            try:
                r = json.loads(line)
                cache[int(r["row"])] = (str(r["digest"]), {str(k): float(v) for k, v in r["scores"].items()})
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return cache


def score_row(prompt: str, answers: dict[str, str], *, run_code: bool = True, workers: int = 1) -> dict[str, float]:
    """Each answer's normalised evaluator score in [0, 1], the other answers as its peers."""
    from routing.evaluation.evaluator import evaluate_group

    if not answers:
        return {}
    evaluations = evaluate_group(prompt, answers, run_code=run_code, workers=workers)
    return {m: round(float(ev["normalized"]), 6) for m, ev in evaluations.items()}


def _winner(models: Sequence[str], scores: dict[str, float], costs: dict[str, float | None]) -> str | None:
    """Best score; ties: cheaper, then pool order (as compare-all's ``pick_winner``)."""
    ranked = [m for m in models if m in scores]
    if not ranked:
        return None
    return max(ranked, key=lambda m: (scores[m], -(costs.get(m) if costs.get(m) is not None else float("inf")),
                                      -models.index(m)))


def table_models(router: Any, folder: Path, chosen: Sequence[str]) -> list[str]:
    """The table's models: the chosen ones plus pool models collected earlier in ``folder``, in pool order."""
    have = set(chosen) | {m for m in _collected_models(folder) if m in router.pool.ids}
    return [m for m in router.pool.ids if m in have]


def write_table(router: Any, source: BatchFile, table: str | Path, *, models: Sequence[str],
                run_code: bool = True, workers: int = 1, invalid_rows: set[int] | None = None) -> dict[str, Any]:
    """Write the RouterBench-layout table from the answers files (atomically); returns counts.

    One row per prompt that has at least one record; scores are cached per row in
    ``scores.jsonl`` (recomputed when the row's answers change).
    """
    import csv

    table = Path(table)
    folder = work_dir(table)
    models = table_models(router, folder, models)
    stores = {m: ModelAnswers(folder, m) for m in models}
    for s in stores.values():
        if s.store.path.exists():
            s.check(source)
    index = {m: s.index() for m, s in stores.items()}
    cache_path = folder / SCORES_FILE
    cache = _read_score_cache(cache_path)
    cache_store = ResultsStore(cache_path)
    columns = (["sample_id", "prompt", "eval_name"] + list(models) + [m + RESPONSE_SUFFIX for m in models]
               + [m + COST_SUFFIX for m in models] + ["oracle_model_to_route_to"])
    stem = source.path.stem or "prompts"
    counts = {"rows": 0, "complete_rows": 0, "answered_cells": 0, "failed_cells": 0, "missing_cells": 0,
              "scored_now": 0}
    per_model = {m: {"answered": 0, "failed": 0, "missing": 0, "wins": 0} for m in models}
    invalid_rows = invalid_rows or set()
    tmp = table.with_name(f".{table.name}.tmp")
    table.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in source.iter_rows():
            if row.index in invalid_rows:
                continue
            records = {m: stores[m].read(index[m][row.index]) for m in models if row.index in index[m]}
            if not records:
                continue
            answers = {m: r.get("response") or "" for m, r in records.items() if r.get("status") == "ok"}
            digest = _digest(answers)
            cached = cache.get(row.index)
            if cached is not None and cached[0] == digest:
                scores = cached[1]
            else:
                scores = score_row(row.prompt, answers, run_code=run_code, workers=workers)
                cache_store.append([{"row": row.index, "prompt_hash": row.hash, "digest": digest, "scores": scores}])
                counts["scored_now"] += 1
            costs = {m: records[m].get("cost_usd") for m in answers}
            best = _winner(list(models), scores, costs)
            out: dict[str, Any] = {"sample_id": f"{stem}.{row.index}", "prompt": row.prompt,
                                   "eval_name": str(row.fields.get("eval_name") or EVAL_NAME)}
            for m in models:
                r = records.get(m)
                ok = r is not None and r.get("status") == "ok"
                out[m] = scores.get(m) if ok else None
                out[m + RESPONSE_SUFFIX] = r.get("response") if ok else None
                out[m + COST_SUFFIX] = r.get("cost_usd") if ok else None
                key = "answered" if ok else "failed" if r is not None else "missing"
                per_model[m][key] += 1
                counts[f"{key}_cells"] += 1
            out["oracle_model_to_route_to"] = best
            if best:
                per_model[best]["wins"] += 1
            counts["rows"] += 1
            counts["complete_rows"] += all(records.get(m, {}).get("status") == "ok" for m in models)
            writer.writerow({k: "" if v is None else v for k, v in out.items()})
    tmp.replace(table)
    return {"path": str(table), "models": list(models), **counts, "per_model": per_model}


# --------------------------------------------------------------------------- command line

def _format_run(run: CollectRun) -> str:
    t = run.table
    lines = [f"asked {run.asked:,} calls in {run.elapsed_s:.1f} s: {run.ok:,} answered, {run.failed:,} failed"
             + (f"; {run.plan.done:,} pairs were already answered (resumed)" if run.plan.done else "")]
    lines.append(f"spent on this table so far: {usd(run.spent_usd)} of the {usd(run.plan.budget_usd)} budget")
    for e in run.errors[:5]:
        lines.append(f"failed: row {e['row'] + 1}, {e['model']}: {e['error']}")
    if t:
        lines.append(f"table: {t['path']}: {t['rows']:,} prompts x {len(t['models'])} models, "
                     f"{t['answered_cells']:,} scored cells, {t['failed_cells']:,} failed, "
                     f"{t['missing_cells']:,} not asked yet")
        lines.append("wins (evaluator's best): " + ", ".join(f"{m} {v['wins']}" for m, v in t["per_model"].items()))
        if t["failed_cells"] and run.complete:
            lines.append("failed cells have no score; rerun the same command to ask them again")
        lines.append(f"next: python -m training.pipeline.label --source outcomes --input {t['path']}")
    return "\n".join(lines)


def stop_message(run: CollectRun, again: str = "rerun the same command",
                 higher: str = "a higher --budget-usd") -> str:
    """Why the run stopped and how to go on (``again``/``higher``: the words for the command or the app)."""
    stop = run.stopped
    assert stop is not None
    if stop.kind == "budget":
        how = f"{again} with {higher} to go on (answered pairs are kept, not asked again)"
    elif stop.kind == "daily":
        how = f"{again} after 00:00 UTC, or ask the owner to raise ROUTER_DAILY_BUDGET_USD"
    else:
        how = f"fix the key, then {again}"
    return f"stopped: {stop.why}. The answers so far are kept and in the table; {how}."


def main(argv: Sequence[str] | None = None) -> int:
    from tqdm import tqdm

    from routing.service import RouterService
    from routing.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m training.collection.collect",
                                     description="Ask every chosen pool model every prompt and write a "
                                                 "RouterBench-layout outcome table for training.pipeline.label.")
    parser.add_argument("prompts", help="CSV with a prompt/text/question column, or JSONL")
    parser.add_argument("--out", required=True, help="the outcome table (.csv); its work folder TABLE.collect/ "
                                                     "beside it lets a rerun resume")
    parser.add_argument("--budget-usd", required=True, type=float,
                        help="most this table may cost, reruns included; refused up front when the estimate is above")
    parser.add_argument("--models", default=None, help="comma-separated pool ids (default: the whole pool)")
    parser.add_argument("--max-tokens", type=int, default=None, help="answer cap per call (default ROUTER_MAX_TOKENS)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="calls at once (default ROUTER_COMPARE_CONCURRENCY)")
    parser.add_argument("--column", default=None, help="the prompt column (default: found by name)")
    parser.add_argument("--max-rows", type=int, default=0, help="row limit (default: none)")
    parser.add_argument("--no-run-code", action="store_true", help="the evaluator does not run code in answers")
    parser.add_argument("--dry-run", action="store_true", help="print the estimate and stop")
    parser.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.concurrency is not None and args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return EXIT_REFUSED
    settings = get_settings()
    bar = None
    try:
        service = RouterService(settings, background=False)
        for warning in service.warnings:
            print(f"warning: {warning}", file=sys.stderr)

        def show(plan: CollectPlan) -> None:
            nonlocal bar
            print(describe_plan(plan), flush=True)
            if plan.fits and not args.dry_run and plan.calls:
                bar = tqdm(total=plan.calls, unit="call", desc="collect", dynamic_ncols=True, file=sys.stderr)

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar.n = done
                bar.refresh()

        run = collect(service.router, args.prompts, args.out, budget_usd=args.budget_usd, models=args.models,
                      max_tokens=args.max_tokens, concurrency=args.concurrency, prompt_column=args.column,
                      max_rows=args.max_rows, max_mb=None, run_code=not args.no_run_code, progress=progress,
                      on_plan=show, dry_run=args.dry_run)
    except UserError as exc:
        if bar is not None:
            bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("interrupted: the answers so far are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    if args.dry_run:
        print("dry run: nothing was sent")
        return 0
    print(json.dumps(run.to_dict(), indent=2) if args.json else _format_run(run))
    if run.stopped is not None:
        print(stop_message(run), file=sys.stderr)
        return EXIT_STOPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
