"""The Status tab's model table: whole milliseconds, what "reachable" means, the local model's row."""

from routing.diagnostics.status_table import (ANSWERED_RECENTLY_S, COLUMN_WIDTHS, COLUMNS, last_answer,
                                              model_rows)

ROW = {"model": "m", "provider": "openrouter", "reachable": True, "probe_latency_ms": 4.119347000141715,
       "probe_error": None, "last_error": None, "last_latency_ms": 812.6666, "median_latency_ms": 640.4,
       "median_first_token_ms": 210.6, "consecutive_failures": 0,
       "cooldown_left_s": 0.0, "price_per_m_in": 0.1, "price_per_m_out": 0.2, "price_source": "file",
       "last_ok_at": 1000.0, "last_failure_at": None}
#: What the health report says of a model the provider's GET /models does not list.
NOT_LISTED = {**ROW, "reachable": False, "probe_error": "vendor/m is not in the provider's model list"}


def cells(row):
    return dict(zip(COLUMNS, row))


def test_rows_round_times_and_say_what_the_probe_checked():
    rows = model_rows([ROW], {"state": "loading", "elapsed_s": 12.3}, now=1030.0)
    assert len(rows[0]) == len(COLUMNS) and len(COLUMN_WIDTHS) == len(COLUMNS)
    first = cells(rows[0])
    assert first["reachable"] == "yes (4 ms)" and first["last answer"] == "answered 30 s ago in 813 ms"
    assert first["median ms"] == "640; first token 211"              # what the latency knob weighs, whole ms
    assert first["failures"] == "0" and first["error"] == ""
    assert all(len(r) == len(COLUMNS) for r in rows + model_rows([], None))
    local = cells(rows[1])
    assert local["model"] == "gemma-3-270m" and local["reachable"] == "loading (12 s)" and local["median ms"] == ""
    assert cells(model_rows([], None)[0])["reachable"] == "off"


def test_the_table_fits_a_1280_px_page_without_wrapping_headers():
    assert sum(w for _, w in COLUMN_WIDTHS) <= 1200                   # the table is ~1214 px wide at 1280
    for name, width in COLUMN_WIDTHS:                                 # ~10 px a bold header character
        assert 10 * len(name) + 24 <= width, name


def test_a_cooling_model_says_how_long_it_rests():
    row = cells(model_rows([{**ROW, "consecutive_failures": 3, "cooldown_left_s": 41.6,
                             "last_failure_at": 1010.0, "last_error": "HTTP 503"}], None, now=1030.0)[0])
    assert row["failures"] == "3 (cooling down 42 s)" and row["last answer"] == "failed 20 s ago"
    assert row["error"] == "HTTP 503"


def test_a_model_that_just_answered_is_not_a_problem_for_missing_from_the_model_list():
    row = cells(model_rows([NOT_LISTED], None, now=1012.0)[0])
    assert row["reachable"] == "answered 12 s ago; not in the provider's model list"
    assert row["error"] == ""                                         # not reported as an error


def test_a_model_missing_from_the_list_is_unreachable_unless_it_answered_lately():
    never = cells(model_rows([{**NOT_LISTED, "last_ok_at": None}], None, now=1012.0)[0])
    assert never["reachable"] == "no" and "not in the provider's model list" in never["error"]
    long_ago = cells(model_rows([NOT_LISTED], None, now=1000.0 + ANSWERED_RECENTLY_S + 1)[0])
    assert long_ago["reachable"] == "no"
    failed_since = cells(model_rows([{**NOT_LISTED, "last_failure_at": 1005.0}], None, now=1012.0)[0])
    assert failed_since["reachable"] == "no"
    refused = cells(model_rows([{**ROW, "reachable": False, "probe_error": "the key was refused (401)"}], None,
                               now=1012.0)[0])
    assert refused["reachable"] == "no" and refused["error"] == "the key was refused (401)"


def test_the_health_report_of_an_unlisted_model_that_answered_reads_as_reachable(protocol_server, make_service):
    protocol_server.models_listing = []                               # the endpoint lists no models
    service = make_service()
    answered = service.query("Write a limerick about a sleepy cat")["answered_by"]
    rows = {r[0]: cells(r) for r in model_rows(service.health(), None)}
    assert rows[answered]["reachable"].startswith("answered ")
    assert rows[answered]["reachable"].endswith("s ago; not in the provider's model list")
    assert rows[answered]["error"] == ""
    others = [r for m, r in rows.items() if m not in (answered, "gemma-3-270m")]
    assert others and all(r["reachable"] == "no" and "model list" in r["error"] for r in others)


def test_last_answer_reports_the_latest_of_success_and_failure():
    assert last_answer({"last_ok_at": None, "last_failure_at": None}, 0) == "not asked yet"
    assert last_answer({"last_ok_at": 10.0, "last_failure_at": 20.0}, 200.0) == "failed 3 min ago"
    assert last_answer({"last_ok_at": 30.0, "last_failure_at": 20.0}, 40.0) == "answered 10 s ago"
