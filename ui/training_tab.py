"""Training tab: run label -> prepare -> train from the browser, see metrics and the release gate.

Off unless the owner sets ROUTER_ALLOW_TRAINING=1 (a public Space must not let anyone train).
API: /train (the same handler, with progress).
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from routing.charts.base import confusion_matrix_figure, loss_curve_figure
from routing.errors import UserError
from routing.service import RouterService
from routing.safety.untrusted import md_text
from routing.safety.validation import InvalidInput, check_choice, check_float, check_int, check_optional_text
from ui.batch_tab import uploaded_path
from ui.common import user_errors

#: Accepted ranges (inclusive) of the training parameters, in the form and in /train.
EPOCHS = (1, 50)
LEARNING_RATES = (1e-6, 1e-2)
BATCH_SIZES = (1, 256)
UPLOAD_TYPES = (".csv", ".parquet", ".json", ".jsonl", ".txt")

# Choice shown to the user -> (label source, whether it needs an uploaded file)
DATA_CHOICES: dict[str, tuple[str, bool]] = {
    "Built-in corpus, rule labels": ("rules", False),
    "Uploaded prompt file, rule labels": ("rules", True),
    "Uploaded outcome table (RouterBench CSV or LLMRouter JSON)": ("outcomes", True),
    "Compare-all outcome log": ("feedback", False),
}

# Choice shown to the user -> training strategy (training/pipeline/strategies.py)
STRATEGY_CHOICES: dict[str, str] = {
    "Fine-tune the encoder (minutes)": "finetune",
    "Best head by cross-validation (about a minute)": "auto",
    "kNN head (per-model neighbours)": "knn",
    "Cluster head": "cluster",
    "Linear head": "linear",
    "MLP head (bagged)": "mlp",
    "Refine the evidence prior with outcomes (seconds)": "prior",
}


def metrics_markdown(result: dict[str, Any], epochs: int | None = None) -> str:
    m, gate = result["metrics"], result["gate"]
    verdict = "✅ **promoted**: the app now routes with it" if gate.get("promoted") else "⛔ **not promoted**"
    split = result.get("test_split") or {}
    where = ("the same prompts as earlier runs (frozen)" if split.get("frozen_from")
             else "a new split (no earlier one matched these prompts; later runs keep it)")
    lines = [f"### {verdict}", md_text(gate.get("reason", "")),
             f"Test split ({m.get('n', '?')} prompts, {where}): accuracy **{m.get('accuracy', 0):.3f}**, "
             f"macro-F1 **{m.get('macro_f1', 0):.3f}**"
             + (f", routed quality **{m['routed_quality']:.3f}**" if m.get("routed_quality") is not None else ""),
             f"Objective: {result.get('objective')} · training {result.get('train_seconds')} s · "
             f"all steps {result.get('seconds')} s"]
    head = gate.get("candidate") or gate.get("strategy")
    if head and head != "finetune":
        scores = {k: v for k, v in (gate.get("validation") or {}).items() if isinstance(v, (int, float))}
        line = f"Selector: the `{md_text(str(head))}` head on the bundled encoder"
        if len(scores) > 1:
            top = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
            what = "AIQ" if gate.get("validation_criterion") == "aiq" else "routed quality"
            line += (f", picked by 3-fold cross-validation on TRAIN ({what}: "
                     + ", ".join(f"{md_text(k)} {v:.4f}" for k, v in top) + ")")
            best = gate.get("validation_best")
            if best and best != head:
                line += (f"; `{md_text(str(best))}` scored highest, but within one standard error, so the "
                         "simpler head was kept")
        lines.append(line)
    from training.pipeline.run import refusal_advice  # torch and datasets load only when training

    tips = refusal_advice(result, epochs=epochs)
    if tips:
        lines.append("**To try next:**\n" + "\n".join(f"- {md_text(t)}" for t in tips))
    notes = result.get("notes", [])
    if notes:
        lines.append("**Notes:**\n" + "\n".join(f"- {md_text(n)}" for n in notes))
    return "\n\n".join(lines)


def progress_markdown(fraction: float, message: str, elapsed_s: float) -> str:
    """The run's progress, shown in the summary while it trains (the button is disabled meanwhile)."""
    minutes, seconds = divmod(int(elapsed_s), 60)
    bar = "█" * int(fraction * 20) + "░" * (20 - int(fraction * 20))
    return (f"### ⏳ Training… {fraction:.0%}\n\n`{bar}` {md_text(message)} · {minutes} min {seconds:02d} s so far"
            "\n\nThe run continues if you leave this tab; the result appears here when it ends.")


