"""Whether the service is ready to answer (``GET /readyz``): a list of named checks.

Each check calls something that raises when its part is not usable:

- ``selector``: the service has a selector to route with;
- ``outcome_log``: the outcome log can be opened for writing (:meth:`routing.learning.outcome_log.OutcomeLog.check`);
- ``spend_ledger``: the spend ledger's file can be opened (:meth:`routing.budget.SpendLedger.check`);
- ``shadow_ledger``: the same for the shadow comparisons' ledger, only while shadows are on.

The stores are SQLite files today; a store of another kind (PostgreSQL) brings its own
``check()`` and the list stays the same. What a failed check says publicly is its name and the
kind of error; the message itself (paths, driver text) goes to the server's log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    run: Callable[[Any], None]     # raises when the part is not usable
    failure: str                   # what a failure means, said publicly


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    error: str | None = None
    ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "ms": round(self.ms, 1)}
        if self.error:
            out["error"] = self.error
        return out


def _selector(service: Any) -> None:
    selector = getattr(service, "selector", None)
    if selector is None or not callable(getattr(selector, "select", None)):
        raise LookupError("no selector is loaded")


def _outcome_log(service: Any) -> None:
    service.outcome_log.check()


def _spend_ledger(service: Any) -> None:
    service.ledger.check()


def _shadow_ledger(service: Any) -> None:
    service.learning.shadow.ledger.check()


def readiness_checks(service: Any) -> list[ReadinessCheck]:
    """The checks for ``service``, in the order they run."""
    checks = [ReadinessCheck("selector", _selector, "no selector is loaded"),
              ReadinessCheck("outcome_log", _outcome_log, "the outcome log cannot be opened"),
              ReadinessCheck("spend_ledger", _spend_ledger, "the spend ledger cannot be opened")]
    shadow = getattr(getattr(service, "learning", None), "shadow", None)
    if shadow is not None and getattr(shadow, "active", False):
        checks.append(ReadinessCheck("shadow_ledger", _shadow_ledger, "the shadow spend ledger cannot be opened"))
    return checks


def readiness(service: Any) -> tuple[bool, list[CheckResult]]:
    """Run every check (all of them, also after one fails); whether all passed, and each result."""
    results = []
    for check in readiness_checks(service):
        start = time.monotonic()
        try:
            check.run(service)
        except Exception as exc:  # noqa: BLE001 - a failed check is an answer, not an error
            log.warning("readiness check %s failed: %s: %s", check.name, type(exc).__name__, exc)
            results.append(CheckResult(check.name, False, f"{check.failure} ({type(exc).__name__})",
                                       (time.monotonic() - start) * 1000))
        else:
            results.append(CheckResult(check.name, True, None, (time.monotonic() - start) * 1000))
    return all(r.ok for r in results), results
