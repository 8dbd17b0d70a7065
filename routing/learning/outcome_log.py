"""Append-only outcome log: every compare-all run, and users' "best answer" marks, as training data.

Storage is one SQLite file (``outcomes.sqlite3`` in ``Settings.data_dir``) in WAL mode, so
several threads and processes can append at once (each write is one short ``BEGIN IMMEDIATE``
transaction; readers never block writers). Rows are only ever inserted, never updated or
deleted:

* ``comparisons``: one row per comparison (prompt, the router's pick, the evaluator's and the
  judge's winners; for an answer, the router's fallbacks and their causes);
* ``results``: one row per model in a comparison (answer, latency, tokens, cost, evaluator
  points, error);
* ``feedback``: one row per "this answer is best" mark by a user. The latest mark for a
  comparison overrides the evaluator's winner.
* ``ratings``: one row per thumbs up / down on an answer, or "another model would have been
  better" (naming it). A single answer (Ask, ``/query``, the gateway) is logged as a
  comparison of one result (``meta.kind = "answer"``), a shadow comparison as one of two
  (``"shadow"``); the latest rating of a comparison overrides the evaluator. Each row names its
  ``rater`` (a hashed scope, below); the table is the history, and a rater's latest rating of
  an answer replaces their earlier ones (:meth:`OutcomeLog.ratings` gives one per rater and
  answer), so rating again never counts twice.
* ``evaluations``: the evaluator's scores of a comparison logged *before* it was scored
  (``comparisons.scoring = 'pending'``): an answer is written the moment its id is handed out,
  and scored in the background; a comparison still pending after a crash is found by
  :meth:`OutcomeLog.pending` and scored by the next process. Readers merge the two.

Ownership: ``comparisons.owner`` is the scope of whoever got the answer, hashed
(:func:`scope_id`; never a raw key or session id): the gateway key's scope
(:func:`gateway_scope`), or the Gradio session / signed-in user (:func:`gradio_scope`, taken
from the Gradio request being served, :func:`current_owner`). NULL: written by the app's own
code outside any request (the CLI, tests, shadow comparisons). Ratings are only taken from the
owner's scope (``routing.learning.recorder``), and the Compare tab's download holds only the
caller's own rows.

SQLite itself enforces append-only: triggers created with the schema (also in an older log file,
the first time this code opens it) abort any UPDATE, DELETE or REPLACE of a row in these tables.
(Anyone who can write the file can still drop the triggers: they stop mistakes and the app's
own code, not the file's owner.) The file and its ``-wal``/``-shm`` companions are readable by
the app's user only (0600), and a folder the log creates for itself is 0700. Text is redacted
before it is stored (API keys become ``[redacted NAME]``, see ``routing.safety.redact``).

:func:`export_routerbench_csv` writes RouterBench's wide layout, which ``training.benchmark.outcomes``
reads like any public outcome table::

    sample_id, prompt, eval_name, <model>..., <model>|model_response..., <model>|total_cost...,
    oracle_model_to_route_to

Score rule (one place: :func:`quality_scores`): a model's score is the evaluator's normalised
score in [0, 1]. Where a user marked a best answer, that model gets ``1.0`` and every other
model keeps its evaluator score capped at :data:`FEEDBACK_OTHERS_CAP` (0.99), so the user's pick
is the strict best while the evaluator's order among the rest survives. A rating does the same
for one answer: thumbs up makes it ``1.0``, thumbs down ``0.0``, and a model named as better gets
``1.0`` (a routing label: the user did not see its answer, so it has no response or cost) while
the rated answer is capped at ``0.99`` (``0.0`` with a thumbs down). A model that failed
(provider error) has an empty score and cost: an outage says nothing about the model's quality
on the prompt. ``oracle_model_to_route_to`` is the effective winner (the user's mark, else the
evaluator's).

CLI::

    python -m routing.learning export --data-dir data --out outcomes.csv
    python -m routing.learning show --data-dir data
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sqlite3
import sys
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from routing.files import _private_dir, _private_file, _tighten
from routing.safety.access import bearer_token
from routing.safety.csv_safe import neutralise_frame
from routing.errors import UserError
from routing.evaluation.evaluator import TIE_MARGIN
from routing.safety.redact import redact, redact_data

log = logging.getLogger(__name__)

LOG_FILENAME = "outcomes.sqlite3"
EVAL_NAME = "llm-router-outcome-log"
FEEDBACK_OTHERS_CAP = 0.99
COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"
BUSY_TIMEOUT_S = 30.0

__all__ = ["OutcomeLog", "export_routerbench_csv", "quality_scores", "log_path", "LOG_FILENAME",
           "FEEDBACK_OTHERS_CAP", "scope_id", "gateway_scope", "gradio_scope", "current_owner", "owned_by",
           "ANY_OWNER"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    prompt TEXT NOT NULL,
    selected_model TEXT,
    best_model TEXT,
    judge_best_model TEXT,
    router_correct INTEGER,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS comparisons_by_time ON comparisons(created_at);
CREATE TABLE IF NOT EXISTS results (
    comparison_id TEXT NOT NULL REFERENCES comparisons(id),
    model TEXT NOT NULL,
    position INTEGER NOT NULL,
    response TEXT,
    error TEXT,
    latency_ms REAL,
    first_token_ms REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    total REAL,
    normalized REAL,
    judge_grade REAL,
    scores TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (comparison_id, model)
);
CREATE TABLE IF NOT EXISTS ratings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    comparison_id TEXT NOT NULL REFERENCES comparisons(id),
    model TEXT NOT NULL,
    rating INTEGER NOT NULL,
    better_model TEXT,
    created_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT 'user',
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ratings_by_comparison ON ratings(comparison_id, seq);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    comparison_id TEXT NOT NULL REFERENCES comparisons(id),
    best_model TEXT NOT NULL,
    created_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT 'user',
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_by_comparison ON feedback(comparison_id, seq);
CREATE TABLE IF NOT EXISTS evaluations (
    comparison_id TEXT PRIMARY KEY REFERENCES comparisons(id),
    created_at REAL NOT NULL,
    best_model TEXT,
    router_correct INTEGER,
    results TEXT NOT NULL DEFAULT '{}'
);
"""

