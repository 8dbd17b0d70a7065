"""Continual retraining: once enough new outcome rows exist, retrain, gate, promote, reload.

With ``ROUTER_RETRAIN_EVERY=N`` (0, the default, is off) and ``ROUTER_ALLOW_TRAINING=1``, each
time the outcome log has grown by N rows since the last run, the app retrains in a background
*process* (``python -m training.pipeline --source feedback``: the log exported as an outcome
table, labelled, split, trained), so the app's answers never wait on it. The selector is an
embedding head (``ROUTER_RETRAIN_STRATEGY``, default ``auto``: on a sparse log the per-model kNN;
seconds, not the minutes a fine-tune takes). The test split is the held-out slice
(:mod:`routing.learning.slices`, ``--test-slice hash``): every logged prompt whose hash falls
in ``ROUTER_HOLDOUT_SHARE``, so it grows with the log and a prompt never moves between train
and test; the shadow sampler asks every model for those prompts. The release gate compares the
new selector with the live one (the rule-based selector while no learned model is live) on the
test prompts where both picks have an observed outcome, and with ``--strict-gate`` promotes it
only when the paired one-sided 95% lower bound of the gain is above zero, on at least as many
paired test prompts as the power rule asks (``training.pipeline.train.required_paired``: enough to see a
gain of ``ROUTER_GATE_MIN_GAIN`` with 80% power, never fewer than ``ROUTER_GATE_MIN_PAIRED``);
the app then reloads it. A promoted model gets a
``lineage.json`` (and a section in its model card) saying what its data was: rows from
compare-all, logged answers, shadow comparisons, collect runs, ratings, and their dates.

One caller cannot steer it (``training.pipeline.feedback``): each rater's ratings together weigh at most
``ROUTER_RATER_SHARE`` of the rows, ratings that contradict the evaluator or the other raters
count less, and the gate's test outcomes are evaluator scores that ratings move at most halfway.

Where the model goes (``routing.settings.selector_folders``): ``<ROUTER_DATA_DIR>/selector/``,
never the code checkout's ``selector_model/`` (the gate compares with the shipped model while the
data folder holds none); ``ROUTER_SELECTOR_DIR`` set elsewhere is an explicit override.

The state (rows at the last run, every run's outcome) is in ``training/auto/retrain_state.json``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from routing.settings import pool_files, selector_folders

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
STATE_FILE = "retrain_state.json"
#: Seconds one automatic run may take before it is stopped.
RUN_TIMEOUT_S = 3 * 3600


def lineage(comparisons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Where the rows of an outcome log came from, and when."""
    kinds = Counter((c.get("kind") or "compare") for c in comparisons)
    rated = sum(1 for c in comparisons if c.get("rating") or c.get("user_best_model"))
    times = [c["created_at"] for c in comparisons if c.get("created_at")]
    day = lambda t: time.strftime("%Y-%m-%d", time.gmtime(t))  # noqa: E731
    return {"rows": len(comparisons), "by_kind": dict(sorted(kinds.items())), "rated_by_people": rated,
            "first": day(min(times)) if times else None, "last": day(max(times)) if times else None}


def lineage_markdown(info: dict[str, Any]) -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in info["by_kind"].items()) or "none"
    return (f"\n## Data lineage\nRetrained automatically from the app's outcome log: {info['rows']} rows "
            f"({kinds}; {info['rated_by_people']} rated by people), logged {info['first']} to {info['last']}. "
            "Kinds: compare = compare-all, answer = a logged answer, shadow = a shadow comparison, "
            "collect = training.collection.collect.\n")


