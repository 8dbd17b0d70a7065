"""Who may spend the owner's OpenRouter key: the access rule of every paid path, and per-visitor limits.

A *paid path* is anything that asks a paid pool model on the owner's key: Ask, ``/query``,
``/query-specific``, compare-all (``/query-compare``, the Compare tab, its judge), batch in the
answer and compare modes (``/batch-query``, the Batch tab), collect, and the gateway's
``/v1/chat/completions``. Routing decisions, route-only batches, calibration, selection
testing and Status spend nothing and stay open.

``ROUTER_PAID_ACCESS`` says who may use a paid path:

- ``open``: anyone who can reach the app (the owner accepts that, usually with a daily cap);
- ``signed-in``: only a caller the app can name: a user signed in with Gradio's login
  (``ROUTER_UI_USERS``), a Hugging Face account signed in on a Space (``hf_oauth: true``),
  or a caller sending ``Authorization: Bearer <one of ROUTER_API_KEYS>`` (``gradio_client``'s
  ``headers=``, the ``openai`` SDK's ``api_key=``). Anyone may still use a paid path on their
  *own* OpenRouter key (the Ask tab's key box): that spends nothing of the owner's.
- ``auto`` (the default): ``signed-in`` when the app listens beyond localhost (or runs on a
  Space) with an OpenRouter key and no daily cap (``ROUTER_DAILY_BUDGET_USD``), else ``open``.

The page's buttons call the same Gradio API as raw clients do, so the rule cannot be "the page
may, scripts may not": it is about *who* calls. Each named caller (and, where anonymous callers
are let in, each client address) has ``ROUTER_VISITOR_DAILY_CALLS`` paid calls per UTC day (unset:
100 where the app is public, no limit on localhost),
counted before the calls are made, in ``<ROUTER_DATA_DIR>/visitors.sqlite3`` (visitor ids are
stored hashed). Anonymous callers are counted by address only as well as an address can say:
behind a proxy that address may be the proxy's, and one person can have many.

Importable without Gradio: :mod:`ui.common` turns a ``gr.Request`` into a :class:`Caller`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from routing.errors import UserError

log = logging.getLogger(__name__)

MODES = ("auto", "open", "signed-in")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
VISITORS_FILENAME = "visitors.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS visitor_calls (
    day TEXT NOT NULL,
    visitor TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (day, visitor)
);
"""


class PaidAccessError(UserError):
    """A caller this deployment does not let spend its key (HTTP 401 in the gateway)."""

    status = 401


