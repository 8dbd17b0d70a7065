"""Acknowledged answers, shadow answers and batch rows survive ``kill -9``; nothing is paid twice.

Each test runs the app's own code in a real child process against the tests' protocol server,
SIGKILLs it at a point the test knows it has reached (the child says so on stdout, or the
protocol server sees the request), then reopens the data as a restarted process would.
No sleeps: every wait is for a line, a request or an event, with a generous deadline.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from routing.learning.outcome_log import OutcomeLog

REPO = Path(__file__).resolve().parents[3]
PROMPT = "Write a limerick about a sleepy cat"
WAIT_S = 120

# The child: a RouterService on the protocol server whose evaluator never returns (the scoring a
# kill interrupts), printing each answer id as it is handed out.
CHILD_PRELUDE = textwrap.dedent("""
    import sys, threading, types
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    import routing.evaluation.evaluator as evaluator
    stuck = threading.Event()
    said = threading.Lock()
    def say(*parts):
        # One whole line per call under a lock: the scoring thread and the main thread both
        # print, and print() writes its parts apart ("ID " + "SCORING" + newline + id was seen on CI).
        with said:
            sys.stdout.write(" ".join(map(str, parts)) + "\\n")
            sys.stdout.flush()
    def stuck_evaluate(*args, **kwargs):
        say("SCORING")
        stuck.wait()
    def stuck_group(*args, **kwargs):
        say("SCORING-GROUP")
        stuck.wait()
    evaluator.evaluate, evaluator.evaluate_group = stuck_evaluate, stuck_group
    from benchmarks.harness import router_settings
    from routing.service import RouterService
    server = types.SimpleNamespace(base_url={base_url!r})
    settings = router_settings(server, Path({tmp!r}), read_timeout=120.0, **{overrides!r})
    service = RouterService(settings, background=False)
""")


class Child:
    """A child python process whose stdout lines are read in a thread (so waits have deadlines)."""

    def __init__(self, code: str):
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONPATH=str(REPO), GRADIO_ANALYTICS_ENABLED="False"))
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, predicate) -> list[str]:
        """Lines up to and including the first one ``predicate`` accepts."""
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"the child said nothing for {WAIT_S} s; so far: {seen}") from None
            if line is None:
                raise AssertionError(f"the child ended early: {seen}\n{self.proc.stderr.read()[-3000:]}")
            seen.append(line)
            if predicate(line):
                return seen

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def child_code(protocol_server, tmp_path, body: str, **overrides) -> str:
    return CHILD_PRELUDE.format(repo=str(REPO), base_url=protocol_server.base_url, tmp=str(tmp_path),
                                overrides=overrides) + textwrap.dedent(body)


def asked(server, prompt: str) -> list:
    """Chat requests that reached the server whole and asked ``prompt`` (see tests/routing/batch/test_batch.py)."""
    return [r for r in server.chat_requests()
            if isinstance(r.json, dict) and r.json.get("messages") and r.json["messages"][-1].get("content") == prompt]


def test_every_answer_id_handed_out_survives_a_kill_and_is_scored_after_the_restart(protocol_server, tmp_path,
                                                                                    make_service):
    """The audit's 21 of 31: ids returned, process killed while scoring, rows gone (ratings then 404)."""
    child = Child(child_code(protocol_server, tmp_path, """
        for i in range(8):
            say("ID", service.query(f"Write a limerick about a sleepy cat #{i}")["answer_id"])
        say("READY")
        threading.Event().wait()
    """))
    try:
        lines = child.until(lambda line: line == "READY")
    finally:
        child.kill()
    ids = [line.split()[1] for line in lines if line.startswith("ID ")]
    assert len(ids) == 8 and all(ids)
    log = OutcomeLog(tmp_path / "data")
    rows = {c["id"]: c for c in log.comparisons()}
    missing = [i for i in ids if i not in rows]
    assert missing == [], f"{len(missing)} of {len(ids)} acknowledged answers lost"
    for i, answer_id in enumerate(ids):
        row = rows[answer_id]
        assert row["prompt"].endswith(f"#{i}") and row["kind"] == "answer" and row["scoring"] == "pending"
        (result,) = row["results"].values()
        assert result["response"] and result["normalized"] is None and result["cost_usd"] is not None
    assert len(log.to_frame()) == 0        # unscored and unrated: no label for training yet
    requests_before = len(protocol_server.chat_requests())

    restarted = make_service()             # same data folder: the restart finds the unscored rows
    restarted.learning.flush()
    rows = {c["id"]: c for c in log.comparisons()}
    assert all(rows[i]["scoring"] == "done" for i in ids)
    assert all(next(iter(rows[i]["results"].values()))["normalized"] is not None for i in ids)
    assert log.pending() == [] and len(log.to_frame()) == len(ids)
    assert len(protocol_server.chat_requests()) == requests_before   # scoring asks no model again
    restarted.learning.rate(ids[0], "up")  # still the app's own rows (no caller scope): the app may rate them


