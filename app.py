"""Gradio UI of the LLM router. UI only: every handler calls routing/ or training/.

Run ``python app.py``; host and port follow GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, so the
same file runs as a Hugging Face Space. API endpoints (``gradio_client``): /query,
/query-specific (and the other tabs' endpoints as they are added).
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Iterator

import gradio as gr

from routing.charts import selection_scores_figure
from routing.errors import UserError
from routing.service import RouterService

log = logging.getLogger("app")
AUTO = "Auto (let the router pick)"


def user_errors(fn: Callable) -> Callable:
    """Turn expected failures into gr.Error with a message that says what to do."""

    def convert(exc: Exception) -> gr.Error:
        return gr.Error(str(exc.args[0]) if exc.args else str(exc))

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise convert(exc) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise convert(exc) from exc
    return wrapper


# --------------------------------------------------------------------------- Ask tab
def decision_markdown(sel, pool, extra: str = "") -> str:
    spec = pool.get(sel.selected_model)
    lines = [f"### Routed to **{spec.display_name}** (`{spec.id}`) · confidence {sel.confidence:.0%}",
             f"{sel.reasoning}"]
    if extra:
        lines.append(extra)
    return "\n\n".join(lines)


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
                status_lines.append(f"Asking `{event.model}`…")
            elif event.kind == "failed":
                status_lines.append(f"⚠️ `{event.model}` failed: {event.error}")
                yield decision_markdown(sel, pool, "\n\n".join(status_lines)), "", gr.skip(), gr.skip()
            elif event.kind == "delta":
                answer += event.text
                yield gr.skip(), answer, gr.skip(), gr.skip()
            elif event.kind == "done":
                r = event.result
                cost = "n/a" if r.cost_usd is None else f"${r.cost_usd:.6f}"
                footer = [f"**Answered by** `{r.answered_by}` · {r.latency_ms / 1000:.1f} s · "
                          f"{r.usage.get('total_tokens', '?')} tokens · {cost}"]
                if r.notice:
                    footer.insert(0, f"ℹ️ **{r.notice}**")
                footer += [f"⚠️ {w}" for w in r.warnings]
                footer += [f"skipped `{f['model']}`: {f['error']}" if f.get("skipped")
                           else f"⚠️ `{f['model']}` failed: {f['error']}" for f in r.fallbacks]
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


# --------------------------------------------------------------------------- Status tab
def build_status_tab(service: RouterService) -> None:
    def check_models() -> tuple[list[list[Any]], dict]:
        rows = service.health()
        table = [[r["model"], r["provider"], "yes" if r["reachable"] else "no",
                  r.get("probe_latency_ms"), r.get("probe_error") or r.get("last_error") or "",
                  r.get("last_latency_ms"), r.get("consecutive_failures"), r.get("cooldown_left_s"),
                  f"{r['price_per_m_in']:.3f} / {r['price_per_m_out']:.3f} ({r['price_source']})"]
                 for r in rows]
        return table, service.status()

    with gr.Tab("Status", id="status"):
        gr.Markdown("Which models are reachable now (no tokens spent: the provider's model listing and key "
                    "check), with each model's last error and latency as seen by the router.")
        button = gr.Button("Check models", elem_id="status-button")
        table = gr.Dataframe(headers=["model", "provider", "reachable", "probe ms", "error", "last answer ms",
                                      "failures in a row", "cooldown s", "price $/M in / out"],
                             interactive=False, elem_id="status-table")
        status = gr.JSON(label="Router status")
        button.click(check_models, None, [table, status], api_name="check-models", api_visibility="private")


# --------------------------------------------------------------------------- API endpoints
def add_api_endpoints(service: RouterService) -> None:
    @user_errors
    def query(prompt: str, cost_weight: float = 0.0, exclude: list[str] | None = None,
              max_tokens: int | None = None) -> dict:
        """Route a prompt to the best model and answer it. Returns the decision, answer, cost and scores."""
        return service.query(prompt, cost_weight=cost_weight, exclude=exclude, max_tokens=max_tokens)

    @user_errors
    def query_specific(prompt: str, model: str = "", max_tokens: int | None = None) -> dict:
        """Ask one pool model directly (no routing); `model` is a pool id."""
        return service.query_specific(prompt, model, max_tokens=max_tokens)

    def health() -> list[dict]:
        """Reachability, last error and latency of every pool model."""
        return service.health()

    gr.api(query, api_name="query")
    gr.api(query_specific, api_name="query-specific")
    gr.api(health, api_name="health")


def build_demo(service: RouterService | None = None) -> gr.Blocks:
    service = service or RouterService()
    with gr.Blocks(title="LLM Router") as demo:
        gr.Markdown("# LLM Router\nEach prompt goes to the model predicted to answer it best for the money — "
                    "and you see why.")
        for warning in service.warnings:
            gr.Markdown(f"⚠️ {warning}")
        if not service.settings.openrouter_api_key:
            gr.Markdown("ℹ️ No `OPENROUTER_API_KEY`: routing decisions are real; answers come from the local "
                        "Gemma 3 270M model, labelled as such.")
        with gr.Tabs():
            build_ask_tab(service)
            build_status_tab(service)
        add_api_endpoints(service)
    demo.queue(default_concurrency_limit=service.settings.queue_concurrency)
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    demo = build_demo()
    demo.launch(ssr_mode=False)


if __name__ == "__main__":
    main()