class VisitorLimitError(UserError):
    """A caller has used up their paid calls for the day (HTTP 429 in the gateway)."""

    status = 429

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``visitor`` is a stable, hashed id; ``named`` says whether we know who it is."""

    visitor: str
    named: bool
    how: str  # "gateway key", "signed in", "Hugging Face sign-in", "anonymous"

    @property
    def label(self) -> str:
        return self.how


def _digest(kind: str, value: str) -> str:
    return f"{kind}:" + hashlib.sha256(f"{kind}\0{value}".encode("utf-8", "surrogatepass")).hexdigest()[:24]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case), else ''."""
    auth = (authorization or "").strip()
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def matching_key(token: str, keys: tuple[str, ...]) -> str | None:
    """The gateway key ``token`` is (every key compared in constant time), else None."""
    found = None
    for key in keys:
        if hmac.compare_digest(token.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")):
            found = key
    return found if token else None


def identify(*, authorization: str | None, api_keys: tuple[str, ...], username: str | None = None,
             hf_username: str | None = None, client_host: str | None = None) -> Caller:
    """The caller of one request; PaidAccessError when it sends a gateway key that is not one of ours.

    A wrong key is refused rather than quietly treated as anonymous: the caller meant to use a
    key, and should hear that it is wrong.
    """
    token = bearer_token(authorization)
    if token:
        key = matching_key(token, api_keys)
        if key is None:
            raise PaidAccessError("Wrong key: the Authorization header's key is not one of this deployment's "
                                  "ROUTER_API_KEYS.")
        return Caller(_digest("key", key), True, "gateway key")
    if username:
        return Caller(_digest("user", username), True, "signed in")
    if hf_username:
        return Caller(_digest("hf", hf_username), True, "Hugging Face sign-in")
    return Caller(_digest("addr", client_host or "unknown"), False, "anonymous")


def listens_publicly(settings: Any) -> bool:
    """Whether the app is reachable beyond this machine (a Space, or a host other than loopback)."""
    return bool(settings.on_spaces) or (settings.server_name or "127.0.0.1") not in LOCAL_HOSTS


def owner_edit_refusal(settings: Any, *, enabled: bool, setting: str, what: str, risk: str) -> str | None:
    """Why ``what`` (e.g. "the pool") cannot be edited from the page, or None when it can: the owner's
    ``setting`` (``enabled``) must be on, and where the app is reachable beyond this machine a login
    (ROUTER_UI_USERS) must stand in front of everything, since on a public page "the owner" cannot be
    told from anyone else. ``risk``: what anyone could do otherwise."""
    if not enabled:
        return (f"Editing {what} is off on this deployment. The owner can turn it on by setting {setting}=1 and "
                "restarting the app (keep it off where strangers reach the page).")
    if listens_publicly(settings) and not settings.ui_users:
        return (f"{setting} is on, but this app is reachable beyond this machine without a login: anyone could "
                f"{risk}. Set ROUTER_UI_USERS (a login in front of everything) or serve it on localhost only, "
                "and restart the app.")
    return None


def effective_mode(settings: Any) -> str:
    """``open`` or ``signed-in``: ROUTER_PAID_ACCESS with ``auto`` resolved (see the module docstring)."""
    mode = settings.paid_access
    if mode in ("open", "signed-in"):
        return mode
    exposed = listens_publicly(settings) and bool(settings.openrouter_api_key) and settings.daily_budget_usd is None
    return "signed-in" if exposed else "open"


def sign_in_ways(settings: Any) -> list[str]:
    """How a caller can get access here, in words (for refusals and the page)."""
    ways = []
    if settings.ui_users:
        ways.append("sign in with your user name and password")
    if settings.hf_oauth:
        ways.append("sign in with Hugging Face (the button at the top of the page)")
    if settings.api_keys:
        ways.append("send \"Authorization: Bearer <key>\" with one of the keys the owner gave you "
                    "(gradio_client: Client(url, headers={\"Authorization\": \"Bearer <key>\"}))")
    return ways


#: Paid calls per caller per UTC day where ROUTER_VISITOR_DAILY_CALLS is unset and the app is public.
PUBLIC_DAILY_CALLS = 100


def daily_calls(settings: Any) -> int | None:
    """Paid calls per caller per day (None: no limit): ROUTER_VISITOR_DAILY_CALLS (0: no limit), else
    PUBLIC_DAILY_CALLS where the app is reachable beyond this machine, else no limit."""
    if settings.visitor_daily_calls is not None:
        return int(settings.visitor_daily_calls) or None
    return PUBLIC_DAILY_CALLS if listens_publicly(settings) else None


def _utc_day(now: float) -> str:
    return _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y-%m-%d")


def _seconds_to_midnight(now: float) -> float:
    moment = _dt.datetime.fromtimestamp(now, _dt.timezone.utc)
    midnight = (moment + _dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


class PaidAccess:
    """The access rule and the per-visitor daily call limit (one per process; thread-safe).

    ``folder`` None counts in memory only (tests). ``daily_calls`` 0 or None: no per-visitor limit.
    """

    def __init__(self, settings: Any, folder: str | Path | None, *, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.mode = effective_mode(settings)
        self.daily_calls = daily_calls(settings)
        self.path = Path(folder) / VISITORS_FILENAME if folder is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str], int] = {}
        self._ready = False

    @classmethod
    def for_settings(cls, settings: Any) -> "PaidAccess":
        return cls(settings, settings.data_dir)

    # ------------------------------------------------------------------ the rule
    def refusal(self) -> str:
        ways = sign_in_ways(self.settings)
        how = ("To use them: " + "; or ".join(ways) + "." if ways else
               "This deployment has no way to sign in (its owner sets ROUTER_UI_USERS, ROUTER_API_KEYS or "
               "Hugging Face sign-in).")
        return ("Paid models on this deployment's key are for signed-in callers only (ROUTER_PAID_ACCESS). "
                f"{how} In the Ask tab you can also paste your own OpenRouter key. Routing decisions, route-only "
                "batches, calibration and selection testing need no sign-in.")

    def allows(self, caller: Caller) -> bool:
        return self.mode == "open" or caller.named

    def check(self, caller: Caller) -> None:
        """PaidAccessError unless ``caller`` may spend the owner's key at all."""
        if not self.allows(caller):
            raise PaidAccessError(self.refusal())

    def charge(self, caller: Caller, calls: int) -> None:
        """Check ``caller`` and count ``calls`` paid calls against their day; refuse the whole request
        (nothing counted) when they would pass ``ROUTER_VISITOR_DAILY_CALLS``."""
        self.check(caller)
        calls = max(0, int(calls))
        if self.daily_calls is None or calls == 0:
            return
        with self._lock:
            now = self._clock()
            day = _utc_day(now)
            used = self._add_if_within(day, caller.visitor, calls)
        if used is not None:
            wait = _seconds_to_midnight(now)
            left = max(0, self.daily_calls - used)
            raise VisitorLimitError(
                f"You have used {used} of your {self.daily_calls} paid calls today (ROUTER_VISITOR_DAILY_CALLS); "
                f"this request needs {calls} and {left} are left. They come back after 00:00 UTC "
                f"(in {int(wait // 3600)} h {int(wait % 3600 // 60):02d} min).", retry_after_s=wait)

    def used_today(self, caller: Caller) -> int:
        with self._lock:
            day = _utc_day(self._clock())
            return self._read(day, caller.visitor)

    # ------------------------------------------------------------------ storage
    def _connect(self) -> sqlite3.Connection:
        from routing.files import _private_dir, _private_file

        assert self.path is not None
        if not self._ready:
            _private_dir(self.path.parent)
            _private_file(self.path)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        if not self._ready:
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def _read(self, day: str, visitor: str) -> int:
        if self.path is None:
            return self._memory.get((day, visitor), 0)
        conn = self._connect()
        try:
            row = conn.execute("SELECT calls FROM visitor_calls WHERE day = ? AND visitor = ?", (day, visitor)).fetchone()
        finally:
            conn.close()
        return int(row[0]) if row else 0

    def _add_if_within(self, day: str, visitor: str, calls: int) -> int | None:
        """Add ``calls`` unless that passes the limit: None when added, else the calls already used.

        One ``BEGIN IMMEDIATE`` transaction, so processes sharing the data folder cannot both slip
        under the limit.
        """
        limit = self.daily_calls or 0
        if self.path is None:
            used = self._memory.get((day, visitor), 0)
            if used + calls > limit:
                return used
            self._memory[(day, visitor)] = used + calls
            return None
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT calls FROM visitor_calls WHERE day = ? AND visitor = ?", (day, visitor)).fetchone()
            used = int(row[0]) if row else 0
            if used + calls > limit:
                conn.execute("ROLLBACK")
                return used
            conn.execute("INSERT INTO visitor_calls(day, visitor, calls) VALUES (?, ?, ?) "
                         "ON CONFLICT(day, visitor) DO UPDATE SET calls = calls + excluded.calls", (day, visitor, calls))
            conn.execute("DELETE FROM visitor_calls WHERE day < ?", (_utc_day(self._clock() - 7 * 86400),))
            conn.execute("COMMIT")
            return None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def describe(self) -> str:
        """One line for the Status tab."""
        limit = (f"{self.daily_calls} paid calls per visitor per UTC day" if self.daily_calls
                 else "no per-visitor limit")
        who = "signed-in callers only" if self.mode == "signed-in" else "anyone who can reach the app"
        return f"Paid models on the owner's key: {who} (ROUTER_PAID_ACCESS={self.settings.paid_access}); {limit}."


def header(headers: Mapping[str, str] | Any, name: str) -> str | None:
    """A request header, case-insensitively, from a Starlette ``Headers`` or a plain mapping."""
    try:
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
        return value
    except Exception:  # noqa: BLE001 - no headers: no caller information
        return None


__all__ = ["Caller", "PaidAccess", "PaidAccessError", "VisitorLimitError", "identify", "effective_mode",
           "listens_publicly", "sign_in_ways", "bearer_token", "matching_key", "MODES"]
