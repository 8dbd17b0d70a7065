"""Ask tab: route a prompt, stream the answer, show the decision and every model's score.

API: /query (route and answer) and /query-specific (one named model).
"""

from __future__ import annotations

from typing import Iterator

import gradio as gr

from routing.charts import selection_scores_figure
from routing.redact import stream_safe
from routing.service import RouterService
from routing.untrusted import md_code, md_text
from routing.validation import check_cost_weight, check_exclude, check_max_tokens, check_model_id, check_prompt
from ui.common import user_errors

AUTO = "Auto (let the router pick)"


def decision_markdown(sel, pool, extra: str = "") -> str:
    """The decision as Markdown; ``extra`` is Markdown the tab built (its untrusted parts escaped)."""
    spec = pool.get(sel.selected_model)
    lines = [f"### Routed to **{md_text(spec.display_name)}** ({md_code(spec.id)}) · confidence "
             f"{sel.confidence:.0%}", md_text(sel.reasoning)]
    if extra:
        lines.append(extra)
    return "\n\n".join(lines)


def failure_line(model: str, error: str) -> str:
    """One failed attempt: the provider's error text is shown as text, never as Markdown or HTML."""
    return f"⚠️ {md_code(model)} failed: {md_text(error)}"


def fallback_line(f: dict) -> str:
    if f.get("skipped"):
        return f"skipped {md_code(f['model'])}: {md_text(f['error'])}"
    return failure_line(f["model"], f["error"])


def build_ask_tab(service: RouterService) -> None:
    pool = service.pool

    @user_errors
    def ask(prompt: str, cost_weight: float, exclude: list[str], model_choice: str) -> Iterator[tuple]:
        model = None if (not model_choice or model_choice == AUTO) else model_choice
        sel = None
        answer = ""
        status_lines: list[str] = []
        for event in service.router.stream(prompt, cost_weight=cost_weight, exclude=exclude or [], model=model):
            if event.kind == "selection":
                sel = event.selection
                yield decision_markdown(sel, pool, "_Asking…_"), "", selection_scores_figure(sel, pool), {}
            elif event.kind == "attempt":
                answer = ""
                status_lines.append(f"Asking {md_code(event.model)}…")
            elif event.kind == "failed":
                status_lines.append(failure_line(event.model, event.error))
                yield decision_markdown(sel, pool, "\n\n".join(status_lines)), "", gr.skip(), gr.skip()
            elif event.kind == "delta":
                answer += event.text
                yield gr.skip(), stream_safe(answer), gr.skip(), gr.skip()  # no half-arrived key
            elif event.kind == "done":
                r = event.result
                cost = "n/a" if r.cost_usd is None else f"${r.cost_usd:.6f}"
                footer = [f"**Answered by** {md_code(r.answered_by)} · {r.latency_ms / 1000:.1f} s · "
                          f"{r.usage.get('total_tokens', '?')} tokens · {cost}"]
                if r.notice:
                    footer.insert(0, f"ℹ️ **{md_text(r.notice)}**")
                footer += [f"⚠️ {md_text(w)}" for w in r.warnings]
                footer += [fallback_line(f) for f in r.fallbacks]
                yield decision_markdown(sel, pool, "\n\n".join(footer)), r.response, gr.skip(), r.to_dict()

    with gr.Tab("Ask", id="ask"):
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=4, placeholder="Ask anything…", elem_id="ask-prompt")
                with gr.Row():
                    cost = gr.Slider(0, 1, value=0, step=0.05, label="Quality ↔ cost",
                                     info="0 = best predicted quality; higher values trade quality for cheaper models")
                    model = gr.Dropdown([AUTO] + pool.ids, value=AUTO, label="Model",
                                        info="Auto routes; pick one to ask it directly (query-specific)")
                exclude = gr.CheckboxGroup(pool.ids, label="Never route to", value=[])
                button = gr.Button("Ask", variant="primary", elem_id="ask-button")
            with gr.Column(scale=2):
                chart = gr.Plot(label="Every model's score", elem_id="ask-chart")
        decision = gr.Markdown(elem_id="ask-decision")
        answer = gr.Textbox(label="Answer", lines=10, elem_id="ask-answer", buttons=["copy"], interactive=False)
        with gr.Accordion("Details (JSON, as /query returns)", open=False):
            details = gr.JSON()
        inputs = [prompt, cost, exclude, model]
        outputs = [decision, answer, chart, details]
        button.click(ask, inputs, outputs, api_name="ask-stream", api_visibility="private",
                     show_progress_on=[decision])
        prompt.submit(ask, inputs, outputs, api_name="ask-stream-submit", api_visibility="private",
                      show_progress_on=[decision])



def add_ask_api(service: RouterService) -> None:
    settings, ids = service.settings, service.pool.ids

    @user_errors
    def query(prompt: str, cost_weight: float = 0.0, exclude: list[str] | None = None,
              max_tokens: int | None = None) -> dict:
        """Route a prompt to the best model and answer it. Returns the decision, answer, cost and scores."""
        prompt = check_prompt(prompt, max_chars=settings.max_prompt_chars)
        cost_weight = check_cost_weight(cost_weight)
        exclude = check_exclude(exclude, ids)
        max_tokens = check_max_tokens(max_tokens, limit=settings.max_tokens)
        return service.query(prompt, cost_weight=cost_weight, exclude=exclude, max_tokens=max_tokens)

    @user_errors
    def query_specific(prompt: str, model: str = "", max_tokens: int | None = None) -> dict:
        """Ask one pool model directly (no routing); `model` is a pool id."""
        prompt = check_prompt(prompt, max_chars=settings.max_prompt_chars)
        model = check_model_id(model, ids, "model")
        max_tokens = check_max_tokens(max_tokens, limit=settings.max_tokens)
        return service.query_specific(prompt, model, max_tokens=max_tokens)

    gr.api(query, api_name="query")
    gr.api(query_specific, api_name="query-specific")
