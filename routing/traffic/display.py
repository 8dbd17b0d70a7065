"""The Traffic report (``routing.traffic.report``) as the page shows it: the one-line totals, the
per-model table and the promotions list.

Model ids, causes and selector names come from log files and are data, not markup: every one
that goes into Markdown passes through ``routing.safety.untrusted.md_text``; the table's cells
are plain text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from routing.budget import usd
from routing.safety.untrusted import md_text
from routing.traffic.report import cause_label

EMPTY_MESSAGE = "No traffic in this range yet"

TABLE_COLUMNS = ["model", "requests", "share", "cost", "paid calls", "latency median / p90",
                 "first token median / p90", "fell back from it", "answered after a fallback", "👍", "👎"]


def _day(text: str) -> str:
    day = dt.date.fromisoformat(text)
    return f"{day.day} {day:%b %Y}"


def range_text(report: dict[str, Any]) -> str:
    r = report["range"]
    first, last = _day(r["start"]), _day(r["end"])
    span = first if r["start"] == r["end"] else f"{first} – {last}"
    return f"{span} (UTC, {r['days']} day{'' if r['days'] == 1 else 's'})"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _ms(median: float | None, p90: float | None) -> str:
    return "–" if median is None or p90 is None else f"{median:,.0f} / {p90:,.0f} ms"


def totals_markdown(report: dict[str, Any]) -> str:
    """One line of totals (or the empty-range message), escaped for Markdown; notes below it."""
    t = report["totals"]
    when = md_text(range_text(report))
    notes = "".join(f"\n\n⚠️ {md_text(n)}" for n in report.get("notes") or [])
    if report["empty"]:
        promoted = (f" {_n(t['promotions'], 'selector')} promoted (below)." if t["promotions"] else "")
        return (f"**{EMPTY_MESSAGE}**: {when}, no answers, comparisons, spend or ratings were recorded."
                f"{promoted} Choose another range, or ask something first." + notes)
    parts = [f"**{_n(t['requests'], 'request')}** to {_n(t['models'], 'model')}"]
    cap = t["daily_cap_usd"]
    spent = f"**{md_text(usd(t['cost_usd']))}** spent in {_n(t['paid_calls'], 'paid call')}"
    if cap is not None:
        spent += f" (daily cap {md_text(usd(cap))}; {_n(t['days_over_cap'], 'day')} over it)"
    parts.append(spent)
    if t["fell_back"]:
        causes = ", ".join(f"{md_text(cause_label(c))} ×{n}" for c, n in t["fallbacks_by_cause"].items())
        parts.append(f"{_n(t['fell_back'], 'request')} fell back ({t['fallback_share']:.0%}: {causes})")
    else:
        parts.append("no fallbacks")
    parts.append(f"👍 {t['ratings_up']:,} 👎 {t['ratings_down']:,}")
    shadows = _n(t["shadows"], "shadow comparison")
    if t["shadow_cost_usd"] is not None:
        shadows += f" ({md_text(usd(t['shadow_cost_usd']))})"
    parts.append(shadows)
    if t["compare_runs"]:
        parts.append(_n(t["compare_runs"], "compare-all run"))
    parts.append(_n(t["promotions"], "promotion"))
    return f"{when}: " + " · ".join(parts) + "." + notes


def table_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per model (:data:`TABLE_COLUMNS`), most requests first; [] when there is none."""
    rows = []
    for m in report["per_model"]:
        rows.append([m["model"], m["requests"], f"{m['share']:.1%}", usd(m["cost_usd"]), m["paid_calls"],
                     _ms(m["latency_ms_median"], m["latency_ms_p90"]),
                     _ms(m["first_token_ms_median"], m["first_token_ms_p90"]), m["fallbacks_from"],
                     m["answered_after_fallback"],
                     m["ratings_up"], m["ratings_down"]])
    return rows


def promotions_markdown(report: dict[str, Any]) -> str:
    """The selectors promoted in the range (by automatic retraining), or a line saying there were none."""
    t = report["totals"]
    kept = (f" {_n(t['retrain_runs_kept'], 'retraining run')} kept the live selector."
            if t.get("retrain_runs_kept") else "")
    if not report["promotions"]:
        return "🏋️ No selector was promoted in this range." + kept
    lines = [f"🏋️ **Selectors promoted** ({len(report['promotions'])}):{kept}"]
    for p in report["promotions"]:
        what = md_text(p.get("selector") or "a retrained selector")
        how = f", {md_text(p['strategy'])}" if p.get("strategy") else ""
        why = f": {md_text(p['reason'])}" if p.get("reason") else ""
        lines.append(f"- {md_text(p['at'])}: {what}{how}{why}")
    return "\n".join(lines)
