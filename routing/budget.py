"""What the app spends on paid models: cost bounds, the day's ledger, the daily limit.

Every paid call (the gateway, ``/query``, compare-all, batch, the judge, shadows) goes through
:class:`routing.router.Router`, which asks :meth:`SpendLedger.reserve` first and
:meth:`SpendLedger.settle` afterwards:

- ``reserve`` refuses with :class:`routing.errors.SpendLimitError` (HTTP 402 in the gateway)
  when the day's spend, plus what calls in flight may still spend, plus this call's bound
  would pass ``ROUTER_DAILY_BUDGET_USD``. Calls in flight are counted at their bound, so
  fifty concurrent requests cannot all slip under the limit at once.
- ``settle`` writes the call's real cost (the provider's) to a SQLite file beside the outcome
  log (``<ROUTER_DATA_DIR>/spend.sqlite3``, 0600), so a restart does not forget the day's
  spend. A cost that is missing, negative, NaN, infinite or not a number is not believed: the
  call is recorded at its bound (and a warning logged for a bad value). A failed call is not
  written (providers do not bill errors); a call cut off mid-answer (the client went away) is
  written at its bound.

The bound (:func:`input_token_bound`, :func:`cost_bound`). A limit is a promise, so what a call
holds must be a number its bill cannot pass, whatever the language or the shape of the request:
every input token is counted as one UTF-8 byte of the JSON the request carries (each message
whole, with its content parts and tool calls, and every extra field such as ``tools``), plus a
small allowance per message and per request for the chat template's own tokens, and the answer
as ``max_tokens`` tokens. Byte-level BPE tokenizers (GPT, Llama 3, Qwen, DeepSeek) and
SentencePiece with byte fallback (Mistral, Gemma) never make more tokens of a text than it has
bytes. The bound is priced at the model's pool prices; for English it is about four times the
ordinary estimate (:func:`estimate_cost`, about 4 characters a token), which the cost knob and
the displayed estimates keep using. It does not cover media the provider fetches or decodes
itself (an image given by URL is billed by its pixels, not its bytes), nor a provider billing
above the pool's prices; when a reported cost passes the bound, the real cost is recorded and a
warning logged.

The ledger keeps counting whatever happens to its file: a row the file does not take stays in
memory (and is still counted) until a later write stores it; the day's total last read from
the file is carried while the file cannot be read, and a process that never could read it
refuses paid calls under a limit rather than guess. Rows an older version stored as infinite or
negative are left out of the day's total (see :meth:`SpendLedger._read_day`).

A day is a UTC calendar day. Free models (the local model, endpoints priced at 0) are never
refused. Reservations are per process: several processes sharing one data folder see each
other's settled spend, not each other's calls in flight.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import numbers
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from routing.errors import SpendLimitError
from routing.files import _private_dir, _private_file, _tighten

log = logging.getLogger(__name__)

LEDGER_FILENAME = "spend.sqlite3"
#: Characters per token assumed by the ordinary estimate (English averages about 4). Not a bound.
CHARS_PER_TOKEN = 4.0
#: Tokens allowed once per request beyond its bytes: the chat template's start of text and the
#: opening of the assistant's turn.
REQUEST_OVERHEAD_TOKENS = 16
#: Tokens allowed per message beyond its bytes (role markers, separators). The message's JSON
#: keys (``{"role": "user", "content": ...}``, about 30 bytes) already outnumber them.
MESSAGE_OVERHEAD_TOKENS = 8
#: Tokens allowed when ``tools`` are sent, for the instructions templates wrap around them
#: (Llama 3 and Qwen 2.5 add about 100 tokens). The tools themselves are counted as indented
#: JSON (4 spaces), the widest form templates render them in.
TOOLS_OVERHEAD_TOKENS = 256
#: Seconds the ledger leaves a failing file alone before trying it again.
FILE_RETRY_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL,
    at REAL NOT NULL,
    model TEXT NOT NULL,
    usd REAL NOT NULL,
    estimated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS spend_by_day ON spend(day);
"""


def input_chars(messages: Iterable[Any] | str) -> int:
    """Characters of a prompt, or of a chat's contents (JSON for parts): the ordinary estimate's input.

    Not a bound: tools, tool calls and the bytes of other scripts are what
    :func:`input_token_bound` adds.
    """
    if isinstance(messages, str):
        return len(messages)
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message
        total += len(content) if isinstance(content, str) else len(json.dumps(content, default=str))
    return total


