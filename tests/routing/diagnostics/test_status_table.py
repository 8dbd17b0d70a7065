"""The Status tab's model table: whole milliseconds, what "reachable" means, the local model's row."""

from routing.diagnostics.status_table import COLUMNS, last_answer, model_rows

ROW = {"model": "m", "provider": "openrouter", "reachable": True, "probe_latency_ms": 4.119347000141715,
       "probe_error": None, "last_error": None, "last_latency_ms": 812.6666, "median_latency_ms": 640.4,
       "median_first_token_ms": 210.6, "consecutive_failures": 0,
       "cooldown_left_s": 0.0, "price_per_m_in": 0.1, "price_per_m_out": 0.2, "price_source": "file",
       "last_ok_at": 1000.0, "last_failure_at": None}


def test_rows_round_times_and_say_what_the_probe_checked():
    rows = model_rows([ROW], {"state": "loading", "elapsed_s": 12.3}, now=1030.0)
    assert len(rows[0]) == len(COLUMNS) and "no tokens" in COLUMNS[2]
    assert rows[0][4] == 4 and rows[0][6] == 813 and rows[0][3] == "answered 30 s ago"
    assert "latency knob" in COLUMNS[7] and rows[0][7] == 640 and rows[1][7] is None   # what the knob weighs
    assert "first token" in COLUMNS[8] and rows[0][8] == 211 and rows[1][8] is None    # ... for streamed requests
    assert all(len(r) == len(COLUMNS) for r in rows + model_rows([], None))
    assert rows[1][0] == "gemma-3-270m" and rows[1][2] == "loading (12 s)"
    assert model_rows([], None)[0][2] == "off"


def test_last_answer_reports_the_latest_of_success_and_failure():
    assert last_answer({"last_ok_at": None, "last_failure_at": None}, 0) == "not asked yet"
    assert last_answer({"last_ok_at": 10.0, "last_failure_at": 20.0}, 200.0) == "failed 3 min ago"
    assert last_answer({"last_ok_at": 30.0, "last_failure_at": 20.0}, 40.0) == "answered 10 s ago"
