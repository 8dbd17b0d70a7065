"""Type and range checks for every API parameter, with messages that say what to send instead.

Pure logic (no Gradio): each ``check_*`` returns the cleaned value or raises
:class:`InvalidInput`, a :class:`~routing.errors.UserError` that names the parameter
(``exc.param``). The UI layer (``ui/common.py``'s ``user_errors``) turns it into ``gr.Error``,
which API clients receive as ``gradio_client.exceptions.AppError``.

Conventions: ``None`` (and a blank string, for values a form may send as text) means "use the
default"; booleans are not numbers (``True`` is refused where a number is expected); numbers
may come as numeric strings in ASCII digits (``"0.5"``, ``"1e-3"``; not ``"١"`` or ``"1_0"``);
lists must be JSON lists, not comma-separated strings.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Collection, Sequence

from routing.errors import UserError

#: Longest pasted sample text for selection testing (characters) and most rows in it.
MAX_PASTED_SAMPLE_CHARS = 1_000_000
MAX_PASTED_SAMPLE_ROWS = 2000  # selection_test.MAX_SAMPLES
#: Longest free-text option (a column name, a base model name or path).
MAX_OPTION_CHARS = 500
#: Most entries accepted in a list of model ids (the pool is small; this stops huge payloads early).
MAX_MODEL_LIST = 1000

# ASCII digits only: Python's int() and float() also take other scripts' digits ("١", "１"),
# underscores ("1_0") and, for float, "nan" / "infinity".
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


class InvalidInput(UserError):
    """A parameter with the wrong type or out of range; ``param`` names it."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(message)


def show(value: Any, limit: int = 60) -> str:
    """A short repr of a value for a message (long values are cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_and_value(value: Any) -> str:
    return f"{type(value).__name__} {show(value)}"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
            number = float(value.strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _as_whole(value: Any) -> int | None:
    """An int from an int, an integral float (JSON may send 4.0) or a string of digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    return None


# --------------------------------------------------------------------------- numbers

def check_float(value: Any, name: str, low: float, high: float, *, default: float | None = None) -> float:
    """A number in [low, high]; ``None``/blank gives ``default`` (when there is one)."""
    if _blank(value) and default is not None:
        return float(default)
    number = _as_number(value)
    if number is None or not low <= number <= high:
        raise InvalidInput(name, f"{name} must be a number from {low:g} to {high:g} (got {show(value)}).")
    return number


def check_int(value: Any, name: str, low: int, high: int, *, default: int | None = None) -> int:
    """A whole number in [low, high]; ``None``/blank gives ``default`` (when there is one)."""
    if _blank(value) and default is not None:
        return int(default)
    number = _as_whole(value)
    if number is None or not low <= number <= high:
        raise InvalidInput(name, f"{name} must be a whole number from {low} to {high} (got {show(value)}).")
    return number


def check_cost_weight(value: Any, name: str = "cost_weight") -> float:
    """The quality/cost trade-off λ: a number from 0 (pure quality) to 1 (cheapest); empty is 0."""
    return check_float(value, name, 0.0, 1.0, default=0.0)


def check_latency_weight(value: Any, name: str = "latency_weight") -> float:
    """The quality/latency trade-off: 0 (ignore latency) to 1 (fastest observed); empty is 0."""
    return check_float(value, name, 0.0, 1.0, default=0.0)


def check_max_tokens(value: Any, *, limit: int, name: str = "max_tokens") -> int | None:
    """An answer cap from 1 to ``limit`` (ROUTER_MAX_TOKENS); ``None``/blank keeps the default."""
    if _blank(value):
        return None
    number = _as_whole(value)
    if number is None or not 1 <= number <= limit:
        raise InvalidInput(name, f"{name} must be a whole number from 1 to {limit} (ROUTER_MAX_TOKENS), or "
                                 f"empty for the default (got {show(value)}).")
    return number


