"""Batch tab: upload a CSV or JSONL of prompts, route (answer, compare) them all, download results.

API: /batch-query (``file`` upload or ``prompts`` list, ``mode``) returns the summary and the CSV.
The work is done by routing/batch/; results live under ``settings.data_dir/batch/`` and
an interrupted batch resumes when the same file is run again with the same choices (the tab says
so, and offers to start over instead: the earlier results are then set aside, not deleted).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import pandas as pd
from gradio.data_classes import FileData

from routing.safety.access import Caller
from routing.batch.local import (PREVIEW_ROWS, input_preview_columns, job_previous_rows, job_results_path,
                                 money_columns, preview_columns, preview_results, previous_rows, run_file)
from routing.batch.money import dollars
from routing.batch.rows import MODES, compare_unavailable
from routing.charts.batch import (calibration_figure, confidence_histogram_figure, cost_comparison_figure,
                                  traffic_share_figure)
from routing.diagnostics.calibration import calibrate_file
from routing.batch.io import check_rows, preview_input, read_columns, results_paths, write_prompts_file
from routing.errors import UserError
from routing.service import RouterService
from routing.safety.untrusted import md_text
from routing.safety.validation import (check_choice, check_float, check_int, check_optional_text,
                                       check_prompt_list, check_upload_path)
from ui.common import caller_of, user_errors

MODE_CHOICES = [("Route only (no API calls, no key needed)", "route"),
                ("Route and answer", "answer"),
                ("Compare all models (every model answers every row; needs an OpenRouter key)", "compare")]
FILE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"]

ProgressFn = Callable[[int, int], None]


def _download_dir() -> Path:
    from gradio.utils import get_upload_folder

    Path(get_upload_folder()).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="batch-results-", dir=get_upload_folder()))


def run_batch_job(service: RouterService, input_path: str | Path, *, mode: str = "route",
                  prompt_column: str | None = None, progress: ProgressFn | None = None,
                  start_over: bool = False, caller: Caller | None = None) -> dict[str, Any]:
    """Run (or resume) a batch for the app: results under data_dir/batch, copies for download.

    Returns the summary with ``download_csv`` and ``download_jsonl``: copies in a fresh folder
    under Gradio's upload folder (which Gradio serves, also to API clients, whatever
    ``ROUTER_DATA_DIR`` is), named after the input. ``start_over``: the earlier results of
    the same file, mode and column are set aside (renamed, not deleted) and every row runs.
    ``caller`` (every request from the app names one): answering and comparing are paid paths, so
    the paid-access rule decides, and the rows still to run count against the caller's day.
    """
    settings = service.settings
    out = job_results_path(settings.data_dir, input_path, mode, prompt_column)
    router = service.router
    if caller is not None and mode != "route":
        done = 0 if start_over else previous_rows(out)
        rows = max(0, check_rows(input_path, max_mb=settings.batch_max_mb) - done)
        router, _ = service.router_for(caller, calls=rows * (1 if mode == "answer" else len(service.pool)))
    summary = run_file(router, input_path, out, mode=mode, prompt_column=prompt_column,
                       max_rows=settings.batch_max_rows, max_mb=settings.batch_max_mb, progress=progress,
                       start_over=start_over, charts=False)   # the tab draws the charts itself
    jsonl_path, csv_path = results_paths(out)
    stem = Path(input_path).stem or "batch"
    downloads = _download_dir()
    summary["download_csv"] = str(shutil.copyfile(csv_path, downloads / f"{stem}-{mode}-results.csv"))
    summary["download_jsonl"] = str(shutil.copyfile(jsonl_path, downloads / f"{stem}-{mode}-results.jsonl"))
    return summary


SERVER_PATH_KEYS = ("input", "results_jsonl", "results_csv", "download_csv", "download_jsonl", "set_aside_jsonl",
                    "summary_json", "charts_html")


def public_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without server-side paths (what users and API clients see)."""
    return {k: v for k, v in summary.items() if k not in SERVER_PATH_KEYS}


