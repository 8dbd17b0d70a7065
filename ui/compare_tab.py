"""Compare all tab: every pool model answers the same prompt, side by side, scored and charted.

API: ``/query-compare`` (JSON). UI-only events are private: the streaming comparison, the
"best answer" mark (appended to the outcome log) and the RouterBench CSV download.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from routing.compare.run import NO_KEY_NOTICE, Comparison, ModelOutcome, compare_all, compare_stream
from routing.charts.compare import dimension_bars_figure, score_cost_figure
from routing.errors import UserError
from routing.compare.judge import DEFAULT_JUDGE
from routing.learning.outcome_log import OutcomeLog, gradio_scope
from routing.router import LOCAL_ANSWERER
from routing.service import RouterService
from routing.safety.redact import stream_safe
from routing.safety.untrusted import md_answer, md_code, md_text
from routing.safety.validation import (check_bool, check_cost_weight, check_max_tokens, check_model_id,
                                       check_model_list, check_prompt)
from ui.common import PageLoad, caller_of, user_errors

EXPORT_DIR = Path(tempfile.gettempdir()) / "llm-router-exports"


def _outcome_log(service: RouterService) -> OutcomeLog:
    return OutcomeLog.for_settings(service.settings)


def _no_key(service: RouterService) -> bool:
    return all(service.hub.missing_key(spec) for spec in service.pool.models)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.6f}"


def column_stats(outcome: ModelOutcome, comparison: Comparison | None = None) -> str:
    """The markdown under one model's answer: timing, tokens, cost, score, badges."""
    if outcome.error:  # the error text itself is in the answer box above
        return f"❌ **failed** after {(outcome.latency_ms or 0) / 1000:.2f} s"
    parts = [f"⏱ {(outcome.latency_ms or 0) / 1000:.2f} s", f"{outcome.usage.get('total_tokens', '?')} tokens",
             _money(outcome.cost_usd)]
    lines = [" · ".join(parts)]
    if outcome.normalized is not None:
        lines.append(f"**score {outcome.normalized:.2f}** ({outcome.total:g} points)")
        if outcome.explanations.get("learned_quality"):   # how the score came from the points (or why not)
            lines.append(md_text(outcome.explanations["learned_quality"]))
        lines.append(", ".join(f"{d.replace('_', ' ')} {outcome.scores.get(d, 0):g}/{m:g}"
                               for d, m in outcome.max_points.items()))
        penalties = {k: v for k, v in outcome.penalties.items() if v}
        if penalties:
            lines.append("penalties: " + ", ".join(f"{k} {v:g}" for k, v in penalties.items()))
    if outcome.judge_grade is not None:
        lines.append(f"judge grade {outcome.judge_grade:g}/10")
    if comparison is not None:
        badges = []
        if outcome.model == comparison.best_model:
            badges.append("🏆 evaluator's winner")
        if outcome.model == comparison.judge_best_model:
            badges.append("⚖️ judge's winner")
        if outcome.model == comparison.selected_model:
            badges.append("🧭 router's pick")
        if badges:
            lines.insert(0, " · ".join(badges))
    return "  \n".join(lines)


#: What a column shows for a model the person left out of the comparison.
NOT_ASKED = "_not asked (see Models to ask)_"


def answer_markdown(outcome: ModelOutcome) -> str:
    """One model's answer as the column shows it: its Markdown rendered without HTML or images
    (as the Ask tab shows answers), or its error as plain text."""
    if outcome.error:
        return f"⚠️ Error: {md_text(outcome.error)}"
    return md_answer(outcome.response)


def column_header(spec) -> str:
    """The Markdown above one model's column (names from the pool file are shown as text)."""
    return f"#### {md_text(spec.display_name)}\n{md_code(spec.id)} · ${spec.blended_price_per_m:g}/M tokens"


