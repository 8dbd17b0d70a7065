"""The outcome log: append-only, safe with concurrent writers, user marks override, RouterBench export."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest

from routing.errors import UserError
from routing.learning.outcome_log import FEEDBACK_OTHERS_CAP, OutcomeLog, export_routerbench_csv, quality_scores

REPO = Path(__file__).resolve().parents[3]


def record(prompt: str = "Write a haiku about rain", **overrides) -> dict:
    """A comparison as Comparison.to_log_record() shapes it: three models, one failed."""
    rec = {
        "prompt": prompt, "selected_model": "a", "best_model": "b", "router_correct": False,
        "results": {
            "a": {"response": "rain falls", "normalized": 0.4, "total": 3.2, "cost_usd": 0.001, "latency_ms": 120.0,
                  "usage": {"prompt_tokens": 5, "completion_tokens": 2}, "scores": {"creativity": 2.0}},
            "b": {"response": "soft rain on tin roofs", "normalized": 0.8, "total": 6.4, "cost_usd": 0.004,
                  "latency_ms": 300.0, "usage": {"prompt_tokens": 5, "completion_tokens": 5},
                  "scores": {"creativity": 3.5}},
            "c": {"response": "", "error": "500 from provider", "latency_ms": 50.0},
        },
    }
    rec.update(overrides)
    return rec


def test_written_read_back_and_wal(tmp_path):
    log = OutcomeLog(tmp_path / "data")
    cid = log.record(record())
    assert log.path == tmp_path / "data" / "outcomes.sqlite3" and len(log) == 1
    got = log.get(cid)
    assert got["prompt"] == "Write a haiku about rain" and got["selected_model"] == "a"
    assert got["best_model"] == "b" and got["effective_best_model"] == "b" and got["best_source"] == "evaluator"
    assert got["router_correct"] is False
    assert list(got["results"]) == ["a", "b", "c"]
    assert got["results"]["b"]["scores"] == {"creativity": 3.5}
    assert got["results"]["a"]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2}
    assert got["results"]["c"]["error"] == "500 from provider"
    with sqlite3.connect(log.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reading_a_missing_log_is_empty_not_an_error(tmp_path):
    log = OutcomeLog(tmp_path / "nothing-here")
    assert log.comparisons() == [] and len(log) == 0 and log.get("x") is None
    assert not log.path.exists()


def test_never_rewritten_in_place(tmp_path):
    log = OutcomeLog(tmp_path)
    cid = log.record(record())
    with pytest.raises(UserError, match="already in the outcome log"):
        log.record(record(id=cid, prompt="something else"))
    assert log.get(cid)["prompt"] == "Write a haiku about rain"
    log.record_feedback(cid, "a")
    log.record_feedback(cid, "b")
    with sqlite3.connect(log.path) as conn:
        assert conn.execute("SELECT best_model FROM feedback ORDER BY seq").fetchall() == [("a",), ("b",)]
    assert log.get(cid)["user_best_model"] == "b"  # the latest mark wins, earlier ones stay on record


@pytest.mark.parametrize("bad", [dict(prompt=""), dict(prompt="   "), dict(results={})])
def test_rejects_comparisons_without_prompt_or_results(tmp_path, bad):
    with pytest.raises(UserError):
        OutcomeLog(tmp_path).record(record(**bad))


def test_feedback_errors_are_clear(tmp_path):
    log = OutcomeLog(tmp_path)
    cid = log.record(record())
    with pytest.raises(UserError, match="No comparison"):
        log.record_feedback("no-such-id", "a")
    with pytest.raises(UserError, match="Valid model ids: a, b, c"):
        log.record_feedback(cid, "gpt-17")
    with pytest.raises(UserError, match="did not answer"):
        log.record_feedback(cid, "c")
    with pytest.raises(UserError, match="Run a comparison first"):
        log.record_feedback("", "a")


def test_export_layout_is_routerbench_wide(tmp_path):
    log = OutcomeLog(tmp_path)
    log.record(record())
    out = log.export_routerbench_csv(tmp_path / "out" / "outcomes.csv")
    df = pd.read_csv(out)
    assert list(df.columns[:6]) == ["sample_id", "prompt", "eval_name", "a", "b", "c"]
    assert {"a|total_cost", "b|total_cost", "c|total_cost", "a|model_response"} <= set(df.columns)
    row = df.iloc[0]
    assert row["a"] == pytest.approx(0.4) and row["b"] == pytest.approx(0.8)
    assert math.isnan(row["c"]) and math.isnan(row["c|total_cost"])  # an outage is not a quality score
    assert row["b|total_cost"] == pytest.approx(0.004)
    assert row["oracle_model_to_route_to"] == "b"


def test_user_feedback_overrides_the_evaluator_in_the_export(tmp_path):
    log = OutcomeLog(tmp_path)
    cid = log.record(record())
    untouched = log.record(record(prompt="another prompt"))
    log.record_feedback(cid, "a")  # the user prefers a, the evaluator preferred b
    df = pd.read_csv(export_routerbench_csv(tmp_path, tmp_path / "x.csv")).set_index("sample_id")
    assert df.loc[cid, "a"] == 1.0
    assert df.loc[cid, "b"] == pytest.approx(min(0.8, FEEDBACK_OTHERS_CAP))
    assert df.loc[cid, "oracle_model_to_route_to"] == "a"
    assert df.loc[untouched, "b"] == pytest.approx(0.8) and df.loc[untouched, "oracle_model_to_route_to"] == "b"


def test_quality_rule_keeps_the_users_pick_strictly_best():
    scores = quality_scores({"a": {"normalized": 1.0}, "b": {"normalized": 0.2}, "c": {"error": "x"}}, "b")
    assert scores == {"a": FEEDBACK_OTHERS_CAP, "b": 1.0, "c": None}
    assert quality_scores({"a": {"normalized": 0.3}}, None) == {"a": 0.3}


def test_export_is_read_by_the_training_pipeline(tmp_path):
    outcomes = pytest.importorskip("training.benchmark.outcomes")
    log = OutcomeLog(tmp_path)
    log.record(record())
    log.record(record(prompt="Explain photosynthesis"))
    table = outcomes.read_outcomes(log.export_routerbench_csv(tmp_path / "x.csv"))
    assert table.prompts == ["Write a haiku about rain", "Explain photosynthesis"]
    assert table.models[:2] == ["a", "b"]
    assert table.scores[0, table.models.index("b")] == pytest.approx(0.8)


def test_export_without_a_log_says_so(tmp_path):
    with pytest.raises(UserError, match="No outcome log"):
        export_routerbench_csv(tmp_path, tmp_path / "x.csv")


def test_cli_export(tmp_path):
    OutcomeLog(tmp_path / "d").record(record())
    out = tmp_path / "F.csv"
    done = subprocess.run([sys.executable, "-m", "routing.learning.outcome_log", "export", "--data-dir", str(tmp_path / "d"),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 comparisons" in done.stdout and len(pd.read_csv(out)) == 1
    missing = subprocess.run([sys.executable, "-m", "routing.learning.outcome_log", "export", "--data-dir",
                              str(tmp_path / "empty"), "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "No outcome log" in missing.stderr


def test_concurrent_writes_from_threads(tmp_path):
    log = OutcomeLog(tmp_path)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(15):
                cid = OutcomeLog(tmp_path).record(record(prompt=f"thread {k} prompt {j}"))
                if j % 5 == 0:
                    log.record_feedback(cid, "a")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    comps = log.comparisons()
    assert len(comps) == 120 and len({c["id"] for c in comps}) == 120
    assert all(len(c["results"]) == 3 for c in comps)
    assert sum(1 for c in comps if c["user_best_model"] == "a") == 8 * 3


class _AutoRollbackOnce:
    """A real connection whose first INSERT fails as SQLite's SQLITE_BUSY can: the transaction is
    rolled back automatically and the statement raises "database is locked"."""

    failed = 0

    def __init__(self, conn):
        object.__setattr__(self, "_conn", conn)

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def __setattr__(self, name, value):
        setattr(self._conn, name, value)

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith("INSERT") and not _AutoRollbackOnce.failed:
            _AutoRollbackOnce.failed += 1
            self._conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("database is locked")
        return self._conn.execute(sql, *args)


def test_a_busy_error_that_rolled_the_transaction_back_is_retried(tmp_path, monkeypatch):
    import routing.learning.outcome_log as outcome_log

    OutcomeLog(tmp_path).record(record(prompt="before"))   # the schema exists
    real_connect = sqlite3.connect
    monkeypatch.setattr(outcome_log.sqlite3, "connect", lambda *a, **k: _AutoRollbackOnce(real_connect(*a, **k)))
    _AutoRollbackOnce.failed = 0
    OutcomeLog(tmp_path).record(record(prompt="after a busy moment"))
    monkeypatch.undo()
    assert _AutoRollbackOnce.failed == 1
    assert sorted(c["prompt"] for c in OutcomeLog(tmp_path).comparisons()) == ["after a busy moment", "before"]


def test_concurrent_writes_from_two_processes(tmp_path):
    script = textwrap.dedent("""
        import sys, threading
        from routing.learning.outcome_log import OutcomeLog
        from tests.routing.learning.test_outcome_log import record
        tag, path = sys.argv[1], sys.argv[2]
        def work(t):
            for j in range(20):
                OutcomeLog(path).record(record(prompt=f"{tag}-{t}-{j}"))
        threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag, str(tmp_path)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for tag in ("p1", "p2")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    log = OutcomeLog(tmp_path)
    prompts = [c["prompt"] for c in log.comparisons()]
    assert len(prompts) == 120 and len(set(prompts)) == 120
    with sqlite3.connect(log.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 360


# ---------------------------------------------------------------------- append-only in SQLite itself

_OLD_SCHEMA = """
CREATE TABLE comparisons (id TEXT PRIMARY KEY, created_at REAL NOT NULL, prompt TEXT NOT NULL, selected_model TEXT,
    best_model TEXT, judge_best_model TEXT, router_correct INTEGER, meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE results (comparison_id TEXT NOT NULL REFERENCES comparisons(id), model TEXT NOT NULL,
    position INTEGER NOT NULL, response TEXT, error TEXT, latency_ms REAL, prompt_tokens INTEGER,
    completion_tokens INTEGER, cost_usd REAL, total REAL, normalized REAL, judge_grade REAL,
    scores TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (comparison_id, model));
CREATE TABLE feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, comparison_id TEXT NOT NULL REFERENCES comparisons(id),
    best_model TEXT NOT NULL, created_at REAL NOT NULL, source TEXT NOT NULL DEFAULT 'user',
    note TEXT NOT NULL DEFAULT '');
INSERT INTO comparisons (id, created_at, prompt, best_model) VALUES ('old', 1.0, 'an old prompt', 'a');
INSERT INTO results (comparison_id, model, position, response, normalized) VALUES ('old', 'a', 0, 'old answer', 0.5);
INSERT INTO feedback (comparison_id, best_model, created_at) VALUES ('old', 'a', 2.0);
"""

_TAMPERING = [
    "UPDATE results SET response = 'rewritten'",
    "UPDATE results SET normalized = 1.0 WHERE model = 'a'",
    "DELETE FROM results",
    "UPDATE feedback SET best_model = 'c'",
    "DELETE FROM feedback",
    "UPDATE comparisons SET best_model = 'a'",
    "DELETE FROM comparisons",
    "INSERT OR REPLACE INTO results (comparison_id, model, position, response) VALUES ({cid!r}, 'a', 0, 'swapped')",
    "REPLACE INTO comparisons (id, created_at, prompt) VALUES ({cid!r}, 3.0, 'swapped')",
]


def _raw_snapshot(path: Path) -> list:
    with sqlite3.connect(path) as conn:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
                for t in ("comparisons", "results", "feedback")]


