"""Judged answers from an outcome table (RouterBench layout): one row per prompt and model.

Read by the evaluator's benchmark (:mod:`routing.evaluation.benchmark`) and by the quality
model's training (:mod:`training.quality`), which both score the same answers: a module of its
own so that neither has to import the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

RESPONSE_SUFFIX = "|model_response"


def _turns_text(raw: str) -> str:
    """A Python-literal list of turns (or a plain string) as one text."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return str(raw)
    if isinstance(value, (list, tuple)):
        return "\n\n".join(str(v) for v in value)
    return str(value)


def load_answers(path: Path) -> pd.DataFrame:
    """One row per (prompt, model) with a real answer and a 0/1 score.

    Columns: ``prompt_id``, ``model``, ``prompt``, ``answer``, ``correct``. Rows whose
    score is missing are dropped.
    """
    frame = pd.read_csv(path)
    models = [c[: -len(RESPONSE_SUFFIX)] for c in frame.columns if c.endswith(RESPONSE_SUFFIX)]
    models = [m for m in models if m in frame.columns]
    id_column = "sample_id" if "sample_id" in frame.columns else frame.columns[0]
    prompts = frame["prompt"].map(_turns_text)
    rows = []
    for model in models:
        for idx in range(len(frame)):
            score = frame[model].iat[idx]
            response = frame[model + RESPONSE_SUFFIX].iat[idx]
            if pd.isna(score):
                continue
            rows.append({
                "prompt_id": frame[id_column].iat[idx],
                "model": model,
                "prompt": prompts.iat[idx],
                "answer": _turns_text(response) if isinstance(response, str) else "",
                "correct": int(float(score) >= 0.5),
            })
    return pd.DataFrame(rows, columns=["prompt_id", "model", "prompt", "answer", "correct"])
