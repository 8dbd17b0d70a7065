"""Read a data file (CSV, Parquet, JSON, JSON Lines or plain text) with errors a user can act on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd

from routing.errors import UserError


def read_data_file(path: str | Path, what: str, list_keys: tuple[str, ...] = ("data",)) -> pd.DataFrame | list[Any]:
    """A DataFrame for ``.csv`` and ``.parquet`` (as Hugging Face datasets ship); a list of rows for
    ``.json``/``.jsonl``; a list of lines otherwise. A ``.gz`` ending is read through gzip
    (``table.csv.gz``, ``rows.jsonl.gz``).

    ``what`` names the file in messages ("Prompt file", "Outcome table"); a JSON object is
    unwrapped through the first of ``list_keys`` it has. Every problem is a :class:`UserError`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found.")
    suffix = path.suffix.lower()
    gzipped = suffix == ".gz"
    if gzipped:                                     # table.csv.gz, rows.jsonl.gz: read through gzip
        suffix = Path(path.stem).suffix.lower()
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises its own error types for broken files
            raise UserError(f"{what} {path} is not a readable Parquet file: {exc}") from exc
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        text = (gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()).decode("utf-8")
        if suffix == ".jsonl":
            rows: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif suffix == ".json":
            rows = json.loads(text)
        else:
            return [line.strip() for line in text.splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text.") from exc
    except (OSError, EOFError) as exc:            # a truncated or not-really-gzip .gz
        raise UserError(f"{what} {path} cannot be read: {exc}.") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{what} {path} is not a readable CSV: {exc}.") from exc
    if isinstance(rows, dict):
        rows = next((rows[k] for k in list_keys if rows.get(k)), [])
    if not isinstance(rows, list):
        raise UserError(f"{what} {path} must hold a list.")
    return rows
