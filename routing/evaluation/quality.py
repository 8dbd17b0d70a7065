"""The learned answer-quality score: (prompt, answer) -> the strong judge's grade, estimated.

``quality_model/`` (trained by :mod:`training.quality`) holds a light linear model (trained
pairwise on same-prompt answers, scaled to the grade) on cheap features of the prompt and the
answer: length, density (distinct words, compression), layout, overlap with the prompt and the
penalty detectors' severities; with peers (other models' answers to the same prompt), also how
much the answer says what the others say (word and character n-gram TF-IDF cosine to each
peer, shared numbers, length among them). It predicts GPT-4's reference-guided 1-10 grade, reported as
``score = (grade - 1) / 9`` in [0, 1].

The bundled MiniLM encoder was measured as a feature source during development (5-fold
prompt-grouped CV, ridge heads): its answer embeddings (with the prompt-answer product and
cosine) lowered pairwise agreement alone (0.63 against 0.66 for these statistics) and added
0.005 with peers, at ~90 ms an answer on one thread; its mean cosine to the peers added as much
as the character n-gram cosine (about +0.006 each to the peers head, together no more) at ~70 ms
an answer. So the model reads none: scoring takes a few milliseconds and needs no encoder.

The folder has ``config.json`` (feature names, the evaluator's fitted combination weights),
``model.safetensors`` (float16 tensors) and a model card ``README.md``. :func:`get_model` loads it
once (thread-safe); when the folder is missing or corrupt it returns None and :func:`load_error`
says why, so the evaluator falls back to its heuristics with a notice.

Answers are untrusted text: only string statistics are computed on them (cut to
:data:`MAX_CHARS` first), nothing is executed or parsed as code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from routing.evaluation import penalties as _penalties
from routing.evaluation.text import nonempty_lines, split_code, words

log = logging.getLogger(__name__)

#: Where the shipped model lives (``ROUTER_QUALITY_MODEL`` overrides it; "off" disables it).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "quality_model"
ENV_VAR = "ROUTER_QUALITY_MODEL"
FORMAT = "router-quality-v1"
#: Characters of an answer looked at (untrusted input: bounded work).
MAX_CHARS = 20_000
#: Fewest peers for the peer-aware head (one other answer is no consensus).
MIN_PEERS = 2

TEXT_FEATURES: tuple[str, ...] = (
    "log_chars", "log_words", "log_lines", "code_fraction", "log_code_blocks", "list_fraction",
    "log_headers", "log_bold", "compression", "distinct_words", "log_sentence_words", "digit_fraction",
    "prompt_overlap", "log_length_ratio", "repetition", "refusal", "truncation", "error_text",
    "boilerplate",
    # style and density (see _style_features)
    "distinct_first_200", "mean_word_length", "stopword_share", "capitalised_share", "hedges",
    "punctuation_variety", "log_paragraphs", "question_marks",
)
PEER_FEATURES: tuple[str, ...] = ("peer_tfidf_mean", "peer_tfidf_max", "peer_number_share", "peer_length_z",
                                  "peer_char_mean")

_LIST_RE = re.compile(r"^(?:[-*+•]|\d+[.)])\s")
_HEADER_RE = re.compile(r"^#{1,6}\s", re.M)
_BOLD_RE = re.compile(r"\*\*[^*\n]+\*\*")
_CONTENT_RE = re.compile(r"[a-z][a-z'-]{3,}")
_TERM_RE = re.compile(r"[a-z0-9][a-z0-9'_-]*")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_STOPWORDS = frozenset("the a an of to in and or is are was were be been it that this for on with as by at from".split())
_HEDGE_RE = re.compile(r"\b(?:may|might|could|possibly|perhaps|generally|typically|often|usually|depends|"
                       r"it is important to|keep in mind|note that|however)\b", re.I)
_PUNCTUATION = frozenset(",;:()-\"'`*#[]{}")


def _clip_text(text: str, limit: int = MAX_CHARS) -> str:
    """Head and tail of a long text (bounded work on untrusted input)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n" + text[-half:]