#: Indexes on columns an older file gets only from :data:`_ADDED_COLUMNS` (so created after them).
_LATE_INDEXES = ("CREATE INDEX IF NOT EXISTS comparisons_by_owner ON comparisons(owner)",
                 "CREATE INDEX IF NOT EXISTS comparisons_by_scoring ON comparisons(scoring)")

#: Columns added after the first release: (table, column, type); older files get them on open,
#: their old rows read NULL there.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("results", "first_token_ms", "REAL"),
    ("comparisons", "owner", "TEXT"),      # hashed scope of whoever got the answer (NULL: the app itself)
    ("comparisons", "scoring", "TEXT"),    # 'pending': scores follow in `evaluations`; NULL: scored inline
    ("ratings", "rater", "TEXT"),          # hashed scope of who rated (NULL: the app's own code)
    ("feedback", "rater", "TEXT"),
    # An answer's fallbacks: JSON list of {model, cause, status, skipped, error} for the models the
    # router tried (or passed over) before the one that answered; '[]': none; NULL: not recorded
    # (compare-all, shadows, rows from before the column).
    ("comparisons", "fallbacks", "TEXT"),
)


# Natural key of each table: a REPLACE (or INSERT OR REPLACE) of an existing row would delete it
# silently (delete triggers fire on REPLACE only with recursive_triggers), so inserting a key that
# is already there aborts too.
_KEYS = {"comparisons": "id = NEW.id",
         "results": "comparison_id = NEW.comparison_id AND model = NEW.model",
         "feedback": "seq = NEW.seq",
         "ratings": "seq = NEW.seq",
         "evaluations": "comparison_id = NEW.comparison_id"}


def _guard_statements() -> list[str]:
    """The append-only triggers (each one statement: their bodies hold semicolons)."""
    statements = []
    for table, key in _KEYS.items():
        for op, done in (("UPDATE", "updated"), ("DELETE", "deleted")):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the outcome log is append-only: {table} rows cannot be {done}'); END")
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_append_only_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {key}) "
            f"BEGIN SELECT RAISE(ABORT, 'the outcome log is append-only: {table} rows cannot be replaced'); END")
    return statements


def log_path(path_or_dir: str | Path) -> Path:
    """The log file for a data folder (``<dir>/outcomes.sqlite3``) or an explicit file path."""
    path = Path(path_or_dir)
    if path.is_dir() or not path.suffix:
        return path / LOG_FILENAME
    return path


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


# Beyond SQLite's own busy timeout, retry the rare "locked" that WAL set-up races can raise.
_retry_locked = retry(retry=retry_if_exception(_is_locked), stop=stop_after_attempt(8),
                      wait=wait_random_exponential(multiplier=0.05, max=2.0), reraise=True)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names ``table`` has in this file (older files may lack :data:`_ADDED_COLUMNS`)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any: SQLite rolls some back itself on an error (SQLITE_BUSY
    among them), and a ROLLBACK then would raise "no transaction is active" in place of the "locked"
    error that the retry is waiting for."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _missing(value: Any) -> bool:
    """None or NaN (an empty cell in the CSV)."""
    return value is None or (isinstance(value, float) and value != value)


