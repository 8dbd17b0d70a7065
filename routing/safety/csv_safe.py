"""Spreadsheet-safe CSV cells (OWASP "CSV injection"): one helper for every CSV people download.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets when the file is opened (``=HYPERLINK(...)``
leaks data, ``=cmd|...`` has run commands). Prompts and answers are text anyone can send, so
every CSV the app offers for download passes its cells through :func:`neutralise_cell`, which
prefixes such text with a single quote (shown as text, not run). Numbers are left alone.

Used by the batch results CSV (``routing.batch.io``, ``routing.batch.ray_engine``) and the outcome
log's RouterBench export (``routing.learning.outcome_log``, the Compare tab's download).
"""

from __future__ import annotations

from typing import Any

#: First characters a spreadsheet treats as a formula (OWASP: also tab and carriage return).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """Prefix a single quote to text a spreadsheet would run as a formula; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(frame):
    """A copy of a pandas DataFrame with every text cell passed through :func:`neutralise_cell`
    (column names too: a model id is text from the pool file)."""
    from pandas.api.types import is_numeric_dtype

    out = frame.copy()
    for column in out.columns:
        if not is_numeric_dtype(out[column]):      # object or string dtype (pandas 3 reads text as "str")
            out[column] = out[column].map(neutralise_cell)
    out.columns = [neutralise_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


__all__ = ["FORMULA_PREFIXES", "neutralise_cell", "neutralise_frame"]