def summary_markdown(summary: dict[str, Any], pool) -> str:
    """A short human summary of a finished batch."""
    lines = [f"### Done: {summary['rows']:,} rows · {summary['ok']:,} ok · {summary['failed']:,} failed"]
    if summary.get("set_aside_rows"):
        lines.append(f"Started over: the {summary['set_aside_rows']:,} rows of the earlier run were set aside "
                     "(kept on the server, not mixed in) and every row ran again.")
    if summary.get("resumed_rows"):
        lines.append(f"Resumed: {summary['resumed_rows']:,} rows were already done and were not redone.")
    if summary.get("processed_this_run"):
        lines.append(f"This run: {summary['processed_this_run']:,} rows in {summary['elapsed_s']:.1f} s.")
    share = sorted(summary["traffic_share"].items(), key=lambda kv: -kv[1])
    lines.append("Traffic: " + " · ".join(f"**{md_text(pool.get(m).display_name)}** {s:.0%}"
                                          for m, s in share if s > 0))
    c = summary["cost_estimate_usd"]
    lines.append(f"Estimated cost: routed **{md_text(dollars(c['routed']))}** against "
                 f"{md_text(dollars(c['all_priciest']))} all to {md_text(pool.get(c['priciest_model']).display_name)} "
                 f"and {md_text(dollars(c['all_cheapest']))} all to "
                 f"{md_text(pool.get(c['cheapest_model']).display_name)}"
                 + (f" ({c['rows_with_estimated_tokens']:,} rows estimated at ~{c['chars_per_token']} characters "
                    f"per token and {c['assumed_answer_tokens']} answer tokens)." if c["rows_with_estimated_tokens"] else "."))
    if c.get("best_rated_model") and c.get("all_best_rated") is not None:
        lines.append(f"All to the best-rated model ({md_text(pool.get(c['best_rated_model']).display_name)}, public "
                     f"ratings) would have cost {md_text(dollars(c['all_best_rated']))}; each row's figures are in "
                     "the download (`cost_routed_usd`, `cost_if_priciest_usd`, `cost_if_best_rated_usd`).")
    if "actual_cost_usd" in summary:
        lines.append(f"Cost reported by the providers: {md_text(dollars(summary['actual_cost_usd']))}.")
    if summary.get("unlike_training_data", {}).get("rows"):
        u = summary["unlike_training_data"]
        lines.append(f"⚠️ {u['rows']:,} of {u['of']:,} prompts ({u['share']:.1%}) were unlike the selector's training "
                     "data: routed on the public ratings and the price (`unlike_training_data` in the download).")
    if summary.get("compare"):
        cmp = summary["compare"]
        ties = cmp.get("ties") or 0
        tie_note = (f" {ties:,} row{'s' if ties != 1 else ''} had no winner: the best answers scored within the "
                    "evaluator's noise of each other (a tie, not counted either way).") if ties else ""
        if cmp.get("router_agrees") is None:
            lines.append(f"Compare: {cmp['rows']:,} rows compared, none with a clear winner.{tie_note}")
        else:
            lines.append(f"Compare: the router's pick was the evaluator's best on {cmp['router_agrees']:.0%} of "
                         f"{cmp['with_winner']:,} rows with a winner.{tie_note}")
        if cmp.get("mean_regret") is not None:
            lines.append(f"Regret (the row's best evaluator score minus the routed model's, 0-1): mean "
                         f"{cmp['mean_regret']:.3f} over {cmp['rows_with_regret']:,} rows (`regret` per row).")
    for e in summary.get("errors", [])[:5]:
        row = e["row"] + 1 if isinstance(e["row"], int) else md_text(e["row"])
        lines.append(f"⚠️ row {row}: {md_text(e['error'])}")
    return "\n\n".join(lines)


def previous_run_markdown(previous: int, mode: str) -> str:
    """What an earlier run of the same file left, and what Run batch will do with it."""
    label = dict((v, k) for k, v in MODE_CHOICES).get(mode, mode).split(" (")[0]
    return (f"ℹ️ An earlier run of this file ({md_text(label)}, same prompt column) has **{previous:,} rows** "
            "done. **Run batch** resumes it: finished rows are kept and not redone. Tick **Start over** to "
            "run every row again (the earlier results are set aside on the server, not deleted).")


def _table(columns: list[tuple[str, int]], rows: list[list[str]]) -> gr.Dataframe:
    """A preview table with its column widths, shown (a component returned from an event updates it)."""
    names = [c for c, _ in columns]
    return gr.Dataframe(value=pd.DataFrame(rows, columns=names), column_widths=[f"{w}px" for _, w in columns],
                        visible=True)