def _json_list(text: str | None) -> list | None:
    """A JSON list stored in a column; None for NULL or anything that is not a list."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def quality_scores(results: Mapping[str, Mapping[str, Any]], user_best: str | None,
                   rating: Mapping[str, Any] | None = None) -> dict[str, float | None]:
    """Per model quality in [0, 1] for the export (see the module docstring for the rule).

    ``results`` maps model id to a dict with ``normalized`` and ``error``; failed models get None.
    ``rating`` is the comparison's latest rating (``model``, ``rating`` +1/-1/0, ``better_model``).
    """
    scores: dict[str, float | None] = {}
    for model, r in results.items():
        value = None if r.get("error") else _num(r.get("normalized"))
        if value is not None and user_best is not None:
            value = 1.0 if model == user_best else min(value, FEEDBACK_OTHERS_CAP)
        scores[model] = value
    if rating:
        rated, verdict, better = rating.get("model"), int(rating.get("rating") or 0), rating.get("better_model")
        answered = rated in results and not results[rated].get("error")
        if answered:   # a person's verdict needs no evaluator score (an answer not scored yet counts too)
            if verdict > 0:
                scores[rated] = 1.0
            elif verdict < 0:
                scores[rated] = 0.0
            if better and scores[rated] is not None:
                scores[rated] = min(scores[rated], FEEDBACK_OTHERS_CAP)
        if better:
            scores[better] = 1.0
    return scores


def effective_best(c: Mapping[str, Any]) -> str | None:
    """The comparison's winner: the user's mark, else a rating's better model, else a liked single
    answer, else the evaluator's (None when a disliked answer is all there is)."""
    if c.get("user_best_model"):
        return c["user_best_model"]
    rating = c.get("rating")
    if rating and rating.get("better_model"):
        return rating["better_model"]
    if rating and int(rating.get("rating") or 0) < 0 and rating.get("model") == c.get("best_model"):
        others = [m for m, r in (c.get("results") or {}).items() if m != rating["model"] and not r.get("error")]
        return max(others, key=lambda m: c["results"][m].get("normalized") or 0.0) if others else None
    return c.get("best_model")


# --------------------------------------------------------------------------- owner scopes

#: ``owner=`` not given: the ambient owner (:func:`current_owner`).
_AMBIENT = object()
#: Reads: rows of every owner (the app owner's view: the CLI, training, tests).
ANY_OWNER = object()
_OWNER: ContextVar[Any] = ContextVar("outcome_log_owner", default=_AMBIENT)


def scope_id(kind: str, value: str) -> str:
    """The stored form of a caller's scope: a SHA-256 digest (32 hex), never the key or id itself."""
    return hashlib.sha256(f"llm-router-scope\0{kind}\0{value}".encode("utf-8")).hexdigest()[:32]


def routerbench_row(merged: Mapping[str, Any], prompt: str, models: Sequence[str], winner: str | None) -> dict[str, Any]:
    """One RouterBench-layout row: a prompt's per-model scores, responses and costs (``merged``
    holds ``sample_id`` and the ``scores`` / ``responses`` / ``costs`` dicts by model id)."""
    row: dict[str, Any] = {"sample_id": merged["sample_id"], "prompt": prompt, "eval_name": EVAL_NAME}
    row.update({k: merged["scores"].get(k) for k in models})
    row.update({k + RESPONSE_SUFFIX: merged["responses"].get(k) for k in models})
    row.update({k + COST_SUFFIX: merged["costs"].get(k) for k in models})
    row["oracle_model_to_route_to"] = winner
    return row


def routerbench_columns(models: Sequence[str]) -> list[str]:
    """The RouterBench layout's columns for ``models``, in order."""
    return (["sample_id", "prompt", "eval_name"] + list(models) + [m + RESPONSE_SUFFIX for m in models]
            + [m + COST_SUFFIX for m in models] + ["oracle_model_to_route_to"])


def gateway_scope(authorization: str) -> str:
    """The owner scope of a gateway caller: the bearer key of ``authorization`` (the header's value,
    or the key itself), hashed. The gateway passes "" when ROUTER_API_KEYS is unset (its session
    store's scope then too): every keyless caller shares one scope."""
    text = (authorization or "").strip()
    return scope_id("gateway", bearer_token(text) or text)


def gradio_scope(request: Any) -> str:
    """The owner scope of a Gradio caller: the signed-in username, else the browser session.

    A request with neither gets a scope of its own that nothing else can match (its answers
    cannot be rated, and it downloads nothing): fail closed, never a shared anonymous scope.
    """
    username = getattr(request, "username", None) if request is not None else None
    if username:
        return scope_id("gradio-user", str(username))
    session = getattr(request, "session_hash", None) if request is not None else None
    if session:
        return scope_id("gradio-session", str(session))
    return scope_id("gradio-anonymous", uuid.uuid4().hex)


def current_owner() -> str | None:
    """The scope rows written now belong to: the one set by :func:`owned_by`, else the Gradio
    request being served (Gradio keeps it in a context variable around each handler call), else
    None (the app's own code)."""
    explicit = _OWNER.get()
    if explicit is not _AMBIENT:
        return explicit
    context = sys.modules.get("gradio.context")     # never imports Gradio: no Gradio, no Gradio request
    request = getattr(getattr(context, "LocalContext", None), "request", None)
    request = request.get(None) if request is not None else None
    return gradio_scope(request) if request is not None else None


@contextmanager
def owned_by(owner: str | None) -> Iterator[None]:
    """Rows written inside belong to ``owner`` (a :func:`scope_id`; None: the app itself)."""
    token = _OWNER.set(owner)
    try:
        yield
    finally:
        _OWNER.reset(token)