def summary_markdown(comparison: Comparison, pool) -> str:
    """Who won, what the router picked, whether they agree, and how long it took."""
    lines: list[str] = []
    if comparison.notice:
        lines.append(f"ℹ️ **{md_text(comparison.notice)}**")
    answered = [r for r in comparison.results.values() if r.ok]
    if comparison.best_model:
        best = comparison.results[comparison.best_model]
        agree = comparison.router_correct
        lines.append(f"### 🏆 Winner by the evaluator: **{md_text(best.display_name)}** ({md_code(best.model)}, score "
                     f"{best.normalized:.2f})")
        pick = pool.get(comparison.selected_model).display_name if comparison.selected_model else "?"
        if agree:
            verdict = "✅ **the router's pick agrees with the evaluator**"
        elif comparison.router_ties:
            verdict = (f"🤝 **the router's pick ties with the evaluator's winner** (both score "
                       f"{best.normalized:.2f}; more points, then the lower cost, broke the tie)")
        else:
            verdict = "❌ **the router's pick differs from the evaluator's winner**"
        lines.append(f"🧭 The router picked **{md_text(pick)}** ({md_code(comparison.selected_model)}) — " + verdict)
    elif comparison.no_winner:
        mark = "🤝" if comparison.tied else "ℹ️"
        lines.append(f"### {mark} No winner: {md_text(comparison.no_winner)}")
    if comparison.judge_model:
        if comparison.judge_best_model:
            agree = comparison.router_correct_by_judge
            lines.append(f"⚖️ Judge ({md_code(comparison.judge_model)}) picks **{md_text(comparison.judge_best_model)}** — "
                         + ("agrees with the router" if agree else "differs from the router"))
        else:
            note = comparison.judge_details.get("note") or "the judge gave no usable grades"
            lines.append(f"⚖️ Judge ({md_code(comparison.judge_model)}): {md_text(note)}")
    failed = [r.model for r in comparison.results.values() if not r.ok]
    slowest = max((r.latency_ms or 0 for r in comparison.results.values()), default=0)
    lines.append(f"{len(answered)} of {len(comparison.results)} models answered"
                 + (f" ({md_text(', '.join(failed))} failed)" if failed else "")
                 + f" in {comparison.wall_ms / 1000:.2f} s (slowest model {slowest / 1000:.2f} s).")
    if comparison.logged:
        lines.append("Saved to the outcome log; mark the best answer below if you disagree with the evaluator.")
    lines += [f"⚠️ {md_text(w)}" for w in comparison.warnings]
    return "\n\n".join(lines)


