"""The evidence prior: each pool model's chance of answering a prompt well, from public ratings.

No outcome of the pool is needed. For a prompt ``x`` and a model ``m``::

    r_m(x) = sum_c mix_c(x) * R[m, c]                      # the model's rating for this kind of prompt
    p_m(x) = sigmoid(slope * (r_m(x) - 1300) / 100 - b(x))  # ability minus difficulty (IRT, 1PL)

* ``R`` holds each model's public category ratings (LMArena, style-controlled, from the pool
  file's ``evidence``: see ``python -m routing.evidence``); a model with none gets the ratings
  file's median per category and is flagged unknown.
* ``mix(x)`` says which rating categories the prompt belongs to: a topic classifier on the
  bundled MiniLM embedding (coding, math, creative writing, anything else), trained on labelled
  public prompts (not keywords); the language (script and function words); length (``long_user``)
  and predicted hardness (``hard_6``).
* ``b(x)`` is the prompt's difficulty, a ridge regression on the same embedding, fitted on
  public outcome tables of *other* models (prompts most models fail are hard). Hard prompts
  separate models; on easy ones every model is near 1, so price decides.
* ``slope`` (one number) is fitted on those tables too.

``Refinement`` then moves the prior with outcomes of the pool itself (a Bayesian update per
model and topic, and a shrunk nearest-neighbour correction per prompt): a handful of outcomes
moves it a little, many move it a lot. numpy only at serving time, apart from the encoder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from routing.selectors.base import Selector
from routing.selectors.novelty import Novelty

MODEL_TYPE = "router-evidence-prior"
PARAMS_FILE = "prior.safetensors"
#: The rating categories the prior reads (LMArena names).
TOPICS = ("coding", "math", "creative_writing", "full")
LANGUAGES = ("chinese", "french", "german", "japanese", "korean", "russian", "spanish")
RATING_CATEGORIES = TOPICS + ("hard_6", "long_user") + LANGUAGES
REFERENCE = 1300.0          # the rating at which a prompt's difficulty is read
LANGUAGE_SHARE = 0.5        # a prompt in another language: half its rating from that language's
LONG_SHARE = 0.3            # a long prompt: 30% from long_user
HARD_SHARE = 0.3            # at most 30% from hard_6, by how hard it looks
LONG_CHARS = 2000           # ~500 tokens, LMArena's long_user threshold
MISMATCH = 40.0             # rating points: how far a public rating may be from this kind of work
UNKNOWN_SPREAD = 120.0      # rating points: the prior spread of a model with no public rating
TOPIC_NAMES = {"coding": "coding", "math": "maths", "creative_writing": "creative writing", "full": "general"}

_WORDS = {
    "english": {"the", "is", "and", "of", "to", "what", "how", "in", "you", "that", "this", "with", "for", "are"},
    "french": {"le", "la", "les", "des", "est", "une", "et", "pour", "que", "dans", "pas", "vous", "je", "du", "qui"},
    "spanish": {"el", "los", "las", "es", "una", "y", "para", "que", "por", "con", "del", "cómo", "qué", "se", "lo"},
    "german": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "ich", "sie", "mit", "für", "wie", "zu"},
}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str) -> str | None:
    """One of :data:`LANGUAGES` when the prompt is mostly in it, else None (English or unknown).
    Scripts decide for Chinese, Japanese, Korean and Russian; function words for the others."""
    letters = [ch for ch in text[:4000] if ch.isalpha()]
    if not letters:
        return None
    n = len(letters)
    kana = sum("\u3040" <= ch <= "\u30ff" for ch in letters)
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in letters)
    hangul = sum("\uac00" <= ch <= "\ud7af" for ch in letters)
    cyrillic = sum("\u0400" <= ch <= "\u04ff" for ch in letters)
    if kana / n > 0.05:
        return "japanese"
    if hangul / n > 0.2:
        return "korean"
    if han / n > 0.2:
        return "chinese"
    if cyrillic / n > 0.3:
        return "russian"
    words = [w.lower() for w in _TOKEN.findall(text[:4000])]
    hits = {lang: sum(w in vocab for w in words) for lang, vocab in _WORDS.items()}
    lang = max(("french", "spanish", "german"), key=lambda k: hits[k])
    return lang if hits[lang] >= 3 and hits[lang] > 1.5 * hits["english"] else None


@dataclass
class PriorParams:
    """The prior's few pool-independent parameters (what ``selector_model/`` ships)."""

    topic_W: np.ndarray            # (hidden, len(TOPICS)) softmax classifier
    topic_b: np.ndarray            # (len(TOPICS),)
    diff_w: np.ndarray             # (hidden,) ridge: embedding -> difficulty
    diff_b: float
    slope: float
    info: dict[str, Any] = field(default_factory=dict)   # how it was fitted (sources, held-out figures)

    def save(self, folder: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"topic_W": np.ascontiguousarray(self.topic_W, np.float16),
                   "topic_b": np.asarray(self.topic_b, np.float32),
                   "diff_w": np.ascontiguousarray(self.diff_w, np.float16),
                   "scalars": np.asarray([self.diff_b, self.slope], np.float32)}, str(folder / PARAMS_FILE))
        config = {"model_type": MODEL_TYPE, "router": {
            "strategy": "prior", "encoder": "bundled", "topics": list(TOPICS),
            "categories": list(RATING_CATEGORIES), "reference": REFERENCE, "slope": float(self.slope),
            "info": self.info, **(extra or {})}}
        (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "PriorParams":
        from safetensors.numpy import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        router = config["router"]
        if list(router.get("topics", [])) != list(TOPICS):
            raise ValueError(f"{folder}: the prior was fitted on topics {router.get('topics')}, not {list(TOPICS)}")
        arrays = load_file(str(folder / PARAMS_FILE))
        diff_b, slope = (float(v) for v in arrays["scalars"])
        return cls(arrays["topic_W"].astype(np.float32), arrays["topic_b"].astype(np.float32),
                   arrays["diff_w"].astype(np.float32), diff_b, slope, dict(router.get("info") or {}))


def is_prior_dir(folder: str | Path) -> bool:
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == MODEL_TYPE


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def topic_probabilities(params: PriorParams, X: np.ndarray) -> np.ndarray:
    return softmax(np.asarray(X, np.float64) @ params.topic_W.astype(np.float64) + params.topic_b)


def difficulty(params: PriorParams, X: np.ndarray) -> np.ndarray:
    return np.asarray(X, np.float64) @ params.diff_w.astype(np.float64) + params.diff_b


def category_mix(topics: np.ndarray, texts: Sequence[str], hardness: np.ndarray) -> np.ndarray:
    """(n, len(RATING_CATEGORIES)) weights summing to 1: the topics' share is what the language,
    length and hardness shares leave. ``hardness`` in [0, 1]."""
    n = len(texts)
    mix = np.zeros((n, len(RATING_CATEGORIES)))
    col = {c: i for i, c in enumerate(RATING_CATEGORIES)}
    for i, text in enumerate(texts):
        rest = 1.0
        lang = detect_language(text)
        if lang:
            mix[i, col[lang]] = LANGUAGE_SHARE
            rest -= LANGUAGE_SHARE
        if len(text) >= LONG_CHARS:
            mix[i, col["long_user"]] = LONG_SHARE * rest
            rest -= LONG_SHARE * rest
        h = HARD_SHARE * float(np.clip(hardness[i], 0.0, 1.0)) * rest
        mix[i, col["hard_6"]] = h
        rest -= h
        mix[i, :len(TOPICS)] = rest * topics[i]
    return mix


@dataclass
class Ratings:
    """The pool's ratings as the prior reads them: ``R`` (models, categories), ``known`` per model,
    and the half-width of each rating's 95% interval (uncertainty for the update)."""

    models: list[str]
    R: np.ndarray
    halfwidth: np.ndarray
    known: np.ndarray
    names: list[str | None]


def ratings_from_table(models: Sequence[str], table: Mapping[str, Mapping[str, Sequence[float]] | None],
                       defaults: Mapping[str, Sequence[float]], names: Sequence[str | None] | None = None
                       ) -> Ratings:
    """``table``: model -> {category: (rating, low, high)} or None (unknown). A category a rated
    model lacks takes its ``full`` rating (with a doubled interval). An unknown model is taken to
    be a typical member of its own pool: per category, the median of the rated models' ratings
    (the stated default, :data:`UNKNOWN_SPREAD` wide); with no rated model at all, ``defaults``
    (the ratings file's median). A file-wide median would rank a 2023 model of unknown rating
    above every rated 2023 model, as the file is mostly newer models."""
    K, C = len(models), len(RATING_CATEGORIES)
    R, half = np.zeros((K, C)), np.zeros((K, C))
    known = np.zeros(K, bool)
    for k, m in enumerate(models):
        cats = table.get(m)
        known[k] = bool(cats)
        if not cats:
            continue
        for c, cat in enumerate(RATING_CATEGORIES):
            value = cats.get(cat)
            if value is None and cats.get("full") is not None:
                r, lo, hi = cats["full"]
                value = (r, r - 2 * (r - lo), r + 2 * (hi - r))
            if value is None:
                value = defaults.get(cat) or defaults.get("full") or (REFERENCE, REFERENCE - 100, REFERENCE + 100)
            r, lo, hi = (float(v) for v in value)
            R[k, c], half[k, c] = r, max(hi - r, r - lo, 1.0)
    for c, cat in enumerate(RATING_CATEGORIES):
        if known.any():
            typical = float(np.median(R[known, c]))
        else:
            value = defaults.get(cat) or defaults.get("full") or (REFERENCE,)
            typical = float(value[0])
        R[~known, c], half[~known, c] = typical, UNKNOWN_SPREAD
    return Ratings(list(models), R, half, known, list(names) if names else [None] * K)


def ratings_from_pool(pool: Any, defaults: Mapping[str, Sequence[float]] | None = None) -> Ratings:
    """:class:`Ratings` from each pool model's ``evidence`` block (``python -m routing.evidence refresh``);
    ``defaults`` (per category) only where no pool model is rated (else 1300 everywhere)."""
    table: dict[str, Any] = {}
    names: list[str | None] = []
    for m in pool.models:
        block = ((getattr(m, "evidence", None) or {}).get("ratings")) or None
        cats = (block or {}).get("categories") or None
        table[m.id] = {c: tuple(v) for c, v in cats.items()} if cats else None
        names.append((block or {}).get("name"))
    return ratings_from_table(pool.ids, table, dict(defaults or {}), names)


@dataclass
class Prediction:
    p: np.ndarray            # (n, K) chance of answering well
    topics: np.ndarray       # (n, len(TOPICS))
    mix: np.ndarray          # (n, len(RATING_CATEGORIES))
    difficulty: np.ndarray   # (n,) logit units at rating 1300
    rating: np.ndarray       # (n, K) each model's rating for the prompt
    familiarity: np.ndarray | None = None   # (n,) similarity to the nearest training data (routing.selectors.novelty)


def predict(params: PriorParams, X: np.ndarray, texts: Sequence[str], ratings: Ratings,
            refinement: "Refinement | None" = None) -> Prediction:
    topics = topic_probabilities(params, X)
    b = difficulty(params, X)
    hardness = sigmoid(b)                       # the chance a 1300-rated model fails it
    mix = category_mix(topics, texts, hardness)
    r = mix @ ratings.R.T                       # (n, K)
    if refinement is not None:
        r = r + refinement.offset(topics)
        b = b + refinement.difficulty_shift(X)
    p = sigmoid(params.slope * (r - REFERENCE) / 100.0 - b[:, None])
    if refinement is not None:
        p = np.clip(p + refinement.residual(X), 0.0, 1.0)
    return Prediction(p, topics, mix, b, r)


# ------------------------------------------------------------------ refinement by outcomes


@dataclass
class Refinement:
    """What outcomes of the pool add to the prior: per-model, per-topic rating offsets (MAP under
    a normal prior whose spread is the rating's interval plus :data:`MISMATCH`), a per-prompt
    difficulty shift and a per-model residual, both from the most similar observed prompts,
    shrunk towards zero by how many there are (``kappa``)."""

    offsets: np.ndarray                      # (K, len(TOPICS)) rating points
    X: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    diff_residual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    residuals: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))   # (n_obs, K), NaN = unseen
    k: int = 20
    kappa: float = 8.0
    temperature: float = 10.0

    def offset(self, topics: np.ndarray) -> np.ndarray:
        return topics @ self.offsets.T

    def _neighbour_mean(self, X: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Shrunk, similarity-weighted mean of ``values`` (n_obs, J) over the k nearest observed
        prompts, per column, ignoring NaN; 0 where nothing is observed."""
        if len(self.X) == 0:
            return np.zeros((len(X), values.shape[1]))
        sims = np.asarray(X, np.float64) @ self.X.T
        kk = min(self.k, len(self.X))
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        s = np.take_along_axis(sims, top, axis=1)
        w = np.exp(self.temperature * (s - 1.0))[:, :, None]            # (n, kk, 1)
        v = values[top]                                                  # (n, kk, J)
        seen = ~np.isnan(v)
        w = np.where(seen, w, 0.0)
        total = w.sum(axis=1)
        mean = np.where(total > 0, (w * np.nan_to_num(v)).sum(axis=1) / np.maximum(total, 1e-12), 0.0)
        n_eff = total / np.maximum(w.max(axis=1), 1e-12)                 # ~ how many neighbours count
        return mean * (n_eff / (n_eff + self.kappa))

    def difficulty_shift(self, X: np.ndarray) -> np.ndarray:
        if len(self.diff_residual) == 0:
            return np.zeros(len(X))
        return self._neighbour_mean(X, self.diff_residual[:, None])[:, 0]

    def residual(self, X: np.ndarray) -> np.ndarray:
        if self.residuals.size == 0:
            return np.zeros((len(X), len(self.offsets)))
        return self._neighbour_mean(X, self.residuals)


def refine(params: PriorParams, ratings: Ratings, X: np.ndarray, texts: Sequence[str], scores: np.ndarray,
           *, iterations: int = 3) -> Refinement:
    """Fit a :class:`Refinement` from observed outcomes ``scores`` (n, K) in [0, 1], NaN where a
    model was not observed on a prompt (a sparse log is read as it is)."""
    X = np.asarray(X, np.float64)
    scores = np.asarray(scores, np.float64)
    K = len(ratings.models)
    base = predict(params, X, texts, ratings)
    topics = base.topics
    spread = np.where(ratings.known[:, None], np.sqrt((ratings.halfwidth[:, :len(TOPICS)] / 1.96) ** 2
                                                      + MISMATCH ** 2), UNKNOWN_SPREAD)
    a = params.slope / 100.0
    offsets = np.zeros((K, len(TOPICS)))
    b = base.difficulty.copy()
    seen = ~np.isnan(scores)
    y = np.nan_to_num(scores)
    for _ in range(iterations):
        # Per model: Newton steps on its topic offsets, difficulty fixed.
        for k in range(K):
            rows = seen[:, k]
            if not rows.any():
                continue
            T = topics[rows]
            prec = 1.0 / spread[k] ** 2
            for _ in range(8):
                z = a * (base.rating[rows, k] + T @ offsets[k] - REFERENCE) - b[rows]
                p = sigmoid(z)
                grad = a * T.T @ (y[rows, k] - p) - prec * offsets[k]
                hess = a * a * (T * (p * (1 - p))[:, None]).T @ T + np.diag(prec)
                offsets[k] += np.linalg.solve(hess, grad)
        # Per prompt: its own difficulty given the models' updated abilities (MAP, prior b_hat).
        r = base.rating + topics @ offsets.T
        for _ in range(8):
            p = sigmoid(a * (r - REFERENCE) - b[:, None])
            grad = ((y - p) * seen).sum(axis=1) + (b - base.difficulty)       # of the loss
            hess = (p * (1 - p) * seen).sum(axis=1) + 1.0
            b = b - grad / hess
    r = base.rating + topics @ offsets.T
    p = sigmoid(a * (r - REFERENCE) - b[:, None])
    residuals = np.where(seen, scores - p, np.nan)
    # The residuals are read against the prompt's *predicted* difficulty at serving time, so the
    # difficulty shift carries what the observed prompts taught about their neighbours.
    return Refinement(offsets=offsets, X=X.astype(np.float32), diff_residual=b - base.difficulty,
                      residuals=residuals)


REFINEMENT_FILE = "refinement.safetensors"


def save_refinement(folder: str | Path, refinement: Refinement, models: Sequence[str], rows: int) -> None:
    """Write what outcomes taught beside the prior's parameters (``models``: the columns' order)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    save_file({"offsets": np.asarray(refinement.offsets, np.float32),
               "X": np.ascontiguousarray(refinement.X, np.float16).reshape(len(refinement.X), -1),
               "diff_residual": np.asarray(refinement.diff_residual, np.float32),
               "residuals": np.asarray(refinement.residuals, np.float32).reshape(len(refinement.X), len(models))},
              str(folder / REFINEMENT_FILE))
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["router"]["refinement"] = {"models": list(models), "rows": int(rows), "k": refinement.k,
                                      "kappa": refinement.kappa, "temperature": refinement.temperature}
    config_file.write_text(json.dumps(config, indent=1), encoding="utf-8")


