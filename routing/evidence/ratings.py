"""Public per-category ratings and list prices, read from CSV, and model names matched to them.

The ratings file has one row per (variant, category, model): ``variant,category,model,rating,
ci95_low,ci95_high`` (LMArena's text arena: variants ``plain`` and ``style_control``, categories
such as ``full``, ``coding``, ``math``, ``creative_writing``, languages…). The price file has
``name,model,input_usd_per_mtok,output_usd_per_mtok,organization,price_source``.

Names are matched by fixed rules, in this order, the first rule that finds anything deciding:

1. ``map``: an explicit mapping, name -> table name (or ``None``: "no public rating, do not match");
2. ``exact``: the whole name, or its last ``/`` segment, equal to a table name ignoring case;
3. ``normalised``: equal once both are lower-cased, cut to the last ``/`` segment and stripped of
   every character but letters and digits (``qwen/qwen-2.5-72b-instruct`` = ``qwen2.5-72b-instruct``);
4. ``prefix``: the one table name that is the name plus a release stamp
   (``mistral-small-3.1-24b-instruct`` -> ``mistral-small-3.1-24b-instruct-2503``): see
   :func:`is_release_suffix` for what counts as a release stamp.

Two or more table names found by the deciding rule make the name *ambiguous*: it is listed with
them and not matched. Nothing beyond these rules is tried.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from routing.errors import UserError

RATINGS_FILE_DEFAULT_VARIANT = "style_control"
RATINGS_COLUMNS = ("variant", "category", "model", "rating", "ci95_low", "ci95_high")
PRICE_COLUMNS = ("model", "input_usd_per_mtok", "output_usd_per_mtok", "price_source")

#: Words a release stamp may hold besides numbers: the tuned/served form of the same model.
#: Not "preview", "exp", "beta", "mini", "turbo", "thinking"...: ``o1`` and ``o1-preview``,
#: ``qwq-32b`` and ``qwq-32b-preview``, ``gpt-4`` and ``gpt-4-1106-preview`` are different models.
RELEASE_WORDS = frozenset({"instruct", "chat", "it", "latest"})

Ratings = dict[str, dict[str, tuple[float, float, float]]]


# ---------------------------------------------------------------------------------------------- files

def _open_csv(path: Path, what: str, required: Iterable[str]) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """Rows of a CSV file with their line numbers; a UserError for a missing file or missing columns."""
    if not path.is_file():
        raise UserError(f"{what} file {path} not found.")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            missing = [c for c in required if c not in columns]
            if missing:
                raise UserError(f"{what} file {path} lacks the column(s) {', '.join(missing)}; "
                                f"it has: {', '.join(columns) or 'no header'}.")
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} file {path} is not UTF-8 text.") from exc
    except csv.Error as exc:
        raise UserError(f"{what} file {path} is not a readable CSV file: {exc}.") from exc
    return rows, columns


def _number(path: Path, line: int, column: str, value: str | None) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{path}, line {line}: {column} {value!r} is not a number.") from None
    if not math.isfinite(number):
        raise UserError(f"{path}, line {line}: {column} {value!r} is not a finite number.")
    return number


def read_ratings(path: str | Path, variant: str = RATINGS_FILE_DEFAULT_VARIANT) -> Ratings:
    """Rating name -> category -> (rating, ci95_low, ci95_high), for one variant of the file."""
    path = Path(path)
    rows, _ = _open_csv(path, "Ratings", RATINGS_COLUMNS)
    variants = sorted({(row.get("variant") or "").strip() for _, row in rows} - {""})
    if variant not in variants:
        raise UserError(f"Ratings file {path} has no variant {variant!r}; "
                        f"it has: {', '.join(variants) or 'no rows'}.")
    out: Ratings = {}
    for line, row in rows:
        if (row.get("variant") or "").strip() != variant:
            continue
        model, category = (row.get("model") or "").strip(), (row.get("category") or "").strip()
        if not model or not category:
            raise UserError(f"{path}, line {line}: the model and the category must not be empty.")
        rating, low, high = (_number(path, line, c, row.get(c)) for c in ("rating", "ci95_low", "ci95_high"))
        if not low <= rating <= high:
            raise UserError(f"{path}, line {line}: ci95_low <= rating <= ci95_high does not hold "
                            f"({low} <= {rating} <= {high}).")
        per_model = out.setdefault(model, {})
        if category in per_model:
            raise UserError(f"{path}, line {line}: a second row for model {model!r}, category {category!r}, "
                            f"variant {variant!r}.")
        per_model[category] = (rating, low, high)
    return out


def read_price_table(path: str | Path) -> dict[str, dict]:
    """Model -> {"input_usd_per_mtok", "output_usd_per_mtok", "source"}; rows without both prices are left out."""
    path = Path(path)
    rows, _ = _open_csv(path, "Price", PRICE_COLUMNS)
    out: dict[str, dict] = {}
    for line, row in rows:
        model = (row.get("model") or "").strip()
        if not model:
            raise UserError(f"{path}, line {line}: the model must not be empty.")
        raw_in, raw_out = (row.get("input_usd_per_mtok") or "").strip(), (row.get("output_usd_per_mtok") or "").strip()
        if not raw_in or not raw_out:
            continue                                      # no published price: nothing to state
        price_in = _number(path, line, "input_usd_per_mtok", raw_in)
        price_out = _number(path, line, "output_usd_per_mtok", raw_out)
        if price_in < 0 or price_out < 0:
            raise UserError(f"{path}, line {line}: a price must not be negative.")
        if model in out:
            raise UserError(f"{path}, line {line}: a second price row for model {model!r}.")
        out[model] = {"input_usd_per_mtok": price_in, "output_usd_per_mtok": price_out,
                      "source": (row.get("price_source") or "").strip()}
    return out


def default_ratings(ratings: Ratings) -> dict[str, tuple[float, float, float]]:
    """Per category, the median rating over every model of the file, with its 25th..75th percentile.

    This is the stated default for a model with no public rating: a typical model of the file,
    with an interval as wide as the middle half of the field.
    """
    by_category: dict[str, list[float]] = {}
    for per_model in ratings.values():
        for category, (rating, _, _) in per_model.items():
            by_category.setdefault(category, []).append(rating)
    out = {}
    for category in sorted(by_category):
        values = np.asarray(by_category[category], dtype=float)
        p25, median, p75 = np.percentile(values, [25, 50, 75])
        out[category] = (float(median), float(p25), float(p75))
    return out


# ------------------------------------------------------------------------------------------ matching

@dataclass
class MatchReport:
    """What :func:`match_names` found: name -> (candidate, how); the names left unmatched or ambiguous."""

    matches: dict[str, tuple[str, str]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)


def last_segment(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def normalise(name: str) -> str:
    """Lower case, the last ``/`` segment, letters and digits only: ``qwen/qwen-2.5-72b`` -> ``qwen2572b``."""
    return re.sub(r"[^a-z0-9]", "", last_segment(name).lower())


def is_release_suffix(suffix: str) -> bool:
    """Whether ``suffix`` (what a table name has after a pool/outcome name) is a release stamp.

    It must start with ``-``, ``_`` or a space (a ``.`` continues a version number: ``gpt-4`` is not
    ``gpt-4.1``, ``deepseek-v3`` not ``deepseek-v3.1``; a letter or digit continues the word:
    ``gpt-4`` is not ``gpt-4o``, ``mistral-large-2`` not ``mistral-large-2402``), and every part of
    it must be one of: a build or date number of 3 digits or more (``2503``, ``001``, ``20241022``),
    the further parts of a number already begun (``2024-08-13``, ``v0.1``), ``v0`` or ``v1`` (a
    first release: ``mixtral-8x7b-instruct-v0.1``, ``amazon-nova-pro-v1.0``), or one of
    :data:`RELEASE_WORDS`. A short number alone, or ``v2`` and up, is a later version, hence another
    model (``mistral-large`` is not ``mistral-large-3``, ``claude-instant`` not ``claude-instant-1``,
    ``athene`` not ``athene-v2-chat``); so is a size or a variant (``llama-3.1`` is not
    ``llama-3.1-8b-instruct``, ``gpt-4o`` not ``gpt-4o-mini-2024-07-18``).
    """
    if not suffix or suffix[0] not in "-_ " or not re.fullmatch(r"[-_. a-z0-9]+", suffix):
        return False
    parts = [p for p in re.split(r"[-_. ]+", suffix) if p]
    if not parts:
        return False
    in_number = False
    for part in parts:
        if part.isdigit():
            if len(part) < 3 and not in_number:
                return False
            in_number = True
        elif re.fullmatch(r"v[01]", part):
            in_number = True
        elif part in RELEASE_WORDS:
            in_number = False
        else:
            return False
    return True


def _suffix_after(candidate: str, letters_and_digits: int) -> str:
    """What follows the first ``letters_and_digits`` letters/digits of the candidate's last segment."""
    text = last_segment(candidate).lower()
    seen = 0
    for i, ch in enumerate(text):
        if seen == letters_and_digits:
            return text[i:]
        if re.fullmatch(r"[a-z0-9]", ch):
            seen += 1
    return ""