def _results_preview(summary: dict[str, Any], pool) -> gr.Dataframe:
    """The first rows of the results: the file's columns, then a compact set of the router's (the CSV has
    all); costs in dollars."""
    columns = preview_columns(summary["mode"], summary["columns"], summary["prompt_column"], pool.ids)
    money = money_columns(summary["mode"], summary["columns"], pool.ids)
    return _table(columns, preview_results(summary["download_csv"], [c for c, _ in columns], money=money))


def _no_results() -> tuple:
    """(status, downloads, traffic, confidence, cost, summary) with no run's results: what a new file or a
    new run starts from (the last run's note, downloads and charts are not left beside another file)."""
    hidden = gr.update(value=None, visible=False)
    return "", hidden, hidden, hidden, hidden, None


def _no_file() -> tuple:
    """:func:`_no_results`, then (preview, note, previous-run note, start-over box) with no file: what another
    upload starts from, whether it is then read, refused or cleared."""
    return _no_results() + (gr.update(value=None, visible=False), "", "", gr.update(value=False, visible=False))


def build_batch_tab(service: RouterService) -> None:
    """The Batch tab: upload, column chooser, mode, progress, preview, downloads, charts."""
    settings = service.settings
    pool = service.pool

    def previous_run(path: str | None, column: str | None, mode: str | None):
        """(note, start-over checkbox) for the file, mode and column Run batch would use."""
        previous = job_previous_rows(settings.data_dir, uploaded_path(path), mode or "route", column or None) if path else 0
        if not previous:
            return "", gr.update(value=False, visible=False)
        return previous_run_markdown(previous, mode or "route"), gr.update(value=False, visible=True)

    @user_errors
    def on_upload(path: str | None, mode: str | None):
        if not path:
            return (gr.update(choices=[], value=None), gr.update(value=None, visible=False), "", "",
                    gr.update(value=False, visible=False))
        path = uploaded_path(path)
        columns, detected = read_columns(path, max_mb=settings.batch_max_mb)
        note = (f"Prompt column found: **{md_text(detected)}**. Other columns are kept in the results." if detected
                else "No column named prompt, text or question: choose the prompt column. Columns: "
                     f"{md_text(', '.join(map(str, columns)))}.")
        try:
            rows = check_rows(path, max_mb=settings.batch_max_mb)
            note += f" {rows:,} rows."
        except UserError as exc:  # shown beside the preview; Run batch refuses the file with the same words
            note += f"\n\n⚠️ {md_text(str(exc))}"
        names, cells = preview_input(path)
        previous_note, start_over = previous_run(path, detected, mode)
        return (gr.update(choices=columns, value=detected), _table(input_preview_columns(names, detected), cells),
                note, previous_note, start_over)

    def on_choice(path: str | None, column: str | None, mode: str | None):
        try:
            return previous_run(path, column, mode)
        except (OSError, UserError):  # the upload went away: nothing to resume
            return "", gr.update(value=False, visible=False)

    @user_errors
    def run(path: str | None, column: str | None, mode: str, start_over: bool, request: gr.Request = None,
            progress=gr.Progress()):
        if not path:
            raise UserError("Upload a CSV or JSONL file with a prompt column first.")
        path = uploaded_path(path)
        progress(0, desc="Checking the file…")

        def report(done: int, total: int) -> None:
            progress((done, total), desc="rows", unit="rows")

        summary = run_batch_job(service, path, mode=mode or "route", prompt_column=column or None, progress=report,
                                start_over=bool(start_over), caller=caller_of(request, settings))
        files = gr.update(value=[summary["download_csv"], summary["download_jsonl"]], visible=True)
        previous_note, start_over_box = previous_run(path, column, mode)
        return (summary_markdown(summary, pool), _results_preview(summary, pool), files,
                *(gr.update(value=fig, visible=True) for fig in (
                    traffic_share_figure(summary, pool), confidence_histogram_figure(summary),
                    cost_comparison_figure(summary, pool))),
                public_summary(summary), previous_note, start_over_box)

    with gr.Tab("Batch", id="batch"):
        gr.Markdown(
            "Upload a CSV (a column named `prompt`, `text` or `question`, or choose one; quote a prompt that "
            "holds a comma) or JSONL. **Route only** needs no key and makes no API calls. Results are saved as "
            "they are produced: running the same file again resumes an interrupted batch, or starts over if you "
            f"tick **Start over**. Limits: {settings.batch_max_rows:,} rows, "
            f"{settings.batch_max_mb:g} MB; for larger files use `python -m routing.batch INPUT --out OUTPUT`."
        )
        with gr.Row():
            upload = gr.File(label="CSV or JSONL file", file_types=FILE_TYPES, type="filepath", elem_id="batch-file")
            with gr.Column():
                column = gr.Dropdown(choices=[], value=None, label="Prompt column", elem_id="batch-column",
                                     info="Found by name; change it if the prompts are in another column")
                mode = gr.Radio(MODE_CHOICES, value="route", label="Mode", elem_id="batch-mode",
                                info=("No OpenRouter key is set: compare mode is refused (set OPENROUTER_API_KEY)."
                                      if compare_unavailable(service.router) else None))
                start_over = gr.Checkbox(value=False, visible=False, elem_id="batch-start-over",
                                         label="Start over: run every row again (earlier results are set aside, "
                                               "not deleted)")
                button = gr.Button("Run batch", variant="primary", elem_id="batch-run")
        note = gr.Markdown(elem_id="batch-note")
        previous = gr.Markdown(elem_id="batch-previous")
        status = gr.Markdown(elem_id="batch-status")
        # Hidden until there is something to show (an empty table showed the headers "1 2 3").
        preview = gr.Dataframe(label=f"Preview (the file, then the first {PREVIEW_ROWS} results; the download has "
                                     "every column)", interactive=False, wrap=True, visible=False,
                               elem_id="batch-preview")
        downloads = gr.File(label="Results (CSV and JSONL)", file_count="multiple", interactive=False,
                            visible=False, elem_id="batch-downloads")
        with gr.Row():
            traffic = gr.Plot(label="Traffic per model", visible=False, elem_id="batch-traffic")
            confidence = gr.Plot(label="Confidence", visible=False, elem_id="batch-confidence")
            cost = gr.Plot(label="Cost", visible=False, elem_id="batch-cost")
        with gr.Accordion("Summary (JSON, as /batch-query returns)", open=False):
            summary = gr.JSON()
        build_collect_section(service)
        build_calibrate_section(service, upload, column)
        # Another file (or none, or one refused) first puts the last run's results and preview away.
        results = [status, downloads, traffic, confidence, cost, summary]
        upload.change(_no_file, None, results + [preview, note, previous, start_over],
                      api_name="batch-upload-reset", api_visibility="private", queue=False).then(
            on_upload, [upload, mode], [column, preview, note, previous, start_over],
            api_name="batch-upload", api_visibility="private")
        for name, choice in (("column", column), ("mode", mode)):
            choice.input(on_choice, [upload, column, mode], [previous, start_over],
                         api_name=f"batch-previous-{name}", api_visibility="private")
        # A new run first puts the last run's note, downloads and charts away, then runs.
        button.click(_no_results, None, results, api_name="batch-run-start", api_visibility="private",
                     queue=False).then(
            run, [upload, column, mode, start_over],
            [status, preview, downloads, traffic, confidence, cost, summary, previous, start_over],
            api_name="batch-run", api_visibility="private", show_progress_on=[status],
            concurrency_limit=2, concurrency_id="batch")