def build_compare_tab(service: RouterService) -> PageLoad:
    """The Compare all tab: one column per pool model, filled as answers arrive. The columns are the
    models the app started with; a model the Pool tab adds later gets a column after a restart, and
    one it removes is no longer offered. Returns what the page refreshes when it loads."""
    pool = service.pool
    specs = pool.models
    n = len(specs)
    outcome_log = _outcome_log(service)
    no_key = _no_key(service)

    @user_errors
    def run(prompt: str, cost_weight: float, judge: bool, judge_model: str, chosen: list[str] | None = None,
            request: gr.Request = None) -> Iterator[list[Any]]:
        # outputs: summary, answers*n, stats*n, bars, scatter, details, comparison id, best radio, local box,
        # the last comparison's "marked as best" message
        def frame() -> list[Any]:
            return [gr.skip()] * (2 * n + 8)

        live = service.router.pool   # the Pool tab may have reloaded it since the page was built
        offered = [s.id for s in specs if s.id in live]
        chosen = check_model_list(chosen, offered, "models") if chosen is not None else offered
        if len(chosen) < 2:
            raise UserError("Choose at least two models to compare (Models to ask); to ask one model, use the "
                            "Ask tab's Model choice.")
        asked = [s.id for s in specs if s.id in chosen]
        router, _ = service.router_for(caller_of(request, service.settings), calls=len(asked) + (1 if judge else 0))
        live = router.pool
        index = {s.id: i for i, s in enumerate(specs)}
        texts = {m: "" for m in asked}
        first = frame()
        first[0] = f"_Asking {len(asked)} models…_"
        for i, spec in enumerate(specs):
            first[1 + i] = "" if spec.id in chosen else NOT_ASKED
            first[1 + n + i] = "⏳ waiting…" if spec.id in chosen else ""
        first[2 * n + 1] = gr.update(value=None, visible=False)  # no charts of the previous comparison
        first[2 * n + 2] = gr.update(value=None, visible=False)
        first[2 * n + 4] = None
        first[2 * n + 5] = gr.update(choices=[], value=None, interactive=False)
        first[2 * n + 6] = gr.update(value="", visible=False)
        first[2 * n + 7] = ""
        yield first
        for event in compare_stream(router, prompt, models=asked, cost_weight=cost_weight, judge=bool(judge),
                                    judge_model=judge_model or None, outcome_log=outcome_log, stream=True):
            out = frame()
            if event.kind == "selection":
                sel = event.selection
                out[0] = (f"🧭 The router would pick **{md_text(live.get(sel.selected_model).display_name)}** "
                          f"({md_code(sel.selected_model)}, confidence {sel.confidence:.0%}). "
                          f"_Asking {len(asked)} models…_")
            elif event.kind == "delta":
                texts[event.model] += event.text
                out[1 + index[event.model]] = md_answer(stream_safe(texts[event.model]))  # no half-arrived key
                out[1 + n + index[event.model]] = "✍️ writing…"
            elif event.kind == "result":
                i = index[event.model]
                o = event.outcome
                out[1 + i] = answer_markdown(o)
                out[1 + n + i] = column_stats(o)
            elif event.kind == "judged":
                out[0] = "_Judging done; finishing…_"
            elif event.kind == "done":
                c = event.comparison
                out[0] = summary_markdown(c, live)
                for m, o in c.results.items():
                    out[1 + n + index[m]] = column_stats(o, c)
                answered = [m for m, o in c.results.items() if o.ok]
                if answered:  # with no answer there is nothing to draw: the charts stay hidden
                    out[2 * n + 1] = gr.update(value=dimension_bars_figure(c), visible=True)
                    out[2 * n + 2] = gr.update(value=score_cost_figure(c), visible=True)
                out[2 * n + 3] = c.to_dict()
                out[2 * n + 4] = c.id if c.logged else None
                out[2 * n + 5] = gr.update(choices=answered, value=c.best_model, interactive=bool(c.logged))
                if c.local_answer is not None:
                    la = c.local_answer
                    text = f"⚠️ Error: {la.error}" if la.error else la.response
                    out[2 * n + 6] = gr.update(value=text, visible=True,
                                               label=f"Local model's answer ({LOCAL_ANSWERER}) — one small model, "
                                                     "not a comparison")
            yield out

    @user_errors
    def mark_best(comparison_id: str | None, best_model: str | None) -> str:
        if not comparison_id:
            return "Run a comparison first; then choose the best answer."
        if not best_model:
            return "Choose the answer you think is best."
        found = outcome_log.get(comparison_id)
        outcome_log.record_feedback(comparison_id, best_model)
        evaluator = found.get("best_model") if found else None
        extra = ("" if evaluator == best_model
                 else f" It overrides the evaluator's pick ({md_text(evaluator)}) in the training data.")
        return f"✅ Recorded: **{md_text(best_model)}** gave the best answer.{extra}"

    @user_errors
    def download(request: gr.Request) -> gr.File:
        """The caller's own outcome rows as a RouterBench CSV: the comparisons and answers produced in
        this browser session (or by this signed-in user), never other visitors' prompts and answers.

        The event is private in the UI but any client can call it through Gradio's queue, so the
        scope comes from the request (``gradio_scope``: signed-in username, else the session hash),
        not from anything the caller sends. The whole log (every caller's rows) is for the app's
        owner, from the server: ``python -m routing.learning export``. Cells a spreadsheet would
        run as formulas are neutralised (``routing.safety.csv_safe``).
        """
        EXPORT_DIR.mkdir(parents=True, exist_ok=True)
        if not outcome_log.path.exists():
            raise UserError("The outcome log is empty: run a comparison first.")
        owner = gradio_scope(request)
        if not outcome_log.comparisons(owner):
            raise UserError("Nothing of yours in the outcome log yet: run a comparison first (the download holds "
                            "only this session's comparisons and answers).")
        out = EXPORT_DIR / f"outcomes-routerbench-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.csv"
        return gr.File(value=str(outcome_log.export_routerbench_csv(out, owner=owner, spreadsheet_safe=True)),
                       visible=True)

    with gr.Tab("Compare all", id="compare"):
        if no_key:
            local = (f" Comparing still runs, so you can try the flow: each column shows why its model cannot "
                     f"answer, and the local model ({LOCAL_ANSWERER}) gives its single answer below."
                     if service.hub.local is not None else " The local model is off too (ROUTER_LOCAL_MODEL=0).")
            gr.Markdown(f"ℹ️ **{NO_KEY_NOTICE}**{local}", elem_id="compare-no-key")
        sandbox = service.code_sandbox()
        gr.Markdown(("🔒 Python code in answers is run to score it: " if sandbox["available"] else "⚠️ ")
                    + f"{sandbox['summary']}.", elem_id="compare-sandbox")
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=3, placeholder="One prompt, every model…",
                                    elem_id="compare-prompt")
            with gr.Column(scale=2):
                cost = gr.Slider(0, 1, value=0, step=0.05, label="Router's quality ↔ cost",
                                 info="Only changes which model the router would pick")
                with gr.Row():
                    judge = gr.Checkbox(value=False, label="Also ask an LLM judge (costs tokens)")
                    default_judge = DEFAULT_JUDGE if DEFAULT_JUDGE in pool else pool.ids[0]
                    judge_model = gr.Dropdown(pool.ids, value=default_judge, label="Judge model")
                chosen = gr.CheckboxGroup(pool.ids, value=pool.ids, label="Models to ask", elem_id="compare-models",
                                          info="each model asked costs its tokens; at least two")
        button = gr.Button("Compare all models", variant="primary", elem_id="compare-button")
        summary = gr.Markdown(elem_id="compare-summary")
        answers: list[gr.Markdown] = []
        stats: list[gr.Markdown] = []
        with gr.Row(equal_height=False):
            for i, spec in enumerate(specs):
                with gr.Column(min_width=220, elem_id=f"compare-col-{i}"):
                    gr.Markdown(column_header(spec))
                    # Rendered like the Ask tab's answers (Markdown, no HTML), streamed as they are written.
                    answers.append(gr.Markdown("", buttons=["copy"], max_height=420, min_height=160,
                                               container=True, elem_id=f"compare-answer-{i}",
                                               elem_classes=["compare-answer"]))
                    stats.append(gr.Markdown(elem_id=f"compare-stats-{i}"))
        local_box = gr.Textbox(label=f"Local model's answer ({LOCAL_ANSWERER})", visible=False, lines=6,
                               interactive=False, elem_id="compare-local")
        with gr.Row():
            bars = gr.Plot(label="Points per dimension", elem_id="compare-bars", visible=False)
            scatter = gr.Plot(label="Score against cost", elem_id="compare-scatter", visible=False)
        comparison_id = gr.State(None)
        with gr.Row():
            best = gr.Radio([], label="Which answer is best? (your choice overrides the evaluator's)",
                            elem_id="compare-best", interactive=False)
            with gr.Column():
                mark = gr.Button("Mark as best answer", elem_id="compare-mark")
                feedback_msg = gr.Markdown(elem_id="compare-feedback")
        with gr.Row():
            export = gr.Button("Download outcome log (RouterBench CSV)", elem_id="compare-download")
            export_file = gr.File(label="Outcome log (RouterBench CSV)", interactive=False, visible=False,
                                  elem_id="compare-download-file")
        with gr.Accordion("Details (JSON, as /query-compare returns)", open=False):
            details = gr.JSON()

        outputs = [summary, *answers, *stats, bars, scatter, details, comparison_id, best, local_box, feedback_msg]
        inputs = [prompt, cost, judge, judge_model, chosen]
        button.click(run, inputs, outputs, api_name="compare-stream", api_visibility="private",
                     show_progress_on=[summary])
        prompt.submit(run, inputs, outputs, api_name="compare-stream-submit", api_visibility="private",
                      show_progress_on=[summary])
        mark.click(mark_best, [comparison_id, best], [feedback_msg], api_name="compare-feedback",
                   api_visibility="private")
        export.click(download, None, [export_file], api_name="compare-export", api_visibility="private")

    def model_lists() -> tuple:
        offered = [s.id for s in specs if s.id in service.pool]
        return gr.update(choices=offered, value=offered), gr.update(choices=service.pool.ids)

    return PageLoad(model_lists, [chosen, judge_model])


