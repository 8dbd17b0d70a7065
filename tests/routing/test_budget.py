"""The spend ledger and the daily limit: every paid path (ask, compare-all, the judge, batch) obeys it."""

import os
import stat

import pytest

import json

from routing.budget import (MESSAGE_OVERHEAD_TOKENS, REQUEST_OVERHEAD_TOKENS, TOOLS_OVERHEAD_TOKENS, SpendLedger,
                            cost_bound, estimate_cost, input_chars, input_token_bound, is_paid,
                            seconds_to_midnight, usable_cost)
from routing.errors import SpendLimitError, UserError
from routing.pool import ModelSpec

DAY = 1_780_000_000.0  # a fixed moment (2026-05-28 20:26:40 UTC)


def spec(provider="openrouter", inp=1.0, out=2.0):
    return ModelSpec(id="m", display_name="M", provider=provider, model_name="x/m",
                     input_price_per_m=inp, output_price_per_m=out)


def test_the_ordinary_estimate_from_prices():
    # For ranking and display only: about 4 characters a token (limits hold cost_bound instead).
    assert estimate_cost(spec(), 4000, 500) == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert input_chars([{"role": "user", "content": "abcd"}, {"role": "assistant", "content": None}]) == 4 + 4
    assert is_paid(spec()) and not is_paid(spec("local", 0, 0)) and not is_paid(spec("openai_compatible", 0, 0))


def test_the_bound_counts_every_byte_a_request_sends():
    base = input_token_bound("")
    message = {"role": "user", "content": "abcd"}
    assert input_token_bound("abcd") == input_token_bound([message]) == \
        REQUEST_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS + len(json.dumps(message))
    assert input_token_bound("量子" * 100) - base == 3 * 200   # UTF-8: 3 bytes (tokens at most) a character
    assert input_token_bound("🙂" * 10) - base == 4 * 10
    tools = [{"type": "function", "function": {"name": "f", "description": "d" * 1000}}]
    assert input_token_bound("abcd", {"tools": tools}) - input_token_bound("abcd") >= 1000 + TOOLS_OVERHEAD_TOKENS
    assert input_token_bound("abcd", {"stop": ["s" * 300]}) - input_token_bound("abcd") >= 300
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "x" * 1000}}]}
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:," + "A" * 1000}}]}
    assert input_token_bound([call]) > 1000 and input_token_bound([image]) > 1000
    # The bound never falls below the ordinary estimate's input.
    for text in ("Write a limerick about a cat", "量子计算" * 50, ""):
        assert input_token_bound(text) >= input_chars(text) / 4


def test_the_cost_bound_prices_the_bound_and_trusts_no_bad_number():
    assert cost_bound(spec(), 1000, 500) == (1000 * 1.0 + 500 * 2.0) / 1e6
    assert cost_bound(spec(inp=-5.0), 1000, 0) == 0.0   # a negative price lowers nothing
    assert [usable_cost(v) for v in (0, 0.5, 2)] == [0.0, 0.5, 2.0]
    assert all(usable_cost(v) is None for v in (None, -0.01, float("nan"), float("inf"), True, "0.1", [1]))
    for bound in (float("nan"), float("inf"), -1.0):  # an unbounded cost is never held, limit or not
        for limit in (None, 1.0):
            with pytest.raises(SpendLimitError) as info:
                SpendLedger(None, limit).reserve("m", bound)
            assert info.value.code == "cost_unbounded"


def test_limit_counts_spend_and_calls_in_flight(tmp_path):
    clock = [DAY]
    ledger = SpendLedger(tmp_path, 0.10, clock=lambda: clock[0])
    first = ledger.reserve("a", 0.04)
    second = ledger.reserve("b", 0.04)
    with pytest.raises(SpendLimitError) as info:  # 0.08 held + 0.04 > 0.10: refused before any spend
        ledger.reserve("c", 0.04)
    assert info.value.code == "daily_budget_exhausted" and "held by answers in progress" in str(info.value)
    ledger.settle(first, 0.01)            # the real cost
    ledger.settle(second, None, failed=True)  # failed: nothing billed
    assert ledger.summary()["spent_usd"] == pytest.approx(0.01) and ledger.summary()["in_flight_usd"] == 0
    third = ledger.reserve("c", 0.04)
    ledger.settle(third, None)            # unknown cost: the estimate is recorded
    assert ledger.summary()["spent_usd"] == pytest.approx(0.05)
    ledger.settle(third, 1.0)             # settling twice changes nothing
    assert ledger.summary()["spent_usd"] == pytest.approx(0.05)


