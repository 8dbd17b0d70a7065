"""The Traffic report from real traffic: answers through the router (the protocol server playing
OpenRouter), a model that fails so the router falls back, ratings, shadows, past days, bad dates."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from routing.budget import SpendLedger
from routing.charts.traffic import cost_figure, fallbacks_figure, latency_figure, requests_figure
from routing.errors import UserError
from routing.learning.outcome_log import OutcomeLog
from routing.learning.retrain import STATE_FILE
from routing.traffic import MAX_DAYS, parse_range, service_report
from routing.traffic.display import EMPTY_MESSAGE, promotions_markdown, table_rows, totals_markdown

LIMERICK = "Write a limerick about a sleepy cat"
PAST = 1_780_000_000.0   # 2026-05-28 20:26:40 UTC
PAST_DAY = "2026-05-28"


def per_model(report):
    return {m["model"]: m for m in report["per_model"]}


def ledger_spent(ledger: SpendLedger) -> float:
    """Every dollar the ledger file holds (all days), read from the file itself."""
    conn = sqlite3.connect(ledger.path)
    try:
        return conn.execute("SELECT COALESCE(SUM(usd), 0) FROM spend").fetchone()[0]
    finally:
        conn.close()


def test_the_report_counts_answers_fallbacks_costs_and_ratings(make_service, protocol_server):
    service = make_service(daily_budget_usd=5.0, read_timeout=1.0)
    llama = service.pool.get("llama-3.3").model_name
    first = service.query(LIMERICK)
    assert first["answered_by"] == "llama-3.3" and not first["fallbacks"]
    protocol_server.set_model(llama, status=429, retry_after=1)
    limited = service.query(LIMERICK + " on a sofa")
    protocol_server.set_model(llama, hang=True)
    slow = service.query(LIMERICK + " in the sun")
    runner_up = limited["answered_by"]
    assert runner_up != "llama-3.3" and slow["answered_by"] == runner_up   # the router really fell back
    service.learning.rate(limited["answer_id"], "up")
    service.learning.rate(first["answer_id"], "down")
    service.learning.flush()

    report = service_report(service)
    models = per_model(report)
    totals = report["totals"]
    assert totals["requests"] == 3 and totals["models"] == 2
    assert models["llama-3.3"]["requests"] == 1 and models[runner_up]["requests"] == 2
    assert models[runner_up]["share"] == pytest.approx(2 / 3, abs=1e-4)
    assert totals["fell_back"] == 2 and models[runner_up]["answered_after_fallback"] == 2
    assert totals["fallbacks_by_cause"] == {"rate_limited": 1, "timeout": 1}
    assert {(f["cause"], f["model"], f["count"]) for f in report["fallbacks"]} == {
        ("rate_limited", "llama-3.3", 1), ("timeout", "llama-3.3", 1)}
    assert models["llama-3.3"]["fallbacks_from"] == 2
    assert r"rate limited \(429\) ×1, timed out ×1" in totals_markdown(report)   # escaped for Markdown
    # the costs are the spend ledger's: the day's total, and each model's calls
    assert totals["cost_usd"] == pytest.approx(service.ledger.summary()["spent_usd"], abs=1e-9)
    assert totals["cost_usd"] == pytest.approx(ledger_spent(service.ledger), abs=1e-9)
    assert models[runner_up]["cost_usd"] == pytest.approx(limited["cost_usd"] + slow["cost_usd"], abs=1e-9)
    assert totals["paid_calls"] == 3 and totals["daily_cap_usd"] == 5.0 and totals["days_over_cap"] == 0
    assert totals["ratings_up"] == 1 and totals["ratings_down"] == 1
    assert models[runner_up]["ratings_up"] == 1 and models["llama-3.3"]["ratings_down"] == 1
    assert models["llama-3.3"]["latency_ms_median"] is not None and models["llama-3.3"]["failed_calls"] == 0
    today = report["per_day"][-1]
    assert today["requests"] == {"llama-3.3": 1, runner_up: 2} and today["fell_back"] == 2
    assert report["range"]["days"] == 7 and all(d["requests_total"] == 0 for d in report["per_day"][:-1])
    assert json.loads(json.dumps(report, allow_nan=False)) == report     # JSON-safe as it is
    rows = {r[0]: r for r in table_rows(report)}
    assert rows[runner_up][1] == 2 and rows["llama-3.3"][1] == 1
    for figure in (requests_figure, cost_figure, latency_figure, fallbacks_figure):
        assert figure(report) is not None, figure.__name__


def test_the_fallbacks_are_in_the_log_with_the_answer(make_service, protocol_server):
    service = make_service()
    protocol_server.set_model(service.pool.get("llama-3.3").model_name, status=503)
    answer = service.query(LIMERICK)
    row = OutcomeLog.for_settings(service.settings).get(answer["answer_id"])
    assert [(f["model"], f["cause"], f["status"], f["skipped"]) for f in row["fallbacks"]] == [
        ("llama-3.3", "server_error", 503, False)]
    assert len(row["fallbacks"][0]["error"]) <= 300
    protocol_server.reset()
    clean = service.query(LIMERICK + " again")
    assert OutcomeLog.for_settings(service.settings).get(clean["answer_id"])["fallbacks"] == []


def test_shadows_and_their_spend(make_service):
    service = make_service(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.0)
    service.query(LIMERICK)
    service.learning.flush()
    report = service_report(service)
    shadow_spend = service.learning.shadow.ledger.summary()["spent_usd"]
    assert report["totals"]["shadows"] == 1 and report["totals"]["shadow_calls"] == 1
    assert shadow_spend > 0 and report["totals"]["shadow_cost_usd"] == pytest.approx(shadow_spend, abs=1e-9)
    assert report["totals"]["requests"] == 1   # a shadow is not a request
    # the app's ledger counts the shadow's call too
    assert report["totals"]["cost_usd"] == pytest.approx(service.ledger.summary()["spent_usd"], abs=1e-9)


def test_the_date_range_keeps_other_days_out(make_service):
    service = make_service(daily_budget_usd=0.001)
    today = service.query(LIMERICK)
    log = OutcomeLog.for_settings(service.settings)
    for n, model in enumerate(["qwen2.5", "qwen2.5", "gemini-flash"]):   # answers logged on a past day
        log.record({"prompt": f"an old question {n}", "kind": "answer", "source": "query", "created_at": PAST + n,
                    "selected_model": model, "fallbacks": [],
                    "results": {model: {"response": "old", "latency_ms": 100.0 * (n + 1), "cost_usd": 0.002}}})
    past_ledger = SpendLedger(service.settings.data_dir, None, clock=lambda: PAST)   # the ledger's own API
    for model in ("qwen2.5", "qwen2.5", "gemini-flash"):
        past_ledger.settle(past_ledger.reserve(model, 0.01), 0.002)
    service.learning.flush()

    now = service_report(service)
    assert now["totals"]["requests"] == 1 and set(per_model(now)) == {today["answered_by"]}
    assert now["totals"]["cost_usd"] == pytest.approx(today["cost_usd"], abs=1e-9)

    past = service_report(service, PAST_DAY, PAST_DAY)
    models = per_model(past)
    assert past["range"] == {"start": PAST_DAY, "end": PAST_DAY, "days": 1}
    assert past["totals"]["requests"] == 3 and models["qwen2.5"]["requests"] == 2
    assert today["answered_by"] not in models
    assert past["totals"]["cost_usd"] == pytest.approx(0.006) and models["qwen2.5"]["paid_calls"] == 2
    assert past["totals"]["days_over_cap"] == 1 and past["per_day"][0]["over_cap"] is True   # $0.006 > $0.001
    assert models["qwen2.5"]["latency_ms_median"] == 150.0 and models["gemini-flash"]["latency_ms_p90"] == 300.0

    around = service_report(service, "2026-05-27", "2026-05-29")
    assert [d["requests_total"] for d in around["per_day"]] == [0, 3, 0]
    assert [d["day"] for d in around["per_day"]] == ["2026-05-27", PAST_DAY, "2026-05-29"]


def test_an_empty_range_says_so_and_draws_nothing(make_service):
    service = make_service()
    service.query(LIMERICK)
    report = service_report(service, "2020-01-01", "2020-01-07")
    assert report["empty"] is True and report["per_model"] == [] and table_rows(report) == []
    assert EMPTY_MESSAGE in totals_markdown(report)
    assert [f(report) for f in (requests_figure, cost_figure, latency_figure, fallbacks_figure)] == [None] * 4
    never_used = make_service(data_dir=service.settings.data_dir.parent / "fresh")
    assert service_report(never_used)["empty"] is True     # no log file, no ledger file yet


def test_promotions_are_listed_with_their_dates(make_service):
    service = make_service()
    folder = service.learning.retrainer.folder
    folder.mkdir(parents=True)
    runs = [{"started": PAST - 60, "finished": PAST, "rows": 40, "promoted": True, "reason": "routed_quality up",
             "strategy": "knn", "selector": "knn <b>v2</b>"},
            {"started": PAST + 60, "finished": PAST + 90, "rows": 60, "promoted": False, "reason": "no gain"}]
    (folder / STATE_FILE).write_text(json.dumps({"rows_at_last_run": 60, "runs": runs}))
    report = service_report(service, PAST_DAY, PAST_DAY)
    assert report["promotions"] == [{"at": "2026-05-28 20:26 UTC", "day": PAST_DAY, "selector": "knn <b>v2</b>",
                                     "strategy": "knn", "reason": "routed_quality up", "rows": 40}]
    assert report["totals"]["promotions"] == 1 and report["totals"]["retrain_runs_kept"] == 1
    text = promotions_markdown(report)
    assert "<b>" not in text and "&lt;b&gt;" in text and "1 retraining run kept" in text
    assert service_report(service)["promotions"] == []


def test_an_older_log_opens_and_gets_the_fallbacks_column(tmp_path):
    path = tmp_path / "outcomes.sqlite3"
    with sqlite3.connect(path) as conn:   # a log written before fallbacks (and owners, scoring) were recorded
        conn.executescript("""
            CREATE TABLE comparisons (id TEXT PRIMARY KEY, created_at REAL NOT NULL, prompt TEXT NOT NULL,
                selected_model TEXT, best_model TEXT, judge_best_model TEXT, router_correct INTEGER,
                meta TEXT NOT NULL DEFAULT '{}');
            CREATE TABLE results (comparison_id TEXT NOT NULL REFERENCES comparisons(id), model TEXT NOT NULL,
                position INTEGER NOT NULL, response TEXT, error TEXT, latency_ms REAL, prompt_tokens INTEGER,
                completion_tokens INTEGER, cost_usd REAL, total REAL, normalized REAL, judge_grade REAL,
                scores TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (comparison_id, model));
            INSERT INTO comparisons (id, created_at, prompt, selected_model, meta)
                VALUES ('old', 1780000000.0, 'an old prompt', 'a', '{"kind": "answer"}');
            INSERT INTO results (comparison_id, model, position, response, latency_ms) VALUES ('old', 'a', 0, 'hi', 80);
        """)
    log = OutcomeLog(path)
    assert log.get("old")["fallbacks"] is None
    with sqlite3.connect(path) as conn:
        assert "fallbacks" in {r[1] for r in conn.execute("PRAGMA table_info(comparisons)")}
    log.record({"prompt": "a new prompt", "kind": "answer", "created_at": PAST + 1, "selected_model": "a",
                "fallbacks": [{"model": "a", "cause": "timeout", "status": None, "skipped": False, "error": "x"}],
                "results": {"b": {"response": "ok", "latency_ms": 90}}})
    days = parse_range(PAST_DAY, PAST_DAY)
    activity = log.activity(days.since, days.until)
    assert [c["fallbacks"] for c in activity["comparisons"]] == [None, [
        {"model": "a", "cause": "timeout", "status": None, "skipped": False, "error": "x"}]]
    assert all("prompt" not in c for c in activity["comparisons"])   # no text leaves the log here


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-05-28", "2026-05-01", "is before `start`"),
    ("yesterday", "", "is not a date"),
    ("", "28/05/2026", "is not a date"),
    ("2026-02-30", "", "is not a day of the calendar"),
    ("2026-13-01", "2026-12-31", "is not a day of the calendar"),
    ("2024-01-01", "2026-01-01", f"at most {MAX_DAYS} days"),
    (20260528, "", "must be a date"),
    ("2030-01-01", "", "today (UTC), the default"),
])
def test_bad_dates_are_refused_with_a_clear_message(start, end, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_range(start, end, today=dt.date(2026, 6, 1))


def test_the_default_range_and_its_limits():
    days = parse_range("", "", today=dt.date(2026, 6, 1))
    assert (days.first, days.last) == (dt.date(2026, 5, 26), dt.date(2026, 6, 1)) and len(days.days) == 7
    assert days.until - days.since == 7 * 86400
    longest = parse_range("2025-06-01", "2026-06-01")
    assert len(longest.days) == MAX_DAYS
    assert parse_range(" 2026-05-28 ", None).first == dt.date(2026, 5, 28)