@pytest.mark.parametrize("sql", _TAMPERING)
def test_sqlite_itself_refuses_updates_and_deletes(tmp_path, sql):
    log = OutcomeLog(tmp_path)
    cid = log.record(record())
    log.record_feedback(cid, "a")
    before = _raw_snapshot(log.path)
    conn = sqlite3.connect(log.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql.format(cid=cid))
            conn.commit()
    finally:
        conn.close()
    assert _raw_snapshot(log.path) == before
    # appends still work after a refused tampering attempt, and so does the export
    log.record_feedback(cid, "b")
    log.record(record(prompt="another prompt"))
    assert len(log) == 2 and log.get(cid)["user_best_model"] == "b"
    assert len(pd.read_csv(log.export_routerbench_csv(tmp_path / "x.csv"))) == 2


def test_an_existing_log_file_gets_the_guards_when_opened(tmp_path):
    path = tmp_path / "outcomes.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SCHEMA)
    log = OutcomeLog(tmp_path)
    assert [c["id"] for c in log.comparisons()] == ["old"]  # reading alone installs the guards
    for sql in ("UPDATE results SET response = 'x'", "DELETE FROM feedback", "DELETE FROM comparisons"):
        with sqlite3.connect(path) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    cid = log.record(record())
    log.record_feedback("old", "a")
    assert len(log) == 2 and log.get(cid)["prompt"] == "Write a haiku about rain"


