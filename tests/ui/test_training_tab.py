"""The Training tab through gradio_client: off by default, and a tiny run that promotes a model."""

import json
import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.app_harness import launch_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402

BUILTIN = "Built-in corpus, rule labels"
UPLOADED = "Uploaded prompt file, rule labels"


def service_for(settings):
    from routing.service import RouterService

    return RouterService(settings, background=False)


def test_training_is_refused_unless_the_owner_enables_it(tmp_path):
    with launch_app(service_for(router_settings(None, tmp_path))) as url:
        with pytest.raises(AppError, match="ROUTER_ALLOW_TRAINING=1"):
            Client(url, verbose=False).predict(data=BUILTIN, api_name="/train")


def tiny_training_inputs(tmp_path):
    """A prompt file (a tenth of the built-in corpus) and a tiny random encoder: a training run in seconds."""
    from training.tiny import make_tiny_encoder

    corpus = [json.loads(line) for line in open("assets/prompt_corpus.jsonl", encoding="utf-8")][::10]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": r["text"]}) for r in corpus), encoding="utf-8")
    return prompts, make_tiny_encoder(tmp_path / "tiny")


def trainable_service(tmp_path):
    """A service with training on and no learned selector yet (it routes with the rules)."""
    return service_for(router_settings(None, tmp_path, allow_training=True, selector="auto",
                                       selector_dir=tmp_path / "selector_model",
                                       label_encoder_file=tmp_path / "label_encoder.json"))


def test_tiny_training_run_promotes_a_model_and_the_app_uses_it(tmp_path):
    prompts, base = tiny_training_inputs(tmp_path)
    service = trainable_service(tmp_path)
    with launch_app(service) as url:
        client = Client(url, verbose=False)
        assert service.selector.name == "rules"  # no learned model yet
        with pytest.raises(AppError, match="Upload a file"):
            client.predict(data=UPLOADED, api_name="/train")
        summary, confusion, loss, result = client.predict(
            data=UPLOADED, upload=handle_file(str(prompts)), base_model=str(base), epochs=1,
            learning_rate=1e-3, batch_size=8, api_name="/train")
    assert result["gate"]["promoted"] is True and "promoted" in summary
    assert result["label"]["source"] == "rules"
    assert 0 <= result["metrics"]["accuracy"] <= 1
    assert result["confusion_matrix"]["labels"] == service.pool.ids
    assert result["loss_history"]
    assert (tmp_path / "selector_model" / "config.json").is_file()
    assert service.selector.name == "learned"


def test_a_refused_promotion_says_what_to_try_and_the_split_is_described_truly():
    from ui.training_tab import metrics_markdown, progress_markdown

    result = {"metrics": {"n": 40, "accuracy": 0.7, "macro_f1": 0.6},
              "gate": {"promoted": False, "reason": "macro_f1 0.6 < live 0.7: kept the live model"},
              "label": {"source": "rules"}, "test_split": {"frozen_from": "data/training/test_split.json"},
              "notes": ["test split frozen by data/training/test_split.json (40 of 40 prompts present)"]}
    import re

    def shown(markdown):  # the text as rendered (md_text escapes punctuation with backslashes)
        return re.sub(r"\\(.)", r"\1", markdown)

    text = shown(metrics_markdown(result, epochs=2))
    assert "not promoted" in text and "To try next" in text and "more epochs (this run: 2" in text
    assert "real outcomes" in text and "the same prompts as earlier runs" in text
    result["test_split"] = {"frozen_from": None}
    assert "a new split" in metrics_markdown(result) and "frozen across" not in metrics_markdown(result)
    result["gate"]["promoted"] = True
    assert "To try next" not in metrics_markdown(result)
    assert "42%" in progress_markdown(0.42, "epoch 1/2", 75) and "1 min 15 s" in progress_markdown(0.42, "x", 75)
    # which head auto picked, and the runners-up it beat, by the criterion it used
    result["gate"].update(strategy="ensemble", candidate="linear+mlp", validation_criterion="aiq",
                          validation={"knn": 0.8401, "linear+mlp": 0.8488, "mlp": 0.8460, "cluster": 0.83})
    text = shown(metrics_markdown(result))
    assert "the `linear+mlp` head" in text and "AIQ: linear+mlp 0.8488, mlp 0.8460, knn 0.8401" in text
    result["gate"].update(strategy="mlp", candidate=None, validation_best="linear+mlp")
    assert "`linear+mlp` scored highest, but within one standard error" in shown(metrics_markdown(result))


def test_a_head_strategy_trains_in_seconds_from_the_tab_and_the_app_routes_with_it(tmp_path):
    from tests.routing.selectors.test_selector_heads import _sparse_table

    table = tmp_path / "outcomes.json"
    table.write_text(json.dumps(_sparse_table(None)))
    service = trainable_service(tmp_path)
    with launch_app(service) as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="strategy"):
            client.predict(data="Uploaded outcome table (RouterBench CSV or LLMRouter JSON)",
                           upload=handle_file(str(table)), strategy="magic", api_name="/train")
        summary, _, _, result = client.predict(
            data="Uploaded outcome table (RouterBench CSV or LLMRouter JSON)", upload=handle_file(str(table)),
            strategy="kNN head (per-model neighbours)", api_name="/train")
    assert result["gate"]["promoted"] and result["gate"]["strategy"] == "knn" and "promoted" in summary
    assert service.selector.name == "learned"
    assert service.selector.select("Write a short poem about the sea #7").selected_model == "llama-3.3"