def text_features(prompt: str, answer: str) -> np.ndarray:
    """The text statistics of :data:`TEXT_FEATURES` for one answer. Generic padding sentences
    (:func:`routing.evaluation.penalties.strip_filler`) are left out first: filler earns no
    length or density credit (the heuristics penalise it)."""
    answer = _penalties.strip_filler(_clip_text(answer or ""))
    prompt = _clip_text(prompt or "", 8000)
    blocks, prose = split_code(answer)
    tokens = words(answer)
    lines = nonempty_lines(answer)
    n_chars = len(answer)
    code_chars = sum(len(b.code) for b in blocks)
    lower = [t.lower() for t in tokens]
    distinct = len(set(lower)) / math.sqrt(len(lower)) if lower else 0.0   # Guiraud's index
    raw = answer.encode("utf-8", "replace")
    compression = len(zlib.compress(raw, 6)) / len(raw) if raw else 1.0
    sentence_count = max(1, len(re.findall(r"[.!?](?:\s|$)", prose)))
    prompt_words = set(_CONTENT_RE.findall(prompt.lower()))
    answer_words = set(_CONTENT_RE.findall(answer.lower()))
    overlap = len(prompt_words & answer_words) / len(prompt_words) if prompt_words else 0.0
    values = {
        "log_chars": math.log1p(n_chars),
        "log_words": math.log1p(len(tokens)),
        "log_lines": math.log1p(len(lines)),
        "code_fraction": code_chars / n_chars if n_chars else 0.0,
        "log_code_blocks": math.log1p(len(blocks)),
        "list_fraction": sum(1 for ln in lines if _LIST_RE.match(ln)) / len(lines) if lines else 0.0,
        "log_headers": math.log1p(len(_HEADER_RE.findall(answer))),
        "log_bold": math.log1p(len(_BOLD_RE.findall(answer))),
        "compression": compression,
        "distinct_words": distinct,
        "log_sentence_words": math.log1p(len(words(prose)) / sentence_count),
        "digit_fraction": sum(c.isdigit() for c in answer) / n_chars if n_chars else 0.0,
        "prompt_overlap": overlap,
        "log_length_ratio": math.log1p(n_chars) - math.log1p(len(prompt)),
        "repetition": _penalties.repetition(answer)[0],
        "refusal": _penalties.refusal(answer)[0],
        "truncation": _penalties.truncation(answer)[0],
        "error_text": _penalties.error_text(answer)[0],
        "boilerplate": _penalties.boilerplate(answer)[0],
        **_style_features(answer, tokens),
    }
    return np.array([values[name] for name in TEXT_FEATURES], dtype=np.float32)


def _style_features(answer: str, tokens: list[str]) -> dict[str, float]:
    """Style and density: vocabulary over the first 200 words, word length, the share of the
    commonest function words, capitalised words inside sentences (names), hedges per word, how
    many kinds of punctuation, paragraphs, question marks per 100 words. Added as one batch after
    one measurement (head-level prompt-disjoint CV on the graded answers, 3 fold seeds: +0.005
    pairwise alone, +0.003 with peers). A count of apologies was in that batch and is not: it
    duplicates the refusal severity, and the fit gave it the opposite sign, so a refusal's
    learned grade rose (a test of refusals caught it)."""
    tokens = [t for t in tokens if t[0].isalpha()]   # the answer's words, numbers left out
    n = len(tokens) or 1
    first = [t.lower() for t in tokens[:200]]
    inside = sum(1 for i, t in enumerate(tokens) if i and t[:1].isupper() and not tokens[i - 1].endswith("."))
    return {
        "distinct_first_200": len(set(first)) / len(first) if first else 0.0,
        "mean_word_length": sum(len(t) for t in tokens) / n,
        "stopword_share": sum(t.lower() in _STOPWORDS for t in tokens) / n,
        "capitalised_share": inside / n,
        "hedges": 100.0 * len(_HEDGE_RE.findall(answer)) / n,
        "punctuation_variety": len(_PUNCTUATION.intersection(answer)) / len(_PUNCTUATION),
        "log_paragraphs": math.log1p(sum(1 for part in answer.split("\n\n") if part.strip())),
        "question_marks": min(10.0, answer.count("?") * 100.0 / n),
    }


def _terms(text: str) -> Counter:
    return Counter(_TERM_RE.findall(_clip_text(text).lower()))