def test_log_file_and_folder_are_private_to_the_app_user(tmp_path):
    log = OutcomeLog(tmp_path / "fresh" / "data")
    log.record(record())
    assert (log.path.parent.stat().st_mode & 0o777) == 0o700
    for p in log.path.parent.glob(log.path.name + "*"):  # the database and its -wal / -shm files
        assert (p.stat().st_mode & 0o777) == 0o600, p
    assert (log.path.stat().st_mode & 0o777) == 0o600


def test_an_existing_world_readable_log_is_made_private(tmp_path):
    OutcomeLog(tmp_path).record(record())
    path = tmp_path / "outcomes.sqlite3"
    path.chmod(0o644)
    OutcomeLog(tmp_path).record(record(prompt="second"))
    assert (path.stat().st_mode & 0o777) == 0o600


def test_secrets_are_redacted_before_they_are_stored(tmp_path, monkeypatch):
    key = "sk-or-v1-" + "5ec7e7" * 10
    monkeypatch.setenv("OPENROUTER_API_KEY", key)
    rec = record(prompt=f"my key is {key}, keep it safe")
    rec["results"]["a"]["response"] = f"Sure: Authorization: Bearer {key}"
    rec["results"]["c"]["error"] = f"401 from provider - provider says: bad header 'Bearer {key}'"
    log = OutcomeLog(tmp_path)
    cid = log.record(rec)
    log.record_feedback(cid, "a", note=f"the key {key} leaked")
    with open(log.path, "rb") as fh:
        raw = fh.read()
    for p in tmp_path.glob("outcomes.sqlite3*"):
        raw += p.read_bytes()
    assert key.encode() not in raw
    got = log.get(cid)
    assert "[redacted OPENROUTER_API_KEY]" in got["results"]["a"]["response"]
    assert "[redacted OPENROUTER_API_KEY]" in got["results"]["c"]["error"] and key not in got["prompt"]
    assert key not in log.export_routerbench_csv(tmp_path / "x.csv").read_text()


def test_the_export_merges_comparisons_of_one_prompt(tmp_path):
    from routing.learning.outcome_log import OutcomeLog

    log = OutcomeLog(tmp_path)
    answer = {"response": "a", "error": None, "normalized": 0.3, "cost_usd": 0.001}
    log.record({"prompt": "p", "selected_model": "m1", "best_model": "m1", "kind": "answer",
                "results": {"m1": answer}})
    log.record({"prompt": "p", "selected_model": "m1", "best_model": "m2", "kind": "shadow",
                "results": {"m1": answer, "m2": {**answer, "response": "b", "normalized": 0.8}}})
    log.record({"prompt": "q", "selected_model": "m1", "best_model": "m1", "results": {"m1": answer}})
    frame = log.to_frame()
    assert list(frame["prompt"]) == ["p", "q"]  # one row per prompt: training dedups by prompt anyway
    p = frame.iloc[0]
    assert (p["m1"], p["m2"], p["oracle_model_to_route_to"]) == (0.3, 0.8, "m2")
    assert frame.iloc[1]["m2"] != frame.iloc[1]["m2"]  # NaN: m2 never answered q