class OutcomeLog:
    """The append-only log in one SQLite file; safe for concurrent threads and processes.

    Every method opens its own short-lived connection, so one instance may be shared freely.
    """

    def __init__(self, path_or_dir: str | Path):
        self.path = log_path(path_or_dir)
        self._ready = False

    @classmethod
    def for_settings(cls, settings: Any) -> "OutcomeLog":
        """The log in ``settings.data_dir`` (ROUTER_DATA_DIR)."""
        return cls(Path(settings.data_dir))

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        if write:
            _private_dir(self.path.parent)
            _private_file(self.path)
        elif not self.path.exists():
            raise FileNotFoundError(self.path)
        if not self._ready:
            _tighten(self.path)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if write and not self._ready:
                self._init_schema(conn)
            elif not self._ready:
                try:  # an existing (older) file gets the append-only guards as soon as it is opened
                    self._init_schema(conn)
                except sqlite3.DatabaseError as exc:  # e.g. a read-only copy: reading still works
                    log.warning("outcome log %s: could not install the append-only guards: %s", self.path, exc)
            yield conn
        finally:
            conn.close()

    @_retry_locked
    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            for table, column, kind in _ADDED_COLUMNS:   # a log written before the column existed
                if column not in _columns(conn, table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            for statement in _LATE_INDEXES:
                conn.execute(statement)
            for statement in _guard_statements():
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._ready = True

    @_retry_locked
    def _write(self, statements: list[tuple[str, tuple]], *, durable: bool = False) -> int:
        """Run INSERTs in one transaction; returns the last row id. ``durable``: synced to disk
        before this returns (the OS crashing right after cannot lose it), not only handed to the OS
        (which already survives the process being killed)."""
        last = 0
        with self._connect(write=True) as conn:
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    last = int(conn.execute(sql, params).lastrowid or 0)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return last

    # ------------------------------------------------------------------ writing
    def record(self, comparison: Mapping[str, Any], *, owner: Any = _AMBIENT, pending: bool = False,
               durable: bool = False) -> str:
        """Append one comparison (the dict ``Comparison.to_dict()`` returns); returns its id.

        Needs ``prompt`` and ``results`` ({model: {response, error, latency_ms, usage, cost_usd,
        scores, total, normalized, judge_grade}}); ``id`` is generated when absent. ``fallbacks``
        (an answer's: a list of dicts, see :data:`_ADDED_COLUMNS`) is stored when given.
        ``owner``: the scope it belongs to (default :func:`current_owner`). ``pending``: not scored
        yet; :meth:`record_evaluation` adds the scores later (:meth:`pending` finds those still
        missing). ``durable``: on disk when this returns (an answer whose id is handed out).
        """
        owner = current_owner() if owner is _AMBIENT else owner
        comparison = redact_data(dict(comparison))  # no API key is ever stored
        prompt = comparison.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError("A comparison without a prompt cannot be logged.")
        results = comparison.get("results") or {}
        if not isinstance(results, Mapping) or not results:
            raise UserError("A comparison without any model result cannot be logged.")
        cid = str(comparison.get("id") or uuid.uuid4().hex)
        router_correct = comparison.get("router_correct")
        meta = {k: comparison.get(k) for k in ("cost_weight", "selector", "judge_model", "wall_ms", "evaluator",
                                               "kind", "source")
                if comparison.get(k) is not None}
        fallbacks = comparison.get("fallbacks")
        rows: list[tuple[str, tuple]] = [(
            "INSERT INTO comparisons (id, created_at, prompt, selected_model, best_model, judge_best_model, "
            "router_correct, meta, owner, scoring, fallbacks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, float(comparison.get("created_at") or time.time()), prompt, comparison.get("selected_model"),
             comparison.get("best_model"), comparison.get("judge_best_model"),
             None if router_correct is None else int(bool(router_correct)), json.dumps(meta), owner,
             "pending" if pending else None,
             None if fallbacks is None else json.dumps([dict(f) for f in fallbacks if isinstance(f, Mapping)],
                                                         default=str)),
        )]
        for position, (model, r) in enumerate(results.items()):
            usage = r.get("usage") or {}
            rows.append((
                "INSERT INTO results (comparison_id, model, position, response, error, latency_ms, first_token_ms, "
                "prompt_tokens, completion_tokens, cost_usd, total, normalized, judge_grade, scores) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, str(model), position, r.get("response"), r.get("error"), _num(r.get("latency_ms")),
                 _num(r.get("first_token_ms")), usage.get("prompt_tokens"), usage.get("completion_tokens"), _num(r.get("cost_usd")),
                 _num(r.get("total")), _num(r.get("normalized")), _num(r.get("judge_grade")),
                 json.dumps(r.get("scores") or {})),
            ))
        try:
            self._write(rows, durable=durable)
        except sqlite3.IntegrityError as exc:
            raise UserError(f"Comparison {cid} is already in the outcome log.") from exc
        return cid

    def record_evaluation(self, comparison_id: str, results: Mapping[str, Mapping[str, Any]], *,
                          best_model: str | None = None, router_correct: bool | None = None) -> bool:
        """Append the scores of a comparison logged with ``pending=True``: per model ``total``,
        ``normalized`` and ``scores``, and the comparison's winner. False when it was scored
        already (another process resumed it first): the first evaluation stays."""
        per_model = {str(m): {"total": _num(r.get("total")), "normalized": _num(r.get("normalized")),
                              "scores": r.get("scores") or {}} for m, r in results.items()}
        try:
            self._write([("INSERT INTO evaluations (comparison_id, created_at, best_model, router_correct, results) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (comparison_id, time.time(), best_model,
                           None if router_correct is None else int(bool(router_correct)), json.dumps(per_model)))])
        except sqlite3.IntegrityError:
            return False
        return True

    def pending(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Comparisons logged unscored whose scores never came (the process stopped first), oldest first."""
        try:
            with self._connect(write=False) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "evaluations" not in tables or "scoring" not in _columns(conn, "comparisons"):
                    return []
                ids = [r[0] for r in conn.execute(
                    "SELECT id FROM comparisons WHERE scoring = 'pending' AND id NOT IN "
                    "(SELECT comparison_id FROM evaluations) ORDER BY created_at, rowid"
                    + (f" LIMIT {int(limit)}" if limit else ""))]
        except FileNotFoundError:
            return []
        if not ids:
            return []
        return self._read(f"WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))

    def record_rating(self, comparison_id: str, *, rating: int = 0, better_model: str | None = None,
                      model: str | None = None, note: str = "", source: str = "user",
                      rater: str | None = None, owner: Any = ANY_OWNER) -> int:
        """Append a thumbs up (+1) / down (-1) on ``model``'s answer, and/or the model that would have
        been better. ``model`` defaults to the comparison's only answer. Returns the sequence number.

        ``rater``: who rates (a :func:`scope_id`), stored with the row. ``owner``: when given, the
        comparison must belong to that scope; another's reads exactly as a missing one."""
        if rating not in (-1, 0, 1):
            raise UserError("rating must be up (1), down (-1) or none (0).")
        if not rating and not better_model:
            raise UserError("Say whether the answer was good or bad, or which model would have been better.")
        try:
            found = self.get(comparison_id) if comparison_id else None
        except FileNotFoundError:
            found = None
        if found is not None and owner is not ANY_OWNER and found.get("owner") != owner:
            found = None   # the same answer as for an unknown id: ids cannot be probed
        if found is None:
            raise UserError(f"No answer {comparison_id!r} in the outcome log (ids come with each answer).")
        answered = [m for m, r in found["results"].items() if not r.get("error")]
        if model is None:
            if len(answered) != 1:
                raise UserError(f"Name the model whose answer you rate: one of {', '.join(answered)}.")
            model = answered[0]
        if model not in answered:
            raise UserError(f"{model} gave no answer here to rate. Choose one of: {', '.join(answered)}.")
        if better_model == model:
            raise UserError(f"{model} is the model that answered; name another one as better.")
        return self._write([("INSERT INTO ratings (comparison_id, model, rating, better_model, created_at, source, "
                             "note, rater) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (comparison_id, model, int(rating), better_model, time.time(), source, redact(note),
                              rater))])

    def record_feedback(self, comparison_id: str, best_model: str, *, note: str = "",
                        source: str = "user", rater: str | None = None) -> int:
        """Append a user's "best answer" mark; it overrides the evaluator's winner. Returns its sequence number."""
        if not comparison_id:
            raise UserError("Run a comparison first, then mark the best answer.")
        try:
            found = self.get(comparison_id)
        except FileNotFoundError:
            found = None
        if found is None:
            raise UserError(f"No comparison {comparison_id!r} in the outcome log.")
        answered = [m for m, r in found["results"].items() if not r.get("error")]
        if best_model not in found["results"]:
            raise UserError(f"Unknown model {best_model!r} for this comparison. Valid model ids: "
                            f"{', '.join(found['results'])}.")
        if best_model not in answered:
            raise UserError(f"{best_model} did not answer this prompt, so it cannot be the best answer. "
                            f"Choose one of: {', '.join(answered)}.")
        return self._write([("INSERT INTO feedback (comparison_id, best_model, created_at, source, note, rater) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (comparison_id, best_model, time.time(), source,
                                                           redact(note), rater))])

    # ------------------------------------------------------------------ reading
    def _read(self, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        try:
            with self._connect(write=False) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "comparisons" not in tables:
                    return []
                comps = conn.execute(f"SELECT * FROM comparisons {where} ORDER BY created_at, rowid", params).fetchall()
                ids = [c["id"] for c in comps]
                results: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in ids}
                marks: dict[str, dict[str, Any]] = {}
                ratings: dict[str, dict[str, Any]] = {}
                evaluations: dict[str, Any] = {}
                if ids:
                    marks_q = ",".join("?" * len(ids))
                    for r in conn.execute(f"SELECT * FROM results WHERE comparison_id IN ({marks_q}) "
                                          "ORDER BY comparison_id, position", ids):
                        results[r["comparison_id"]][r["model"]] = {
                            "response": r["response"], "error": r["error"], "latency_ms": r["latency_ms"],
                            "first_token_ms": r["first_token_ms"] if "first_token_ms" in r.keys() else None,
                            "usage": {"prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"]},
                            "cost_usd": r["cost_usd"], "total": r["total"], "normalized": r["normalized"],
                            "judge_grade": r["judge_grade"], "scores": json.loads(r["scores"] or "{}"),
                        }
                    for f in conn.execute(f"SELECT * FROM feedback WHERE comparison_id IN ({marks_q}) ORDER BY seq",
                                          ids):
                        marks[f["comparison_id"]] = dict(f)  # the latest mark wins
                    if "ratings" in tables:
                        for f in conn.execute(f"SELECT * FROM ratings WHERE comparison_id IN ({marks_q}) "
                                              "ORDER BY seq", ids):
                            ratings[f["comparison_id"]] = {"model": f["model"], "rating": f["rating"],
                                                           "better_model": f["better_model"], "source": f["source"]}
                    if "evaluations" in tables:
                        for e in conn.execute(f"SELECT * FROM evaluations WHERE comparison_id IN ({marks_q})", ids):
                            evaluations[e["comparison_id"]] = e
                            for model, scored in json.loads(e["results"] or "{}").items():
                                entry = results[e["comparison_id"]].get(model)
                                if entry is not None:
                                    entry.update(total=scored.get("total"), normalized=scored.get("normalized"),
                                                 scores=scored.get("scores") or {})
        except FileNotFoundError:
            return []
        out = []
        for c in comps:
            mark = marks.get(c["id"])
            user_best = mark["best_model"] if mark else None
            keys = c.keys()
            evaluation = evaluations.get(c["id"])
            best, correct = c["best_model"], c["router_correct"]
            if evaluation is not None:
                best = evaluation["best_model"] if evaluation["best_model"] is not None else best
                correct = evaluation["router_correct"] if evaluation["router_correct"] is not None else correct
            pending = ("scoring" in keys and c["scoring"] == "pending")
            out.append({
                "id": c["id"], "created_at": c["created_at"], "prompt": c["prompt"],
                "selected_model": c["selected_model"], "best_model": best,
                "judge_best_model": c["judge_best_model"],
                "router_correct": None if correct is None else bool(correct),
                "user_best_model": user_best, "rating": ratings.get(c["id"]),
                "results": results[c["id"]], **json.loads(c["meta"] or "{}"),
                "owner": c["owner"] if "owner" in keys else None,
                "fallbacks": _json_list(c["fallbacks"]) if "fallbacks" in keys else None,
                "scoring": ("pending" if evaluation is None else "done") if pending else None,
            })
            entry = out[-1]
            entry["effective_best_model"] = effective_best(entry)
            entry["best_source"] = ("user" if user_best or entry["rating"] else
                                    ("evaluator" if c["best_model"] else None))
        return redact_data(out)  # rows logged before redaction existed come out clean too

    def comparisons(self, owner: Any = ANY_OWNER) -> list[dict[str, Any]]:
        """Every comparison, oldest first, with its results and the effective winner; ``owner``
        (a :func:`scope_id`): only that scope's (None: those the app wrote itself)."""
        if owner is ANY_OWNER:
            return self._read()
        try:
            with self._connect(write=False) as conn:
                if "owner" not in _columns(conn, "comparisons"):
                    return []     # a log from before owners (opened read-only): nobody's rows
        except FileNotFoundError:
            return []
        return self._read("WHERE owner IS ?", (owner,))

    def ratings(self, *, history: bool = False) -> list[dict[str, Any]]:
        """Ratings, oldest first: by default one per rater and answer (each rater's latest: rating
        an answer again replaces the earlier rating, it does not add one); ``history``: every row.
        Each has ``comparison_id``, ``model``, ``rating``, ``better_model``, ``created_at``,
        ``source`` and ``rater`` (hashed; None for the app's own code and rows from before raters)."""
        try:
            with self._connect(write=False) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "ratings" not in tables:
                    return []
                has_rater = "rater" in _columns(conn, "ratings")
                rows = [dict(r) for r in conn.execute("SELECT * FROM ratings ORDER BY seq")]
        except FileNotFoundError:
            return []
        for r in rows:
            r.setdefault("rater", None) if has_rater else r.update(rater=None)
        if history:
            return rows
        latest: dict[tuple[str, Any], dict[str, Any]] = {}
        for r in rows:
            latest.pop((r["comparison_id"], r["rater"]), None)   # re-inserted: ordered by the latest
            latest[(r["comparison_id"], r["rater"])] = r
        return sorted(latest.values(), key=lambda r: r["seq"])

    def get(self, comparison_id: str) -> dict[str, Any] | None:
        """One comparison by id, or None."""
        found = self._read("WHERE id = ?", (comparison_id,))
        return found[0] if found else None

    def recent_latencies(self, per_model: int, max_age_s: float, *, first_token: bool = False
                         ) -> dict[str, list[float]]:
        """Each model's latest successful answer times (ms), oldest first, at most ``per_model``
        of them and none older than ``max_age_s``: what a new process's latency knob starts from.
        ``first_token``: the times to the first token of streamed answers instead (rows without
        one - whole answers, logs written before the column existed - are left out). An absent
        or unreadable log gives {} (the knob then waits for live calls)."""
        column = "first_token_ms" if first_token else "latency_ms"
        since = time.time() - max_age_s
        try:
            with self._connect(write=False) as conn:
                if column not in _columns(conn, "results"):
                    return {}   # a log from before the column, opened read-only
                rows = conn.execute(
                    f"SELECT model, {column} AS ms FROM (SELECT r.model, r.{column}, c.created_at, c.rowid AS seq, "
                    "ROW_NUMBER() OVER (PARTITION BY r.model ORDER BY c.created_at DESC, c.rowid DESC) AS n "
                    "FROM results r JOIN comparisons c ON c.id = r.comparison_id "
                    f"WHERE r.error IS NULL AND r.{column} >= 0 AND c.created_at >= ?) "
                    "WHERE n <= ? ORDER BY created_at, seq", (since, int(per_model))).fetchall()
        except FileNotFoundError:
            return {}
        except sqlite3.DatabaseError as exc:
            log.warning("outcome log %s: latencies not read: %s", self.path, exc)
            return {}
        out: dict[str, list[float]] = {}
        for row in rows:
            out.setdefault(str(row["model"]), []).append(float(row["ms"]))
        return out

    def activity(self, since: float, until: float) -> dict[str, list[dict[str, Any]]]:
        """What was logged from ``since`` up to (not including) ``until`` (Unix times), without any
        text (no prompt, answer, error message or note): the Traffic view's input.

        ``comparisons``: oldest first, each ``id``, ``created_at``, ``kind`` (``answer``,
        ``shadow``, ``compare``, ``collect``), ``source``, ``selected_model``, ``fallbacks`` (the
        stored list; None where not recorded) and ``results``: per model call ``model``,
        ``failed``, ``latency_ms``, ``first_token_ms``, ``cost_usd``. ``ratings``: each rater's
        latest rating of an answer (as :meth:`ratings`) made in the range: ``created_at``,
        ``model``, ``rating``, ``better_model``. An absent log gives empty lists."""
        out: dict[str, list[dict[str, Any]]] = {"comparisons": [], "ratings": []}
        try:
            with self._connect(write=False) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "comparisons" not in tables:
                    return out
                has_fallbacks = "fallbacks" in _columns(conn, "comparisons")
                first_token = "r.first_token_ms" if "first_token_ms" in _columns(conn, "results") else "NULL"
                comps = conn.execute(
                    "SELECT id, created_at, selected_model, meta" + (", fallbacks" if has_fallbacks else "")
                    + " FROM comparisons WHERE created_at >= ? AND created_at < ? ORDER BY created_at, rowid",
                    (float(since), float(until))).fetchall()
                calls = conn.execute(
                    f"SELECT r.comparison_id, r.model, r.error IS NOT NULL AS failed, r.latency_ms, "
                    f"{first_token} AS first_token_ms, r.cost_usd FROM results r JOIN comparisons c "
                    "ON c.id = r.comparison_id WHERE c.created_at >= ? AND c.created_at < ? "
                    "ORDER BY r.comparison_id, r.position", (float(since), float(until))).fetchall()
                ratings = []
                if "ratings" in tables:
                    by = "comparison_id, rater" if "rater" in _columns(conn, "ratings") else "comparison_id"
                    ratings = conn.execute(
                        "SELECT created_at, model, rating, better_model FROM ratings WHERE seq IN "
                        f"(SELECT MAX(seq) FROM ratings GROUP BY {by}) AND created_at >= ? AND created_at < ? "
                        "ORDER BY seq", (float(since), float(until))).fetchall()
        except FileNotFoundError:
            return out
        per_comparison: dict[str, list[dict[str, Any]]] = {}
        for r in calls:
            per_comparison.setdefault(r["comparison_id"], []).append({
                "model": r["model"], "failed": bool(r["failed"]), "latency_ms": _num(r["latency_ms"]),
                "first_token_ms": _num(r["first_token_ms"]), "cost_usd": _num(r["cost_usd"])})
        for c in comps:
            try:
                meta = json.loads(c["meta"] or "{}")
            except ValueError:
                meta = {}
            meta = meta if isinstance(meta, dict) else {}
            out["comparisons"].append({
                "id": c["id"], "created_at": float(c["created_at"]), "kind": meta.get("kind") or "compare",
                "source": meta.get("source"), "selected_model": c["selected_model"],
                "fallbacks": _json_list(c["fallbacks"]) if has_fallbacks else None,
                "results": per_comparison.get(c["id"], [])})
        out["ratings"] = [{"created_at": float(r["created_at"]), "model": r["model"], "rating": int(r["rating"] or 0),
                           "better_model": r["better_model"]} for r in ratings]
        return out

    def check(self) -> None:
        """Raise when the log cannot be opened for writing (``/readyz``: ``routing.metrics.readiness``).

        Opens it as the next answer's write would: the folder and an empty file are created when
        missing, the schema when new; nothing is written."""
        with self._connect(write=True) as conn:
            conn.execute("SELECT COUNT(*) FROM comparisons WHERE 0").fetchone()

    def __len__(self) -> int:
        try:
            with self._connect(write=False) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM comparisons").fetchone()[0])
        except (FileNotFoundError, sqlite3.OperationalError):
            return 0

    # ------------------------------------------------------------------ export
    def to_frame(self, owner: Any = ANY_OWNER) -> pd.DataFrame:
        """The log in RouterBench's wide layout: one row per distinct prompt.

        Comparisons of the same prompt (its logged answer and a shadow comparison, or a prompt
        asked again) are merged, so the row holds every model seen on it: per model the latest
        comparison's score (after its ratings), response and cost. The winner is the row's best
        score (ties: the latest comparison's winner; none when no model scored above 0).
        A comparison still waiting for its scores (:meth:`pending`) is left out until they come,
        unless a person rated or marked it (their verdict needs no evaluator). ``owner``: only
        that scope's comparisons (:meth:`comparisons`).
        """
        comps = [c for c in self.comparisons(owner)
                 if c.get("scoring") != "pending" or c.get("rating") or c.get("user_best_model")]
        models: list[str] = []
        merged: dict[str, dict[str, Any]] = {}
        for c in comps:
            better = (c.get("rating") or {}).get("better_model")
            models += [m for m in [*c["results"], *([better] if better else [])] if m not in models]
            scores = quality_scores(c["results"], c["user_best_model"], c.get("rating"))
            row = merged.setdefault(c["prompt"], {"sample_id": c["id"], "scores": {}, "responses": {},
                                                  "costs": {}, "winner": None})
            for m, value in scores.items():
                r = c["results"].get(m) or {}
                row["scores"][m] = value
                row["responses"][m] = r.get("response")
                row["costs"][m] = None if r.get("error") else r.get("cost_usd")
            row["winner"] = c["effective_best_model"] or row["winner"]
        rows = []
        for prompt, m in merged.items():
            known = {k: v for k, v in m["scores"].items() if v is not None}
            winner = m["winner"]
            top = sorted(known.values(), reverse=True)
            if len(top) > 1 and top[0] - top[1] <= TIE_MARGIN and (winner not in known or known[winner] < top[0]):
                winner = None   # a tie the evaluator cannot break, and no person's verdict: no label
            elif known and top[0] > 0:  # the best seen; the comparison's own on a tie
                if winner not in known or known[winner] < top[0]:
                    winner = max(known, key=known.get)
            else:  # nothing good seen (e.g. one answer, disliked): no model to route to
                winner = None
            rows.append(routerbench_row(m, prompt, models, winner))
        return pd.DataFrame(rows, columns=routerbench_columns(models))

    def export_routerbench_csv(self, out_csv: str | Path, *, owner: Any = ANY_OWNER,
                               spreadsheet_safe: bool = True) -> Path:
        """Write :meth:`to_frame` (``owner``: only that scope's rows) to ``out_csv`` (written to a
        temporary file, then renamed). ``spreadsheet_safe`` (the default): text a spreadsheet would
        run as a formula is neutralised (``routing.safety.csv_safe``), for a file people download and
        open. False: every cell verbatim, for the training pipeline, which reads prompts exactly."""
        out = Path(out_csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        frame = self.to_frame(owner)
        frame = neutralise_frame(frame) if spreadsheet_safe else frame
        # Python's csv module, not DataFrame.to_csv: pandas leaves a lone carriage return in a cell
        # unquoted, which splits the row for every reader (the csv module quotes it).
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(frame.columns))
            for values in frame.itertuples(index=False, name=None):
                writer.writerow(["" if _missing(v) else v for v in values])
        tmp.replace(out)
        return out


