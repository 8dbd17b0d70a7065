"""Routes tab: routes from a few examples. A table of the routes with each one's threshold and
leave-one-out figures; the owner adds, replaces or removes a route (saved and reloaded, no restart);
anyone can test a prompt against every route and see what the router would choose.

Editing is off unless the owner sets ROUTER_ALLOW_ROUTE_EDIT=1 (routing/routes/policy.py).
API: /routes (read), /routes-test, /routes-save, /routes-remove (the last two refused while editing is off).
The work is done by routing/routes/.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from routing.errors import UserError
from routing.routes.edit import (NEW_ROUTE, TARGET_CHEAPEST, TARGET_EXCLUDE, remove_route, routes_view, save_route,
                                 try_prompt)
from routing.routes.policy import editing_refusal
from routing.safety.untrusted import md_code, md_text
from routing.service import RouterService
from ui.common import user_errors

COLUMNS = ["route", "target", "examples", "negatives", "threshold", "LOO accuracy", "LOO precision", "LOO recall",
           "description"]
TEST_COLUMNS = ["route", "similarity", "threshold", "matches", "closest example", "target"]
CHEAPEST_LABEL = "cheapest: the cheapest model that can be called"
EXCLUDE_LABEL = "exclude: the selector decides among the models not ticked below"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.0%}"


def table_rows(view: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for r in view["routes"]:
        loo = r["leave_one_out"]
        rows.append([r["name"], r["target_description"], len(r["examples"]), len(r["negatives"]),
                     f"{r['threshold']:.3f}", _pct(loo["accuracy"]), _pct(loo["precision"]), _pct(loo["recall"]),
                     r.get("description") or ""])
    return rows


def summary_markdown(view: dict[str, Any]) -> str:
    n = len(view["routes"])
    lines = [f"Routes file {md_code(view['file'])}: " + (f"{n} route{'s' if n != 1 else ''}." if view["exists"]
                                                         else "none yet (no file: no routes).")]
    overall = view["overall"]
    if overall.get("accuracy") is not None:
        lines.append(f"Leave-one-out, all routes together: {overall['correct']} of {overall['examples']} held-out "
                     f"examples go to their own route ({overall['accuracy']:.0%}).")
    if view.get("warning"):
        lines.append("⚠️ " + md_text(view["warning"]))
    return "\n\n".join(lines)


def _target_choices(pool_ids: list[str]) -> list[tuple[str, str]]:
    return [(m, m) for m in pool_ids] + [(CHEAPEST_LABEL, TARGET_CHEAPEST), (EXCLUDE_LABEL, TARGET_EXCLUDE)]


def verdict_markdown(result: dict[str, Any]) -> str:
    chosen = f"**{md_text(result['selected_name'])}** ({md_code(result['selected_model'])})"
    if result["route"]:
        score = next(s for s in result["routes"] if s["name"] == result["route"])
        head = (f"✅ Route **{md_text(result['route'])}** matches: similarity {score['similarity']:.3f} against its "
                f"threshold {score['threshold']:.3f} → {chosen}")
    elif not result["routes"]:
        head = f"No routes yet: the selector decides → {chosen}"
    else:
        head = f"No route matches: the selector decides → {chosen}"
    return head + "\n\n" + md_text(result["reasoning"])


def score_rows(result: dict[str, Any]) -> list[list[Any]]:
    return [[s["name"], f"{s['similarity']:.3f}", f"{s['threshold']:.3f}", "yes" if s["matched"] else "no",
             s["closest_example"], s["target"]] for s in result["routes"]]


def result_markdown(result: dict[str, Any]) -> str:
    return "✅ " + md_text(result["message"])


def build_routes_tab(service: RouterService) -> None:
    refusal = editing_refusal(service.settings)
    editable = refusal is None

    def shown(value: str | None = None) -> tuple:
        """The summary, the table, the "Route to edit" choices and the target choices (they follow the pool)."""
        view = routes_view(service)
        names = [NEW_ROUTE] + [r["name"] for r in view["routes"]]
        chosen = gr.update(choices=names) if value is None else gr.update(choices=names, value=value)
        ids = service.pool.ids
        return (summary_markdown(view), table_rows(view), chosen, gr.update(choices=_target_choices(ids)),
                gr.update(choices=ids))

    @user_errors
    def refresh() -> tuple:
        return shown()

    @user_errors
    def fill(choice: str) -> tuple:
        route = service.routes.get(choice) if choice and choice != NEW_ROUTE else None
        if route is None:
            return "", "", "", "", None, [], ""
        target = route.target
        value = target.model or (TARGET_CHEAPEST if target.rule else TARGET_EXCLUDE)
        return (route.name, "\n".join(route.examples), "\n".join(route.negatives), route.description, value,
                list(target.exclude), "")

    @user_errors
    def save(choice: str, name: str, examples: str, negatives: str, description: str, target: str,
             exclude: list[str]) -> tuple:
        result = save_route(service, {"name": name, "examples": examples, "negatives": negatives,
                                      "description": description, "target": target, "exclude": exclude},
                            edit_name=None if choice == NEW_ROUTE else choice)
        return (result_markdown(result), *shown(result["route"]))

    @user_errors
    def remove(choice: str) -> tuple:
        if not choice or choice == NEW_ROUTE:
            raise UserError("Choose the route to remove under \"Route to edit\".")
        return (result_markdown(remove_route(service, choice)), *shown(NEW_ROUTE))

    @user_errors
    def test(prompt: str) -> tuple:
        result = try_prompt(service, prompt)
        return verdict_markdown(result), score_rows(result)

    view = routes_view(service)
    ids = service.pool.ids
    with gr.Tab("Routes", id="routes") as tab:
        gr.Markdown("A **route** sends the prompts that mean the same as its 3 to 10 example prompts to a model of "
                    "your choosing, before the selector decides: a pool model, the cheapest model that can be "
                    "called, or the selector's pick without some models. Negative examples keep near misses out. "
                    "Each route's threshold is calibrated from its own examples by leave-one-out (each example "
                    "against the others; its negatives and the other routes' examples must stay out); the "
                    "table shows it with the accuracy, precision and recall that calibration measured. A prompt "
                    "no route matches goes to the selector.")
        if refusal:
            first, _, rest = refusal.partition(". ")
            gr.Markdown(f"🔒 **{md_text(first)}.** {md_text(rest)}", elem_id="routes-lock")
        summary = gr.Markdown(summary_markdown(view), elem_id="routes-file")
        table = gr.Dataframe(value=table_rows(view), headers=COLUMNS, interactive=False, wrap=True,
                             elem_id="routes-table")
        with gr.Group():
            gr.Markdown("**Test a prompt** (nothing is spent: no model is called)")
            test_prompt = gr.Textbox(label="Prompt", lines=2, elem_id="routes-test-prompt")
            test_button = gr.Button("Test", elem_id="routes-test-button")
            verdict = gr.Markdown(elem_id="routes-test-verdict")
            scores = gr.Dataframe(headers=TEST_COLUMNS, interactive=False, wrap=True, elem_id="routes-test-table")
        with gr.Group():
            choose = gr.Dropdown([NEW_ROUTE] + [r["name"] for r in view["routes"]], value=NEW_ROUTE,
                                 label="Route to edit", interactive=editable, elem_id="routes-choose")
            name = gr.Textbox(label="Name", max_lines=1, placeholder="legal", interactive=editable,
                              elem_id="routes-name")
            with gr.Row():
                examples = gr.Textbox(label="Examples (3 to 10, one per line)", lines=6, interactive=editable,
                                      elem_id="routes-examples")
                negatives = gr.Textbox(label="Negative examples (optional, one per line)", lines=6,
                                       interactive=editable, elem_id="routes-negatives",
                                       info="near misses this route must not take")
            description = gr.Textbox(label="Description (optional)", max_lines=1, interactive=editable,
                                     elem_id="routes-description")
            with gr.Row():
                target = gr.Dropdown(_target_choices(ids), value=None, label="Target", interactive=editable,
                                     elem_id="routes-target")
                exclude = gr.CheckboxGroup(ids, label="Models to leave out (target \"exclude\")",
                                           interactive=editable, elem_id="routes-exclude")
            with gr.Row():
                save_button = gr.Button("Save and reload", variant="primary", interactive=editable,
                                        elem_id="routes-save")
                remove_button = gr.Button("Remove this route", variant="stop", interactive=editable,
                                          elem_id="routes-remove")
        note = gr.Markdown(elem_id="routes-result")

        form = [name, examples, negatives, description, target, exclude]
        listed = [summary, table, choose, target, exclude]
        tab.select(refresh, None, listed, api_visibility="private")
        choose.input(fill, [choose], form + [note], api_visibility="private")
        save_button.click(save, [choose] + form, [note] + listed, api_visibility="private", concurrency_limit=1,
                          concurrency_id="routes-edit")
        remove_button.click(remove, [choose], [note] + listed, api_visibility="private", concurrency_limit=1,
                            concurrency_id="routes-edit")
        test_button.click(test, [test_prompt], [verdict, scores], api_visibility="private")
        test_prompt.submit(test, [test_prompt], [verdict, scores], api_visibility="private")


def add_routes_api(service: RouterService) -> None:
    @user_errors
    def routes() -> dict:
        """The routes: per route its name, examples, negatives, description, target, threshold and leave-one-out
        figures (accuracy, precision, recall, the scores they came from); the file, and whether routes may be
        edited here (`editable`, `refusal`)."""
        return routes_view(service)

    @user_errors
    def routes_test(prompt: str) -> dict:
        """Every route's similarity to `prompt` against its threshold (with its closest example), the route that
        matches (`route`, `route_similarity`; null: none) and what the router would choose. Calls no model."""
        return try_prompt(service, prompt)

    @user_errors
    def routes_save(name: str, examples: list[str], target: str, negatives: list[str] | None = None,
                    description: str = "", exclude: list[str] | None = None, edit_name: str = "") -> dict:
        """Add a route, or replace the route named `edit_name` (or, without it, the one named `name`): 3 to 10
        `examples`, optional `negatives` and `description`; `target` a pool id, "cheapest" (the cheapest
        callable model) or "exclude" (the selector decides without the pool ids in `exclude`). Saved to the
        routes file and reloaded. Refused unless ROUTER_ALLOW_ROUTE_EDIT=1."""
        return save_route(service, {"name": name, "examples": examples, "negatives": negatives,
                                    "description": description, "target": target, "exclude": exclude},
                          edit_name=edit_name)

    @user_errors
    def routes_remove(name: str) -> dict:
        """Remove the route `name`, save and reload. Refused unless ROUTER_ALLOW_ROUTE_EDIT=1."""
        return remove_route(service, name)

    gr.api(routes, api_name="routes")
    gr.api(routes_test, api_name="routes-test")
    gr.api(routes_save, api_name="routes-save")
    gr.api(routes_remove, api_name="routes-remove")