def estimate_cost(spec: Any, chars_in: int, max_tokens: int) -> float:
    """An ordinary estimate: ``chars_in`` characters at 4 a token in, ``max_tokens`` out, at ``spec``'s prices.

    For ranking, calibration and displayed estimates. Spending limits hold :func:`cost_bound`
    instead: this one undercounts other scripts and ignores what is not message content.
    """
    tokens_in = chars_in / CHARS_PER_TOKEN
    return round((tokens_in * spec.input_price_per_m + max_tokens * spec.output_price_per_m) / 1e6, 10)


def _json_bytes(value: Any, *, indent: int | None = None) -> int:
    """UTF-8 bytes of ``value`` as JSON (non-ASCII characters as themselves, not ``\\u`` escapes)."""
    text = json.dumps(value, ensure_ascii=False, default=str, indent=indent)
    return len(text.encode("utf-8", "surrogatepass"))


def input_token_bound(messages: Iterable[Any] | str, extra: Mapping[str, Any] | None = None) -> int:
    """The most input tokens a chat request can be billed for: a bound, not an estimate.

    ``messages`` as they are sent (a string is one user message), whatever their shape: text or
    content parts, assistant ``tool_calls``, tool results. ``extra``: the other request fields
    sent with them (``tools``, ``response_format``, ``stop``, ...). Each is counted at the UTF-8
    bytes of its JSON, which no byte-level BPE or byte-fallback tokenizer exceeds in tokens (JSON
    quoting and escapes only add bytes), ``tools`` as 4-space indented JSON plus
    :data:`TOOLS_OVERHEAD_TOKENS`, with :data:`MESSAGE_OVERHEAD_TOKENS` per message and
    :data:`REQUEST_OVERHEAD_TOKENS` for the template around them. Media a provider fetches from
    a URL is billed by what it fetches and is not bounded here.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    tokens = REQUEST_OVERHEAD_TOKENS
    for message in messages:
        tokens += MESSAGE_OVERHEAD_TOKENS + _json_bytes(message)
    for name, value in (extra or {}).items():
        if name == "tools":
            tokens += TOOLS_OVERHEAD_TOKENS + _json_bytes(value, indent=4)
        else:
            tokens += _json_bytes({name: value})
    return tokens


def cost_bound(spec: Any, tokens_in: int, max_tokens: int) -> float:
    """The most a call to ``spec`` can cost: ``tokens_in`` (:func:`input_token_bound`) at the input
    price plus ``max_tokens`` at the output price. Not rounded (rounding could go below the bound)."""
    price_in, price_out = max(0.0, spec.input_price_per_m), max(0.0, spec.output_price_per_m)
    return (tokens_in * price_in + max_tokens * price_out) / 1e6


def usable_cost(value: Any) -> float | None:
    """``value`` as dollars when it is a real, finite, non-negative number; else None (not believed)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real too
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def is_paid(spec: Any) -> bool:
    """Whether calls to this pool model cost money (the local model and 0-priced endpoints do not)."""
    return spec.provider != "local" and (spec.input_price_per_m > 0 or spec.output_price_per_m > 0)


def utc_day(now: float | None = None) -> str:
    return _dt.datetime.fromtimestamp(time.time() if now is None else now, _dt.timezone.utc).strftime("%Y-%m-%d")