def export_routerbench_csv(log_path_or_dir: str | Path, out_csv: str | Path, *,
                           spreadsheet_safe: bool = False) -> Path:
    """Export the whole outcome log in ``log_path_or_dir`` (a data folder or the .sqlite3 file) to a
    CSV: the training table (``training.pipeline.label``), so cells are verbatim unless ``spreadsheet_safe``
    (a prompt "-5 + 3?" stays what was asked; the Compare tab's download is always neutralised)."""
    log = OutcomeLog(log_path_or_dir)
    if not log.path.exists():
        raise UserError(f"No outcome log at {log.path}: run a comparison first (Compare all tab).")
    return log.export_routerbench_csv(out_csv, spreadsheet_safe=spreadsheet_safe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routing.learning", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write the log as a RouterBench-layout CSV")
    exp.add_argument("--data-dir", required=True, help="folder holding outcomes.sqlite3 (or the file itself)")
    exp.add_argument("--out", required=True, help="CSV file to write")
    exp.add_argument("--spreadsheet-safe", action="store_true",
                     help="neutralise text a spreadsheet would run as a formula (for a file opened in Excel; "
                          "training wants the cells verbatim, the default)")
    show = sub.add_parser("show", help="print a summary of the log")
    show.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            out = export_routerbench_csv(args.data_dir, args.out, spreadsheet_safe=args.spreadsheet_safe)
            print(f"wrote {len(pd.read_csv(out))} comparisons to {out}")
        else:
            comps = OutcomeLog(args.data_dir).comparisons()
            marked = sum(1 for c in comps if c["user_best_model"])
            agree = [c["router_correct"] for c in comps if c["router_correct"] is not None]
            print(f"{len(comps)} comparisons, {marked} marked by users; router agreed with the evaluator on "
                  f"{sum(agree)}/{len(agree)}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
