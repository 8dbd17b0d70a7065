"""Selection testing tab: how often does the selector pick the model a user would expect?

API: /test-selection (built-in samples, pasted ``samples`` or an uploaded ``file``) returns JSON.
The work is done by routing/diagnostics/selection_test.py.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from gradio.data_classes import FileData

from routing.charts.batch import confusion_matrix_figure
from routing.errors import UserError
from routing.diagnostics.selection_test import (DECISION_COLUMNS, MAX_SAMPLES, SelectionTester, check_basis,
                                                choose_samples, decision_rows, default_basis, disagreement_columns,
                                                source_description)
from routing.service import RouterService
from routing.safety.untrusted import md_text
from routing.safety.validation import check_samples_text
from ui.batch_tab import uploaded_path
from ui.common import user_errors

PASTE_EXAMPLE = ('{"text": "Write a haiku about autumn", "expected": "creative"}\n'
                 '{"text": "Integrate x^2 from 0 to 3", "expected": "qwen2.5"}')


#: The tab's words for the two bases (routing.diagnostics.selection_test.BASES).
BASIS_CHOICES = {"public ratings (evidence)": "evidence", "the keyword rules' mapping": "rules"}

_TESTERS: "weakref.WeakKeyDictionary[RouterService, SelectionTester]" = weakref.WeakKeyDictionary()


def _tester(service: RouterService) -> SelectionTester:
    """One tester per service, so the learned selector is loaded once, not per request."""
    if service not in _TESTERS:
        _TESTERS[service] = SelectionTester(service.settings, service.pool, active=service.selector)
    return _TESTERS[service]


def run_selection(service: RouterService, *, samples_text: str = "", file_path: str | Path | None = None,
                  basis: str | None = None) -> dict[str, Any]:
    """Samples from an upload, else pasted text, else the built-in set; every selector's result,
    judged against ``basis`` (``evidence`` by default where the pool carries ratings, or ``rules``)."""
    basis = check_basis(basis, service.pool)
    samples, source = choose_samples(service.pool, samples_text=samples_text, file_path=file_path, basis=basis)
    return _tester(service).run(samples, source=source, basis=basis)


def summary_markdown(result: dict[str, Any]) -> str:
    lines = [f"### {result['samples']} samples ({md_text(result['source'])})",
             md_text(result.get("expectation") or "")]
    for name, r in result["selectors"].items():
        lat = r["latency_ms"]
        lines.append(f"**{name}**: accuracy **{r['accuracy']:.0%}** ({r['correct']}/{r['samples']}) · "
                     f"routing latency median {lat['median']:.2f} ms, p95 {lat['p95']:.2f} ms per prompt")
    if result.get("learned_unavailable"):
        lines.append(f"ℹ️ {md_text(result['learned_unavailable'])}")
    elif len(result["selectors"]) == 2:
        lines.append(f"The two selectors disagree on {len(result['disagreements'])} of {result['samples']} prompts.")
    return "\n\n".join(lines)


def _table(columns: list[tuple[str, int]] | tuple[tuple[str, int], ...], rows: list[list[Any]]) -> gr.Dataframe:
    """A table with its column widths, shown (a component returned from an event updates it)."""
    return gr.Dataframe(value=pd.DataFrame(rows, columns=[c for c, _ in columns]),
                        column_widths=[f"{w}px" for _, w in columns], visible=True)


def decisions_table(result: dict[str, Any]) -> pd.DataFrame:
    """Every decision, the verdict first and the prompt last."""
    return pd.DataFrame(decision_rows(result), columns=[c for c, _ in DECISION_COLUMNS])


def build_selection_tab(service: RouterService) -> None:
    """The Selection testing tab."""
    pool = service.pool

    @user_errors
    def run(pasted: str, upload: str | None, basis: str):
        if (pasted or "").strip() and not upload:
            check_samples_text(pasted, max_rows=MAX_SAMPLES, name="Pasted samples")
        path = uploaded_path(upload) if upload else None
        result = run_selection(service, samples_text="" if path else (pasted or ""), file_path=path,
                               basis=BASIS_CHOICES.get(basis, basis))
        names = list(result["selectors"])
        figs = [confusion_matrix_figure(result["selectors"][n], pool) for n in names]
        learned_fig = figs[1] if len(figs) > 1 else None
        columns = disagreement_columns(result)
        rows = [[d.get(c) for c, _ in columns] for d in result["disagreements"]]
        # None (one selector, or two that agree): hidden, as before a run (the summary says how many)
        disagreements = _table(columns, rows) if rows else gr.update(value=None, visible=False)
        return (summary_markdown(result), _table(DECISION_COLUMNS, decision_rows(result)), figs[0],
                gr.update(value=learned_fig, visible=learned_fig is not None), disagreements, result)

    def describe(pasted: str, upload: str | None) -> str:
        return source_description(pasted or "", bool(upload))

    with gr.Tab("Selection testing", id="selection"):
        gr.Markdown("Run the selector over prompts labelled with the model (or category) a user would expect: "
                    "accuracy, a confusion matrix, per-prompt routing latency, and the rule-based and learned "
                    "selectors side by side where both exist. A category expects the pool model rated best in "
                    "it by public ratings, or, if you choose, the model the keyword rules give it.")
        with gr.Row():
            pasted = gr.Textbox(label="Pasted samples (JSONL or CSV with a header)", lines=4,
                                placeholder=PASTE_EXAMPLE, elem_id="selection-pasted")
            upload = gr.File(label="CSV or JSONL (text, expected)", type="filepath",
                             file_types=[".csv", ".jsonl", ".json", ".tsv"], elem_id="selection-file")
        source = gr.Markdown(source_description(), elem_id="selection-source")
        default = next(k for k, v in BASIS_CHOICES.items() if v == default_basis(pool))
        basis = gr.Radio(list(BASIS_CHOICES), value=default, label="Judge picks against", elem_id="selection-basis")
        button = gr.Button("Test selection", variant="primary", elem_id="selection-run")
        status = gr.Markdown(elem_id="selection-status")
        with gr.Row():
            rules_plot = gr.Plot(label="Confusion matrix", elem_id="selection-confusion")
            learned_plot = gr.Plot(label="Confusion matrix (learned)", visible=False, elem_id="selection-confusion-2")
        # Hidden until there are disagreements (an empty table without headers showed "1 2 3").
        disagreements = gr.Dataframe(label="Prompts the selectors disagree on", interactive=False, wrap=True,
                                     visible=False, elem_id="selection-disagreements")
        decisions = gr.Dataframe(label="Every decision", interactive=False, wrap=True, elem_id="selection-decisions",
                                 headers=[c for c, _ in DECISION_COLUMNS],
                                 column_widths=[f"{w}px" for _, w in DECISION_COLUMNS])
        with gr.Accordion("Result (JSON, as /test-selection returns)", open=False):
            result = gr.JSON()
        for name, given in (("pasted", pasted), ("file", upload)):
            given.change(describe, [pasted, upload], [source], api_name=f"selection-source-{name}",
                         api_visibility="private", show_progress="hidden", trigger_mode="always_last")
        # The run reads the samples themselves (upload, else pasted, else built-in), not a switch
        # the user must remember to set: what is in the boxes when Test is clicked is what runs.
        button.click(run, [pasted, upload, basis], [status, decisions, rules_plot, learned_plot, disagreements, result],
                     api_name="selection-run", api_visibility="private", show_progress_on=[status])


def add_selection_api(service: RouterService) -> None:
    """Register /test-selection."""

    @user_errors
    def test_selection(samples: str = "", file: FileData | None = None, basis: str = "") -> dict:
        """Test the selector(s) on labelled prompts: the built-in set by default, or `samples` (pasted
        JSONL/CSV with text and expected model id or category) or `file` (uploaded with handle_file).
        `basis`: what a category expects, "evidence" (the pool model rated best in it by public ratings;
        the default where the pool carries ratings) or "rules" (the model the pool file's categories give it).
        Returns accuracy, confusion matrix, latency and every decision per selector, the disagreements,
        and `basis` / `expectation`: which judged them."""
        samples = check_samples_text(samples, max_rows=MAX_SAMPLES)
        if file is not None and samples.strip():
            raise UserError("Give either `samples` (pasted JSONL or CSV) or `file` (an upload), not both.")
        path = uploaded_path(file) if file is not None else None
        return run_selection(service, samples_text=samples, file_path=path, basis=basis or None)

    gr.api(test_selection, api_name="test-selection")


__all__ = ["build_selection_tab", "add_selection_api", "run_selection"]