# --------------------------------------------------------------------------- collect outcomes

COLLECT_OFF = ("🔒 **Collecting outcomes is off on this deployment.** It asks every chosen model every prompt on "
               "the owner's OpenRouter key, so it runs only where the owner allows it with `ROUTER_ALLOW_TRAINING=1` "
               "(the switch that also allows training). From a shell: "
               "`python -m training.collection.collect PROMPTS --out TABLE.csv --budget-usd X`.")
#: Largest budget the box accepts (USD); the app's daily limit (ROUTER_DAILY_BUDGET_USD) applies as well.
COLLECT_MAX_BUDGET = 10_000.0


def collect_table_path(data_dir: str | Path, input_path: str | Path) -> Path:
    """Where the app keeps the outcome table of one prompt file: named by the file's content.

    Running the same file again finds the same table (and its work folder), so an interrupted or
    budget-stopped collection resumes, and other models can be added to it later.
    """
    import hashlib

    digest = hashlib.sha256()
    with Path(input_path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return Path(data_dir) / "collect" / digest.hexdigest()[:20] / "outcomes.csv"


def _collect_inputs(service: RouterService, path: Any, models: Any, budget: Any, max_tokens: Any):
    """Checked (upload path, model ids, budget, max_tokens) of the Collect section; UserError otherwise."""
    from routing.safety.validation import check_float, check_max_tokens, check_model_list

    settings = service.settings
    if not settings.allow_training:
        raise UserError("Collecting outcomes is off on this deployment. The owner can turn it on with "
                        "ROUTER_ALLOW_TRAINING=1 and a restart.")
    if not path:
        raise UserError("Upload a CSV or JSONL file of prompts first.")
    file = uploaded_path(path)
    ids = check_model_list(list(models or []), service.pool.ids, "models")
    if not ids:
        raise UserError("Choose at least one model.")
    budget = check_float(budget, "budget (USD)", 0.0, COLLECT_MAX_BUDGET)
    tokens = check_max_tokens(max_tokens, limit=settings.max_tokens)
    return file, ids, budget, tokens


def collect_estimate(service: RouterService, path: Any, models: Any, budget: Any, max_tokens: Any):
    """The plan of a collection (nothing is sent): calls, their cost at most, the spend so far."""
    from training.collection.collect import plan_collect

    file, ids, budget, tokens = _collect_inputs(service, path, models, budget, max_tokens)
    settings = service.settings
    return plan_collect(service.router, file, collect_table_path(settings.data_dir, file), budget_usd=budget,
                        models=ids, max_tokens=tokens, max_rows=settings.batch_max_rows, max_mb=settings.batch_max_mb)


def estimate_markdown(plan, ledger_text: str = "") -> str:
    from routing.budget import usd

    lines = [f"### Estimate: {plan.calls:,} calls, up to **{usd(plan.estimate_usd)}**",
             f"{plan.prompts:,} prompts × {len(plan.models)} models"
             + (f"; {plan.done:,} pairs already answered in an earlier run are kept and not asked again" if plan.done
                else "") + f". Upper bound: prompt length / 4 tokens in, {plan.max_tokens:,} tokens out, at the "
             "pool's prices."]
    rows = ["| Model | Calls | Up to |", "|---|---:|---:|"]
    rows += [f"| {md_text(m.model)} | {m.calls:,} | {usd(m.estimate_usd)} |" for m in plan.per_model]
    rows.append(f"| **total** | **{plan.calls:,}** | **{usd(plan.estimate_usd)}** |")
    lines.append("\n".join(rows))
    spent = f"Already spent on this file's table: {usd(plan.spent_usd)}. " if plan.spent_usd else ""
    if plan.invalid_rows:
        lines.append(f"{len(plan.invalid_rows):,} rows have an empty or too long prompt and are not asked.")
    if plan.fits:
        lines.append(f"✅ {spent}Within the budget of {usd(plan.budget_usd)}: press **Collect**.")
    else:
        lines.append(f"⛔ {spent}Above the budget of {usd(plan.budget_usd)}: nothing will be sent. Raise the budget, "
                     "lower the answer tokens or choose fewer models.")
    if ledger_text:
        lines.append(f"App limit: {md_text(ledger_text)}.")
    return "\n\n".join(lines)


def collect_job(service: RouterService, path: Any, models: Any, budget: Any, max_tokens: Any,
                progress: Callable[[int, int], None] | None = None):
    """Run (or resume) a collection for the app; returns (run, a copy of the table for download)."""
    from training.collection.collect import collect

    file, ids, budget, tokens = _collect_inputs(service, path, models, budget, max_tokens)
    settings = service.settings
    table = collect_table_path(settings.data_dir, file)
    run = collect(service.router, file, table, budget_usd=budget, models=ids, max_tokens=tokens,
                  max_rows=settings.batch_max_rows, max_mb=settings.batch_max_mb, progress=progress)
    download = None
    if table.is_file():
        download = str(shutil.copyfile(table, _download_dir() / f"{Path(file).stem or 'prompts'}-outcomes.csv"))
    return run, download


def collect_markdown(run) -> str:
    from routing.budget import usd
    from training.collection.collect import stop_message

    t = run.table
    head = "### Done" if run.complete else "### Stopped"
    lines = [f"{head}: {run.asked:,} calls this run · {run.ok:,} answered · {run.failed:,} failed"]
    if run.plan.done:
        lines.append(f"Resumed: {run.plan.done:,} pairs were already answered and were not asked again.")
    lines.append(f"Spent on this table so far: {usd(run.spent_usd)} of the {usd(run.plan.budget_usd)} budget.")
    if run.stopped is not None:
        lines.append("⚠️ " + md_text(stop_message(run, "collect the same file again", "a higher budget")))
    if t:
        lines.append(f"Table: {t['rows']:,} prompts × {len(t['models'])} models · {t['answered_cells']:,} scored · "
                     f"{t['failed_cells']:,} failed · {t['missing_cells']:,} not asked yet. Wins (the evaluator's "
                     "best): " + " · ".join(f"{md_text(m)} {v['wins']}" for m, v in t["per_model"].items()) + ".")
        if t["failed_cells"] and run.complete:
            lines.append("Failed cells have no score; Collect again to ask them again.")
    for e in run.errors[:5]:
        lines.append(f"⚠️ row {e['row'] + 1}, {md_text(e['model'])}: {md_text(e['error'])}")
    lines.append("Train on it: Training tab, \"Uploaded outcome table\" (the downloaded CSV), or "
                 "`python -m training.pipeline.label --source outcomes --input TABLE.csv`.")
    return "\n\n".join(lines)


def build_collect_section(service: RouterService) -> None:
    """Batch tab, "Collect outcomes": every chosen model answers every prompt, into an outcome table."""
    settings = service.settings
    pool = service.pool
    allowed = bool(settings.allow_training)

    @user_errors
    def estimate(path, models, budget, max_tokens):
        plan = collect_estimate(service, path, models, budget, max_tokens)
        return estimate_markdown(plan, service.ledger.describe()), gr.update(interactive=plan.fits)

    @user_errors
    def run(path, models, budget, max_tokens, request: gr.Request = None, progress=gr.Progress()):
        if service.spends_owner_money:  # collect has its own dollar budget; the access rule still applies
            service.access.check(caller_of(request, settings))
        progress(0, desc="Checking the file and the budget…")

        def report(done: int, total: int) -> None:
            progress((done, max(total, 1)), desc="calls", unit="calls")

        result, download = collect_job(service, path, models, budget, max_tokens, progress=report)
        return collect_markdown(result), download, gr.update(interactive=False)

    def changed():
        return gr.update(interactive=False)

    with gr.Accordion("Collect outcomes (training data from your prompts)", open=False, elem_id="collect"):
        gr.Markdown(
            "Every chosen model answers every prompt; the evaluator scores the answers (each against the "
            "others) into an outcome table (RouterBench layout) that **Training** learns from. This spends money "
            "on the owner's OpenRouter key: press **Estimate cost** first (nothing is sent), then **Collect**. "
            "The budget caps this file's table, earlier runs included, and the app's daily limit "
            "(`ROUTER_DAILY_BUDGET_USD`) applies too. A stopped or interrupted collection resumes when you "
            "collect the same file again. Enabled only where the owner sets `ROUTER_ALLOW_TRAINING=1`.",
            elem_id="collect-intro")
        if not allowed:
            gr.Markdown(COLLECT_OFF, elem_id="collect-off")
        with gr.Row():
            c_file = gr.File(label="Prompts (CSV with a prompt column, or JSONL)", file_types=FILE_TYPES,
                             type="filepath", elem_id="collect-file", interactive=allowed)
            with gr.Column():
                c_models = gr.CheckboxGroup([(f"{m.display_name} ({m.id})", m.id) for m in pool.models],
                                            value=list(pool.ids), label="Models", elem_id="collect-models",
                                            interactive=allowed)
                with gr.Row():
                    c_budget = gr.Number(1.0, label="Budget (USD) for this table", minimum=0,
                                         maximum=COLLECT_MAX_BUDGET, elem_id="collect-budget", interactive=allowed)
                    c_tokens = gr.Number(settings.max_tokens, label="Max answer tokens per call", precision=0,
                                         minimum=1, maximum=settings.max_tokens, elem_id="collect-max-tokens",
                                         interactive=allowed)
                with gr.Row():
                    c_estimate = gr.Button("Estimate cost", elem_id="collect-estimate", interactive=allowed)
                    c_run = gr.Button("Collect", variant="primary", interactive=False, elem_id="collect-run")
        c_plan = gr.Markdown(elem_id="collect-plan")
        c_status = gr.Markdown(elem_id="collect-status")
        c_download = gr.File(label="Outcome table (CSV)", interactive=False, elem_id="collect-download")
        c_estimate.click(estimate, [c_file, c_models, c_budget, c_tokens], [c_plan, c_run],
                         api_name="collect-estimate", api_visibility="private", concurrency_id="collect-estimate")
        # Another file, model set, budget or token cap needs a new estimate before Collect.
        c_file.change(changed, None, [c_run], api_name="collect-changed-file", api_visibility="private", queue=False)
        for name, box in (("models", c_models), ("budget", c_budget), ("tokens", c_tokens)):
            box.input(changed, None, [c_run], api_name=f"collect-changed-{name}", api_visibility="private",
                      queue=False)
        c_run.click(lambda: gr.update(interactive=False), None, [c_run], api_name="collect-start",
                    api_visibility="private", queue=False).then(
            run, [c_file, c_models, c_budget, c_tokens], [c_status, c_download, c_run], api_name="collect-run",
            api_visibility="private", show_progress_on=[c_status], concurrency_limit=1, concurrency_id="collect")


# --------------------------------------------------------------------------- calibrate the cost knob

CALIBRATE_TARGETS = {"Dollars per 1,000 prompts": "cost_per_1k", "Share of traffic to the priciest model": "priciest_share"}


def calibration_markdown(result: dict[str, Any]) -> str:
    a = result["achieved"]
    head = (f"### ✅ Use cost weight **{result['cost_weight']:.3f}**" if result["feasible"]
            else "### ⛔ No cost weight keeps within this budget")
    return (f"{head}\n\n{md_text(result['note'])}.\n\nOn these {result['prompts']:,} prompts (answers of about "
            f"{result['output_tokens']} tokens): ${a['cost_per_1k']:.4f} per 1,000, "
            f"{a['priciest_share']:.0%} to {md_text(result['priciest_model'])}, predicted quality "
            f"{a['predicted_quality']:.3f}. Set it as the Ask tab's slider, `/query`'s `cost_weight`, "
            f"`router:{(result['cost_weight'] or 1):.3f}` in the gateway, or `--cost-weight` in batch.")


def build_calibrate_section(service: RouterService, upload: Any, column: Any) -> None:
    @user_errors
    def run(path: Any, prompt_column: Any, target: Any, limit: Any, tokens: Any):
        if not path:
            raise UserError("Upload a prompt file above first: the knob is calibrated on your own prompts.")
        target = CALIBRATE_TARGETS[check_choice(target, list(CALIBRATE_TARGETS), "target")]
        limit = check_float(limit, "limit", 0.0, 1.0 if target == "priciest_share" else 1e6)
        tokens = check_int(tokens, "output_tokens", 1, 100_000, default=300)
        result = calibrate_file(service.selector, service.settings, uploaded_path(path, "file"),
                                output_tokens=tokens,
                                prompt_column=check_optional_text(prompt_column, "prompt_column"),
                                **{target: limit})
        return calibration_markdown(result), calibration_figure(result)

    with gr.Accordion("Calibrate the cost knob to a budget (on the file above)", open=False, elem_id="calibrate"):
        gr.Markdown("Routes the file's prompts at every cost weight (no API calls), estimates each setting's cost, "
                    "and gives the smallest weight (the most quality) within your budget.")
        with gr.Row():
            target = gr.Radio(list(CALIBRATE_TARGETS), value=next(iter(CALIBRATE_TARGETS)), label="Budget",
                              elem_id="calibrate-target")
            limit = gr.Number(1.0, label="Limit ($ per 1,000 prompts, or a share from 0 to 1)",
                              elem_id="calibrate-limit")
            tokens = gr.Number(300, label="Expected answer length (tokens)", precision=0, elem_id="calibrate-tokens")
        go_button = gr.Button("Calibrate", elem_id="calibrate-run")
        result = gr.Markdown(elem_id="calibrate-result")
        chart = gr.Plot(label="Cost against predicted quality", elem_id="calibrate-chart")
        go_button.click(run, [upload, column, target, limit, tokens], [result, chart], api_name="calibrate-run",
                        api_visibility="private")


def uploaded_path(file: Any, name: str = "file") -> Path:
    """The server path of a file this server received as an upload (``gradio_client.handle_file``).

    Only files Gradio's upload route stored for the running app are accepted (its
    ``upload_file_set``), never another server path, nor a file that merely lies in the upload
    folder. ``name`` is the parameter named in the error message. Outside a Gradio event nothing
    was uploaded, so every path is refused.
    """
    from gradio.context import LocalContext

    blocks = LocalContext.blocks.get(None)
    return check_upload_path(file, getattr(blocks, "upload_file_set", ()), name)


def _file_or_prompts(file: FileData | None, prompts: list[str] | None, name: str) -> Path:
    """The upload, or the prompt list written to a JSONL file: exactly one of them."""
    if file is not None and prompts:
        raise UserError("Give either `file` or `prompts`, not both.")
    if file is not None:
        return uploaded_path(file)
    if prompts:
        return write_prompts_file(prompts, _download_dir() / name)
    raise UserError("Give `file` (a CSV or JSONL upload) or `prompts` (a list of strings).")


def add_batch_api(service: RouterService) -> None:
    """Register /batch-query."""
    settings = service.settings

    @user_errors
    def batch_query(file: FileData | None = None, prompts: list[str] | None = None,
                    mode: str = "route", prompt_column: str | None = None,
                    request: gr.Request = None) -> tuple[dict, FileData]:
        """Route (mode "route"), answer ("answer") or compare-all ("compare") a batch of prompts.

        Give `file` (a CSV with a prompt/text/question column, or JSONL; upload it with
        gradio_client.handle_file) or `prompts` (a list of strings). Returns the summary (traffic
        share per model, confidence histogram, estimated cost, failed rows) and the results CSV.
        """
        mode = check_choice(mode, MODES, "mode", default="route")
        prompts = check_prompt_list(prompts, max_rows=settings.batch_max_rows, max_mb=settings.batch_max_mb)
        prompt_column = check_optional_text(prompt_column, "prompt_column")
        path = _file_or_prompts(file, prompts, "prompts.jsonl")
        summary = run_batch_job(service, path, mode=mode, prompt_column=prompt_column,
                                caller=caller_of(request, settings))
        return public_summary(summary), FileData(path=summary["download_csv"],
                                                 orig_name=Path(summary["download_csv"]).name)

    gr.api(batch_query, api_name="batch-query", concurrency_limit=2, concurrency_id="batch")

    @user_errors
    def calibrate(file: FileData | None = None, prompts: list[str] | None = None, cost_per_1k: float | None = None,
                  priciest_share: float | None = None, output_tokens: int = 300,
                  prompt_column: str | None = None) -> dict:
        """The cost weight that keeps your prompts within a budget: give `file` (upload) or `prompts`, and one of
        `cost_per_1k` (dollars per 1,000 prompts) or `priciest_share` (0-1 of traffic to the priciest model).
        No API calls: the prompts are routed at every weight and each setting's cost estimated."""
        prompts = check_prompt_list(prompts, max_rows=settings.batch_max_rows, max_mb=settings.batch_max_mb)
        cost = None if cost_per_1k is None else check_float(cost_per_1k, "cost_per_1k", 0.0, 1e6)
        share = None if priciest_share is None else check_float(priciest_share, "priciest_share", 0.0, 1.0)
        tokens = check_int(output_tokens, "output_tokens", 1, 100_000, default=300)
        path = _file_or_prompts(file, prompts, "calibrate.jsonl")
        return calibrate_file(service.selector, settings, path, cost_per_1k=cost, priciest_share=share,
                              output_tokens=tokens, prompt_column=check_optional_text(prompt_column, "prompt_column"))

    gr.api(calibrate, api_name="calibrate", concurrency_limit=2, concurrency_id="batch")


__all__ = ["build_batch_tab", "add_batch_api", "run_batch_job", "summary_markdown", "public_summary",
           "uploaded_path"]
