"""Selection testing: run selectors over prompts labelled with the model a user would expect.

Samples come from the built-in ``assets/selection_samples.jsonl`` (``{"text",
"expected_category"}``) or from a user's CSV / JSONL (a text column and an expected model id
or category). A model id is the expectation as given. A category is turned into a model on one
of two stated bases:

* ``evidence`` (the default where the pool's models carry public ratings): the pool model rated
  best by LMArena in the matching rating category (coding -> coding, math -> math, creative ->
  creative_writing, reasoning -> hard prompts, anything else -> overall);
* ``rules``: the model the pool file's ``categories`` give it (``RuleSelector._category_map``),
  which is the keyword rules' own opinion, so it judges selectors by agreement with the rules.

Every result says which basis judged it.

For each selector: every decision with confidence and runner-up, accuracy, a confusion
matrix (sklearn), and routing latency per prompt (median and p95, one prompt at a time).
With both the rule-based and the learned selector, they run side by side and the prompts on
which they disagree are listed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from routing.batch.io import open_batch_file
from routing.categories import CATEGORIES
from routing.errors import UserError
from routing.pool import ModelPool
from routing.selectors import load_selector
from routing.selectors.base import Selector
from routing.selectors.rules import RuleSelector
from routing.settings import ASSETS_DIR, Settings

BUILTIN_SAMPLES = ASSETS_DIR / "selection_samples.jsonl"
#: Columns read as the text and as the expectation (case-insensitive), in order of preference.
TEXT_COLUMNS = ("text", "prompt", "question")
EXPECTED_COLUMNS = ("expected_model", "expected_category", "expected", "model", "category", "label")
MAX_SAMPLES = 2000


@dataclass(frozen=True)
class LabelledSample:
    """A prompt and the model a user would expect it routed to."""

    text: str
    expected_model: str
    expected_category: str | None = None


BASES = ("evidence", "rules")
#: The keyword rules' categories as LMArena rating categories (the rest: ``full``, overall).
RATING_CATEGORY = {"coding": "coding", "math": "math", "creative": "creative_writing", "reasoning": "hard_6"}


def default_basis(pool: ModelPool) -> str:
    """``evidence`` when any pool model carries public ratings, else ``rules``."""
    return "evidence" if any(((m.evidence or {}).get("ratings") or {}).get("categories") for m in pool.models) \
        else "rules"


def evidence_map(pool: ModelPool) -> dict[str, tuple[str, str, float]]:
    """Category -> (model rated best in the matching rating category, that category, its rating)."""
    from routing.selectors.prior import RATING_CATEGORIES, ratings_from_pool

    ratings = ratings_from_pool(pool)
    out = {}
    for category in CATEGORIES:
        rating_category = RATING_CATEGORY.get(category, "full")
        col = ratings.R[:, RATING_CATEGORIES.index(rating_category)]
        best = int(np.argmax(col))                   # ties: the first in pool order
        out[category] = (pool.ids[best], rating_category, float(col[best]))
    return out


def expected_model_for(label: str, pool: ModelPool, basis: str = "rules") -> tuple[str, str | None]:
    """(model id, category or None) for a label that is a pool model id or a category."""
    label = str(label or "").strip()
    if label in pool:
        return label, None
    lowered = label.lower()
    if lowered in CATEGORIES:
        if basis == "evidence":
            return evidence_map(pool)[lowered][0], lowered
        return RuleSelector._category_map(pool)[lowered], lowered
    raise UserError(f"Expected label {label!r} is neither a pool model ({', '.join(pool.ids)}) "
                    f"nor a category ({', '.join(CATEGORIES)}).")


def check_basis(basis: str | None, pool: ModelPool) -> str:
    basis = (basis or default_basis(pool)).strip().lower()
    if basis not in BASES:
        raise UserError(f"Judge picks against {', '.join(BASES)}, not {basis!r}.")
    return basis


def basis_description(basis: str, pool: ModelPool) -> str:
    """Which expectation judged the picks, in words."""
    if basis == "evidence":
        pairs = {}
        for category, (model, rating_category, rating) in evidence_map(pool).items():
            pairs.setdefault((rating_category, model, rating), []).append(category)
        parts = [f"{', '.join(cats)} → {pool.get(model).display_name} ({rating_category} {rating:.0f})"
                 for (rating_category, model, rating), cats in pairs.items()]
        return ("Judged against the public evidence: a category expects the pool model rated best by LMArena in "
                "the matching category (" + "; ".join(parts) + "). A model id in the samples is used as given.")
    return ("Judged against the keyword rules' mapping (the pool file's categories): this measures agreement "
            "with the rules, not with evidence about the models. A model id is used as given.")


def _pick(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def load_samples(path: str | Path, pool: ModelPool, *, max_samples: int = MAX_SAMPLES,
                 basis: str = "rules") -> list[LabelledSample]:
    """Labelled samples from a CSV or JSONL file (checked like a batch input)."""
    source = open_batch_file(path, max_rows=max_samples, max_mb=5)
    expected = _pick(source.columns, EXPECTED_COLUMNS)
    if expected is None:
        raise UserError(f"No expectation column: name one of {', '.join(EXPECTED_COLUMNS)} (a model id or a "
                        f"category). The columns found are {', '.join(source.columns)}.")
    text_column = _pick(source.columns, TEXT_COLUMNS) or source.prompt_column
    samples = []
    for row in source.iter_rows():
        text = str(row.fields.get(text_column) or "").strip()
        label = row.fields.get(expected)
        if not text:
            raise UserError(f"Sample {row.index + 1} has an empty {text_column!r}.")
        try:
            model, category = expected_model_for(str(label or ""), pool, basis)
        except UserError as exc:
            raise UserError(f"Sample {row.index + 1}: {exc}") from None
        samples.append(LabelledSample(text, model, category))
    return samples


def builtin_samples(pool: ModelPool, basis: str = "rules") -> list[LabelledSample]:
    """The built-in labelled set (``assets/selection_samples.jsonl``)."""
    if not BUILTIN_SAMPLES.is_file():
        raise UserError(f"The built-in sample set {BUILTIN_SAMPLES} is missing; paste or upload your own.")
    return load_samples(BUILTIN_SAMPLES, pool, basis=basis)


def parse_pasted_samples(text: str, pool: ModelPool, work_dir: str | Path, basis: str = "rules"
                         ) -> list[LabelledSample]:
    """Samples pasted as JSONL (lines starting with '{') or CSV with a header."""
    text = (text or "").strip()
    if not text:
        raise UserError("Paste samples first: JSONL lines like {\"text\": ..., \"expected\": \"coding\"} "
                        "or a CSV with text and expected columns.")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".jsonl" if text.startswith("{") else ".csv"
    path = work_dir / f"pasted-samples-{time.time_ns()}{suffix}"
    path.write_text(text + "\n", encoding="utf-8")
    try:
        return load_samples(path, pool, basis=basis)
    finally:
        path.unlink(missing_ok=True)


def choose_samples(pool: ModelPool, *, samples_text: str = "", file_path: str | Path | None = None,
                   work_dir: str | Path | None = None, basis: str = "rules") -> tuple[list[LabelledSample], str]:
    """(samples, where they came from): an uploaded file, else pasted text, else the built-in set.

    The precedence of ``/test-selection`` and of the tab: what the user gave is what runs,
    with no separate switch to set (a switch the user forgot left pasted samples unused).
    """
    if file_path:
        return load_samples(file_path, pool, basis=basis), Path(file_path).name
    if samples_text and samples_text.strip():
        if work_dir is not None:
            return parse_pasted_samples(samples_text, pool, work_dir, basis), "pasted"
        import tempfile

        with tempfile.TemporaryDirectory(prefix="samples-") as work:
            return parse_pasted_samples(samples_text, pool, work, basis), "pasted"
    return builtin_samples(pool, basis), BUILTIN_SAMPLES.name


def source_description(samples_text: str = "", has_file: bool = False) -> str:
    """Which samples :func:`choose_samples` will run, in words (for the tab, before a run)."""
    if has_file:
        return ("Testing the **uploaded file**" + (" (the pasted samples are ignored while a file is uploaded)"
                                                   if (samples_text or "").strip() else "")
                + ". Remove the file to use pasted samples or the built-in set.")
    if (samples_text or "").strip():
        return "Testing the **pasted samples**. Clear the box to use the built-in set."
    return (f"Testing the **built-in set** (`{BUILTIN_SAMPLES.name}`). Paste samples or upload a file to test "
            "yours instead.")


#: Columns of the decisions table, the verdict first and the prompt last (a long prompt pushed
#: expected / selected / correct off-screen), with widths in px.
DECISION_COLUMNS: tuple[tuple[str, int], ...] = (
    ("selector", 90), ("expected", 140), ("selected", 140), ("correct", 90), ("confidence", 110),
    ("runner-up", 140), ("ms", 80), ("prompt", 420))


def decision_rows(result: dict[str, Any]) -> list[list[Any]]:
    """Every decision of every selector as a row of :data:`DECISION_COLUMNS`."""
    rows = []
    for name, r in result["selectors"].items():
        for d in r["decisions"]:
            rows.append([name, d["expected"], d["selected"], "✓" if d["correct"] else "✗", d["confidence"],
                         d["runner_up"], d["latency_ms"], d["text"]])
    return rows


def disagreement_columns(result: dict[str, Any]) -> list[tuple[str, int]]:
    """Columns of the disagreements table: expected and each selector's pick, then the prompt."""
    names = ["expected"] + list(result["selectors"])
    return [(n, 140) for n in names] + [("text", 420)]