def group_peer_features(answers: Sequence[str], rows: int | None = None) -> np.ndarray:
    """:data:`PEER_FEATURES` of every answer in a group with all the others as its peers
    (document frequencies over the group); zeros for a group of fewer than ``MIN_PEERS + 1``.
    ``rows``: only the first ``rows`` answers are computed (the rest stay zero)."""
    n = len(answers)
    out = np.zeros((n, len(PEER_FEATURES)), dtype=np.float32)
    if n < MIN_PEERS + 1:
        return out
    bags = [_terms(a) for a in answers]
    df: Counter = Counter()
    for bag in bags:
        df.update(bag.keys())
    vecs = []
    for bag in bags:
        vec = {w: (1.0 + math.log(c)) * math.log((n + 1) / (df[w] + 1)) + 1e-3 for w, c in bag.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vecs.append({w: v / norm for w, v in vec.items()})
    numbers = [set(_NUMBER_RE.findall(_clip_text(a))) for a in answers]
    lengths = np.array([math.log1p(len(_clip_text(a))) for a in answers])
    chars = _char_similarities([_clip_text(a) for a in answers])
    for i in range(n if rows is None else min(rows, n)):
        others = [j for j in range(n) if j != i]
        sims = [sum(v * vecs[j].get(w, 0.0) for w, v in vecs[i].items()) for j in others]
        share = (float(np.mean([len(numbers[i] & numbers[j]) / len(numbers[i]) for j in others]))
                 if numbers[i] else 0.0)
        rest = lengths[others]
        length_z = (lengths[i] - rest.mean()) / max(float(rest.std()), 0.1)
        out[i] = [float(np.mean(sims)), float(np.max(sims)), share, float(np.clip(length_z, -5, 5)),
                  float(chars[i, others].mean())]
    return out


def _char_similarities(texts: Sequence[str]) -> np.ndarray:
    """Cosine of every pair of texts as TF-IDF vectors of character 3-5-grams (sublinear term
    frequency, document frequencies over the group): agreement that survives rewording, word
    forms and code identifiers, which the word TF-IDF misses. Zeros where a text has no n-gram."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    try:
        X = TfidfVectorizer(analyzer="char", ngram_range=(3, 5), sublinear_tf=True, lowercase=True,
                            dtype=np.float32).fit_transform(texts)
    except ValueError:          # no text has three characters: no n-gram at all
        return np.zeros((n, n), np.float32)
    return np.asarray((X @ X.T).todense(), np.float32)


# --------------------------------------------------------------------------- the model


class QualityLoadError(RuntimeError):
    """The quality model folder is missing or corrupt."""


class LinearHead:
    """Standardise, then a linear map: ``grade = (x - mean) / scale @ coef + intercept``."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float):
        self.mean = np.asarray(mean, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self.coef = np.asarray(coef, np.float32)
        self.intercept = float(intercept)

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = (np.asarray(X, np.float32) - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.mean": self.mean, f"{prefix}.scale": self.scale, f"{prefix}.coef": self.coef,
                f"{prefix}.intercept": np.array([self.intercept], np.float32)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Any], prefix: str, width: int) -> "LinearHead":
        head = cls(*(np.asarray(tensors[f"{prefix}.{k}"], np.float32) for k in ("mean", "scale", "coef")),
                   float(np.asarray(tensors[f"{prefix}.intercept"]).reshape(-1)[0]))
        if head.mean.shape != (width,) or head.scale.shape != (width,) or head.coef.shape != (width,):
            raise QualityLoadError(f"head {prefix!r} has the wrong shape for {width} features")
        if not (np.isfinite(head.mean).all() and np.isfinite(head.scale).all() and np.isfinite(head.coef).all()):
            raise QualityLoadError(f"head {prefix!r} holds non-finite weights")
        head.scale = np.where(head.scale == 0, 1.0, head.scale).astype(np.float32)
        return head


def grade_to_score(grade: np.ndarray | float) -> np.ndarray | float:
    """A 1-10 grade as a [0, 1] score."""
    return np.clip((np.asarray(grade, dtype=float) - 1.0) / 9.0, 0.0, 1.0)


class QualityModel:
    """The loaded ``quality_model/`` folder: ``score(prompt, answer, peers)``."""

    def __init__(self, model_dir: str | Path):
        model_dir = Path(model_dir)
        self.model_dir = model_dir
        config_path = model_dir / "config.json"
        weights_path = model_dir / "model.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise QualityLoadError(f"no quality model in {model_dir} (config.json or model.safetensors missing); "
                                   "train one with python -m training.quality")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise QualityLoadError(f"{config_path} is not valid JSON: {exc}") from exc
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise QualityLoadError(f"{config_path} is not a {FORMAT} config")
        if list(config.get("text_features", [])) != list(TEXT_FEATURES) or \
                list(config.get("peer_features", [])) != list(PEER_FEATURES):
            raise QualityLoadError(f"{config_path} was trained with other features: retrain it")
        try:
            from safetensors.numpy import load_file

            tensors = load_file(str(weights_path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file means a corrupt folder
            raise QualityLoadError(f"{weights_path} cannot be read: {exc}") from exc
        try:
            self.alone = LinearHead.from_tensors(tensors, "alone", len(TEXT_FEATURES))
            self.with_peers = LinearHead.from_tensors(tensors, "peers", len(TEXT_FEATURES) + len(PEER_FEATURES))
        except KeyError as exc:
            raise QualityLoadError(f"{weights_path} lacks tensor {exc}") from exc
        combination = config.get("combination")
        if not isinstance(combination, dict) or not combination:
            raise QualityLoadError(f"{config_path} has no fitted combination weights")
        self.combination: dict[str, dict[str, float]] = {}
        for key, weights in combination.items():
            try:
                parsed = {name: float(weights[name]) for name in ("bias", "heuristic", "quality")}
                parsed["penalty"] = float(weights.get("penalty", 0.0))
            except (KeyError, TypeError, ValueError) as exc:
                raise QualityLoadError(f"{config_path}: combination {key!r} is malformed") from exc
            if not all(math.isfinite(v) for v in parsed.values()):
                raise QualityLoadError(f"{config_path}: combination {key!r} is not finite")
            self.combination[key] = parsed
        self.config = config

    def score(self, prompt: str, answer: str, peers: Sequence[str] | None = None) -> dict[str, Any]:
        """``{"score": [0, 1], "grade": 1-10, "used_peers": bool}`` for one answer.

        ``peers`` (other answers to the same prompt) switch to the peer-aware head when there
        are at least :data:`MIN_PEERS` non-empty ones.
        """
        answer = answer if isinstance(answer, str) else str(answer or "")
        peer_texts = [p for p in (peers or []) if isinstance(p, str) and p.strip()]
        use_peers = len(peer_texts) >= MIN_PEERS
        stats = text_features(prompt, answer)[None, :]
        if use_peers:
            extra = group_peer_features([answer] + peer_texts, rows=1)[:1]
            grade = float(self.with_peers.predict(np.concatenate([stats, extra], axis=1))[0])
        else:
            grade = float(self.alone.predict(stats)[0])
        grade = float(np.clip(grade, 1.0, 10.0))
        return {"score": round(float(grade_to_score(grade)), 4), "grade": round(grade, 2), "used_peers": use_peers}

    def combine(self, key: str, heuristic: float, quality: float, penalty: float = 0.0) -> tuple[float, str]:
        """The fitted blend of the heuristic ``normalized``, the learned score and the penalty
        share for the ``key`` regime ("open/alone", "choice/peers", ...): a logistic curve, so
        in (0, 1). Returns (score, the key actually used)."""
        key = blend_key(self.combination, key)
        w = self.combination.get(key) or {"bias": 0.0, "heuristic": 1.0, "quality": 0.0, "penalty": 0.0}
        z = w["bias"] + w["heuristic"] * heuristic + w["quality"] * quality - w.get("penalty", 0.0) * penalty
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), key


def blend_key(combination: Mapping[str, Any], key: str) -> str:
    """The fitted regime that scores ``key`` ("choice/peers", ...): itself when fitted, else the
    same regime alone, else "open/alone". A two-option question in a folder trained before that
    regime existed (or without its outcome rows) takes the multiple-choice blend first."""
    if key in combination:
        return key
    regime, _, mode = key.partition("/")
    candidates = ([f"choice/{mode}", "choice/alone"] if regime == "binary" else []) + [f"{regime}/alone"]
    return next((k for k in candidates if k in combination), "open/alone")


_lock = threading.Lock()
_state: dict[str, Any] = {"dir": None, "model": None, "error": None, "loaded": False}


def model_dir() -> Path | None:
    """The configured folder (None when switched off with ``ROUTER_QUALITY_MODEL=off``)."""
    if _state["dir"] is not None:
        return Path(_state["dir"])
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return Path(value) if value else DEFAULT_MODEL_DIR


def configure(path: str | Path | None) -> None:
    """Use ``path`` from now on (None: back to the default / ``ROUTER_QUALITY_MODEL``); the next
    call of :func:`get_model` loads it."""
    with _lock:
        _state.update(dir=None if path is None else str(path), model=None, error=None, loaded=False)


def get_model() -> QualityModel | None:
    """The quality model, loaded once; None when it is off, missing or corrupt (see :func:`load_error`)."""
    if _state["loaded"]:
        return _state["model"]
    with _lock:
        if not _state["loaded"]:
            folder = model_dir()
            if folder is None:
                _state.update(model=None, error=f"the learned quality score is off ({ENV_VAR}=off)")
            else:
                try:
                    _state.update(model=QualityModel(folder), error=None)
                except QualityLoadError as exc:
                    log.warning("quality model unavailable, the evaluator uses its heuristics alone: %s", exc)
                    _state.update(model=None, error=str(exc))
            _state["loaded"] = True
    return _state["model"]


def load_error() -> str | None:
    """Why :func:`get_model` returned None (None when it loaded or was not tried yet)."""
    return _state["error"]
