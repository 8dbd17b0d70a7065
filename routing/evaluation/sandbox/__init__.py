"""Run a Python answer, and the prompt's tests against it, where it can do no harm.

Answers are untrusted input: anybody can steer a model into writing any code. So the code runs
only under operating-system isolation (:mod:`.isolation`: bubblewrap namespaces, an unprivileged
uid, rlimits, a wall clock that kills the whole namespace, byte-capped output); where that cannot
be had, :func:`run_python` raises :class:`SandboxUnavailable` and callers score code statically.

Two sandboxes per run when the prompt has tests:

- the **answer's process** runs the answer's top-level statements one at a time (so one failing
  example does not hide that the definitions work), records what each ``print`` printed and from
  which line, then serves requests for its objects;
- the **judge's process** runs each test with the answer's names as proxies. Using a proxy asks
  the answer's process, which sends back plain data (exact built-in types, see :mod:`.codec`) or
  an opaque handle. The answer's process never sees a test, and nothing it does can change the
  judge's verdict except the values its functions return.

What the answer's process reports about itself (statements that ran, its own asserts, prints) is
the answer's word, not a verdict: code that rewrites its harness can change it, as it could by
writing different code. The prompt's tests are the evidence that counts.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .isolation import Limits, SandboxStatus, SandboxUnavailable, collect, reset_status, sandbox_status, spawn

__all__ = ["DEFAULT_TIMEOUT_S", "RunResult", "StatementResult", "SandboxStatus", "SandboxUnavailable", "run_python",
           "sandbox_status", "reset_status", "Limits", "OUTPUT_CAP_BYTES", "measuring_refusal"]

DEFAULT_TIMEOUT_S = 2.0
OUTPUT_CAP_BYTES = 1 << 20

_HERE = Path(__file__).resolve().parent
_CODEC = (_HERE / "codec.py").read_text(encoding="utf-8")
_ANSWER_HARNESS = _CODEC + "\n" + (_HERE / "_answer_main.py").read_text(encoding="utf-8")
_JUDGE_HARNESS = _CODEC + "\n" + (_HERE / "_judge_main.py").read_text(encoding="utf-8")


def measuring_refusal(opt_out: str = "--no-run-code") -> str | None:
    """Why a training or benchmark command that runs code answers must not go on here, or None.
    Without the sandbox code answers are scored statically, so a fit or a figure would silently
    describe code that never ran (a different model, a different mbpp AUC)."""
    status = sandbox_status()
    if status.available:
        return None
    return (f"code answers cannot be run here: {status.reason}. The results would describe code that "
            f"never ran; install bubblewrap, or pass {opt_out} to measure without running code.")


@dataclass
class StatementResult:
    """One top-level statement of the answer: did it run."""

    line: int
    ok: bool
    is_assert: bool = False
    error: str = ""
    error_kind: str = ""


@dataclass
class RunResult:
    """What running an answer (and the prompt's tests) showed."""

    syntax_error: str = ""
    statements: list[StatementResult] = field(default_factory=list)
    prints: list[tuple[int, str]] = field(default_factory=list)
    tests: list[bool] = field(default_factory=list)
    test_errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    finished: bool = False           # the answer's code ran to its end and every test got a verdict
    ran_to_end: bool = False         # the answer's process got through all its top-level statements
    output_overflow: bool = False    # it wrote more than OUTPUT_CAP_BYTES
    wall_ms: float = 0.0

    @property
    def failures(self) -> list[StatementResult]:
        """Statements that raised a real error (not a missing module or a blocked call)."""
        return [s for s in self.statements if not s.ok and s.error_kind in ("error", "assertion")]

    @property
    def exited_early(self) -> bool:
        """The answer's process ended before its last statement (``os._exit``, a kill, a crash)."""
        return not self.ran_to_end and not self.timed_out and not self.output_overflow and not self.syntax_error


def answer_names(source: str) -> tuple[list[str], list[str]]:
    """Names the answer binds at top level (also inside top-level if/try/with), and its imports.

    The judge proxies the names and runs the imports itself, so a test's ``math.isclose`` is the
    real one, not the answer's.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [], []
    names: list[str] = []
    imports: list[str] = []
    imported: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                    imports.append(ast.unparse(node))
                    imported.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    seen: list[str] = []
    for name in names:
        if name not in seen and name not in imported and not name.startswith("__"):
            seen.append(name)
    return seen, imports


def run_python(source: str, tests: list[str] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
               limits: Limits | None = None) -> RunResult:
    """Run ``source`` in a sandbox, then each test in a second one against it.

    Raises :class:`SandboxUnavailable` when no OS sandbox can be made here (nothing is run).
    Every process of both sandboxes is gone when this returns.
    """
    tests = [str(t) for t in (tests or [])]
    limits = limits or Limits(cpu_s=max(1, int(timeout_s + 1)))
    nonce = "@@" + secrets.token_hex(8) + "@@"
    result = RunResult(tests=[False] * len(tests), test_errors=["not run"] * len(tests))
    start = time.monotonic()
    answer_in = json.dumps({"source": source, "nonce": nonce}).encode("utf-8")
    procs = []
    if tests:
        names, imports = answer_names(source)
        judge_in = json.dumps({"tests": tests, "names": names, "imports": imports, "nonce": nonce}).encode("utf-8")
        request_r, request_w = os.pipe()   # judge -> answer
        reply_r, reply_w = os.pipe()       # answer -> judge
        try:
            procs.append(spawn(["-c", _ANSWER_HARNESS, limits.as_arg(), str(request_r), str(reply_w)], answer_in,
                               pass_fds=(request_r, reply_w), output_cap=OUTPUT_CAP_BYTES))
            procs.append(spawn(["-c", _JUDGE_HARNESS, limits.as_arg(), str(reply_r), str(request_w)], judge_in,
                               pass_fds=(reply_r, request_w), output_cap=OUTPUT_CAP_BYTES))
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
        finally:
            for fd in (request_r, request_w, reply_r, reply_w):
                os.close(fd)
    else:
        procs.append(spawn(["-c", _ANSWER_HARNESS, limits.as_arg(), "-1", "-1"], answer_in,
                           output_cap=OUTPUT_CAP_BYTES))
    result.timed_out = collect(procs, start + timeout_s)
    result.wall_ms = round((time.monotonic() - start) * 1000, 1)
    result.output_overflow = procs[0].overflow
    answer_done = _parse_answer(procs[0].out.decode("utf-8", "replace"), nonce, result)
    judge_done = True
    if tests:
        judge_done = _parse_judge(procs[1].out.decode("utf-8", "replace"), nonce, result)
    result.finished = result.ran_to_end and judge_done and (answer_done or bool(tests))
    return result


def _records(output: str, nonce: str):
    for line in output.splitlines():
        if not line.startswith(nonce):
            continue
        try:
            data = json.loads(line[len(nonce):])
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            yield data


def _parse_answer(output: str, nonce: str, result: RunResult) -> bool:
    """Fill in what the answer's process said about itself; True when it reached its end."""
    done = False
    for data in _records(output, nonce):
        kind = data.get("kind")
        try:
            if kind == "syntax":
                result.syntax_error = str(data.get("error", ""))[:300]
            elif kind == "stmt" and len(result.statements) < 10_000:
                result.statements.append(StatementResult(
                    line=int(data.get("line", 0)), ok=bool(data.get("ok")), is_assert=bool(data.get("is_assert")),
                    error=str(data.get("error", ""))[:300], error_kind=str(data.get("error_kind", ""))[:20]))
            elif kind == "prints":
                result.prints = [(int(n), str(t)[:2000]) for n, t in list(data.get("prints", []))[:200]]
            elif kind == "ran":
                result.ran_to_end = True
            elif kind == "done":
                done = True
        except (TypeError, ValueError):
            continue
    return done


def _parse_judge(output: str, nonce: str, result: RunResult) -> bool:
    """Fill in the judge's verdicts; True when it gave one for every test."""
    done = False
    for data in _records(output, nonce):
        kind = data.get("kind")
        if kind == "test":
            index = data.get("index")
            if type(index) is int and 0 <= index < len(result.tests):
                result.tests[index] = data.get("ok") is True
                result.test_errors[index] = str(data.get("error", ""))[:300]
        elif kind == "done":
            done = True
    return done
