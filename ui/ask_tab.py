"""Ask tab: a chat with the router. Each turn is routed (the conversation as a whole, staying on
the model that started it), streamed, and badged with who answered, how fast and at what cost.

API: /query (route and answer) and /query-specific (one named model). The chat logic lives in
:mod:`routing.chat.turns`; this module only wires components to it.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import gradio as gr

from routing.charts.base import selection_scores_figure
from routing.chat.turns import (ChatState, answer_badge, chat_turn, copy_state, failure_line, local_loading_text,
                                notice_lines, rewind, routing_title, turn_text, LOCAL_NOTICE)
from routing.errors import UserError
from routing.learning.outcome_log import gradio_scope
from routing.safety.redact import redact, stream_safe
from routing.router import LOCAL_ANSWERER
from routing.service import RouterService
from routing.safety.untrusted import md_answer, md_answer_text, md_code, md_text
from routing.safety.validation import (check_cost_weight, check_exclude, check_float, check_latency_weight,
                                       check_max_tokens, check_model_id, check_optional_text, check_prompt)
from ui.common import PageLoad, caller_of, user_errors

AUTO = "Auto (let the router pick)"


#: Shown at the end of an answer cut at the token limit (the decision panel says why).
CUT_MARK = "\n\n*✂️ [cut at the token limit]*"


def decision_markdown(sel, pool, extra: str = "", explicit: bool = False) -> str:
    """The decision as Markdown; ``extra`` is Markdown the tab built (its untrusted parts escaped)."""
    spec = pool.get(sel.selected_model)
    if explicit:
        head = (f"### You chose **{md_text(spec.display_name)}** ({md_code(spec.id)}) · the router's score for "
                f"it: {sel.confidence:.0%}")
    else:
        head = (f"### Routed to **{md_text(spec.display_name)}** ({md_code(spec.id)}) · confidence "
                f"{sel.confidence:.0%}")
    lines = [head, md_text(sel.reasoning)]
    if extra:
        lines.append(extra)
    return "\n\n".join(lines)


#: Marks an answer that cannot be rated (the local model's: it is not logged); the page's CSS hides
#: its 👍 / 👎 buttons. Our own markup, after the escaped answer.
UNRATED_MARK = '<span class="router-unrated"></span>'

#: What the decision panel says after Stop, in place of "Asking…".
STOPPED_LINE = "⏹️ **Stopped** by you: the partial answer stays in the chat; nothing more is asked for this turn."


def stopped_decision(decision: str | None) -> str:
    """The decision panel after Stop: its "Asking…" lines give way to one line saying the turn was stopped
    (a panel that already shows the answer's footer, or nothing, is left as it is)."""
    text = decision or ""
    parts = text.split("\n\n")
    asking = [p for p in parts if p.strip() == "_Asking…_" or p.startswith("Asking ")]
    if not asking:
        return text
    return "\n\n".join([p for p in parts if p not in asking] + [STOPPED_LINE])


def _note(title: str, body: str, status: str, started: float | None = None) -> dict[str, Any]:
    """The routing note of a turn: a collapsible assistant message (Gradio's "thought" box)."""
    metadata: dict[str, Any] = {"title": title, "status": status}
    if started is not None and status == "done":
        metadata["duration"] = round(time.monotonic() - started, 1)
    return {"role": "assistant", "content": body, "metadata": metadata}


def build_ask_tab(service: RouterService) -> PageLoad:
    """The tab; returns what the page refreshes when it loads (the model lists follow the live pool,
    which the Pool tab can change without a restart)."""

    @user_errors
    def ask(text: str, history: list, state: ChatState | None, cost_weight: float, exclude: list[str],
            model_choice: str, own_key: str, latency_weight: float = 0.0, system: str = "",
            temperature: float | None = None, max_tokens: float | None = None,
            request: gr.Request = None) -> Iterator[tuple]:
        yield from turn(text, history, state, cost_weight, exclude, model_choice, own_key, latency_weight, system,
                        temperature, max_tokens, request)

    @user_errors
    def retry(history: list, state: ChatState | None, cost_weight: float, exclude: list[str], model_choice: str,
              own_key: str, latency_weight: float, system: str, temperature: float | None,
              max_tokens: float | None, data: gr.RetryData, request: gr.Request = None) -> Iterator[tuple]:
        """↻ on the last answer: ask that turn again (with the settings as they are now)."""
        row, text, history, state = rewound(history, state, data.index, data.value)
        yield from turn(text, history, state, cost_weight, exclude, model_choice, own_key, latency_weight, system,
                        temperature, max_tokens, request)

    @user_errors
    def edit(history: list, state: ChatState | None, cost_weight: float, exclude: list[str], model_choice: str,
             own_key: str, latency_weight: float, system: str, temperature: float | None,
             max_tokens: float | None, data: gr.EditData, request: gr.Request = None) -> Iterator[tuple]:
        """✎ on a message the person sent: the conversation goes back to it and asks the edited text."""
        _, _, history, state = rewound(history, state, data.index, data.previous_value)
        text = md_answer_text(data.value) if isinstance(data.value, str) else ""   # the box held the chat's form
        yield from turn(text, history, state, cost_weight, exclude, model_choice, own_key, latency_weight, system,
                        temperature, max_tokens, request)

    def rewound(history: list, state: ChatState | None, index: Any, shown: Any) -> tuple:
        """The chat before the user's message at ``index``, the text of that message, and the state."""
        row = index[0] if isinstance(index, (list, tuple)) else index
        history = list(history or [])
        if not isinstance(row, int) or not 0 <= row < len(history) or history[row].get("role") != "user":
            raise UserError("That message is no longer in this chat: send it again.")
        text = turn_text(state, row, shown if isinstance(shown, str) else history[row].get("content", ""))
        return row, text, history[:row], rewind(state, row)

    def turn(text: str, history: list, state: ChatState | None, cost_weight: float, exclude: list[str],
             model_choice: str, own_key: str, latency_weight: float, system: str, temperature: float | None,
             max_tokens: float | None, request: gr.Request | None) -> Iterator[tuple]:
        settings = service.settings
        text = check_prompt(text, max_chars=settings.max_prompt_chars)
        latency_weight = check_latency_weight(latency_weight)
        system = check_optional_text(system, "system prompt", max_chars=settings.max_prompt_chars)
        temperature = None if temperature in (None, "") else check_float(temperature, "temperature", 0, 2)
        max_tokens = check_max_tokens(max_tokens, limit=settings.max_tokens, name="max tokens")
        # A caller the paid-access rule refuses is answered by the local model, and told how to get more.
        router, refused = service.router_for(caller_of(request, settings), own_key, local_instead=True)
        pool = router.pool   # the live pool: the Pool tab may have reloaded it since the page was built
        model = None if (not model_choice or model_choice == AUTO) else check_model_id(model_choice, pool.ids, "model")
        state = copy_state(state)
        history = [*(history or []), {"role": "user", "content": md_answer(text)}]
        row = len(history) - 1
        started = time.monotonic()
        note = _note("🧭 Choosing a model…", "", "pending")
        chat = [*history, note]
        yield chat, gr.skip(), gr.skip(), gr.skip(), gr.skip(), "", gr.skip()
        local = service.local
        if local is not None and not router.settings.openrouter_api_key:
            while (status := local.status())["state"] == "loading":  # say why the first answer waits
                note = _note("⏳ Waiting for the local model", local_loading_text(status), "pending")
                yield [*history, note], gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                time.sleep(1.0)
        sel, answer, lines = None, "", []
        try:
            for event in chat_turn(router, state, text, cost_weight=cost_weight, exclude=exclude or [], model=model,
                                   learning=service.learning, latency_weight=latency_weight, system=system,
                                   temperature=temperature, max_tokens=max_tokens, row=row):
                if event.kind == "selection":
                    sel = event.selection
                    note = _note(routing_title(sel, pool, bool(model)), md_text(sel.reasoning), "pending")
                    yield ([*history, note], gr.skip(), decision_markdown(sel, pool, "_Asking…_", bool(model)),
                           selection_scores_figure(sel, pool), gr.skip(), gr.skip(), gr.skip())
                elif event.kind == "attempt":
                    answer = ""
                    lines.append(f"Asking {md_code(event.model)}…")
                elif event.kind == "failed":
                    lines.append(failure_line(event.model, event.error))
                    note = _note(routing_title(sel, pool, bool(model)),
                                 "\n\n".join([md_text(sel.reasoning), *lines]), "pending")
                    yield ([*history, note], gr.skip(), decision_markdown(sel, pool, "\n\n".join(lines), bool(model)),
                           gr.skip(), gr.skip(), gr.skip(), gr.skip())
                elif event.kind == "delta" and event.text:
                    answer += event.text
                    reply = {"role": "assistant", "content": md_answer(stream_safe(answer))}  # no half-arrived key
                    yield [*history, note, reply], gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                elif event.kind == "done":
                    r = event.result
                    title = f"{routing_title(sel, pool, bool(model))} · {md_text(answer_badge(r))}"
                    body = "\n\n".join([md_text(sel.reasoning), *notice_lines(r)])
                    answer = md_answer(r.response) + (CUT_MARK if r.truncated else "")
                    # One answer message: the notices go under the answer, not in messages of their own
                    # (each bot message gets its own 👍 / 👎 row).
                    if r.answered_by == LOCAL_ANSWERER:   # not logged, so not rated: no 👍 / 👎 (app.PAGE_CSS)
                        answer += f"\n\n---\nℹ️ _{md_text(LOCAL_NOTICE)}_{UNRATED_MARK}"
                    if refused:
                        answer += f"\n\n🔒 _{md_text(refused)}_"
                    done = [_note(title, body, "done", started), {"role": "assistant", "content": answer}]
                    if state.last_answer_id:  # the note and the answer can be rated (👍 / 👎 under them)
                        state.answer_ids.update({len(history): state.last_answer_id,
                                                 len(history) + 1: state.last_answer_id})
                    instead = f" instead of {md_code(r.selected_model)}" if r.answered_by != r.selected_model else ""
                    footer = [f"**Answered by** {md_code(r.answered_by)}{instead} · {md_text(answer_badge(r, who=False))}",
                              *notice_lines(r)]
                    yield ([*history, *done], state, decision_markdown(sel, pool, "\n\n".join(footer), bool(model)),
                           gr.skip(), r.to_dict(), gr.skip(), state.totals_markdown())
        except UserError as exc:  # no model could answer, a spending limit...: said in the chat, state unchanged
            message = md_text(redact(str(exc)))
            note = _note("⚠️ No answer", message, "done", started)
            yield ([*history, note], gr.skip(), f"### No answer\n\n{message}", gr.skip(), gr.skip(), gr.skip(),
                   gr.skip())

    def stopped(history: list, decision: str) -> tuple[list, str]:
        """The Stop button: the turn's note and the decision panel say it was stopped (the partial
        answer stays on screen); a stop is the person's choice, not an error."""
        return stopped_history(history), stopped_decision(decision)

    def stopped_history(history: list) -> list:
        history = list(history or [])
        for i in range(len(history) - 1, -1, -1):
            message = history[i]
            metadata = message.get("metadata") if isinstance(message, dict) else None
            if metadata and metadata.get("status") == "pending":
                history[i] = {**message, "metadata": {**metadata, "title": metadata.get("title", "") + " · stopped",
                                                      "status": "done"}}
                break
        return history

    @user_errors
    def rate(state: ChatState | None, data: gr.LikeData, request: gr.Request) -> str:
        """👍 / 👎 on an answer: stored as a rating of that answer (it overrides the evaluator).
        Rated as this browser session (or signed-in user): the scope the answer was given to."""
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        answer_id = (state.answer_ids if state else {}).get(index)
        if not answer_id:
            return "ℹ️ Only answers from pool models can be rated (not the local model's, nor a stopped one)."
        if data.liked not in (True, False):
            return "Rating removed on screen; the last one you gave stays recorded."
        service.learning.rate(answer_id, "up" if data.liked else "down", rater=gradio_scope(request))
        return (f"✅ Recorded {'👍' if data.liked else '👎'} for this answer: it counts as "
                f"{'a good' if data.liked else 'a bad'} outcome when the router is retrained.")

    @user_errors
    def better(state: ChatState | None, other: str, request: gr.Request) -> str:
        """"Another model would have been better" for the last answer."""
        if not state or not state.last_answer_id:
            raise UserError("Ask something first; then you can say which model would have answered better.")
        if not other:
            raise UserError("Choose the model that would have answered better.")
        recorded = service.learning.rate(state.last_answer_id, "", other, rater=gradio_scope(request))
        return (f"✅ Recorded: {md_code(recorded['better_model'])} would have been better for the last answer "
                f"({md_code(state.model)} gave it). Retraining will route such prompts there.")

    def model_lists() -> tuple:
        ids = service.pool.ids
        return (gr.update(choices=ids), gr.update(choices=[AUTO] + ids),
                gr.update(choices=ids))

    def new_chat() -> tuple:
        return [], ChatState(), "", None, {}, ""

    def local_status() -> tuple:
        status = service.local.status() if service.local else {"state": "off"}
        text = local_loading_text(status) if not service.settings.openrouter_api_key else ""
        return gr.update(value=text, visible=bool(text)), gr.Timer(active=status["state"] in ("loading", "not_started"))

    pool = service.pool
    with gr.Tab("Ask", id="ask"):
        state = gr.State(ChatState())
        with gr.Row():
            with gr.Column(scale=3):
                local_note = gr.Markdown("", visible=False, elem_id="ask-local")
                chat = gr.Chatbot(label="Chat", elem_id="ask-chat", height=520, buttons=["copy", "copy_all"],
                                  sanitize_html=True, render_markdown=True, layout="panel", editable="user",
                                  placeholder="### Ask anything\n\nEach turn goes to the model predicted to "
                                              "answer it best;\nthe conversation stays on the model that started it.")
                prompt = gr.Textbox(label="Message", lines=1, max_lines=8, elem_id="ask-prompt", show_label=False,
                                    placeholder="Ask anything… (Enter sends, Shift+Enter adds a line)")
                with gr.Row():
                    button = gr.Button("Send", variant="primary", elem_id="ask-button")
                    stop = gr.Button("Stop", variant="stop", elem_id="ask-stop")
                    clear = gr.Button("New chat", elem_id="ask-clear")
                totals = gr.Markdown("", elem_id="ask-totals")
                with gr.Row():
                    other = gr.Dropdown(pool.ids, value=None, label="Another model would have been better",
                                        elem_id="ask-better", scale=3)
                    other_button = gr.Button("Record it for the last answer", elem_id="ask-better-button", scale=1)
                feedback_note = gr.Markdown("", elem_id="ask-feedback")
                with gr.Accordion("Routing options", open=False):
                    with gr.Row():
                        cost = gr.Slider(0, 1, value=0, step=0.05, label="Quality ↔ cost",
                                         info="0 = best predicted quality; higher values trade quality for cheaper models")
                        latency = gr.Slider(0, 1, value=0, step=0.05, label="Quality ↔ speed", elem_id="ask-latency",
                                            info="0 = ignore latency; higher values prefer models whose recent "
                                                 "answers started sooner (median of their last 50 calls)")
                    with gr.Row():
                        model = gr.Dropdown([AUTO] + pool.ids, value=AUTO, label="Model",
                                            info="Auto routes; pick one to ask it directly (the chat moves to it)")
                    exclude = gr.CheckboxGroup(pool.ids, label="Never route to", value=[])
                with gr.Accordion("Playground: system prompt, temperature, answer length", open=False,
                                  elem_id="ask-playground"):
                    system = gr.Textbox(label="System prompt", lines=2, max_lines=6, elem_id="ask-system",
                                        placeholder="e.g. You are a concise assistant. Answer in French.",
                                        info="Sent first with every turn; routing still reads only your messages")
                    with gr.Row():
                        temperature = gr.Number(None, label="Temperature", minimum=0, maximum=2, step=0.1,
                                                elem_id="ask-temperature",
                                                info="0-2; empty: each model's own default")
                        max_tokens = gr.Number(None, label="Max tokens per answer", minimum=1,
                                               maximum=service.settings.max_tokens, precision=0,
                                               elem_id="ask-max-tokens",
                                               info=f"empty: the app's default ({service.settings.max_tokens})")
                    gr.Markdown("↻ under the last answer asks that turn again; ✎ on a message you sent edits it "
                                "and asks again from there.")
                    own_key = gr.Textbox(label="Your own OpenRouter key (optional)", type="password",
                                         elem_id="ask-key", placeholder="sk-or-…",
                                         info="Used for this browser tab's questions only: never stored or logged, "
                                              "and not counted against this app's daily limit")
            with gr.Column(scale=2):
                decision = gr.Markdown(elem_id="ask-decision")
                chart = gr.Plot(label="Every model's score", elem_id="ask-chart")
                with gr.Accordion("Details of the last answer (JSON, as /query returns)", open=False):
                    details = gr.JSON()
        options = [cost, exclude, model, own_key, latency, system, temperature, max_tokens]
        inputs = [prompt, chat, state, *options]
        outputs = [chat, state, decision, chart, details, prompt, totals]
        sent = button.click(ask, inputs, outputs, api_name="ask-stream", api_visibility="private",
                            show_progress_on=[decision])
        submitted = prompt.submit(ask, inputs, outputs, api_name="ask-stream-submit", api_visibility="private",
                                  show_progress_on=[decision])
        retried = chat.retry(retry, [chat, state, *options], outputs, api_visibility="private",
                             show_progress_on=[decision])
        edited = chat.edit(edit, [chat, state, *options], outputs, api_visibility="private",
                           show_progress_on=[decision])
        # Cancel first; then mark the turn stopped on what the page shows once nothing more arrives.
        stop.click(None, None, None, cancels=[sent, submitted, retried, edited], api_visibility="private",
                   queue=False).then(
            stopped, [chat, decision], [chat, decision], api_visibility="private", queue=False)
        clear.click(new_chat, None, [chat, state, decision, chart, details, totals], api_visibility="private")
        chat.like(rate, [state], [feedback_note], api_visibility="private")
        other_button.click(better, [state, other], [feedback_note], api_visibility="private")
        timer = gr.Timer(1.0, active=service.local is not None and not service.settings.openrouter_api_key)
        timer.tick(local_status, None, [local_note, timer], api_visibility="private", show_progress="hidden")
    return PageLoad(model_lists, [other, model, exclude])



def add_ask_api(service: RouterService) -> None:
    settings = service.settings

    @user_errors
    def query(prompt: str, cost_weight: float = 0.0, exclude: list[str] | None = None,
              max_tokens: int | None = None, latency_weight: float = 0.0, request: gr.Request = None) -> dict:
        """Route a prompt to the best model and answer it. Returns the decision, answer, cost and scores.
        `latency_weight` (0-1) also weighs each model's recent median latency."""
        prompt = check_prompt(prompt, max_chars=settings.max_prompt_chars)
        cost_weight = check_cost_weight(cost_weight)
        latency_weight = check_latency_weight(latency_weight)
        exclude = check_exclude(exclude, service.pool.ids)
        max_tokens = check_max_tokens(max_tokens, limit=settings.max_tokens)
        router, _ = service.router_for(caller_of(request, settings))
        return service.query(prompt, cost_weight=cost_weight, exclude=exclude, max_tokens=max_tokens,
                             latency_weight=latency_weight, router=router)

    @user_errors
    def query_specific(prompt: str, model: str = "", max_tokens: int | None = None,
                       request: gr.Request = None) -> dict:
        """Ask one pool model directly (no routing); `model` is a pool id."""
        prompt = check_prompt(prompt, max_chars=settings.max_prompt_chars)
        model = check_model_id(model, service.pool.ids, "model")
        max_tokens = check_max_tokens(max_tokens, limit=settings.max_tokens)
        router, _ = service.router_for(caller_of(request, settings))
        return service.query_specific(prompt, model, max_tokens=max_tokens, router=router)

    @user_errors
    def feedback(answer_id: str, rating: str = "", better_model: str = "", note: str = "",
                 request: gr.Request = None) -> dict:
        """Rate an answer: `rating` "up" or "down", and/or `better_model` (a pool id that would have answered
        better). `answer_id` comes with each /query answer; the rating overrides the evaluator in training.
        Only the session that got the answer (the same client, or the same signed-in user) can rate it; a
        second rating of an answer replaces the first; at most 20 ratings a minute per session."""
        ids = service.pool.ids
        if not isinstance(better_model, str) or (better_model and better_model not in ids):
            check_model_id(better_model, ids, "better_model")
        return service.learning.rate(answer_id, rating, better_model, note, rater=gradio_scope(request))

    gr.api(query, api_name="query")
    gr.api(query_specific, api_name="query-specific")
    gr.api(feedback, api_name="feedback")
