"""Per-model health: consecutive failures, cooldown, last error and latency."""

from __future__ import annotations

import copy
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, asdict, field
from typing import Any, Callable, Mapping, Sequence

#: Recent successful calls kept per model for the latency medians routing weighs.
RECENT_CALLS = 50
#: How far back a new process reads answer times from the outcome log (:meth:`HealthTracker.seed_latencies`).
SEED_MAX_AGE_S = 7 * 24 * 3600.0


@dataclass
class ModelHealth:
    consecutive_failures: int = 0
    cooldown_until: float = 0.0
    last_error: str | None = None
    last_latency_ms: float | None = None
    last_ok_at: float | None = None     # wall-clock time of the last success
    last_failure_at: float | None = None
    recent_ms: deque = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))              # whole answers
    recent_first_token_ms: deque = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))  # streams


class HealthTracker:
    """Thread-safe record of how each model has been doing.

    A model that fails ``failures_to_cool`` times in a row rests for ``cooldown_s`` seconds:
    the router skips it (and says so) until then.
    """

    def __init__(self, failures_to_cool: int = 3, cooldown_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.failures_to_cool = max(1, failures_to_cool)
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._health: dict[str, ModelHealth] = {}

    def _get(self, model_id: str) -> ModelHealth:
        return self._health.setdefault(model_id, ModelHealth())

    def record_success(self, model_id: str, latency_ms: float, first_token_ms: float | None = None) -> None:
        with self._lock:
            h = self._get(model_id)
            h.consecutive_failures = 0
            h.cooldown_until = 0.0
            h.last_latency_ms = latency_ms
            h.last_ok_at = time.time()
            if latency_ms is not None and latency_ms >= 0:
                h.recent_ms.append(float(latency_ms))
            if first_token_ms is not None and first_token_ms >= 0:
                h.recent_first_token_ms.append(float(first_token_ms))

    def seed_latencies(self, latencies: Mapping[str, Sequence[float]], *, first_token: bool = False) -> None:
        """Start from answer times measured before (the outcome log's, oldest first), so a new
        process - a restart, a batch run, a Ray actor - weighs latency before its own first calls;
        live calls push them out. ``first_token``: times to the first token of streamed answers
        (what a streaming request's latency knob weighs)."""
        with self._lock:
            for model_id, values in latencies.items():
                h = self._get(model_id)
                recent = h.recent_first_token_ms if first_token else h.recent_ms
                seen = list(recent)
                recent.clear()
                recent.extend(float(v) for v in values if v is not None and v >= 0)
                recent.extend(seen)

    def carried_over(self, model_ids: Sequence[str]) -> "HealthTracker":
        """A new tracker with the same limits, holding copies of ``model_ids``' records (every other
        model starts afresh): what a reloaded pool keeps of the old router's health (the models whose
        endpoint did not change)."""
        keep = set(model_ids)
        fresh = HealthTracker(self.failures_to_cool, self.cooldown_s, clock=self.clock)
        with self._lock:
            fresh._health = {m: copy.deepcopy(h) for m, h in self._health.items() if m in keep}
        return fresh

    def median_latency_ms(self, model_id: str, *, first_token: bool = False) -> float | None:
        """The median of the model's recent successful calls (time to the first token for
        streams, where known); None before any."""
        with self._lock:
            h = self._health.get(model_id)
            if h is None:
                return None
            values = list(h.recent_first_token_ms if first_token and h.recent_first_token_ms else h.recent_ms)
        return float(statistics.median(values)) if values else None

    def record_failure(self, model_id: str, error: str, latency_ms: float | None = None) -> None:
        with self._lock:
            h = self._get(model_id)
            h.consecutive_failures += 1
            h.last_error = error
            h.last_failure_at = time.time()
            if latency_ms is not None:
                h.last_latency_ms = latency_ms
            if h.consecutive_failures >= self.failures_to_cool:
                h.cooldown_until = self.clock() + self.cooldown_s

    def cooling_down(self, model_id: str) -> float:
        """Seconds of cooldown left (0 when the model may be tried)."""
        with self._lock:
            left = self._get(model_id).cooldown_until - self.clock()
            return max(0.0, left)

    def snapshot(self, model_id: str) -> dict[str, Any]:
        with self._lock:
            d = asdict(self._get(model_id))
        d["cooldown_left_s"] = round(self.cooling_down(model_id), 1)
        d.pop("cooldown_until")
        d.pop("recent_ms")
        median = self.median_latency_ms(model_id)
        d["median_latency_ms"] = None if median is None else round(median, 1)
        streamed = d.pop("recent_first_token_ms")   # no fallback to whole answers here: None until a stream
        d["median_first_token_ms"] = round(float(statistics.median(streamed)), 1) if streamed else None
        return d
