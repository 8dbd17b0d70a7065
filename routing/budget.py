"""What the app spends on paid models: cost estimates, the day's ledger, the daily limit.

Every paid call (the gateway, ``/query``, compare-all, batch, the judge) goes through
:class:`routing.router.Router`, which asks :meth:`SpendLedger.reserve` first and
:meth:`SpendLedger.settle` afterwards:

- ``reserve`` refuses with :class:`routing.errors.SpendLimitError` (HTTP 402 in the gateway)
  when the day's spend, plus what calls in flight may still spend, plus this call's estimate
  would pass ``ROUTER_DAILY_BUDGET_USD``. Calls in flight are counted at their estimate, so
  fifty concurrent requests cannot all slip under the limit at once.
- ``settle`` writes the call's real cost (the provider's, else the estimate) to a SQLite file
  beside the outcome log (``<ROUTER_DATA_DIR>/spend.sqlite3``, 0600), so a restart does not
  forget the day's spend. A failed call is not written (providers do not bill errors); a call
  cut off mid-answer (the client went away) is written at its estimate.

A day is a UTC calendar day. Free models (the local model, endpoints priced at 0) are never
refused. Reservations are per process: several processes sharing one data folder see each
other's settled spend, not each other's calls in flight.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from routing.errors import SpendLimitError
from routing.outcome_log import _private_dir, _private_file, _tighten

log = logging.getLogger(__name__)

LEDGER_FILENAME = "spend.sqlite3"
#: Characters per token assumed when estimating a prompt's tokens (English averages about 4).
CHARS_PER_TOKEN = 4.0

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
    """Characters a request sends: a prompt's length, or a chat's contents (JSON for parts and tools)."""
    if isinstance(messages, str):
        return len(messages)
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message
        total += len(content) if isinstance(content, str) else len(json.dumps(content, default=str))
    return total


def estimate_cost(spec: Any, chars_in: int, max_tokens: int) -> float:
    """Dollars at most for ``chars_in`` characters in and ``max_tokens`` tokens out at ``spec``'s prices."""
    tokens_in = chars_in / CHARS_PER_TOKEN
    return round((tokens_in * spec.input_price_per_m + max_tokens * spec.output_price_per_m) / 1e6, 10)


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
    model: str
    estimate: float
    day: str
    settled: bool = False


class SpendLedger:
    """The day's spend on paid models, and the daily limit (None: no limit, spend still recorded).

    ``folder`` None keeps the ledger in memory only (tests, a read-only deployment).
    Thread-safe; one instance per process (the service's router holds it).
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
        self._memory: list[tuple[str, float, str, float, int]] = []  # when there is no file
        self._ready = False
        self._file_failed = False

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
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a power cut may lose the last rows, never corrupt
        if not self._ready:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def _use_file(self) -> bool:
        return self.path is not None and not self._file_failed

    def _file_error(self, exc: Exception) -> None:
        # The ledger must not stop answers because its file cannot be written: keep counting in
        # memory (the day's spend from before is then unknown to this process) and say so.
        log.error("spend ledger %s failed (%s); counting in memory from now on", self.path, exc)
        self._file_failed = True

    def _day_totals(self, day: str) -> tuple[float, int]:
        """(dollars, calls) settled on ``day``. Called with the lock held."""
        if self._use_file():
            if not self.path.exists():  # nothing spent yet: reading creates no file
                return 0.0, 0
            try:
                conn = self._connect()
                try:
                    spent, calls = conn.execute("SELECT COALESCE(SUM(usd), 0), COUNT(*) FROM spend WHERE day = ?",
                                                (day,)).fetchone()
                finally:
                    conn.close()
                return float(spent), int(calls)
            except (sqlite3.Error, OSError) as exc:
                self._file_error(exc)
        rows = [r for r in self._memory if r[0] == day]
        return sum(r[3] for r in rows), len(rows)

    def _write(self, day: str, model: str, usd: float, estimated: bool) -> None:
        row = (day, self._clock(), model, usd, int(estimated))
        if self._use_file():
            try:
                conn = self._connect()
                try:
                    conn.execute("INSERT INTO spend(day, at, model, usd, estimated) VALUES (?, ?, ?, ?, ?)", row)
                finally:
                    conn.close()
                return
            except (sqlite3.Error, OSError) as exc:
                self._file_error(exc)
        self._memory.append(row)

    # ------------------------------------------------------------------ the API
    def reserve(self, model: str, estimate: float) -> Reservation:
        """Hold ``estimate`` dollars for a call to ``model``; SpendLimitError when the limit forbids it."""
        with self._lock:
            day = self._period(self._clock())
            if self.daily_limit is not None:
                spent, _ = self._day_totals(day)
                held = sum(r.estimate for r in self._in_flight.values() if r.day == day)
                if spent + held + estimate > self.daily_limit:
                    raise SpendLimitError(self._refusal(spent, held, estimate), code="daily_budget_exhausted")
            reservation = Reservation(model=model, estimate=estimate, day=day)
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

    def settle(self, reservation: Reservation, cost_usd: float | None, *, failed: bool = False) -> None:
        """Record what the call cost (None: unknown, the estimate is recorded) and release the hold."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._in_flight.pop(id(reservation), None)
            if failed:  # providers do not bill errors: nothing to record (and no disk write on the way
                return      # to the next model, whose time is running)
            if cost_usd is None or cost_usd < 0:
                usd, estimated = reservation.estimate, True
            else:
                usd, estimated = float(cost_usd), False
            self._write(reservation.day, reservation.model, usd, estimated)

    def summary(self) -> dict[str, Any]:
        """The day's figures for the Status tab and ``/v1`` clients."""
        with self._lock:
            now = self._clock()
            day = self._period(now)
            spent, calls = self._day_totals(day)
            held = sum(r.estimate for r in self._in_flight.values() if r.day == day)
            left = None if self.daily_limit is None else max(0.0, self.daily_limit - spent - held)
            return {"day_utc": day, "spent_usd": round(spent, 6), "paid_calls": calls,
                    "in_flight_usd": round(held, 6), "daily_limit_usd": self.daily_limit,
                    "left_usd": None if left is None else round(left, 6),
                    "resets_in_s": round(seconds_to_midnight(now)),
                    "ledger": str(self.path) if self._use_file() else "in memory"}

    def describe(self) -> str:
        s = self.summary()
        text = f"Spent today (UTC {s['day_utc']}): {usd(s['spent_usd'])} in {s['paid_calls']} paid call{'' if s['paid_calls'] == 1 else 's'}"
        if s["daily_limit_usd"] is None:
            return text + f"; no daily limit (set {self.setting})"
        return text + (f" of a {usd(s['daily_limit_usd'])} daily limit ({self.setting}); "
                       f"{usd(s['left_usd'])} left, resets in {_hours_minutes(s['resets_in_s'])}")