# --------------------------------------------------------------------------- running

def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def run_selection_test(selector: Selector, samples: Sequence[LabelledSample]) -> dict[str, Any]:
    """Decisions, accuracy, confusion matrix and per-prompt latency of one selector."""
    from sklearn.metrics import accuracy_score, confusion_matrix

    if not samples:
        raise UserError("No samples to test.")
    pool = selector.pool
    decisions = []
    latencies = []
    for sample in samples:
        start = time.perf_counter()
        sel = selector.select(sample.text)
        latencies.append((time.perf_counter() - start) * 1000)
        decisions.append({
            "text": sample.text, "expected": sample.expected_model, "expected_category": sample.expected_category,
            "selected": sel.selected_model, "correct": sel.selected_model == sample.expected_model,
            "confidence": round(float(sel.confidence), 4), "runner_up": sel.runner_up,
            "latency_ms": round(latencies[-1], 3),
        })
    expected = [d["expected"] for d in decisions]
    selected = [d["selected"] for d in decisions]
    labels = pool.ids
    matrix = confusion_matrix(expected, selected, labels=labels)
    per_model = {}
    for i, m in enumerate(labels):
        support = int(matrix[i].sum())
        per_model[m] = {"support": support, "recall": round(float(matrix[i, i] / support), 4) if support else None}
    return {
        "selector": selector.name,
        "samples": len(decisions),
        "accuracy": round(float(accuracy_score(expected, selected)), 4),
        "correct": int(sum(d["correct"] for d in decisions)),
        "confusion": {"labels": labels, "matrix": matrix.tolist(), "rows": "expected", "columns": "selected"},
        "per_model": per_model,
        "latency_ms": {"median": round(statistics.median(latencies), 3), "p95": round(_percentile(latencies, 95), 3),
                       "mean": round(statistics.fmean(latencies), 3)},
        "decisions": decisions,
    }