def build_training_tab(service: RouterService) -> None:
    settings = service.settings

    @user_errors
    def train_selector(data: str, upload: Any = None, base_model: str = "", epochs: float = 4,
                       learning_rate: float = 1e-4, batch_size: float = 16,
                       strategy: str = next(iter(STRATEGY_CHOICES))) -> Iterator[tuple]:
        # Raw payloads (the event has preprocess=False): every input is checked here, before the switch.
        data = check_choice(data, list(DATA_CHOICES), "data")
        upload = str(uploaded_path(upload, "upload")) if upload is not None else None
        if upload is not None and Path(upload).suffix.lower() not in UPLOAD_TYPES:
            raise InvalidInput("upload", f"upload must be one of {', '.join(UPLOAD_TYPES)} files "
                                         f"(got {Path(upload).name!r}).")
        base_model = check_optional_text(base_model, "base_model") or ""
        epochs = check_int(epochs, "epochs", *EPOCHS, default=4)
        learning_rate = check_float(learning_rate, "learning_rate", *LEARNING_RATES, default=1e-4)
        batch_size = check_int(batch_size, "batch_size", *BATCH_SIZES, default=16)
        strategy = STRATEGY_CHOICES[check_choice(strategy, list(STRATEGY_CHOICES), "strategy")]
        if not settings.allow_training:
            raise UserError("Training is off on this deployment. The owner can turn it on by setting "
                            "ROUTER_ALLOW_TRAINING=1 and restarting the app.")
        source, needs_file = DATA_CHOICES[data]
        if needs_file and not upload:
            raise UserError("Upload a file for this choice (prompts: JSON, JSONL or CSV with a prompt/text/question "
                            "column; outcomes: RouterBench-style CSV or LLMRouter JSON).")
        from training.pipeline.run import run_pipeline  # torch and datasets load only when training

        # The run works in a thread; this generator shows its progress in the summary as it goes.
        steps: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = run_pipeline(
                    source, upload if needs_file else None, base_model.strip() or None, int(epochs),
                    float(learning_rate), int(batch_size), settings.data_dir / "training",
                    progress=lambda f, msg: steps.put((f, msg)), selector_dir=settings.selector_dir,
                    label_encoder_file=settings.label_encoder_file, pool=service.pool, strategy=strategy)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the handler's thread below
                outcome["error"] = exc

        started = time.monotonic()
        thread = threading.Thread(target=work, name="training-run", daemon=True)
        thread.start()
        fraction, message = 0.0, "starting"
        while thread.is_alive():
            thread.join(timeout=0.5)
            while not steps.empty():
                fraction, message = steps.get()
            yield progress_markdown(fraction, message, time.monotonic() - started), gr.skip(), gr.skip(), gr.skip()
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        if result["gate"].get("promoted"):
            service.reload_selector()
        cm = result["confusion_matrix"]
        yield (metrics_markdown(result, int(epochs)),
               confusion_matrix_figure(cm["labels"], cm["matrix"], title="Test split: expected vs predicted"),
               loss_curve_figure(result["loss_history"]), result)

    def versions_table() -> list[list[Any]]:
        from training.pipeline.release import version_rows

        return version_rows(Path(settings.selector_dir))

    def rollback_state() -> dict:
        from training.pipeline.release import can_roll_back

        return gr.update(interactive=settings.allow_training and can_roll_back(Path(settings.selector_dir)))

    @user_errors
    def roll_back() -> tuple:
        from training.pipeline.release import rollback

        if not settings.allow_training:
            raise UserError("Training is off on this deployment (ROUTER_ALLOW_TRAINING=1 turns it on), so is rollback.")
        try:
            rollback(Path(settings.selector_dir), Path(settings.label_encoder_file))
        except FileNotFoundError:
            raise UserError("There is no previous selector to roll back to (one appears after a promotion).") from None
        name = service.reload_selector()
        return (f"↩️ Rolled back: the previous selector is live again ({md_text(name)}); the one it replaced is "
                "now the previous one (roll back again to undo)."), versions_table(), rollback_state()

    with gr.Tab("Training", id="training") as tab:
        if not settings.allow_training:
            gr.Markdown("🔒 **Training is off on this deployment.** The owner can enable it with "
                        "`ROUTER_ALLOW_TRAINING=1`. From a shell: `python -m training.pipeline --source rules`.")
        gr.Markdown("Label prompts, split them (the test split stays frozen across retrains), train the "
                    "selector (fine-tune the encoder, or a head on it), and promote it only if it does at least as "
                    "well as the current one on that split.")
        with gr.Row():
            data = gr.Radio(list(DATA_CHOICES), value=next(iter(DATA_CHOICES)), label="Training data")
            upload = gr.File(label="File (for the uploaded choices)", file_types=list(UPLOAD_TYPES), type="filepath",
                             elem_id="train-file")
        with gr.Row():
            base_model = gr.Textbox("", label="Base encoder", placeholder="default: bundled all-MiniLM-L6-v2; any HF "
                                    "name or local path", elem_id="train-base")
            epochs = gr.Number(4, label="Epochs", precision=0, minimum=EPOCHS[0], maximum=EPOCHS[1])
            learning_rate = gr.Number(1e-4, label="Learning rate", minimum=LEARNING_RATES[0], maximum=LEARNING_RATES[1])
            batch_size = gr.Number(16, label="Batch size", precision=0, minimum=BATCH_SIZES[0], maximum=BATCH_SIZES[1])
            strategy = gr.Dropdown(list(STRATEGY_CHOICES), value=next(iter(STRATEGY_CHOICES)), label="Strategy",
                                   info="a head on the bundled encoder trains in seconds and reads a sparse log as "
                                        "it is; epochs and learning rate apply to fine-tuning only",
                                   elem_id="train-strategy")
        button = gr.Button("Train", variant="primary", interactive=settings.allow_training, elem_id="train-button")
        summary = gr.Markdown(elem_id="train-summary")
        with gr.Row():
            confusion = gr.Plot(label="Confusion matrix")
            loss = gr.Plot(label="Loss curve")
        with gr.Accordion("Full result (JSON)", open=False):
            details = gr.JSON()
        gr.Markdown("### Selector versions\n" + md_text(service.learning.retrainer.describe()), elem_id="train-auto")
        from training.pipeline.release import VERSION_COLUMNS

        versions = gr.Dataframe(value=versions_table(), headers=VERSION_COLUMNS, interactive=False,
                                elem_id="train-versions", wrap=True)
        with gr.Row():
            # On only when there is a previous selector to bring back (checked again when the tab opens).
            rollback_button = gr.Button("Roll back to the previous selector", elem_id="train-rollback",
                                        interactive=rollback_state()["interactive"])
            rollback_note = gr.Markdown(elem_id="train-rollback-note")
        rollback_button.click(roll_back, None, [rollback_note, versions, rollback_button], api_visibility="private")
        # What another process (automatic retraining, the CLI) promoted meanwhile shows when the tab opens.
        tab.select(lambda: (versions_table(), rollback_state()), None, [versions, rollback_button],
                   api_visibility="private", queue=False)
        # The button is off while a run lasts (one run at a time), on again however it ends.
        button.click(lambda: gr.update(interactive=False, value="Training…"), None, [button],
                     api_visibility="private", queue=False).then(
            train_selector, [data, upload, base_model, epochs, learning_rate, batch_size, strategy],
            [summary, confusion, loss, details], api_name="train", preprocess=False,
            concurrency_limit=1, concurrency_id="training", show_progress="hidden").then(
            lambda: (gr.update(interactive=settings.allow_training, value="Train"), versions_table(), rollback_state()),
            None, [button, versions, rollback_button], api_visibility="private", queue=False)
