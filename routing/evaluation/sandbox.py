"""Run a Python answer and tests in an isolated, short-lived subprocess.

Best-effort isolation, enough for code written by chat models, not for hostile code:
``python -I`` (no user site, no PYTHON* variables) in an empty temporary directory with a
minimal environment, CPU/memory/file-size/process limits (``resource``, POSIX only), a
wall-clock timeout that kills the whole process group, and a Python audit hook that
refuses network access, subprocesses, signals, ctypes and writing/deleting files
outside the temporary directory.

The harness runs the answer's top-level statements one by one (so one failing example
does not hide that the definitions work), records what each ``print`` call printed and
from which line, then runs each test separately. Results stream back as JSON lines, so
a timeout still leaves the results obtained before it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT_S = 2.0
MEMORY_LIMIT_BYTES = 1 << 30
FILE_SIZE_LIMIT_BYTES = 1 << 20
PROCESS_LIMIT = 64

_HARNESS = r'''
import ast, builtins, io, json, os, sys
_nonce = sys.argv[1]
try:
    import resource
    for _name, _value in zip(("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CORE"),
                             map(int, sys.argv[2].split(","))):
        if hasattr(resource, _name):
            try:
                resource.setrlimit(getattr(resource, _name), (_value, _value))
            except (ValueError, OSError):
                pass
except ImportError:
    pass
_root = os.path.realpath(os.getcwd())
_out = sys.__stdout__
def _emit(kind, **data):
    data["kind"] = kind
    _out.write(_nonce + json.dumps(data, default=str) + "\n")
    _out.flush()

_BLOCKED_PREFIXES = ("socket.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
                     "os.kill", "os.killpg", "os.system", "os.popen", "ctypes.call_function",
                     "ctypes.dlsym", "ctypes.cdata", "pty.", "signal.pthread_kill",
                     "os.setuid", "os.chroot", "urllib.Request", "http.client", "ftplib", "smtplib",
                     "webbrowser", "shutil.rmtree", "os.chown", "os.chmod", "os.symlink", "os.link")
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.rename", "os.replace", "os.mkdir", "os.truncate",
                "os.utime", "shutil.move", "shutil.copyfile", "shutil.copytree"}

def _inside(path):
    try:
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return real == _root or real.startswith(_root + os.sep)

def _hook(event, args):
    if event.startswith(_BLOCKED_PREFIXES):
        raise PermissionError("sandbox: " + event + " is not allowed")
    if event in _PATH_EVENTS:
        for arg in args[:2]:
            if isinstance(arg, (str, bytes, os.PathLike)) and not _inside(arg):
                raise PermissionError("sandbox: " + event + " outside the sandbox")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
        if writing and not _inside(path):
            raise PermissionError("sandbox: writing outside the sandbox")

with open("answer.py", encoding="utf-8") as f:
    _source = f.read()
with open("tests.json", encoding="utf-8") as f:
    _tests = json.load(f)
sys.addaudithook(_hook)
sys.stdin = io.StringIO("")
_prints = []
_real_print = builtins.print
def _print(*args, **kwargs):
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename != "<answer>":
        frame = frame.f_back
    buf = io.StringIO()
    kw = {k: v for k, v in kwargs.items() if k in ("sep", "end")}
    _real_print(*args, file=buf, **kw)
    if len(_prints) < 200:
        _prints.append([frame.f_lineno if frame else 0, buf.getvalue()[:2000]])
    if kwargs.get("file") not in (None, sys.stdout, sys.__stdout__):
        _real_print(*args, **kwargs)
builtins.print = _print
_ns = {"__name__": "__main__", "__builtins__": builtins}

def _error_kind(exc):
    if isinstance(exc, (ModuleNotFoundError, ImportError)):
        return "missing_module"
    if isinstance(exc, (EOFError,)):
        return "needs_input"
    if isinstance(exc, PermissionError) and "sandbox" in str(exc):
        return "blocked"
    if isinstance(exc, AssertionError):
        return "assertion"
    return "error"

try:
    _tree = ast.parse(_source, "<answer>")
except SyntaxError as exc:
    _emit("syntax", error=repr(exc))
    _tree = None
if _tree is not None:
    for _stmt in _tree.body:
        _is_assert = isinstance(_stmt, ast.Assert)
        try:
            exec(compile(ast.Module([_stmt], []), "<answer>", "exec"), _ns)
            _emit("stmt", ok=True, line=_stmt.lineno, is_assert=_is_assert)
        except SystemExit:
            _emit("stmt", ok=True, line=_stmt.lineno, is_assert=_is_assert)
        except BaseException as exc:
            _emit("stmt", ok=False, line=_stmt.lineno, is_assert=_is_assert,
                  error=type(exc).__name__ + ": " + str(exc)[:200], error_kind=_error_kind(exc))
    _emit("prints", prints=_prints)
    for _i, _test in enumerate(_tests):
        try:
            exec(compile(_test, "<test>", "exec"), _ns)
            _emit("test", index=_i, ok=True)
        except BaseException as exc:
            _emit("test", index=_i, ok=False, error=type(exc).__name__ + ": " + str(exc)[:200],
                  error_kind=_error_kind(exc))
_emit("done")
'''


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
    finished: bool = False

    @property
    def failures(self) -> list[StatementResult]:
        """Statements that raised a real error (not a missing module or a blocked call)."""
        return [s for s in self.statements if not s.ok and s.error_kind in ("error", "assertion")]


def run_python(source: str, tests: list[str] | None = None, *,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> RunResult:
    """Run ``source`` then each test statement in a sandboxed ``python -I`` subprocess."""
    tests = list(tests or [])
    nonce = "@@" + secrets.token_hex(8) + "@@"
    result = RunResult(tests=[False] * len(tests), test_errors=[""] * len(tests))
    with tempfile.TemporaryDirectory(prefix="eval-sandbox-") as tmp:
        Path(tmp, "answer.py").write_text(source, encoding="utf-8")
        Path(tmp, "tests.json").write_text(json.dumps(tests), encoding="utf-8")
        Path(tmp, "harness.py").write_text(_HARNESS, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONHASHSEED": "0", "NO_PROXY": "*", "no_proxy": "*"}
        posix = os.name == "posix"
        limits = ",".join(str(v) for v in (max(1, int(timeout_s + 1)), MEMORY_LIMIT_BYTES,
                                            FILE_SIZE_LIMIT_BYTES, PROCESS_LIMIT, 0))
        # Limits are set by the child itself (no preexec_fn: it is unsafe with threads).
        proc = subprocess.Popen(
            [sys.executable, "-I", "harness.py", nonce, limits], cwd=tmp, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=posix,
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            if posix:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:  # pragma: no cover
                proc.kill()
            out, _ = proc.communicate()
    _parse_output(out.decode("utf-8", "replace"), nonce, result)
    return result


def _parse_output(output: str, nonce: str, result: RunResult) -> None:
    for line in output.splitlines():
        at = line.find(nonce)
        if at < 0:
            continue
        try:
            data = json.loads(line[at + len(nonce):])
        except json.JSONDecodeError:
            continue
        kind = data.get("kind")
        if kind == "syntax":
            result.syntax_error = str(data.get("error", ""))
        elif kind == "stmt":
            result.statements.append(StatementResult(
                line=int(data.get("line", 0)), ok=bool(data.get("ok")),
                is_assert=bool(data.get("is_assert")), error=str(data.get("error", "")),
                error_kind=str(data.get("error_kind", ""))))
        elif kind == "prints":
            result.prints = [(int(n), str(t)) for n, t in data.get("prints", [])]
        elif kind == "test":
            index = int(data.get("index", -1))
            if 0 <= index < len(result.tests):
                result.tests[index] = bool(data.get("ok"))
                result.test_errors[index] = str(data.get("error", ""))
        elif kind == "done":
            result.finished = True
