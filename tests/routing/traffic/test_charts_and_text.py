"""The Traffic figures and text from a log written with hostile model ids: shown as text, never markup."""

from __future__ import annotations

from routing.budget import SpendLedger
from routing.charts.traffic import cost_figure, fallbacks_figure, latency_figure, requests_figure
from routing.learning.outcome_log import OutcomeLog
from routing.traffic import service_report
from routing.traffic.display import table_rows, totals_markdown

PAST = 1_780_000_000.0   # 2026-05-28 20:26:40 UTC
DAY = "2026-05-28"
HOSTILE = '<img src=x onerror="alert(1)">**bold**'
CAUSE = "<a href='javascript:alert(2)'>x</a>"


def test_hostile_ids_and_causes_are_escaped_in_charts_and_text(make_service):
    service = make_service(daily_budget_usd=0.02)
    log = OutcomeLog.for_settings(service.settings)
    for n, model in enumerate([HOSTILE, HOSTILE, "qwen2.5"]):
        log.record({"prompt": f"q{n}", "kind": "answer", "created_at": PAST + n, "selected_model": model,
                    "fallbacks": [{"model": "llama-3.3", "cause": CAUSE}] if n == 0 else [],
                    "results": {model: {"response": "a", "latency_ms": 50.0 + n, "first_token_ms": 10.0 + n}}})
    ledger = SpendLedger(service.settings.data_dir, None, clock=lambda: PAST)
    ledger.settle(ledger.reserve(HOSTILE, 0.01), 0.004)
    report = service_report(service, DAY, DAY)

    requests = requests_figure(report)
    assert [t.name for t in requests.data] == ["&lt;img src=x onerror=\"alert(1)\"&gt;**bold**", "qwen2.5"]
    assert list(requests.data[0].y) == [2] and requests.layout.barmode == "stack"
    cost = cost_figure(report)
    cap = [t for t in cost.data if t.type == "scatter"]
    assert len(cap) == 1 and list(cap[0].y) == [0.02] and list(cost.data[0].y) == [0.004]
    assert cost.data[0].name.startswith("&lt;img")
    generous = make_service(daily_budget_usd=1.0)   # the same data folder, a cap far above the spend:
    far = cost_figure(service_report(generous, DAY, DAY))   # no line, the share of it in the title
    assert [t.type for t in far.data] == ["bar"] and "0.4% of the $1 daily cap" in far.layout.title.text
    latency = latency_figure(report)
    assert [t.name for t in latency.data] == ["answer, median", "answer, p90", "first token, median",
                                              "first token, p90"]
    assert all("<img" not in x for t in latency.data for x in t.x)
    fallbacks = fallbacks_figure(report)
    assert list(fallbacks.data[0].x) == ["&lt;a href='javascript:alert(2)'&gt;x&lt;/a&gt;"]

    text = totals_markdown(report)
    assert "<a" not in text and "&lt;a href" in text
    assert table_rows(report)[0][0] == HOSTILE   # a Dataframe cell is plain text: shown as it is