def _match_one(name: str, candidates: list[str]) -> tuple[str, list[str]]:
    """(how, the candidates the first rule that finds anything finds); ("", []) when none does."""
    forms = {name.lower(), last_segment(name).lower()}
    found = [c for c in candidates if c.lower() in forms]
    if found:
        return "exact", found
    key = normalise(name)
    if not key:
        return "", []
    found = [c for c in candidates if normalise(c) == key]
    if found:
        return "normalised", found
    found = [c for c in candidates
             if normalise(c).startswith(key) and is_release_suffix(_suffix_after(c, len(key)))]
    if found:
        return "prefix", found
    return "", []


def match_names(names: Iterable[str], candidates: Iterable[str],
                mapping: Mapping[str, str | None] | None = None) -> MatchReport:
    """Match each name to one of ``candidates`` by the module's rules (map, exact, normalised, prefix).

    ``mapping`` (name -> candidate) decides first; a mapped candidate that is not among
    ``candidates`` is a :class:`UserError` naming it. A name mapped to ``None`` is left unmatched on
    purpose (the way to overrule a wrong automatic match).
    """
    pool = list(dict.fromkeys(candidates))
    known = set(pool)
    mapping = dict(mapping or {})
    bad = sorted(f"{k!r} -> {v!r}" for k, v in mapping.items() if v is not None and v not in known)
    if bad:
        raise UserError(f"The name mapping names candidates that are not in the table: {', '.join(bad)}.")
    report = MatchReport()
    for name in dict.fromkeys(names):
        if name in mapping:
            if mapping[name] is None:
                report.unmatched.append(name)
            else:
                report.matches[name] = (mapping[name], "map")
            continue
        how, found = _match_one(name, pool)
        if len(found) == 1:
            report.matches[name] = (found[0], how)
        elif found:
            report.ambiguous[name] = found
        else:
            report.unmatched.append(name)
    return report
