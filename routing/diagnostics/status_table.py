"""The Status tab's table of models, built from ``Router.health_report`` (no Gradio here).

"reachable" is what a probe can learn without spending tokens (the provider accepts the key
and lists the model); whether the model *answers* is what the router saw last, in its own
columns, with the median of its recent answers and of its recent times to the first token of a
stream: what the latency knob weighs (the second for streamed requests). The local model gets
a row of its own.

A provider's model list is not the last word: an endpoint may list no models at all, or not
this one, while the model answers. A model that answered recently (:data:`ANSWERED_RECENTLY_S`,
and nothing failed since) is not called unreachable for being missing from the list: its row
says what is true ("answered 12 s ago; not in the provider's model list") and shows no error.

The columns fit a 1280-px-wide page (:data:`COLUMN_WIDTHS`, short headers; :data:`LEGEND`
says what each one holds).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from routing.router import LOCAL_ANSWERER

#: (header, width in px): together narrower than the table on a 1280-px-wide page.
COLUMN_WIDTHS: tuple[tuple[str, int], ...] = (
    ("model", 120), ("provider", 105), ("reachable", 170), ("last answer", 165), ("median ms", 150),
    ("failures", 110), ("error", 230), ("$/M in / out", 145))
COLUMNS = [name for name, _ in COLUMN_WIDTHS]

#: What each column holds (shown above the table).
LEGEND = ("**reachable**: what a probe learns without spending tokens (the provider accepts the key and lists "
          "the model; a model missing from the list that answered in the last hour is not called unreachable). "
          "**last answer**: when the router last asked it, and how long the answer took. **median ms**: the "
          "median time of its recent answers (what the latency knob weighs), then the median time to the first "
          "token of its streamed answers (what the knob weighs for streamed requests). **failures**: failures "
          "in a row, and the cooldown left.")

#: How the health report words a model its provider's ``GET /models`` does not list.
NOT_LISTED = "is not in the provider's model list"
#: A model that answered this recently, with no failure since, is reachable whatever the list says.
ANSWERED_RECENTLY_S = 3600.0


def _ms(value: Any) -> Any:
    return None if value is None else int(round(float(value)))


def _ago(moment: float | None, now: float) -> str:
    if moment is None:
        return ""
    seconds = max(0, int(now - moment))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def last_answer(row: dict[str, Any], now: float) -> str:
    ok, failed = row.get("last_ok_at"), row.get("last_failure_at")
    if ok is None and failed is None:
        return "not asked yet"
    if failed is not None and (ok is None or failed > ok):
        return f"failed {_ago(failed, now)}"
    return f"answered {_ago(ok, now)}"


def answered_recently(row: dict[str, Any], now: float) -> bool:
    """The model's last call succeeded, within :data:`ANSWERED_RECENTLY_S`."""
    ok, failed = row.get("last_ok_at"), row.get("last_failure_at")
    return ok is not None and (failed is None or ok >= failed) and now - ok <= ANSWERED_RECENTLY_S


def not_listed(row: dict[str, Any]) -> bool:
    """The probe reached the provider, which does not list the model (the key itself was accepted)."""
    return row.get("listed") is False or NOT_LISTED in str(row.get("probe_error") or "")


def reachability(row: dict[str, Any], now: float) -> tuple[str, str]:
    """(the reachable cell, the error cell) of a pool model's row."""
    probe_ms = _ms(row.get("probe_latency_ms"))
    if row.get("reachable"):
        return ("yes" + (f" ({probe_ms} ms)" if probe_ms is not None else "")), row.get("last_error") or ""
    if not_listed(row) and answered_recently(row, now):
        return f"{last_answer(row, now)}; not in the provider's model list", row.get("last_error") or ""
    return "no", row.get("probe_error") or row.get("last_error") or ""


def _last_answer_cell(row: dict[str, Any], now: float) -> str:
    text = last_answer(row, now)
    ms = _ms(row.get("last_latency_ms"))
    return f"{text} in {ms:,} ms" if text.startswith("answered") and ms is not None else text


def median_ms(row: dict[str, Any]) -> str:
    """The median answer time, then the median time to the first token of a stream, in whole ms."""
    whole, first = _ms(row.get("median_latency_ms")), _ms(row.get("median_first_token_ms"))
    text = "" if whole is None else f"{whole:,}"
    if first is not None:
        text += ("; " if text else "") + f"first token {first:,}"
    return text


def _failures(row: dict[str, Any]) -> str:
    failures = row.get("consecutive_failures") or 0
    cooldown = round(row.get("cooldown_left_s") or 0)
    return f"{failures} (cooling down {cooldown} s)" if cooldown else str(failures)


def model_rows(report: Sequence[dict[str, Any]], local: dict[str, Any] | None,
               now: float | None = None) -> list[list[Any]]:
    """One row per pool model (:data:`COLUMNS`), then the local model's (``local``: its status, None when off)."""
    now = time.time() if now is None else now
    rows = []
    for r in report:
        reachable, error = reachability(r, now)
        rows.append([r["model"], r["provider"], reachable, _last_answer_cell(r, now),
                     median_ms(r), _failures(r), error,
                     f"{r['price_per_m_in']:.3f} / {r['price_per_m_out']:.3f} ({r['price_source']})"])
    free = "0.000 / 0.000 (runs here)"
    if local is None:
        rows.append([LOCAL_ANSWERER, "local (offline fallback)", "off", "", "", "0",
                     "turned off (ROUTER_LOCAL_MODEL=0)", free])
    else:
        state = local.get("state")
        shown = {"ready": "ready", "loading": f"loading ({(local.get('elapsed_s') or 0):.0f} s)",
                 "not_started": "loads on first use", "failed": "failed"}.get(state, str(state))
        rows.append([LOCAL_ANSWERER, "local (offline fallback)", shown, "", "", "0",
                     local.get("error") or "", free])
    return rows