def check_bool(value: Any, name: str, *, default: bool = False) -> bool:
    """``True``/``False`` (or the strings "true"/"false"); ``None``/blank gives ``default``."""
    if _blank(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(name, f"{name} must be true or false (got {show(value)}).")


# --------------------------------------------------------------------------- text

def check_prompt(value: Any, *, max_chars: int, name: str = "prompt") -> str:
    """A non-empty string of at most ``max_chars`` characters (ROUTER_MAX_PROMPT_CHARS)."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(name, f"{name} must be text, a JSON string (got {_type_and_value(value)}). "
                                 f"Send it in quotes, e.g. {name}=\"{show(value, 20)}\".")
    if value is None or not value.strip():
        raise InvalidInput(name, f"The {name} is empty: type a question or instruction.")
    if max_chars and len(value) > max_chars:
        raise InvalidInput(name, f"The {name} has {len(value):,} characters; the limit is {max_chars:,} "
                                 "(ROUTER_MAX_PROMPT_CHARS). Shorten it or split it into several prompts.")
    return value


def check_optional_text(value: Any, name: str, *, max_chars: int = MAX_OPTION_CHARS) -> str | None:
    """An optional short string (stripped); ``None``/blank gives ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, f"{name} must be text or empty (got {_type_and_value(value)}).")
    value = value.strip()
    if len(value) > max_chars:
        raise InvalidInput(name, f"{name} must be at most {max_chars} characters (got {len(value):,}).")
    return value or None


def check_choice(value: Any, choices: Sequence[str], name: str, *, default: str | None = None) -> str:
    """One of ``choices`` (exactly, after stripping blanks); ``None`` gives ``default``."""
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.strip() in choices:
        return value.strip()
    simple = all(re.fullmatch(r"[\w.-]+", c) for c in choices)
    listed = ", ".join(choices) if simple else "; ".join(repr(c) for c in choices)
    raise InvalidInput(name, f"{name} must be one of {listed} (got {show(value)}).")


# --------------------------------------------------------------------------- model ids

def _valid_ids(pool_ids: Sequence[str]) -> str:
    return f"Valid model ids: {', '.join(pool_ids)}."


def check_model_id(value: Any, pool_ids: Sequence[str], name: str = "model", *,
                   allow_empty: bool = False) -> str | None:
    """A pool model id (stripped); with ``allow_empty``, ``None``/blank gives ``None``."""
    if _blank(value):
        if allow_empty:
            return None
        raise InvalidInput(name, f"Choose a model: {name} must be one of {', '.join(pool_ids)}.")
    if isinstance(value, str) and value.strip() in pool_ids:
        return value.strip()
    raise InvalidInput(name, f"Unknown model {show(value)} for {name}. {_valid_ids(pool_ids)}")


def check_model_list(value: Any, pool_ids: Sequence[str], name: str) -> list[str]:
    """A list of pool model ids, without duplicates, in the given order; ``None`` gives ``[]``."""
    if value is None:
        return []
    example = f'["{pool_ids[0]}"]' if pool_ids else '["model-id"]'
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(name, f"{name} must be a list of model ids, e.g. {example} (got {show(value)}). "
                                 f"{_valid_ids(pool_ids)}")
    if len(value) > MAX_MODEL_LIST:
        raise InvalidInput(name, f"{name} has {len(value):,} entries; the pool has {len(pool_ids)} models. "
                                 f"{_valid_ids(pool_ids)}")
    ids: list[str] = []
    unknown: list[str] = []
    for item in value:
        if isinstance(item, str) and item.strip() in pool_ids:
            if item.strip() not in ids:
                ids.append(item.strip())
        elif show(item) not in unknown:
            unknown.append(show(item))
    if unknown:
        listed = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        noun = "model" if len(unknown) == 1 else "models"
        raise InvalidInput(name, f"Unknown {noun} {listed} in {name}. {_valid_ids(pool_ids)}")
    return ids


def check_exclude(value: Any, pool_ids: Sequence[str], name: str = "exclude") -> list[str]:
    """Models never to route to: a list of pool ids that leaves at least one model."""
    ids = check_model_list(value, pool_ids, name)
    if pool_ids and set(pool_ids) <= set(ids):
        raise InvalidInput(name, f"{name} lists every pool model: leave at least one model to route to.")
    return ids