class SelectionTester:
    """Runs the rule-based selector and, when it loads, the learned one on the same samples.

    The learned selector is the service's own when that one is learned, else loaded once
    (``load_selector(settings, pool, "learned")``) and kept.
    """

    def __init__(self, settings: Settings, pool: ModelPool, active: Selector | None = None):
        self.settings = settings
        self.pool = pool
        self.active = active
        self._learned: Selector | None = active if active is not None and active.name in ("learned", "prior") else None

    def selectors(self) -> tuple[list[Selector], str | None]:
        """The selectors to compare, and why the learned one is missing (None when present)."""
        rules = self.active if self.active is not None and self.active.name == "rules" else RuleSelector(self.pool)
        if self._learned is None:
            try:
                self._learned, _ = load_selector(self.settings, self.pool, "learned")
            except UserError as exc:
                return [rules], f"Learned selector not shown: {exc}"
        return [rules, self._learned], None

    def run(self, samples: Sequence[LabelledSample], *, source: str = "built-in", basis: str = "rules"
            ) -> dict[str, Any]:
        """Every selector's result, side by side, plus the prompts they disagree on."""
        selectors, learned_missing = self.selectors()
        results = {s.name: run_selection_test(s, samples) for s in selectors}
        disagreements = []
        if len(results) == 2:
            a, b = list(results.values())
            for da, db in zip(a["decisions"], b["decisions"]):
                if da["selected"] != db["selected"]:
                    disagreements.append({"text": da["text"], "expected": da["expected"],
                                          a["selector"]: da["selected"], b["selector"]: db["selected"]})
        return {"source": source, "samples": len(samples), "selectors": results, "basis": basis,
                "expectation": basis_description(basis, self.pool),
                "learned_unavailable": learned_missing, "disagreements": disagreements,
                "summary": {name: {"accuracy": r["accuracy"], "median_latency_ms": r["latency_ms"]["median"],
                                   "p95_latency_ms": r["latency_ms"]["p95"]} for name, r in results.items()}}


__all__ = ["LabelledSample", "SelectionTester", "BASES", "check_basis", "default_basis", "basis_description", "BUILTIN_SAMPLES", "builtin_samples", "load_samples",
           "parse_pasted_samples", "expected_model_for", "run_selection_test", "choose_samples",
           "source_description", "DECISION_COLUMNS", "decision_rows", "disagreement_columns"]