def load_refinement(folder: str | Path, models: Sequence[str]) -> tuple[Refinement, int] | None:
    """The folder's refinement aligned to ``models`` (a model it never saw: no offset, no residual),
    with how many outcome rows it learned from; None for an unrefined prior."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))["router"]
    info = config.get("refinement")
    if not info or not (folder / REFINEMENT_FILE).is_file():
        return None
    arrays = load_file(str(folder / REFINEMENT_FILE))
    seen = [str(m) for m in info["models"]]
    offsets = np.zeros((len(models), len(TOPICS)))
    residuals = np.full((len(arrays["X"]), len(models)), np.nan)
    for k, m in enumerate(models):
        if m in seen:
            offsets[k] = arrays["offsets"][seen.index(m)]
            residuals[:, k] = arrays["residuals"][:, seen.index(m)]
    return Refinement(offsets=offsets, X=arrays["X"].astype(np.float32),
                      diff_residual=arrays["diff_residual"].astype(np.float64), residuals=residuals,
                      k=int(info.get("k", 20)), kappa=float(info.get("kappa", 8.0)),
                      temperature=float(info.get("temperature", 10.0))), int(info.get("rows", 0))


def ratings_for_models(models: Sequence[str], pool: Any) -> Ratings:
    """:class:`Ratings` in ``models``' order from the pool's evidence (a model not in the pool: unrated)."""
    full = ratings_from_pool(pool)
    table: dict[str, Any] = {}
    for m in models:
        if m in full.models and full.known[full.models.index(m)]:
            k = full.models.index(m)
            table[m] = {c: (full.R[k, j], full.R[k, j] - full.halfwidth[k, j], full.R[k, j] + full.halfwidth[k, j])
                        for j, c in enumerate(RATING_CATEGORIES)}
        else:
            table[m] = None
    names = [full.names[full.models.index(m)] if m in full.models else None for m in models]
    return ratings_from_table(models, table, {}, names)


# ------------------------------------------------------------------ the selector


def _pct(x: float) -> str:
    return f"{x:.0%}"


class PriorSelector(Selector):
    """Routes with :func:`predict`: the pool's public ratings, the prompt's kind and difficulty.

    The folder (``selector_model/`` as shipped) holds only pool-independent parameters, so any
    pool whose models carry ``evidence`` is routed on day one, and a refreshed rating or price
    changes the decision without retraining."""

    name = "prior"

    def __init__(self, pool: Any, model_dir: str | Path, *, fast_path: str = "auto"):
        import threading

        from routing.selectors import fast_path as fp
        from routing.selectors.classifier import SelectorLoadError
        from routing.selectors.encoder import bundled_encoder_path, shared_encoder

        super().__init__(pool)
        self.model_dir = Path(model_dir)
        try:
            self.params = PriorParams.load(self.model_dir)
            config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))["router"]
            self.max_length = int(config.get("max_length", 256))
            self.head_tokens = int(config.get("head_tokens", 32))
            quantized = fast_path == "force" or (fast_path != "off" and fp.enabled(self.model_dir, fast_path))
            self.precision = fp.PRECISION if quantized else "fp32"
            self.encoder = shared_encoder(bundled_encoder_path(), self.max_length, self.head_tokens, quantized)
        except Exception as exc:  # noqa: BLE001 - any loading failure means a corrupt folder
            raise SelectorLoadError(f"The evidence prior in {self.model_dir} cannot be loaded: {exc}") from exc
        if self.params.topic_W.shape[0] != self.encoder.hidden_size:
            raise SelectorLoadError(f"The evidence prior in {self.model_dir} was fitted on {self.params.topic_W.shape[0]}"
                                    f"-dimensional embeddings, not the bundled encoder's {self.encoder.hidden_size}.")
        self.ratings = ratings_from_pool(pool)
        if not self.ratings.known.any():
            raise SelectorLoadError(
                "no model of the pool carries public ratings (the pool file's `evidence`), so the evidence prior "
                "has nothing to route by; add them with `python -m routing.evidence refresh --pool FILE "
                "--ratings CSV --write`")
        self._local = threading.local()
        try:
            found = load_refinement(self.model_dir, pool.ids)
        except Exception as exc:  # noqa: BLE001 - a broken refinement is a broken folder
            raise SelectorLoadError(f"The outcome refinement in {self.model_dir} cannot be loaded: {exc}") from exc
        self.refinement, self.refined_rows = found if found else (None, 0)
        try:
            self.novelty = Novelty.load(self.model_dir)
        except Exception as exc:  # noqa: BLE001 - a broken file is a broken folder
            raise SelectorLoadError(f"The novelty check in {self.model_dir} cannot be loaded: {exc}") from exc
        self.counts_lock = threading.Lock()
        self.counts = {"decisions": 0, "unlike_training_data": 0}   # this process's, for the Status tab

    @property
    def unknown_models(self) -> list[str]:
        return [m for m, known in zip(self.ratings.models, self.ratings.known) if not known]

    def predict_texts(self, prompts: Sequence[str]) -> Prediction:
        texts = [p if isinstance(p, str) else str(p) for p in prompts]
        X = self.encoder.embed(texts)
        prediction = predict(self.params, X, texts, self.ratings, self.refinement)
        if self.novelty is not None:
            seen = self.refinement.X if self.refinement is not None and len(self.refinement.X) else None
            prediction.familiarity = self.novelty.familiarity(X, seen)
        return prediction

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        if self.ratings.models != self.pool.ids:          # the pool changed (a model added): re-read
            self.ratings = ratings_from_pool(self.pool)
            found = load_refinement(self.model_dir, self.pool.ids)
            self.refinement, self.refined_rows = found if found else (None, 0)
        if not len(prompts):
            return np.zeros((0, len(self.pool)))
        prediction = self.predict_texts(prompts)
        self._local.last = (list(prompts), prediction)    # explain() reads the parts of this decision
        return prediction.p

    def _parts(self, prompt: str) -> tuple[Prediction, int] | None:
        last = getattr(self._local, "last", None)
        if last and prompt in last[0]:
            return last[1], last[0].index(prompt)
        return None

    def explain(self, prompt: str, row: np.ndarray) -> tuple[str, dict[str, Any]]:
        found = self._parts(prompt)
        if found is None:
            pred, i = self.predict_texts([prompt]), 0
        else:
            pred, i = found
        ids = self.pool.ids
        topics = {t: float(v) for t, v in zip(TOPICS, pred.topics[i])}
        mix = {c: round(float(v), 3) for c, v in zip(RATING_CATEGORIES, pred.mix[i]) if v > 0.005}
        top = max(topics, key=topics.get)
        fails = float(sigmoid(np.array([pred.difficulty[i]]))[0])
        hard = "hard" if fails >= 0.6 else "easy" if fails <= 0.3 else "middling"
        order = np.argsort(-row, kind="stable")
        main = max(mix, key=mix.get)
        col = RATING_CATEGORIES.index(main)

        def cite(k: int) -> str:
            m = self.pool.get(ids[k])
            if not self.ratings.known[k]:
                return f"{m.display_name} has no public rating (taken as the pool's median)"
            return (f"{m.display_name} {main.replace('_', ' ')} {self.ratings.R[k, col]:.0f}"
                    f"±{self.ratings.halfwidth[k, col]:.0f}")

        first, second = int(order[0]), int(order[1]) if len(order) > 1 else None
        why = (f"Evidence prior: the prompt looks like {TOPIC_NAMES[top]} ({topics[top]:.2f}) and {hard} "
               f"(a model rated 1300 would fail it {_pct(fails)}); ")
        if second is not None:
            why += (f"{cite(first)} vs {cite(second)} -> {row[first]:.2f} vs {row[second]:.2f} "
                    "chance of a good answer")
        else:
            why += f"{cite(first)} -> {row[first]:.2f}"
        if hard == "easy" and second is not None and row[first] - row[second] < 0.1:
            why += "; on an easy prompt the models are close, so the price can decide"
        why += f" (LMArena ratings, {self._snapshot()}"
        why += f"; refined by {self.refined_rows} logged outcomes)." if self.refinement is not None else ")."
        if self.unknown_models:
            why += f" Unrated: {', '.join(self.unknown_models)}."
        novelty = None
        if self.novelty is not None and pred.familiarity is not None:
            familiar = float(pred.familiarity[i])
            unlike = familiar < self.novelty.threshold
            novelty = {"familiarity": round(familiar, 4), "threshold": round(self.novelty.threshold, 4),
                       "unlike_training_data": bool(unlike)}
            if unlike:
                why += (f" ⚠ Unlike the prompts the prior learned from (similarity {familiar:.2f} to the nearest, "
                        f"below {self.novelty.threshold:.2f}, which 1% of held-out training prompts fall under): its "
                        "reading of the prompt's kind and difficulty has no data like it behind it, so this is "
                        "routed on the public ratings and the price.")
            with self.counts_lock:
                self.counts["decisions"] += 1
                self.counts["unlike_training_data"] += int(unlike)
        per_model = {}
        for k, model_id in enumerate(ids):
            per_model[model_id] = {
                "chance": round(float(pred.p[i, k]), 4), "rating_for_prompt": round(float(pred.rating[i, k]), 1),
                "known": bool(self.ratings.known[k]), "rating_name": self.ratings.names[k],
                "ratings": {c: [round(float(self.ratings.R[k, j]), 1), round(float(self.ratings.halfwidth[k, j]), 1)]
                            for j, c in enumerate(RATING_CATEGORIES) if c in mix}}
        details = {"topics": {t: round(v, 3) for t, v in topics.items()}, "rating_mix": mix,
                   "difficulty": round(float(pred.difficulty[i]), 3), "fail_chance_at_1300": round(fails, 3),
                   "looks_hard": hard, "models": per_model, "evidence": self._snapshot(),
                   "unrated_models": self.unknown_models, "model_dir": str(self.model_dir),
                   "slope": round(self.params.slope, 4), "precision": self.precision,
                   "refined_by_outcomes": self.refined_rows, "novelty": novelty}
        return why, details

    def _snapshot(self) -> str:
        for m in self.pool.models:
            block = ((m.evidence or {}).get("ratings")) or {}
            if block.get("snapshot"):
                return f"{block.get('variant', 'style_control')}, snapshot {block['snapshot']}"
        return "no snapshot"


class PriorScorer:
    """The prior as the release gate and the fast-path check read a selector folder
    (``labels``, ``predict(texts)``): scored for the app's pool (``ROUTER_MODELS_FILE``)."""

    multi_label = True
    strategy = "prior"
    source = "public ratings"

    def __init__(self, model_dir: str | Path, *, fast_path: str = "auto", pool: Any = None):
        if pool is None:
            from routing.pool import load_pool
            from routing.settings import get_settings, pool_files

            pool = load_pool(pool_files(get_settings()).live)
        self.selector = PriorSelector(pool, model_dir, fast_path=fast_path)
        self.labels = list(pool.ids)
        self.precision = self.selector.precision

    def describe(self) -> str:
        extra = f", refined by {self.selector.refined_rows} outcomes" if self.selector.refinement is not None else ""
        return f"the evidence prior (public ratings, prompt kind and difficulty{extra})"

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.selector.score(list(texts))