class Retrainer:
    def __init__(self, settings: Any, outcome_log: Any, reload: Callable[[], str], *,
                 extra_args: Sequence[str] = (), timeout_s: float = RUN_TIMEOUT_S):
        self.settings = settings
        self.log = outcome_log
        self.reload = reload
        self.every = int(settings.retrain_every or 0)
        self.enabled = self.every > 0 and bool(settings.allow_training)
        self.folder = Path(settings.data_dir) / "training" / "auto"
        self.extra_args = list(extra_args)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        path = self.folder / STATE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"rows_at_last_run": 0, "runs": []}

    def _save(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, self.folder / STATE_FILE)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def describe(self) -> str:
        if not self.enabled:
            return ("Automatic retraining is off" + (" (ROUTER_RETRAIN_EVERY=0)." if self.every <= 0 else
                                                     " (it needs ROUTER_ALLOW_TRAINING=1)."))
        state = self.state()
        last = state["runs"][-1] if state["runs"] else None
        text = (f"Automatic retraining every {self.every} new outcome rows; {len(self.log)} rows now, "
                f"{state['rows_at_last_run']} at the last run.")
        if self.running:
            text += " A run is in progress."
        if last:
            text += f" Last run: {'promoted' if last.get('promoted') else 'kept the live model'} ({last.get('reason')})."
        return text

    # ------------------------------------------------------------------ running
    def maybe_start(self) -> bool:
        """Start a run in the background when N new rows exist; True when one was started."""
        if not self.enabled:
            return False
        with self._lock:
            if self.running:
                return False
            rows = len(self.log)
            if rows - int(self.state().get("rows_at_last_run", 0)) < self.every:
                return False
            self._thread = threading.Thread(target=self._run, args=(rows,), name="retrain", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _command(self) -> list[str]:
        s = self.settings
        folders = selector_folders(s)
        where = ["--selector-dir", str(folders.target)]
        if folders.target_encoder is not None:
            where += ["--label-encoder", str(folders.target_encoder)]
        if folders.shipped is not None:
            where += ["--live-dir", str(folders.shipped)]
        return [sys.executable, "-m", "training.pipeline", "--source", "feedback", "--out", str(self.folder),
                *where, "--gate-against-rules", "--strategy", str(s.retrain_strategy or "auto"),
                "--test-slice", "hash", "--test-fraction", str(s.holdout_share), "--strict-gate",
                "--min-paired", str(s.gate_min_paired), "--min-gain", str(s.gate_min_gain),
                "--rater-share", str(s.rater_share), *self.extra_args]

    def _run(self, rows: int) -> None:
        started = time.time()
        record: dict[str, Any] = {"started": started, "rows": rows}
        env = {**os.environ, "ROUTER_DATA_DIR": str(self.settings.data_dir),
               "ROUTER_MODELS_FILE": str(pool_files(self.settings).live)}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(self._command(), cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=self.timeout_s)
            (self.folder / "last_run.log").write_text(done.stdout + "\n" + done.stderr, encoding="utf-8")
            last = next((line for line in reversed(done.stdout.splitlines()) if line.startswith("{")), None)
            if done.returncode != 0 or last is None:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                record.update(promoted=False, reason=f"the run failed: {tail[0]}")
            else:
                result = json.loads(last)
                gate = result.get("gate") or {}
                record.update(promoted=bool(gate.get("promoted")), reason=gate.get("reason"),
                              metrics=result.get("metrics"), strategy=gate.get("strategy"))
                if record["promoted"]:
                    self._write_lineage()
                    record["selector"] = self.reload()
        except subprocess.TimeoutExpired:
            record.update(promoted=False, reason=f"stopped after {self.timeout_s:.0f} s")
        except Exception as exc:  # noqa: BLE001 - a failed run leaves the live model as it was
            log.exception("automatic retraining failed")
            record.update(promoted=False, reason=f"{type(exc).__name__}: {exc}")
        record["finished"] = time.time()
        with self._lock:
            state = self.state()
            state["rows_at_last_run"] = rows
            state["runs"] = (state.get("runs") or [])[-49:] + [record]
            self._save(state)
        log.info("automatic retraining: %s", record)

    def _write_lineage(self) -> None:
        info = lineage(self.log.comparisons())
        target = selector_folders(self.settings).target
        (target / "lineage.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        card = target / "README.md"
        if card.is_file():
            card.write_text(card.read_text(encoding="utf-8") + lineage_markdown(info), encoding="utf-8")