def add_compare_api(service: RouterService) -> None:
    """Register ``/query-compare``: every pool model answers; per-model scores, the winner, the router's pick."""
    outcome_log = _outcome_log(service)
    settings = service.settings

    @user_errors
    def query_compare(prompt: str, models: list[str] | None = None, cost_weight: float = 0.0,
                      judge: bool = False, judge_model: str = "", max_tokens: int | None = None,
                      request: gr.Request = None) -> dict:
        """Send the prompt to every pool model (or `models`) at once. Returns each model's answer, latency,
        cost and evaluator points, the winner (`best_model`), the router's pick (`selected_model`) and
        whether they agree (`router_correct`). `judge=True` adds an LLM judge's grades. Logged for training."""
        prompt = check_prompt(prompt, max_chars=settings.max_prompt_chars)
        ids = service.pool.ids   # the live pool (the Pool tab reloads it without a restart)
        models = check_model_list(models, ids, "models")
        cost_weight = check_cost_weight(cost_weight)
        judge = check_bool(judge, "judge")
        judge_model = check_model_id(judge_model, ids, "judge_model", allow_empty=True)
        max_tokens = check_max_tokens(max_tokens, limit=settings.max_tokens)
        router, _ = service.router_for(caller_of(request, settings), calls=len(models or ids) + (1 if judge else 0))
        return compare_all(router, prompt, models=models or None, cost_weight=cost_weight,
                           judge=judge, judge_model=judge_model or None, max_tokens=max_tokens,
                           outcome_log=outcome_log).to_dict()

    gr.api(query_compare, api_name="query-compare")


__all__ = ["build_compare_tab", "add_compare_api", "column_stats", "column_header", "summary_markdown"]