def test_spend_survives_a_restart_and_resets_at_utc_midnight(tmp_path):
    clock = [DAY]
    ledger = SpendLedger(tmp_path, 0.05, clock=lambda: clock[0])
    ledger.settle(ledger.reserve("a", 0.05), 0.05)
    again = SpendLedger(tmp_path, 0.05, clock=lambda: clock[0])  # a new process, same data folder
    with pytest.raises(SpendLimitError) as info:
        again.reserve("a", 0.001)
    assert "$0.0500 spent today" in str(info.value) and "00:00 UTC" in str(info.value)
    assert stat.S_IMODE(os.stat(again.path).st_mode) == 0o600
    clock[0] += seconds_to_midnight(clock[0]) + 1  # the next UTC day
    again.settle(again.reserve("a", 0.001), 0.001)
    assert again.summary()["spent_usd"] == pytest.approx(0.001) and again.summary()["paid_calls"] == 1


def test_no_limit_still_records_and_an_unwritable_file_falls_back_to_memory(tmp_path):
    ledger = SpendLedger(tmp_path, None)
    ledger.settle(ledger.reserve("a", 5.0), 2.5)  # no limit: never refused
    assert ledger.summary()["spent_usd"] == 2.5 and ledger.summary()["daily_limit_usd"] is None
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder should be")
    broken = SpendLedger(blocked, 1.0)
    broken.settle(broken.reserve("a", 0.5), 0.5)
    assert broken.summary()["ledger"] == "in memory" and broken.summary()["spent_usd"] == 0.5
    with pytest.raises(SpendLimitError):
        broken.reserve("a", 0.6)


def _exhaust(service):
    ledger = service.ledger
    rest = ledger.daily_limit - ledger.summary()["spent_usd"]
    ledger.settle(ledger.reserve("llama-3.3", rest), rest)


def test_every_paid_path_stops_at_the_limit(make_service, protocol_server):
    from routing.batch.rows import answer_row
    from routing.batch.io import InputRow
    from routing.compare.run import compare_all
    from routing.compare.judge import Judge

    service = make_service(daily_budget_usd=0.01)
    assert service.query("Write a limerick about a sleepy cat")["cost_usd"] > 0  # under the limit: answered
    _exhaust(service)
    asked = len(protocol_server.chat_requests())
    with pytest.raises(SpendLimitError):   # /query, /query-specific and the gateway share this loop
        service.query("Write a limerick about a sleepy cat")
    with pytest.raises(UserError, match="ROUTER_DAILY_BUDGET_USD"):
        service.query_specific("hello", "qwen2.5")
    comparison = compare_all(service.router, "hello")
    assert all("daily spending limit" in r.error for r in comparison.results.values())
    grade = Judge(service.router).grade("Reverse a string", "s[::-1]")
    assert grade.grade is None and "daily spending limit" in grade.error
    row = answer_row(service.router, InputRow(index=0, prompt="hello", fields={}))
    assert "daily spending limit" in row["error"]
    assert len(protocol_server.chat_requests()) == asked  # not one paid call got through
    status = service.status()["spend"]
    assert status["daily_limit_usd"] == 0.01 and status["left_usd"] == 0 and status["paid_calls"] == 2
    assert service.router.health.snapshot("llama-3.3")["consecutive_failures"] == 0  # the budget is not a model fault


def test_a_whole_run_budget_spans_days_and_zero_means_nothing(tmp_path):
    clock = [DAY]
    run = SpendLedger(tmp_path, 0.05, clock=lambda: clock[0], per_day=False, setting="--budget-usd")
    run.settle(run.reserve("a", 0.04), 0.04)
    clock[0] += 3 * 86400  # days later: the same budget
    with pytest.raises(SpendLimitError) as info:
        run.reserve("a", 0.02)
    assert "--budget-usd" in str(info.value) and "00:00 UTC" not in str(info.value)
    with pytest.raises(SpendLimitError):
        SpendLedger(None, 0.0).reserve("a", 1e-9)
