"""Is a prompt unlike anything the selector learned from? (issue 30, item 4)

The evidence prior was fitted on some 15,600 public prompts (labelled topics and the outcome
tables' train splits). :data:`N_EXEMPLARS` of them, drawn at random, are kept as exemplars (int8
vectors with a scale per row: 1.5 MB instead of 12 MB for all); a prompt's *familiarity* is its
cosine similarity to the nearest exemplar, or to the nearest prompt the outcome refinement observed
when that is closer. The threshold is set from the training data's own distances: the familiarity
that :data:`FLAG_SHARE` (1%) of held-out training prompts (never exemplars) fall below. A prompt
under it is flagged: the decision says it was routed on the public ratings and the price, with no
data like it behind the kind and difficulty the prior read. (k-means centroids were tried first:
their similarities separate gibberish from real prompts worse; the figures are in docs/selectors.md.)

Fitted by ``training.prior.fit.fit_novelty`` (``python -m training.prior --novelty-only --out DIR``).
Files (beside ``prior.safetensors``): ``novelty.safetensors`` (``exemplars`` int8, ``scales``,
``threshold``) and the fit's figures in ``config.json``'s ``router.novelty``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NOVELTY_FILE = "novelty.safetensors"
N_EXEMPLARS = 4096
FLAG_SHARE = 0.01


@dataclass
class Novelty:
    exemplars: np.ndarray          # (n, hidden), unit rows
    threshold: float               # familiarity below this is "unlike the training data"
    info: dict[str, Any] = field(default_factory=dict)

    def familiarity(self, X: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
        """(n,) the cosine similarity of each (unit) embedding to the nearest exemplar, or to the
        nearest row of ``seen`` (prompts observed since, e.g. the refinement's) when closer."""
        X = np.asarray(X, np.float32)
        best = (X @ self.exemplars.T).max(axis=1) if len(self.exemplars) else np.full(len(X), -1.0)
        if seen is not None and len(seen):
            best = np.maximum(best, (X @ np.asarray(seen, np.float32).T).max(axis=1))
        return best

    def save_precision(self) -> None:
        """Round the exemplars as :meth:`save` stores them (int8 with a scale per row), so what is
        measured before saving is what loads."""
        scales = np.maximum(np.abs(self.exemplars).max(axis=1), 1e-12) / 127.0
        rounded = np.clip(np.round(self.exemplars / scales[:, None]), -127, 127) * scales[:, None]
        self.exemplars = (rounded / np.maximum(np.linalg.norm(rounded, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def unlike(self, X: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
        return self.familiarity(X, seen) < self.threshold

    def save(self, folder: str | Path) -> Path:
        """Write ``novelty.safetensors`` and record the fit in ``config.json`` (``router.novelty``)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        scales = np.maximum(np.abs(self.exemplars).max(axis=1), 1e-12) / 127.0
        codes = np.clip(np.round(self.exemplars / scales[:, None]), -127, 127).astype(np.int8)
        save_file({"exemplars": np.ascontiguousarray(codes), "scales": scales.astype(np.float32),
                   "threshold": np.asarray([self.threshold], np.float32)}, str(folder / NOVELTY_FILE))
        config_file = folder / "config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        config["router"]["novelty"] = {"threshold": round(float(self.threshold), 4), **self.info}
        config_file.write_text(json.dumps(config, indent=1), encoding="utf-8")
        return folder / NOVELTY_FILE

    @classmethod
    def load(cls, folder: str | Path) -> "Novelty | None":
        """The folder's novelty check, or None where it has none (a prior fitted before it existed)."""
        from safetensors.numpy import load_file

        path = Path(folder) / NOVELTY_FILE
        if not path.is_file():
            return None
        arrays = load_file(str(path))
        exemplars = arrays["exemplars"].astype(np.float32) * arrays["scales"][:, None]
        exemplars /= np.maximum(np.linalg.norm(exemplars, axis=1, keepdims=True), 1e-12)
        try:
            info = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))["router"].get("novelty", {})
        except (OSError, ValueError, KeyError):
            info = {}
        return cls(exemplars, float(arrays["threshold"][0]), dict(info))


__all__ = ["Novelty", "NOVELTY_FILE", "N_EXEMPLARS", "FLAG_SHARE"]