def seconds_to_midnight(now: float | None = None) -> float:
    now = time.time() if now is None else now
    moment = _dt.datetime.fromtimestamp(now, _dt.timezone.utc)
    midnight = (moment + _dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


def usd(amount: float) -> str:
    """Dollars with the precision small amounts need ($0.000041, $0.0123, $1.50)."""
    return f"${amount:.6f}" if abs(amount) < 0.01 else f"${amount:.4f}" if abs(amount) < 1 else f"${amount:.2f}"


def _hours_minutes(seconds: float) -> str:
    minutes = max(1, int(seconds // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@dataclass
class Reservation:
    """A call's hold: ``estimate`` is the bound held for it (the name predates the bound)."""

    model: str
    estimate: float
    day: str
    settled: bool = False


#: The largest finite float: stored amounts above it (infinity) are not counted.
_FINITE_MAX = sys.float_info.max


class SpendLedger:
    """The day's spend on paid models, and the daily limit (None: no limit, spend still recorded).

    ``folder`` None keeps the ledger in memory only (tests, a read-only deployment).
    Thread-safe; one instance per process (the service's router holds it).

    Only usable amounts (finite, >= 0: :func:`usable_cost`) are ever written. When the file
    fails, the ledger does not switch to memory for good: rows the file did not take are kept
    (and counted) in memory and written with the next write that succeeds, the day's total last
    read from the file stands in for it, and the file is tried again after
    :data:`FILE_RETRY_S` seconds.
    """

    def __init__(self, folder: str | Path | None, daily_limit_usd: float | None = None,
                 clock: Callable[[], float] = time.time, *, filename: str = LEDGER_FILENAME,
                 setting: str = "ROUTER_DAILY_BUDGET_USD", per_day: bool = True):
        self.path = Path(folder) / filename if folder is not None else None
        self.setting = setting  # the variable named in refusals
        self.per_day = per_day  # False: one limit for everything ever spent (a collect run's budget)
        # None: no limit (spend is still recorded); 0: nothing may be spent.
        self.daily_limit = None if daily_limit_usd is None else max(0.0, float(daily_limit_usd))
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight: dict[int, Reservation] = {}
        # Rows not (yet) in the file: every row when there is no file.
        self._pending: list[tuple[str, float, str, float, int]] = []
        # The file's (dollars, calls) per period as this process last read them, plus its own
        # writes since. Rows are only ever added, so a smaller read means the file was replaced
        # or lost, and what was known stands (_remember keeps the larger).
        self._known: dict[str, tuple[float, int]] = {}
        self._ready = False
        self._file_failed = False      # the last use of the file failed
        self._file_error_text = ""
        self._retry_at = 0.0           # the file is not tried before this (clock) time
        self._warned_rows: set[str] = set()

    @classmethod
    def for_settings(cls, settings: Any) -> "SpendLedger":
        return cls(Path(settings.data_dir), settings.daily_budget_usd)

    def _period(self, now: float) -> str:
        return utc_day(now) if self.per_day else "total"

    # ------------------------------------------------------------------ storage
    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        _private_dir(self.path.parent)
        _private_file(self.path)
        if not self._ready:
            _tighten(self.path)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a power cut may lose the last rows, never corrupt
            if not self._ready:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _file_usable(self) -> bool:
        """Whether to use the file now (there is one, and it is not resting after a failure)."""
        return self.path is not None and (not self._file_failed or self._clock() >= self._retry_at)

    def _file_error(self, exc: Exception) -> None:
        # The ledger must not stop answers because its file fails: it keeps what it knows in
        # memory (see the class docstring) and says so.
        log.error("spend ledger %s failed (%s); counting in memory, trying the file again in %.0f s",
                  self.path, exc, FILE_RETRY_S)
        self._file_failed, self._file_error_text = True, str(exc)
        self._ready = False  # a replaced file needs its schema again
        self._retry_at = self._clock() + FILE_RETRY_S

    def _file_ok(self) -> None:
        if self._file_failed:
            log.warning("spend ledger %s works again", self.path)
        self._file_failed, self._file_error_text = False, ""

    def _remember(self, day: str, spent: float, calls: int) -> None:
        """Keep the file's total for ``day`` (the larger of what was known and what is given)."""
        known = self._known.get(day, (0.0, 0))
        self._known = {day: max(known, (spent, calls))}  # one period at a time

    def _read_day(self, day: str) -> tuple[float, int] | None:
        """(dollars, calls) the file holds for ``day``; None when there is no file. Raises on failure.

        Rows whose amount is infinite or negative (an older version stored providers' bad costs;
        this one never does) are counted as calls but not as dollars, and logged. Counting an
        infinite row would block every paid call until midnight and a negative one would lift the
        limit; the call's real cost is unknown, and leaving it out undercounts that call alone.
        """
        assert self.path is not None
        if not self.path.exists():  # nothing spent yet: reading creates no file
            return None
        conn = self._connect()
        try:
            spent, calls, bad = conn.execute(
                "SELECT COALESCE(SUM(CASE WHEN usd >= 0 AND usd <= ? THEN usd END), 0), COUNT(*), "
                "COALESCE(SUM(CASE WHEN usd >= 0 AND usd <= ? THEN 0 ELSE 1 END), 0) FROM spend WHERE day = ?",
                (_FINITE_MAX, _FINITE_MAX, day)).fetchone()
        finally:
            conn.close()
        if bad and day not in self._warned_rows:
            self._warned_rows.add(day)
            log.warning("spend ledger %s: %d row(s) of %s hold an infinite or negative amount (stored by an "
                        "older version); they are not counted in the day's spend", self.path, bad, day)
        return float(spent), int(calls)

    def _day_totals(self, day: str) -> tuple[float, int, bool]:
        """(dollars, calls, known) for ``day``: the file's total and the rows it has not taken.

        ``known`` is False when the file exists but cannot be read and this process never read
        it for ``day``: the day's spend is then unknown. Called with the lock held.
        """
        pending = [r for r in self._pending if r[0] == day]
        spent, calls = sum(r[3] for r in pending), len(pending)
        if self.path is None:
            return spent, calls, True
        if self._file_usable():
            try:
                read = self._read_day(day)
            except (sqlite3.Error, OSError) as exc:
                self._file_error(exc)
            else:
                self._file_ok()
                self._remember(day, *(read or (0.0, 0)))
        if day not in self._known:
            try:
                absent = not self.path.exists()
            except OSError:
                absent = False
            if not absent:
                return spent, calls, False
            self._known = {day: (0.0, 0)}  # no file: nothing in it
        file_spent, file_calls = self._known[day]
        return spent + file_spent, calls + file_calls, True

    def _write(self, day: str, model: str, usd: float, estimated: bool) -> None:
        """Record one call; the rows the file has not taken yet go with it. Called with the lock held."""
        assert usable_cost(usd) is not None, usd  # settle() never passes anything else
        self._pending.append((day, self._clock(), model, usd, int(estimated)))
        if self.path is None or not self._file_usable():
            return
        try:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")  # all the rows or none
                conn.executemany("INSERT INTO spend(day, at, model, usd, estimated) VALUES (?, ?, ?, ?, ?)",
                                 self._pending)
                conn.execute("COMMIT")
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            self._file_error(exc)
            return
        self._file_ok()
        for row in self._pending:
            if row[0] in self._known:
                spent, calls = self._known[row[0]]
                self._known[row[0]] = (spent + row[3], calls + 1)
        self._pending.clear()

    # ------------------------------------------------------------------ the API
    def reserve(self, model: str, estimate: float) -> Reservation:
        """Hold ``estimate`` dollars (the call's bound) for a call to ``model``.

        SpendLimitError when the limit forbids it, when the day's spend cannot be known (the
        file cannot be read; see :meth:`_day_totals`), or when ``estimate`` is not a finite
        amount >= 0 (a cost that cannot be bounded is never held, limit or not).
        """
        amount = usable_cost(estimate)
        if amount is None:
            raise SpendLimitError(f"The cost of a call to {model} cannot be bounded (estimate {estimate!r}): "
                                  "check its prices in the model pool.", code="cost_unbounded")
        with self._lock:
            day = self._period(self._clock())
            if self.daily_limit is not None:
                spent, _, known = self._day_totals(day)
                if not known:
                    raise SpendLimitError(
                        f"The spend ledger {self.path} cannot be read ({self._file_error_text}), so the spend "
                        f"so far is unknown and paid calls are refused to keep the limit of "
                        f"{usd(self.daily_limit)} ({self.setting}). Repair or remove the file.",
                        code="daily_budget_exhausted")
                held = sum(r.estimate for r in self._in_flight.values() if r.day == day)
                if spent + held + amount > self.daily_limit:
                    raise SpendLimitError(self._refusal(spent, held, amount), code="daily_budget_exhausted")
            reservation = Reservation(model=model, estimate=amount, day=day)
            self._in_flight[id(reservation)] = reservation
            return reservation

    def _refusal(self, spent: float, held: float, estimate: float) -> str:
        limit = self.daily_limit or 0.0
        when = "today" if self.per_day else "so far"
        if spent + held >= limit:
            state = f"{usd(spent)} spent {when}"
        else:
            state = (f"{usd(spent)} spent {when}, {usd(held)} held by answers in progress, and this answer "
                     f"could cost up to {usd(estimate)}")
        if not self.per_day:
            return f"The spending limit of {usd(limit)} ({self.setting}) is reached: {state}."
        wait = _hours_minutes(seconds_to_midnight(self._clock()))
        return (f"The daily spending limit of {usd(limit)} ({self.setting}) is reached: {state}. "
                f"Paid models answer again after 00:00 UTC (in {wait}); the app's owner can raise the limit.")

    def settle(self, reservation: Reservation, cost_usd: Any, *, failed: bool = False) -> None:
        """Record what the call cost and release the hold.

        ``cost_usd`` None (unknown: no cost reported, or the call was cut off) records the hold.
        So does a value that is not a usable cost (NaN, infinite, negative, not a number), with
        a warning: it is never stored. A usable cost above the hold is recorded as it is (it was
        billed) with a warning that the bound was passed.
        """
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._in_flight.pop(id(reservation), None)
            if failed:  # providers do not bill errors: nothing to record (and no disk write on the way
                return      # to the next model, whose time is running)
            amount = usable_cost(cost_usd)
            if amount is None:
                if cost_usd is not None:
                    log.warning("%s: %r is not a usable cost; the call is recorded at its bound, %s",
                                reservation.model, cost_usd, usd(reservation.estimate))
                amount, estimated = reservation.estimate, True
            else:
                if amount > reservation.estimate * (1 + 1e-9):
                    log.warning("%s cost %s, above the %s held for it: the bound was passed (prices in the "
                                "pool below the provider's?)", reservation.model, usd(amount),
                                usd(reservation.estimate))
                estimated = False
            self._write(reservation.day, reservation.model, amount, estimated)

    def check(self) -> None:
        """Raise when the ledger's file cannot be opened (``/readyz``: ``routing.metrics.readiness``).

        Opens it as the next paid call's write would (the folder and file are created when
        missing), whatever the ledger's retry pause after a failure; nothing is written. An
        in-memory ledger (no folder) has nothing to check."""
        if self.path is None:
            return
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("SELECT COUNT(*) FROM spend WHERE 0").fetchone()
            finally:
                conn.close()

    def summary(self) -> dict[str, Any]:
        """The day's figures for the Status tab and ``/v1`` clients (always finite numbers)."""
        with self._lock:
            now = self._clock()
            day = self._period(now)
            spent, calls, known = self._day_totals(day)
            spent = min(spent, _FINITE_MAX)
            held = sum(r.estimate for r in self._in_flight.values() if r.day == day)
            left = None if self.daily_limit is None else max(0.0, self.daily_limit - spent - held)
            on_file = self.path is not None and not self._file_failed
            return {"day_utc": day, "spent_usd": round(spent, 6), "paid_calls": calls,
                    "in_flight_usd": round(held, 6), "daily_limit_usd": self.daily_limit,
                    "left_usd": None if left is None else round(left, 6),
                    "resets_in_s": round(seconds_to_midnight(now)),
                    "ledger": str(self.path) if on_file else "in memory",
                    "ledger_error": None if on_file or self.path is None else self._file_error_text,
                    "spend_known": known}

    def spend_by_day(self, first_day: str, last_day: str) -> list[dict[str, Any]]:
        """Recorded spend per (UTC day, model) for the days ``first_day`` to ``last_day`` (``YYYY-MM-DD``,
        both included): each ``day``, ``model``, ``usd``, ``calls``, ``estimated`` (calls recorded at
        their bound), ordered by day and model. The file's rows plus those it has not taken yet;
        rows holding an amount that is not usable (see :meth:`_read_day`) count as calls, not
        dollars. Raises ``sqlite3.Error`` / ``OSError`` when the file cannot be read."""
        totals: dict[tuple[str, str], list[float]] = {}

        def add(day: str, model: str, amount: float, calls: int, estimated: int) -> None:
            entry = totals.setdefault((day, model), [0.0, 0, 0])
            entry[0] += amount
            entry[1] += calls
            entry[2] += estimated

        with self._lock:
            pending = [r for r in self._pending if first_day <= r[0] <= last_day]
            if self.path is not None and self.path.exists():
                conn = self._connect()
                try:
                    rows = conn.execute(
                        "SELECT day, model, COALESCE(SUM(CASE WHEN usd >= 0 AND usd <= ? THEN usd END), 0), COUNT(*), "
                        "COALESCE(SUM(estimated), 0) FROM spend WHERE day >= ? AND day <= ? GROUP BY day, model",
                        (_FINITE_MAX, first_day, last_day)).fetchall()
                finally:
                    conn.close()
                for day, model, amount, calls, estimated in rows:
                    add(str(day), str(model), float(amount), int(calls), int(estimated))
        for day, _at, model, amount, estimated in pending:
            add(day, model, amount, 1, int(estimated))
        return [{"day": day, "model": model, "usd": round(v[0], 10), "calls": int(v[1]), "estimated": int(v[2])}
                for (day, model), v in sorted(totals.items())]

    def describe(self) -> str:
        s = self.summary()
        text = f"Spent today (UTC {s['day_utc']}): {usd(s['spent_usd'])} in {s['paid_calls']} paid call{'' if s['paid_calls'] == 1 else 's'}"
        if s["daily_limit_usd"] is None:
            return text + f"; no daily limit (set {self.setting})"
        return text + (f" of a {usd(s['daily_limit_usd'])} daily limit ({self.setting}); "
                       f"{usd(s['left_usd'])} left, resets in {_hours_minutes(s['resets_in_s'])}")
