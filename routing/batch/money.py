"""Numbers of a batch as people read them: dollars in fixed point, floats without noise.

A row's cost is a sum of per-token prices (``1.7199999999999998e-05``): the preview, the summary
and the charts show it as :func:`dollars` (``$0.0000172``); the CSV keeps the number, cut to
:data:`SIGNIFICANT` digits by :func:`tidy` (``1.72e-05``), so no ``...99998`` noise reaches it.
"""

from __future__ import annotations

import math
from typing import Any

#: Significant digits a result float keeps in the CSV and the summary (float noise is at the 16th or 17th).
SIGNIFICANT = 10


def tidy(value: float) -> float:
    """``value`` rounded to :data:`SIGNIFICANT` significant digits (0.1 + 0.2 -> 0.3)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{SIGNIFICANT}g}")


def dollars(amount: Any) -> str:
    """A dollar amount readable at any size: ``$1,234.50``, ``$0.50``, ``$0.0123``, ``$0.0000172``.

    Under a dollar, three significant digits in fixed point (never ``1.72e-05``) and at least
    cents; "" for a missing amount; the text as it is when it is not a number.
    """
    if amount is None or amount == "":
        return ""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return str(amount)
    if not math.isfinite(value):
        return str(amount)
    if value == 0:
        return "$0"
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value >= 1:
        return f"{sign}${value:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    text = f"{value:.{decimals}f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{value:.2f}"
    return f"{sign}${text}"


__all__ = ["SIGNIFICANT", "tidy", "dollars"]