def test_a_shadow_comparison_survives_a_kill_during_its_scoring(protocol_server, tmp_path, make_service):
    shadow = dict(shadow_rate=1.0, shadow_budget_usd=1.0, holdout_share=0.0, log_answers=False)
    child = Child(child_code(protocol_server, tmp_path, """
        service.query("Write a limerick about a sleepy cat")
        threading.Event().wait()
    """, **shadow))
    try:
        child.until(lambda line: line == "SCORING-GROUP")   # both paid answers are in; scoring has begun
    finally:
        child.kill()
    log = OutcomeLog(tmp_path / "data")
    rows = [c for c in log.comparisons() if c["kind"] == "shadow"]
    assert len(rows) == 1, "the shadow's paid answer was lost with the process"
    (row,) = rows
    assert len(row["results"]) == 2 and all(r["response"] for r in row["results"].values())
    assert row["scoring"] == "pending" and row["owner"] is None
    asked_before = len(protocol_server.chat_requests())
    assert asked_before == 2               # the answer and its shadow

    restarted = make_service(**shadow)
    restarted.learning.flush()
    (row,) = [c for c in log.comparisons() if c["kind"] == "shadow"]
    assert row["scoring"] == "done" and all(r["normalized"] is not None for r in row["results"].values())
    a, b = row["results"].values()
    from routing.evaluation.evaluator import TIE_MARGIN

    if abs(a["normalized"] - b["normalized"]) <= TIE_MARGIN:   # scripted answers: a tie, no winner
        assert row["best_model"] is None and row["router_correct"] is None
    else:
        assert row["best_model"] in row["results"]
    assert len(protocol_server.chat_requests()) == asked_before      # nothing asked (or paid) again


def test_a_killed_batch_never_sends_a_row_twice_and_says_which_rows_were_cut(protocol_server, tmp_path,
                                                                              make_service):
    """The audit's 6 rows asked twice: rows in flight at the kill were sent again on resume."""
    from routing.batch.local import run_file

    INTERRUPTED = "interrupted"            # routing.batch.io.INTERRUPTED: the status the results file shows

    held = [f"Write a haiku about the sea (row {i}) HOLD" for i in (4, 5)]
    prompts = [f"{PROMPT} (row {i})" for i in range(4)] + held + [f"{PROMPT} (row {i})" for i in (6, 7)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    out = tmp_path / "out.csv"
    arrived = threading.Semaphore(0)
    release = threading.Event()
    resumed = threading.Event()

    def reply(model, messages):
        text = messages[-1]["content"]
        if "HOLD" in text and not resumed.is_set():   # the first run: these two stay in flight
            arrived.release()
            release.wait(WAIT_S)
        return f"[{model}] answer to: {text[:60]}"

    protocol_server.set_model("*", reply=reply)
    child = Child(child_code(protocol_server, tmp_path, f"""
        from routing.batch.local import run_file
        run_file(service.router, {str(src)!r}, {str(out)!r}, mode="answer", workers=2)
        say("FINISHED")
    """))
    try:
        for _ in held:                     # both held rows' requests are at the server, unanswered
            assert arrived.acquire(timeout=WAIT_S), "the held rows were never sent"
    finally:
        child.kill()
    resumed.set()
    try:
        summary = run_file(make_service().router, src, out, mode="answer", workers=2)
    finally:
        release.set()
    records = {r["row"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert sorted(int(k) for k in records) == list(range(len(prompts)))        # every row, once
    twice = {p: len(asked(protocol_server, p)) for p in prompts if len(asked(protocol_server, p)) > 1}
    assert twice == {}, f"rows sent twice (paid twice): {twice}"
    for i in (4, 5):                       # in flight at the kill: recorded, not re-sent
        assert records[str(i)]["status"] == INTERRUPTED
        assert "may have answered it and billed it" in records[str(i)]["error"]
        assert "not sent again" in records[str(i)]["error"]
    for i in (6, 7):                       # never started before the kill: answered by the resume
        assert records[str(i)]["status"] == "ok" and len(asked(protocol_server, prompts[i])) == 1
    for i, prompt in enumerate(prompts):   # a row is ok exactly when its one request was answered
        assert len(asked(protocol_server, prompt)) == 1, prompt
        assert records[str(i)]["status"] in ("ok", INTERRUPTED)
    assert summary["interrupted"] >= 2 and summary["interrupted"] == sum(
        r["status"] == INTERRUPTED for r in records.values())

    # Asking the cut rows again is a deliberate choice, and then they are asked (once more).
    summary = run_file(make_service().router, src, out, mode="answer", workers=2, retry_interrupted=True)
    records = {r["row"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert summary["interrupted"] == 0 and all(r["status"] == "ok" for r in records.values())
    assert len(asked(protocol_server, held[0])) == 2 and len(records) == len(prompts)
