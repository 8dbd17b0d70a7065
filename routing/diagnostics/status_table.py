"""The Status tab's table of models, built from ``Router.health_report`` (no Gradio here).

"Key and listing" is what a probe can learn without spending tokens (the provider accepts the
key and lists the model); whether the model *answers* is what the router saw last, in its own
columns, with the median of its recent answers and of its recent times to the first token of a
stream: what the latency knob weighs (the second for streamed requests). The local model gets
a row of its own.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from routing.router import LOCAL_ANSWERER

COLUMNS = ["model", "provider", "key and listing (no tokens)", "last answer", "probe ms", "error",
           "last answer ms", "median answer ms (latency knob)", "median first token ms (streamed requests)",
           "failures in a row", "cooldown s",
           "price $/M in / out"]


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


def model_rows(report: Sequence[dict[str, Any]], local: dict[str, Any] | None,
               now: float | None = None) -> list[list[Any]]:
    """One row per pool model, then the local model's (``local``: its status, None when off)."""
    now = time.time() if now is None else now
    rows = []
    for r in report:
        rows.append([r["model"], r["provider"], "yes" if r["reachable"] else "no", last_answer(r, now),
                     _ms(r.get("probe_latency_ms")), r.get("probe_error") or r.get("last_error") or "",
                     _ms(r.get("last_latency_ms")), _ms(r.get("median_latency_ms")),
                     _ms(r.get("median_first_token_ms")), r.get("consecutive_failures") or 0,
                     round(r.get("cooldown_left_s") or 0), f"{r['price_per_m_in']:.3f} / {r['price_per_m_out']:.3f} "
                     f"({r['price_source']})"])
    if local is None:
        rows.append([LOCAL_ANSWERER, "local (offline fallback)", "off", "", None,
                     "turned off (ROUTER_LOCAL_MODEL=0)", None, None, None, 0, 0, "0.000 / 0.000 (runs here)"])
    else:
        state = local.get("state")
        shown = {"ready": "ready", "loading": f"loading ({(local.get('elapsed_s') or 0):.0f} s)",
                 "not_started": "loads on first use", "failed": "failed"}.get(state, str(state))
        rows.append([LOCAL_ANSWERER, "local (offline fallback)", shown, "", None, local.get("error") or "",
                     None, None, None, 0, 0, "0.000 / 0.000 (runs here)"])
    return rows