# --------------------------------------------------------------------------- batches and samples

def check_prompt_list(value: Any, *, max_rows: int | None, max_mb: float | None,
                      name: str = "prompts") -> list[str] | None:
    """A list of prompt strings within ROUTER_BATCH_MAX_ROWS and ROUTER_BATCH_MAX_MB; ``None``/``[]`` gives None.

    Empty or too long prompts are not refused here: a batch reports them as failed rows.
    """
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return None
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(name, f"{name} must be a list of strings, e.g. [\"first prompt\", \"second prompt\"] "
                                 f"(got {show(value)}).")
    if max_rows and len(value) > max_rows:
        raise InvalidInput(name, f"{name} has {len(value):,} prompts; the limit is {max_rows:,} "
                                 "(ROUTER_BATCH_MAX_ROWS). Split them into several batches.")
    limit = max_file_size_bytes(max_mb)
    size = 0
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidInput(name, f"{name}[{i}] must be text, a JSON string (got {_type_and_value(item)}).")
        size += len(item.encode("utf-8", errors="replace"))
        if limit is not None and size > limit:
            raise InvalidInput(name, f"{name} holds more than {max_mb:g} MB of text, the limit "
                                     "(ROUTER_BATCH_MAX_MB). Split them into several batches.")
    return list(value)


def check_samples_text(value: Any, *, max_chars: int = MAX_PASTED_SAMPLE_CHARS,
                       max_rows: int = MAX_PASTED_SAMPLE_ROWS, name: str = "samples") -> str:
    """Pasted labelled samples (JSONL lines or CSV with a header) within the size caps; ``None`` gives ""."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(name, f"{name} must be text: JSONL lines like {{\"text\": ..., \"expected\": \"coding\"}} "
                                 f"or CSV with a header (got {_type_and_value(value)}).")
    if len(value) > max_chars:
        raise InvalidInput(name, f"{name} has {len(value):,} characters; the limit for pasted samples is "
                                 f"{max_chars:,}. Upload a file instead (`file`).")
    text = value.strip()
    if text:
        lines = sum(1 for line in text.splitlines() if line.strip())
        rows = lines if text.startswith("{") else lines - 1  # a CSV's first line is its header
        if rows > max_rows:
            raise InvalidInput(name, f"{name} has {rows:,} rows; the limit is {max_rows:,} samples.")
    return value


def check_upload_path(value: Any, uploads: Collection[str], name: str = "file") -> Path:
    """The server path of a file this server received as an upload; InvalidInput for any other path.

    ``uploads`` holds the paths Gradio's upload route stored (``Blocks.upload_file_set``). Lying
    in Gradio's upload folder is not enough: other callers' batch results and downloads live
    there too. The refusal is the same whether or not the path exists, and does not repeat it.
    """
    raw = value.get("path") if isinstance(value, dict) else getattr(value, "path", value)
    raw = str(raw) if isinstance(raw, Path) else raw  # a path this module returned, checked again
    hint = "send it with gradio_client.handle_file(path)"
    if not raw or not isinstance(raw, str):
        raise InvalidInput(name, f"`{name}` must be an upload: {hint} (got {type(value).__name__}).")
    if raw not in uploads:
        raise InvalidInput(name, f"`{name}` must be an upload: {hint}; server paths are not accepted.")
    return Path(raw)


def max_file_size_bytes(max_mb: float | None) -> int | None:
    """ROUTER_BATCH_MAX_MB in bytes (MB = 1024 × 1024, as Gradio and batch_io count); 0/None: no limit."""
    if not max_mb or max_mb <= 0:
        return None
    return int(max_mb * 1024 * 1024)


__all__ = ["InvalidInput", "check_float", "check_int", "check_cost_weight", "check_latency_weight", "check_max_tokens", "check_bool",
           "check_prompt", "check_optional_text", "check_choice", "check_model_id", "check_model_list",
           "check_exclude", "check_prompt_list", "check_samples_text", "check_upload_path",
           "max_file_size_bytes", "show", "MAX_PASTED_SAMPLE_CHARS", "MAX_PASTED_SAMPLE_ROWS"]
