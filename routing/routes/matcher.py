"""Matching a prompt to routes by meaning, with each route's threshold calibrated from its own examples.

Embeddings are the bundled MiniLM's (:mod:`routing.selectors.encoder`), the very instance the
evidence prior reads prompts with (:func:`route_encoder`), so routes add no second model to memory.

**Similarity** of a prompt ``p`` to a route (unit vectors, so dot products are cosines)::

    similarity = cos(p, centroid of the examples) - max(0, nearest negative - nearest example)

The centroid (the normalised mean of the examples) is steadier than the nearest example when a
route has few examples: one odd example cannot pull in prompts on its own. The penalty applies only
when the prompt is closer to one of the route's negatives than to any of its examples, by that margin.

**Threshold**, per route, by leave-one-out (:func:`calibrate`): each example is scored against
the route built from the *other* examples (a match), each negative against the route with the
*other* negatives (a non-match), and every other route's examples against the whole route (non-matches).
The threshold is the cut between two neighbouring scores that maximises F1 on those labelled scores,
set midway between them (ties go to the higher cut: a missed route falls through to the selector,
a wrong one overrides it), and never below :data:`MIN_THRESHOLD`. The route's accuracy, precision and
recall at that threshold are reported; they are measured on the scores the threshold was chosen on,
so they are an optimistic estimate.

A prompt matches the route of highest similarity among those at or above their own threshold
(:meth:`RouteMatcher.match`); no match falls through to the selector.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from routing.routes.store import Route

#: No route's threshold goes below this cosine: unrelated prompts score about -0.3 to 0.2 against a
#: route's centroid with MiniLM (docs/selectors.md, "Routes from examples"), so a calibration that found
#: no non-match near the examples still does not open the route to everything.
MIN_THRESHOLD = 0.2


def route_encoder(settings: Any = None) -> Any:
    """The bundled MiniLM as the evidence prior loads it: :func:`routing.selectors.encoder.shared_encoder`
    with the shipped prior's truncation and precision, so it is the same instance (one copy in memory)."""
    import json

    from routing.selectors import fast_path as fp
    from routing.selectors.encoder import bundled_encoder_path, shared_encoder
    from routing.settings import DEFAULT_SELECTOR_DIR

    try:
        config = json.loads((DEFAULT_SELECTOR_DIR / "config.json").read_text(encoding="utf-8")).get("router", {})
    except (OSError, ValueError):
        config = {}
    setting = getattr(settings, "fast_path", "auto") if settings is not None else "auto"
    quantized = setting != "off" and fp.enabled(DEFAULT_SELECTOR_DIR, setting)
    return shared_encoder(bundled_encoder_path(), int(config.get("max_length", 256)),
                          int(config.get("head_tokens", 32)), quantized)


# --------------------------------------------------------------------------- the numbers

def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def similarities(prompts: np.ndarray, examples: np.ndarray, negatives: np.ndarray) -> dict[str, np.ndarray]:
    """Each prompt's similarity to a route (see the module docstring), with its parts:
    ``centroid``, ``nearest_example`` / ``example`` (index), ``nearest_negative`` / ``negative`` (-1: none)."""
    prompts = np.atleast_2d(prompts)
    to_examples = prompts @ examples.T
    nearest = to_examples.max(axis=1)
    centroid = prompts @ _unit(examples.mean(axis=0))
    if len(negatives):
        to_negatives = prompts @ negatives.T
        nearest_negative = to_negatives.max(axis=1)
        negative = to_negatives.argmax(axis=1)
    else:
        nearest_negative = np.full(len(prompts), -1.0)
        negative = np.full(len(prompts), -1)
    penalty = np.maximum(0.0, nearest_negative - nearest)
    return {"similarity": centroid - penalty, "centroid": centroid, "nearest_example": nearest,
            "example": to_examples.argmax(axis=1), "nearest_negative": nearest_negative, "negative": negative}


