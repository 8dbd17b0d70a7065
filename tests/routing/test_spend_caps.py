"""Money caps are promises: attacks on the daily limit, ``max_cost_usd`` and the shadow budget.

Each test is an attack found by a security audit (on a stand-in provider), kept as a test:

(a) a provider's ``usage.cost`` that is NaN, infinite or negative, and ledger files that hold
    such values or cannot be read, must neither lift a limit, nor block a day, nor make the
    ledger forget what was spent;
(b) everything a request sends (tools, tool-call arguments, non-text parts) counts toward the
    amount held for it;
(c) prompts in scripts that tokenize densely (Chinese) cannot spend past a cap.

The stand-in provider is ``tests/protocol_server.py``; the tests script its bill by replacing
its ``cost_for`` / ``usage_for`` for the test's duration. The pool is priced like that server
bills (``PROMPT_PRICE`` / ``COMPLETION_PRICE``), so a bound computed from pool prices can be
compared with what the server charges.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

import tests.protocol_server as stand_in
from routing.budget import SpendLedger
from routing.errors import SpendLimitError

DAY = 1_780_000_000.0  # a fixed moment (2026-05-28 20:26:40 UTC)
ASSETS_POOL = Path(__file__).resolve().parents[2] / "assets" / "models.json"

#: ~6,000 Chinese characters (18,000 UTF-8 bytes), under ROUTER_MAX_PROMPT_CHARS: about 1,500
#: tokens at four characters a token, up to 18,000 tokens for a byte-level tokenizer.
CHINESE = "请用中文详细解释量子计算的基本原理，并举例说明。" * 250
#: 200 kB of tool description: $0.20 of input at $1 per million tokens.
BIG_TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Looks things up. " + "x" * 200_000,
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]


@pytest.fixture
def priced(make_service, tmp_path):
    """A service whose pool is priced the way the stand-in server bills ($1 / $2 per M tokens)."""
    raw = json.loads(ASSETS_POOL.read_text())
    models = raw["models"] if isinstance(raw, dict) else raw
    for model in models:
        model["input_price_per_m"] = stand_in.PROMPT_PRICE * 1e6
        model["output_price_per_m"] = stand_in.COMPLETION_PRICE * 1e6
    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps({"models": models}))

    def build(**overrides):
        return make_service(models_file=pool_file, **overrides)

    return build


def bill_every_byte(messages: list, reply: str) -> dict[str, int]:
    """Usage as the worst tokenizer bills it: one prompt token per UTF-8 byte of the messages sent."""
    prompt = len(json.dumps(messages, ensure_ascii=False).encode("utf-8"))
    completion = len(reply.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def stored_amounts(ledger: SpendLedger) -> list[float]:
    conn = sqlite3.connect(ledger.path)
    try:
        return [row[0] for row in conn.execute("SELECT usd FROM spend")]
    finally:
        conn.close()


# ---------------------------------------------------------------------- (a) bad provider costs

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0], ids=["nan", "inf", "negative"])
def test_a_bad_provider_cost_neither_lifts_nor_blocks_the_daily_limit(priced, protocol_server, monkeypatch, bad):
    monkeypatch.setattr(stand_in, "cost_for", lambda usage: bad)  # every answer reports this usage.cost
    service = priced(daily_budget_usd=0.01)
    ledger = service.ledger
    answered = []
    for i in range(20):
        try:
            answered.append(service.query(f"Write a limerick about sleepy cat number {i}"))
        except SpendLimitError:
            break
    else:
        pytest.fail(f"the daily limit never stopped paid calls ({len(answered)} answered)")
    summary = ledger.summary()
    assert summary["ledger"] == str(ledger.path), "one bad value switched the ledger to memory"
    assert 0 < summary["spent_usd"] <= 0.01, f"spent {summary['spent_usd']} against a $0.01 limit"
    assert len(answered) > 1, "one bad value blocked paid calls for the rest of the day"
    assert all(a["cost_usd"] is None for a in answered), [a["cost_usd"] for a in answered]  # not believed
    assert all(math.isfinite(x) and x > 0 for x in stored_amounts(ledger))
    restarted = SpendLedger(ledger.path.parent, 0.01)  # a restart remembers the day's spend
    assert restarted.summary()["spent_usd"] == pytest.approx(summary["spent_usd"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, True, "0.01"],
                         ids=["nan", "inf", "negative", "bool", "text"])
def test_the_ledger_records_the_hold_for_a_cost_it_cannot_believe(tmp_path, caplog, bad):
    ledger = SpendLedger(tmp_path, 0.10, clock=lambda: DAY)
    ledger.settle(ledger.reserve("a", 0.03), bad)
    summary = ledger.summary()
    assert summary["ledger"] == str(ledger.path) and summary["spent_usd"] == pytest.approx(0.03)
    assert stored_amounts(ledger) == [pytest.approx(0.03)]
    assert "not a usable cost" in caplog.text
    with pytest.raises(SpendLimitError):  # 0.03 + 0.08 > 0.10: the bad value lifted nothing
        ledger.reserve("a", 0.08)


def test_rows_an_older_version_stored_do_not_poison_the_day(tmp_path):
    ledger = SpendLedger(tmp_path, 0.10, clock=lambda: DAY)
    ledger.settle(ledger.reserve("a", 0.02), 0.02)
    conn = sqlite3.connect(ledger.path)  # what an older version wrote from bad provider costs
    conn.executemany("INSERT INTO spend(day, at, model, usd, estimated) VALUES (?, ?, ?, ?, 0)",
                     [(ledger.summary()["day_utc"], DAY, "a", usd) for usd in (float("inf"), -5.0, float("-inf"))])
    conn.commit()
    conn.close()
    again = SpendLedger(tmp_path, 0.10, clock=lambda: DAY)  # the next start reads them
    assert again.summary()["spent_usd"] == pytest.approx(0.02)   # inf and negatives are not counted
    again.settle(again.reserve("a", 0.07), 0.07)                 # not blocked until midnight
    with pytest.raises(SpendLimitError):                         # nor lifted by the -$5 row
        again.reserve("a", 0.02)


def test_a_ledger_file_that_breaks_does_not_forget_the_days_spend(tmp_path):
    clock = [DAY]
    ledger = SpendLedger(tmp_path, 0.10, clock=lambda: clock[0])
    ledger.settle(ledger.reserve("a", 0.08), 0.08)
    ledger.path.write_bytes(b"this is not a SQLite database" * 100)  # the file breaks
    for name in ("-wal", "-shm"):
        Path(str(ledger.path) + name).unlink(missing_ok=True)
    with pytest.raises(SpendLimitError):  # the $0.08 it knew still counts
        ledger.reserve("a", 0.05)
    ledger.settle(ledger.reserve("a", 0.01), 0.01)  # kept in memory meanwhile...
    assert ledger.summary()["spent_usd"] == pytest.approx(0.09) and ledger.summary()["ledger"] == "in memory"
    with pytest.raises(SpendLimitError):
        ledger.reserve("a", 0.02)
    # A new process cannot know the day's spend from a file it cannot read: it refuses paid calls.
    with pytest.raises(SpendLimitError, match="cannot be read"):
        SpendLedger(tmp_path, 0.10, clock=lambda: clock[0]).reserve("a", 0.001)
    # Repaired (here: removed), the file gets what was kept in memory on the next write.
    ledger.path.unlink()
    clock[0] += 60
    ledger.settle(ledger.reserve("a", 0.005), 0.005)
    assert ledger.summary()["ledger"] == str(ledger.path)
    assert sorted(stored_amounts(ledger)) == [pytest.approx(0.005), pytest.approx(0.01)]
    assert ledger.summary()["spent_usd"] == pytest.approx(0.095)  # the unreadable file's $0.08 included


# ---------------------------------------------------------------------- (b) everything sent counts

@pytest.mark.parametrize("shape", ["tools", "tool_call_arguments", "image_part"])
def test_everything_a_request_sends_counts_toward_max_cost_usd(priced, protocol_server, shape):
    service = priced()
    question = {"role": "user", "content": "What is the weather in Paris today?"}
    messages, extra = [question], None
    if shape == "tools":
        extra = {"tools": BIG_TOOLS}
    elif shape == "tool_call_arguments":
        call = {"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"q": "y" * 200_000})}}
        messages = [question, {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    else:
        messages = [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 200_000}}]}]
    # 200 kB sent: up to $0.20 of input at $1 per million tokens; the cap is half that.
    with pytest.raises(SpendLimitError) as info:
        service.router.ask("What is the weather in Paris today?", messages=messages, extra=extra,
                           max_cost_usd=0.10)
    assert info.value.code == "max_cost_exceeded"
    assert protocol_server.chat_requests() == []  # nothing was sent


def test_tools_count_toward_the_daily_limit(priced, protocol_server):
    service = priced(daily_budget_usd=0.10)
    with pytest.raises(SpendLimitError) as info:
        service.router.ask("What is the weather in Paris today?", extra={"tools": BIG_TOOLS},
                           messages=[{"role": "user", "content": "What is the weather in Paris today?"}])
    assert info.value.code == "daily_budget_exhausted"
    assert protocol_server.chat_requests() == [] and service.ledger.summary()["spent_usd"] == 0


# ---------------------------------------------------------------------- (c) dense scripts

def test_a_chinese_prompt_is_never_billed_past_max_cost_usd(priced, protocol_server, monkeypatch):
    monkeypatch.setattr(stand_in, "usage_for", bill_every_byte)
    service = priced()
    try:
        result = service.router.ask(CHINESE, max_cost_usd=0.01)
    except SpendLimitError as exc:
        assert exc.code == "max_cost_exceeded"
        result = None
    assert result is None or result.cost_usd <= 0.01, f"billed ${result.cost_usd} against max_cost_usd $0.01"
    assert result is None and protocol_server.chat_requests() == []


def test_chinese_prompts_never_spend_past_the_daily_limit(priced, protocol_server, monkeypatch):
    monkeypatch.setattr(stand_in, "usage_for", bill_every_byte)
    service = priced(daily_budget_usd=0.05)
    for i in range(10):
        try:
            service.query(f"{CHINESE} #{i}")
        except SpendLimitError:
            break
    else:
        pytest.fail("the daily limit never stopped paid calls")
    spent = service.ledger.summary()["spent_usd"]
    assert 0 < spent <= 0.05, f"spent ${spent} against a $0.05 daily limit"


def test_shadows_of_chinese_prompts_never_pass_their_budget(priced, protocol_server, monkeypatch):
    monkeypatch.setattr(stand_in, "usage_for", bill_every_byte)
    service = priced(shadow_rate=1.0, shadow_budget_usd=0.01, holdout_share=0.0)
    service.query(CHINESE)
    service.learning.flush()
    shadow = service.learning.shadow
    spent = shadow.ledger.summary()["spent_usd"]
    assert spent <= 0.01, f"shadows spent ${spent} against a $0.01 shadow budget"
    assert shadow.counts["over_budget"] == 1 and shadow.counts["sampled"] == 0
