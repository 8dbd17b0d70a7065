"""Run a Python answer, and the prompt's tests against it, where it can do no harm.

Answers are untrusted input: anybody can steer a model into writing any code. So the code runs
only under operating-system isolation (:mod:`.isolation`: bubblewrap namespaces, an unprivileged
uid, rlimits, a wall clock that kills the whole namespace, byte-capped output); where that cannot
be had, :func:`run_python` raises :class:`SandboxUnavailable` and callers score code statically.

Two sandboxes per run when the prompt has tests:

- the **answer's process** runs the answer's top-level statements one at a time (so one failing
  example does not hide that the definitions work), records what each ``print`` printed and from
  which line, then serves requests for its objects;
- the **judge's process** runs each test. It never runs any of the answer's code, not even its
  imports: :func:`judge_plan` (static, run here) says how each name a test reads is resolved.
  Built-ins are the judge's real ones and standard modules (and modules or objects the answer
  imported by name, ``import numpy as np``, ``from math import isclose``) are imported by the
  judge itself, so an answer that defines ``set``, ``all`` or a fake ``math`` changes nothing; only
  the functions under test (and the answer's other names) are proxies. Using a proxy asks the
  answer's process, which sends back plain data (exact built-in types, see :mod:`.codec`) or an
  opaque handle; results are compared as plain data in the judge (a handle equals only itself,
  membership is tested on the plain items, an answer's StopIteration becomes a RuntimeError so it
  cannot end ``all(map(...))`` early, and what tests print never reaches the verdict records).
  The answer's process never sees a test, and nothing it does can change the judge's verdict
  except the values its functions return.

What the answer's process reports about itself (statements that ran, its own asserts, prints) is
the answer's word, not a verdict: code that rewrites its harness can change it, as it could by
writing different code. The prompt's tests are the evidence that counts.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import secrets
import sys
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


#: Packages besides the standard library whose modules the judge imports itself when the answer
#: imported them under a name the tests use (``import numpy as np``). Always installed code.
_JUDGE_PACKAGES = frozenset({"numpy", "scipy", "pandas", "sympy", "networkx"})
#: Conventional module aliases: the tests' ``np`` is numpy whatever the answer binds to ``np``.
_MODULE_ALIASES = {"np": "numpy", "pd": "pandas"}
#: Bare helpers the tests use to check results (``from math import isclose`` in the reference):
#: always the judge's own, never the answer's, unless the prompt names it as the function to write.
_CHECK_HELPERS = {"isclose": ("math", "isclose")}


def _judge_may_import(module: str) -> bool:
    top = module.split(".")[0]
    return bool(top) and not top.startswith("_") and (top in sys.stdlib_module_names or top in _JUDGE_PACKAGES)


def _test_names(tests: list[str]) -> tuple[list[str], set[str]]:
    """Names the tests read without binding them themselves (in order), and those they call."""
    loaded: list[str] = []
    bound: set[str] = set()
    called: set[str] = set()
    for test in tests:
        try:
            tree = ast.parse(test)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    if node.id not in loaded:
                        loaded.append(node.id)
                else:
                    bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                called.add(node.func.id)
    return [n for n in loaded if n not in bound and not n.startswith("__")], called


def _answer_bindings(source: str) -> tuple[set[str], dict[str, tuple[str, str | None]]]:
    """What the answer binds at top level (also inside top-level if/try/with), read statically:
    names it defines itself (def, class, assignment), and names it imports: name -> (module,
    attribute) where attribute is None for ``import module [as name]``. Nothing is run."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), {}
    defined: set[str] = set()
    imported: dict[str, tuple[str, str | None]] = {}

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        imported[alias.asname] = (alias.name, None)
                    else:
                        top = alias.name.split(".")[0]
                        imported[top] = (top, None)
            elif isinstance(node, ast.ImportFrom):
                if node.module and not node.level and node.module != "__future__":
                    for alias in node.names:
                        if alias.name != "*":
                            imported[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    defined.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
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
    return defined, imported


def judge_plan(source: str, tests: list[str], subjects: list[str] | tuple[str, ...] = ()) -> dict:
    """How the judge resolves each name the prompt's tests read but do not bind themselves.

    - built-ins are the judge's own (real) built-ins: never a name of the answer;
    - standard modules (``math``) and the conventional aliases ``np``/``pd`` are modules the judge
      imports itself; so is a module the answer imported under the name the tests use
      (``import numpy as np``), and an object it imported by its own name from such a module
      (``from math import isclose``: the judge's ``math.isclose``, whatever the answer did next);
    - check helpers such as a bare ``isclose`` are the judge's;
    - every other name is a *proxy* of the answer's object (the function under test, its
      classes): using it asks the answer's process, which answers with plain data.

    ``subjects`` are the functions the prompt asks for (trusted: read from the prompt); they are
    always proxies, except where they would shadow a built-in. Returns ``{"proxies": [...],
    "modules": {name: module}, "objects": {name: [module, attribute]}, "submodules": {name:
    [module, attribute]}}``; a name of ``submodules`` (a renamed ``from`` import) is the judge's
    module when ``module.attribute`` is a module, otherwise a proxy (``from math import gcd as g``
    is the answer's function, answered as plain data).
    """
    names, called = _test_names(tests)
    defined, imported = _answer_bindings(source)
    subjects = set(subjects or ())
    proxies: list[str] = []
    modules: dict[str, str] = {}
    objects: dict[str, list[str]] = {}
    submodules: dict[str, list[str]] = {}
    for name in names:
        if hasattr(builtins, name):
            continue                                   # the judge's real built-in
        if name in subjects:
            proxies.append(name)
            continue
        as_module = name not in called                 # a module is read (math.x), never called
        if as_module and (name in sys.stdlib_module_names or name in _MODULE_ALIASES):
            modules[name] = _MODULE_ALIASES.get(name, name)
            continue
        if name in _CHECK_HELPERS:
            objects[name] = list(_CHECK_HELPERS[name])
            continue
        if name in imported:
            module, attribute = imported[name]
            if not _judge_may_import(module):
                if attribute is not None and attribute != name:
                    proxies.append(name)               # e.g. ``from .x import f as g``: the answer's own
                continue
            if attribute is None:
                modules[name] = module
                continue
            if attribute == name:
                objects[name] = [module, attribute]    # the judge imports it; the answer cannot redefine it
                continue
            if name not in defined:                    # renamed (``from os import path as p``): the
                submodules[name] = [module, attribute]  # judge's module if it is one, else a proxy
                continue
        proxies.append(name)
    return {"proxies": proxies, "modules": modules, "objects": objects, "submodules": submodules}


def run_python(source: str, tests: list[str] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
               limits: Limits | None = None, subjects: list[str] | tuple[str, ...] = ()) -> RunResult:
    """Run ``source`` in a sandbox, then each test in a second one against it.

    ``subjects`` are the functions the prompt asks for (see :func:`judge_plan`).

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
        plan = judge_plan(source, tests, subjects)
        judge_in = json.dumps({"tests": tests, "plan": plan, "nonce": nonce}).encode("utf-8")
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