def leave_one_out(examples: np.ndarray, negatives: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the route's labelled prompts: each example against the others (matches); each negative
    against the examples and the other negatives, and ``others`` (other routes' examples) against the
    whole route (non-matches)."""
    pos = np.array([similarities(examples[i], np.delete(examples, i, axis=0), negatives)["similarity"][0]
                    for i in range(len(examples))])
    non = [similarities(negatives[j], examples, np.delete(negatives, j, axis=0))["similarity"][0]
           for j in range(len(negatives))]
    if len(others):
        non.extend(similarities(others, examples, negatives)["similarity"])
    return pos, np.array(non, dtype=float)


def figures(pos: np.ndarray, non: np.ndarray, threshold: float) -> dict[str, Any]:
    tp = int((pos >= threshold).sum())
    fp = int((non >= threshold).sum())
    fn, tn = len(pos) - tp, len(non) - fp
    total = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"threshold": round(float(threshold), 4), "accuracy": round((tp + tn) / total, 4) if total else None,
            "precision": None if precision is None else round(precision, 4),
            "recall": None if recall is None else round(recall, 4), "f1": round(f1, 4),
            "examples": int(len(pos)), "non_matches": int(len(non)), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def calibrate(pos: np.ndarray, non: np.ndarray, floor: float = MIN_THRESHOLD) -> dict[str, Any]:
    """The threshold maximising F1 on leave-one-out scores (module docstring), with its figures."""
    values = np.unique(np.concatenate([pos, non]))            # sorted
    best: tuple[float, float] | None = None                     # (f1, threshold)
    for i, cut in enumerate(values):
        if not (pos >= cut).any():
            continue
        below = values[i - 1] if i else None
        threshold = (cut + below) / 2 if below is not None else cut - 0.05
        threshold = max(float(threshold), floor)
        f1 = figures(pos, non, threshold)["f1"]
        if best is None or f1 > best[0] or (f1 == best[0] and threshold > best[1]):
            best = (f1, threshold)
    threshold = best[1] if best else floor
    return figures(pos, non, threshold)


# --------------------------------------------------------------------------- the matcher

@dataclass(frozen=True)
class RouteScore:
    """One route's similarity to a prompt, against its threshold."""

    name: str
    similarity: float
    threshold: float
    matched: bool
    closest_example: str
    closest_example_similarity: float
    closest_negative: str | None
    closest_negative_similarity: float | None
    target: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "similarity": round(self.similarity, 4), "threshold": round(self.threshold, 4),
                "matched": self.matched, "target": self.target, "closest_example": self.closest_example,
                "closest_example_similarity": round(self.closest_example_similarity, 4),
                "closest_negative": self.closest_negative,
                "closest_negative_similarity": None if self.closest_negative_similarity is None
                else round(self.closest_negative_similarity, 4)}


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    similarity: float
    threshold: float


_CACHE: dict[tuple[int, str], np.ndarray] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 4096


def _embed(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """Embeddings of ``texts``; those seen before (by this encoder) come from a small cache, so saving one
    route does not embed every other route's examples again."""
    with _CACHE_LOCK:
        missing = [t for t in dict.fromkeys(texts) if (id(encoder), t) not in _CACHE]
    if missing:
        vectors = np.asarray(encoder.embed(missing), dtype=np.float32)
        with _CACHE_LOCK:
            if len(_CACHE) + len(missing) > _CACHE_MAX:
                _CACHE.clear()
            _CACHE.update({(id(encoder), t): v for t, v in zip(missing, vectors)})
    with _CACHE_LOCK:
        found = {t: _CACHE.get((id(encoder), t)) for t in texts}
    if any(v is None for v in found.values()):      # evicted meanwhile by another thread
        return np.asarray(encoder.embed(list(texts)), dtype=np.float32)
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


class RouteMatcher:
    """The routes, embedded and calibrated. Immutable once built: a change builds a new one.

    ``encoder`` embeds text (``embed(list[str]) -> (n, d)`` unit vectors); without it, ``encoder_factory()``
    or :func:`route_encoder` gives one, only when there are routes (no routes load no model).
    """

    def __init__(self, routes: Sequence[Route], encoder: Any = None, *, settings: Any = None,
                 encoder_factory: Callable[[], Any] | None = None, source: str = ""):
        self.routes: list[Route] = list(routes)
        self.source = source
        if encoder is None and self.routes:
            encoder = encoder_factory() if encoder_factory else route_encoder(settings)
        self.encoder = encoder
        self._examples: list[np.ndarray] = []
        self._negatives: list[np.ndarray] = []
        self.reports: list[dict[str, Any]] = []
        for route in self.routes:
            vectors = _embed(self.encoder, [*route.examples, *route.negatives])
            self._examples.append(vectors[: len(route.examples)])
            self._negatives.append(vectors[len(route.examples):].reshape(len(route.negatives), vectors.shape[1]))
        for i, route in enumerate(self.routes):
            others = [e for j, e in enumerate(self._examples) if j != i]
            others_m = np.concatenate(others) if others else np.zeros((0, self._examples[i].shape[1]), np.float32)
            pos, non = leave_one_out(self._examples[i], self._negatives[i], others_m)
            report = calibrate(pos, non)
            report.update(name=route.name, negatives=len(route.negatives),
                          other_routes_examples=int(len(others_m)),
                          leave_one_out_scores={"examples": [round(float(s), 4) for s in pos],
                                                "non_matches": [round(float(s), 4) for s in non]})
            self.reports.append(report)
        self.thresholds = {r["name"]: r["threshold"] for r in self.reports}

    def __len__(self) -> int:
        return len(self.routes)

    def __bool__(self) -> bool:   # an empty matcher is still a matcher (``if service.routes`` means "any routes")
        return bool(self.routes)

    def get(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)

    def scores(self, prompt: str) -> list[RouteScore]:
        """Every route's similarity to ``prompt`` against its threshold, in the routes' order."""
        if not self.routes:
            return []
        vector = np.asarray(self.encoder.embed([prompt]), dtype=np.float32)   # prompts are not cached
        out = []
        for route, examples, negatives, report in zip(self.routes, self._examples, self._negatives, self.reports):
            parts = similarities(vector, examples, negatives)
            sim, threshold = float(parts["similarity"][0]), float(report["threshold"])
            negative = int(parts["negative"][0])
            out.append(RouteScore(
                name=route.name, similarity=sim, threshold=threshold, matched=sim >= threshold,
                closest_example=route.examples[int(parts["example"][0])],
                closest_example_similarity=float(parts["nearest_example"][0]),
                closest_negative=route.negatives[negative] if negative >= 0 else None,
                closest_negative_similarity=float(parts["nearest_negative"][0]) if negative >= 0 else None,
                target=route.target.describe()))
        return out

    def match(self, prompt: str, scores: Sequence[RouteScore] | None = None) -> RouteMatch | None:
        """The route of highest similarity among those at or above their threshold; None when none is."""
        scores = self.scores(prompt) if scores is None else scores
        matched = [s for s in scores if s.matched]
        if not matched:
            return None
        best = max(matched, key=lambda s: s.similarity)
        return RouteMatch(self.get(best.name), best.similarity, best.threshold)

    def report(self) -> dict[str, Any]:
        """Per route: threshold and leave-one-out figures; overall: how many held-out examples
        :meth:`match` would send to their own route, and negatives it would keep out of theirs."""
        return {"routes": [dict(r) for r in self.reports], "overall": self._overall(), "source": self.source,
                "similarity": "cos(prompt, centroid of the examples) - max(0, nearest negative - nearest example)",
                "min_threshold": MIN_THRESHOLD}

    def _overall(self) -> dict[str, Any]:
        if not self.routes:
            return {"examples": 0, "correct": 0, "accuracy": None}
        correct = total = 0
        for i in range(len(self.routes)):
            for k in range(len(self.routes[i].examples)):
                best, best_sim = None, -np.inf
                for j in range(len(self.routes)):
                    examples = np.delete(self._examples[j], k, axis=0) if j == i else self._examples[j]
                    sim = float(similarities(self._examples[i][k], examples, self._negatives[j])["similarity"][0])
                    if sim >= self.thresholds[self.routes[j].name] and sim > best_sim:
                        best, best_sim = j, sim
                total += 1
                correct += best == i
        return {"examples": total, "correct": correct, "accuracy": round(correct / total, 4)}
