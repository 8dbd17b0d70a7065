"""Checks on the shipped prompt corpus and the selection-testing sample set.

``assets/prompt_corpus.jsonl`` ({"text", "category"} per line) is what the rule-based
selector is tuned and demonstrated on; ``assets/selection_samples.jsonl``
({"text", "expected_category"} per line) is what the "selection testing" tab checks the
router against. Both are labelled with the categories in ``routing.categories``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest

from routing.categories import CATEGORIES

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CORPUS_PATH = ASSETS / "prompt_corpus.jsonl"
SAMPLES_PATH = ASSETS / "selection_samples.jsonl"

MIN_CORPUS_TOTAL = 500
MIN_CORPUS_PER_CATEGORY = 40
SAMPLES_PER_CATEGORY = 10
NEAR_DUPLICATE_JACCARD = 0.5  # shared word trigrams at which two prompts count as one (swapping one word: ~0.65)


def _read_jsonl(path: Path, label_key: str) -> list[tuple[str, str]]:
    """Parse one asset file strictly (UTF-8, one JSON object a line) into (text, label) pairs."""
    raw = path.read_bytes()
    content = raw.decode("utf-8")  # raises on bytes that are not UTF-8
    rows: list[tuple[str, str]] = []
    for number, line in enumerate(content.splitlines(), start=1):
        assert line.strip(), f"{path.name}:{number}: blank line"
        record = json.loads(line)
        assert isinstance(record, dict), f"{path.name}:{number}: not a JSON object"
        assert set(record) == {"text", label_key}, f"{path.name}:{number}: keys {sorted(record)}"
        text, label = record["text"], record[label_key]
        assert isinstance(text, str) and isinstance(label, str), f"{path.name}:{number}: non-string field"
        rows.append((text, label))
    return rows


def _normalise(text: str) -> str:
    """Lower-case, collapse punctuation and whitespace: the form duplicates are compared in."""
    return re.sub(r"\W+", " ", text.lower()).strip()


def _trigrams(text: str) -> frozenset[str]:
    """Word trigrams of the normalised text (the whole text for prompts under three words)."""
    words = _normalise(text).split()
    if len(words) < 3:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    """The corpus as (text, category) pairs."""
    return _read_jsonl(CORPUS_PATH, "category")


@pytest.fixture(scope="module")
def samples() -> list[tuple[str, str]]:
    """The selection samples as (text, expected_category) pairs."""
    return _read_jsonl(SAMPLES_PATH, "expected_category")


def test_corpus_is_large_enough_and_covers_every_category(corpus):
    counts = Counter(category for _, category in corpus)
    assert len(corpus) >= MIN_CORPUS_TOTAL
    assert set(counts) == set(CATEGORIES), f"unknown or missing categories: {set(counts) ^ set(CATEGORIES)}"
    thin = {c: n for c, n in counts.items() if n < MIN_CORPUS_PER_CATEGORY}
    assert not thin, f"categories under {MIN_CORPUS_PER_CATEGORY} prompts: {thin}"


def test_samples_have_ten_per_category(samples):
    counts = Counter(category for _, category in samples)
    assert counts == {c: SAMPLES_PER_CATEGORY for c in CATEGORIES}


@pytest.mark.parametrize("which", ["corpus", "samples"])
def test_no_empty_or_padded_texts(which, request):
    rows = request.getfixturevalue(which)
    bad = [text for text, _ in rows if not text.strip() or text != text.strip()]
    assert not bad, f"empty or whitespace-padded texts: {bad[:3]}"


def test_no_duplicates_within_or_across_files(corpus, samples):
    counts = Counter(_normalise(text) for text, _ in corpus + samples)
    repeated = [text for text, n in counts.items() if n > 1]
    assert not repeated, f"duplicate prompts (after normalising case/punctuation): {repeated[:3]}"


def test_no_near_duplicates_within_or_across_files(corpus, samples):
    """Two prompts sharing most of their word trigrams are one prompt with swapped nouns."""
    shingles = [(text, _trigrams(text)) for text, _ in corpus + samples]
    close = []
    for (text_a, a), (text_b, b) in combinations(shingles, 2):
        if len(a & b) / len(a | b) >= NEAR_DUPLICATE_JACCARD:
            close.append((text_a[:60], text_b[:60]))
    assert not close, f"near-duplicate prompts: {close[:3]}"


def test_multilingual_prompts_are_really_in_other_scripts_and_languages(corpus, samples):
    for rows in (corpus, samples):
        texts = [text for text, category in rows if category == "multilingual"]
        non_ascii = [text for text in texts if not text.isascii()]
        assert len(non_ascii) >= len(texts) // 2, "most multilingual prompts should contain non-ASCII text"
    scripts = {
        "CJK": r"[\u4e00-\u9fff]",
        "kana": r"[\u3040-\u30ff]",
        "Hangul": r"[\uac00-\ud7af]",
        "Cyrillic": r"[\u0400-\u04ff]",
        "Arabic": r"[\u0600-\u06ff]",
        "Devanagari": r"[\u0900-\u097f]",
        "Latin accents": r"[À-ÿ]",
    }
    joined = "\n".join(text for text, category in corpus if category == "multilingual")
    missing = [name for name, pattern in scripts.items() if not re.search(pattern, joined)]
    assert not missing, f"multilingual corpus lacks scripts: {missing}"


def test_reader_rejects_a_malformed_line(tmp_path):
    """The strict reader used above would catch a broken edit to the asset files."""
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine", "category": "chat"}\n{"text": "no label"}\n', encoding="utf-8")
    with pytest.raises(AssertionError, match="keys"):
        _read_jsonl(broken, "category")
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"text": "café", "category": "chat"}\n'.encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        _read_jsonl(latin1, "category")
