"""Pool tab: the model pool as a table; the owner adds, edits or removes endpoint models, tests an
endpoint without spending anything, and saves with a reload (no restart).

Editing is off unless the owner sets ROUTER_ALLOW_POOL_EDIT=1 (routing/pool_editor/policy.py).
API: /pool (read), /pool-test, /pool-save, /pool-remove, /pool-revert (refused while editing is off).
The work is done by routing/pool_editor/.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from routing.categories import CATEGORIES
from routing.errors import UserError
from routing.pool_editor import (NEW_MODEL, editing_refusal, pool_view, remove_model, revert_pool, save_model,
                                 test_endpoint)
from routing.pool_editor.edit import DEFAULT_CONTEXT
from routing.pool_editor.view import COLUMNS, files_markdown, table_rows
from routing.service import RouterService
from routing.safety.untrusted import md_text
from ui.common import user_errors

_STATE_ICONS = {"listed": "✅", "not_listed": "❌", "no_listing": "ℹ️", "refused": "🔑", "unreachable": "⚠️",
                "error": "⚠️"}


def _fields(model_id: Any, display_name: Any, base_url: Any, model_name: Any, api_key_env: Any,
            input_price_per_m: Any, output_price_per_m: Any, context_length: Any, strengths: Any,
            categories: Any) -> dict[str, Any]:
    return {"id": model_id, "display_name": display_name, "base_url": base_url, "model_name": model_name,
            "api_key_env": api_key_env, "input_price_per_m": input_price_per_m,
            "output_price_per_m": output_price_per_m, "context_length": context_length, "strengths": strengths,
            "categories": categories}


def result_markdown(result: dict[str, Any]) -> str:
    lines = ["✅ " + md_text(result["message"])]
    lines += ["⚠️ " + md_text(w) for w in result.get("warnings") or []]
    return "\n\n".join(lines)


def build_pool_tab(service: RouterService) -> None:
    refusal = editing_refusal(service.settings)
    editable = refusal is None

    def shown(value: str | None = None) -> tuple[str, list[list[Any]], dict]:
        """The files line, the table and the "Model to edit" choices (``value``: the one chosen, if given)."""
        view = pool_view(service)
        choices = [NEW_MODEL] + [m["id"] for m in view["models"]]
        chosen = gr.update(choices=choices) if value is None else gr.update(choices=choices, value=value)
        return files_markdown(view), table_rows(view), chosen

    @user_errors
    def refresh() -> tuple:
        return shown()

    @user_errors
    def fill(choice: str) -> tuple:
        pool = service.pool
        if not choice or choice == NEW_MODEL or choice not in pool:
            return ("", "", "", "", "", 0, 0, DEFAULT_CONTEXT, "", [], "")
        spec = pool.get(choice)
        note = ("" if spec.provider == "openai_compatible" else
                f"ℹ️ {md_text(spec.id)} is an {md_text(spec.provider)} model: it can be removed here; its settings "
                "are edited in the pool file.")
        return (spec.id, spec.display_name, spec.base_url or "", spec.model_name, spec.api_key_env or "",
                spec.input_price_per_m, spec.output_price_per_m, spec.context_length, spec.strengths,
                list(spec.categories), note)

    @user_errors
    def test(base_url: str, model_name: str, api_key_env: str) -> str:
        check = test_endpoint(service.settings, {"base_url": base_url, "model_name": model_name,
                                                 "api_key_env": api_key_env})
        return f"{_STATE_ICONS.get(check.state, '')} **Test endpoint:** {md_text(check.message)}"

    @user_errors
    def save(choice: str, *values: Any) -> tuple:
        result = save_model(service, _fields(*values), edit_id=None if choice == NEW_MODEL else choice)
        return (result_markdown(result), *shown(result["model_id"]))

    @user_errors
    def remove(choice: str) -> tuple:
        if not choice or choice == NEW_MODEL:
            raise UserError("Choose the model to remove under \"Model to edit\".")
        return (result_markdown(remove_model(service, choice)), *shown(NEW_MODEL))

    @user_errors
    def revert() -> tuple:
        return (result_markdown(revert_pool(service)), *shown(NEW_MODEL))

    view = pool_view(service)
    with gr.Tab("Pool", id="pool") as tab:
        gr.Markdown("The models the router may pick. The owner can add an OpenAI-compatible endpoint (Ollama, vLLM, "
                    "llama.cpp server, a hosted API), change one, or remove any model; **Save and reload** checks the "
                    "pool as start-up would, saves it and swaps it into the running app (answers already on their "
                    "way finish on the pool they started with). The key is the *name* of an environment variable "
                    "on the server that holds it, never the key itself.")
        if refusal:
            first, _, rest = refusal.partition(". ")
            gr.Markdown(f"🔒 **{md_text(first)}.** {md_text(rest)}", elem_id="pool-lock")
        files = gr.Markdown(files_markdown(view), elem_id="pool-files")
        table = gr.Dataframe(value=table_rows(view), headers=COLUMNS, interactive=False, wrap=True,
                             elem_id="pool-table")
        with gr.Group():
            choose = gr.Dropdown([NEW_MODEL] + [m["id"] for m in view["models"]], value=NEW_MODEL,
                                 label="Model to edit", interactive=editable, elem_id="pool-choose")
            with gr.Row():
                model_id = gr.Textbox(label="Id", placeholder="llama-local", max_lines=1, interactive=editable,
                                      elem_id="pool-id")
                display_name = gr.Textbox(label="Display name", placeholder="Llama 3.2 (Ollama)", max_lines=1,
                                          interactive=editable, elem_id="pool-name")
            with gr.Row():
                base_url = gr.Textbox(label="Base URL", placeholder="http://localhost:11434/v1", max_lines=1,
                                      interactive=editable, elem_id="pool-base-url")
                model_name = gr.Textbox(label="Model name (the endpoint's)", placeholder="llama3.2", max_lines=1,
                                        interactive=editable, elem_id="pool-model-name")
                api_key_env = gr.Textbox(label="Key variable (name, not the key)", placeholder="TOGETHER_API_KEY",
                                         max_lines=1, interactive=editable, elem_id="pool-key-env",
                                         info="empty: no key; the page never shows its value")
            with gr.Row():
                price_in = gr.Number(0, label="$ per million input tokens", minimum=0, interactive=editable,
                                     elem_id="pool-price-in")
                price_out = gr.Number(0, label="$ per million output tokens", minimum=0, interactive=editable,
                                      elem_id="pool-price-out")
                context = gr.Number(DEFAULT_CONTEXT, label="Context length (tokens)", precision=0, minimum=1,
                                    interactive=editable, elem_id="pool-context")
            strengths = gr.Textbox(label="Strengths", max_lines=1, interactive=editable, elem_id="pool-strengths")
            categories = gr.CheckboxGroup(list(CATEGORIES), label="Categories the keyword rules send here",
                                          interactive=editable, elem_id="pool-categories")
            with gr.Row():
                test_button = gr.Button("Test endpoint", interactive=editable, elem_id="pool-test")
                save_button = gr.Button("Save and reload", variant="primary", interactive=editable,
                                        elem_id="pool-save")
                remove_button = gr.Button("Remove this model", variant="stop", interactive=editable,
                                          elem_id="pool-remove")
                revert_button = gr.Button("Revert to the shipped pool", interactive=editable, elem_id="pool-revert")
        note = gr.Markdown(elem_id="pool-result")

        form = [model_id, display_name, base_url, model_name, api_key_env, price_in, price_out, context, strengths,
                categories]
        outputs = [note, files, table, choose]
        tab.select(refresh, None, [files, table, choose], api_visibility="private")
        choose.input(fill, [choose], form + [note], api_visibility="private")   # a person's choice only
        test_button.click(test, [base_url, model_name, api_key_env], [note], api_visibility="private")
        save_button.click(save, [choose] + form, outputs, api_visibility="private", concurrency_limit=1,
                          concurrency_id="pool-edit")
        remove_button.click(remove, [choose], outputs, api_visibility="private", concurrency_limit=1,
                            concurrency_id="pool-edit")
        revert_button.click(revert, None, outputs, api_visibility="private", concurrency_limit=1,
                            concurrency_id="pool-edit")


def add_pool_api(service: RouterService) -> None:
    @user_errors
    def pool() -> dict:
        """The pool: per model its id, name, provider, model name, base URL, key variable (its name and whether it
        is set, never the value), prices, context length, categories and evidence status; which file is live,
        where edits go, and whether they may be made here (`editable`, `refusal`)."""
        return pool_view(service)

    @user_errors
    def pool_test(base_url: str, model_name: str, api_key_env: str = "") -> dict:
        """Test an OpenAI-compatible endpoint without spending anything: GET {base_url}/models, and is
        `model_name` listed? `state`: listed, not_listed, no_listing (a test would need a paid call, which
        this does not make), refused, unreachable or error. Refused unless ROUTER_ALLOW_POOL_EDIT=1."""
        return test_endpoint(service.settings, {"base_url": base_url, "model_name": model_name,
                                                "api_key_env": api_key_env}).to_dict()

    @user_errors
    def pool_save(model_id: str, base_url: str, model_name: str, display_name: str = "", api_key_env: str = "",
                  input_price_per_m: float = 0.0, output_price_per_m: float = 0.0,
                  context_length: int = DEFAULT_CONTEXT, strengths: str = "", categories: list[str] | None = None,
                  edit_id: str = "") -> dict:
        """Add an OpenAI-compatible endpoint model (`edit_id` empty) or change the one with id `edit_id`, save
        the pool to <ROUTER_DATA_DIR>/models.json and reload it without a restart. `api_key_env` is the NAME of
        the environment variable holding the key. Refused unless ROUTER_ALLOW_POOL_EDIT=1."""
        return save_model(service, _fields(model_id, display_name, base_url, model_name, api_key_env,
                                           input_price_per_m, output_price_per_m, context_length, strengths,
                                           categories), edit_id=edit_id)

    @user_errors
    def pool_remove(model_id: str) -> dict:
        """Remove a model from the pool, save and reload. Refused unless ROUTER_ALLOW_POOL_EDIT=1."""
        return remove_model(service, model_id)

    @user_errors
    def pool_revert() -> dict:
        """Delete <ROUTER_DATA_DIR>/models.json and reload the shipped pool (ROUTER_MODELS_FILE). Refused
        unless ROUTER_ALLOW_POOL_EDIT=1."""
        return revert_pool(service)

    gr.api(pool, api_name="pool")
    gr.api(pool_test, api_name="pool-test")
    gr.api(pool_save, api_name="pool-save")
    gr.api(pool_remove, api_name="pool-remove")
    gr.api(pool_revert, api_name="pool-revert")
