"""Operating-system isolation for untrusted Python: bubblewrap, rlimits, a wall clock, byte caps.

Every sandboxed process is started as ``bwrap`` with new PID, network, IPC, UTS (and, where it
can, cgroup) namespaces, ``--die-with-parent``, ``--new-session``, ``--clearenv``, its own
``/proc`` and ``/dev``, only the Python runtime (and ``/usr``, ``/bin``, ``/lib*``) mounted
read-only, and a small size-limited tmpfs at ``/tmp`` as its only writable place (the sandbox's own root and
``/dev`` are remounted read-only). No project,
data, cache or home folder is mounted; nothing of the parent's environment is passed on (the
child's environment is built here from constants), and the arguments carry only our harness.

Who the child runs as:
- the app runs as root (containers, CI): bwrap runs privileged (no user namespace) and the child
  drops to a fresh unprivileged uid with ``setpriv`` (all capabilities, the bounding set and
  new privileges dropped). The kernel does not enforce RLIMIT_NPROC for processes whose real uid
  is root, so this is what makes the process limit hold; each sandbox gets its own uid so that
  concurrent sandboxes do not share one process count.
- the app runs as an ordinary user (a Hugging Face Space): bwrap makes a user namespace
  (``--unshare-user``) and the real uid is already unprivileged.

The harness sets the rlimits itself before any untrusted code runs (CPU seconds, address space,
file size, open files, processes, no core files); the answer cannot raise a hard limit. The
parent enforces a wall-clock limit: at the deadline it kills bwrap's process group, and since
bwrap's child is the PID namespace's init (``--die-with-parent``), every process inside dies
with it, ``setsid`` children included. Output is read with a byte cap; past it the sandbox is
killed. Where bubblewrap is missing or cannot make namespaces, :func:`sandbox_status` says why and
nothing is run (there is no in-process fallback).
"""

from __future__ import annotations

import itertools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SandboxStatus", "SandboxUnavailable", "Limits", "Process", "sandbox_status", "reset_status",
           "spawn", "collect"]

#: Environment variable naming the bwrap binary ("" / "none" / "off": never run code).
BWRAP_ENV = "ROUTER_SANDBOX_BWRAP"
_TMPFS_BYTES = 16 << 20
_UID_BASE = 1_100_000          # sandboxed uids: 1,100,000 + n (no user or file on the host has them)
_UID_SPAN = 50_000
_uid_counter = itertools.count()
_CHILD_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
              "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


class SandboxUnavailable(RuntimeError):
    """Raised when code would have to run but no OS sandbox can be made here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process (set as hard rlimits by the harness)."""

    cpu_s: int = 3
    address_space: int = 1 << 30
    file_size: int = 1 << 20
    open_files: int = 64
    processes: int = 32

    def as_arg(self) -> str:
        return ",".join(str(v) for v in (self.cpu_s, self.address_space, self.file_size, self.open_files,
                                         self.processes))


@dataclass(frozen=True)
class SandboxStatus:
    """Whether code can be run in an OS sandbox here, and why not."""

    available: bool
    mode: str = ""            # "privileged+setpriv" or "user-namespace"
    reason: str = ""
    bwrap: str = ""
    startup_ms: float = 0.0

    def describe(self) -> str:
        if self.available:
            return (f"answer code runs in a bubblewrap sandbox ({self.mode}; no network, no project files, "
                    f"no secrets)")
        return f"answer code is not run: {self.reason}; code answers are scored statically"


def _bwrap_path() -> str | None:
    configured = os.environ.get(BWRAP_ENV)
    if configured is not None:
        if configured.strip().lower() in ("", "none", "off", "0"):
            return None
        return configured
    return shutil.which("bwrap") or ("/usr/bin/bwrap" if Path("/usr/bin/bwrap").exists() else None)


def _python_paths() -> tuple[str, list[str]]:
    """The interpreter to run and the folders it needs (real paths, links resolved)."""
    executable = str(Path(sys.executable).resolve())
    needed = {str(Path(sys.base_prefix).resolve())}
    if sys.prefix != sys.base_prefix:       # a virtualenv: its site-packages live under sys.prefix
        needed.add(str(Path(sys.prefix).resolve()))
    if not any(executable.startswith(p + os.sep) for p in needed):
        needed.add(str(Path(executable).parent.parent))
    system = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin")
    mounts = sorted(p for p in needed if not any(p == s or p.startswith(s + os.sep) for s in system))
    return executable, mounts


def _command(bwrap: str, argv: list[str]) -> list[str]:
    python, mounts = _python_paths()
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--clearenv"]
    root = os.geteuid() == 0
    if not root:
        cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    for name, value in _CHILD_ENV.items():
        cmd += ["--setenv", name, value]
    cmd += ["--ro-bind", "/usr", "/usr", "--ro-bind-try", "/bin", "/bin", "--ro-bind-try", "/lib", "/lib",
            "--ro-bind-try", "/lib64", "/lib64", "--ro-bind-try", "/lib32", "/lib32"]
    for path in mounts:
        cmd += ["--ro-bind", path, path]
    # The sandbox's root and /dev are tmpfs folders bwrap made (in a user namespace the child owns
    # them): read-only, so that the size-limited /tmp is the only place it can write.
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(_TMPFS_BYTES), "--tmpfs", "/tmp",
            "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
    if root:
        uid = str(_UID_BASE + next(_uid_counter) % _UID_SPAN)
        cmd += ["--cap-add", "CAP_SETUID,CAP_SETGID", "--", "/usr/bin/setpriv", "--reuid", uid, "--regid", uid,
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        cmd += ["--"]
    return cmd + [python, "-I", *argv]


@dataclass
class Process:
    """A running sandboxed process and what it has written so far."""

    popen: subprocess.Popen
    cap: int
    out: bytearray = field(default_factory=bytearray)
    overflow: bool = False
    closed: bool = False

    def kill(self) -> None:
        """End the sandbox: bwrap's group, and with bwrap its PID namespace."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.kill()
        except ProcessLookupError:
            pass


def spawn(argv: list[str], stdin: bytes, *, pass_fds: tuple[int, ...] = (), output_cap: int = 1 << 20) -> Process:
    """Start ``python -I *argv`` in a new sandbox, feed it ``stdin`` and return at once."""
    status = sandbox_status()
    if not status.available:
        raise SandboxUnavailable(status.reason)
    popen = subprocess.Popen(_command(status.bwrap, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=dict(_CHILD_ENV), pass_fds=pass_fds,
                             start_new_session=True, close_fds=True)
    proc = Process(popen, output_cap)
    assert popen.stdin is not None
    writer = threading.Thread(target=_feed, args=(popen.stdin, stdin), daemon=True, name="sandbox-stdin")
    writer.start()
    return proc


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            pipe.close()
        except (BrokenPipeError, OSError):
            pass


def collect(procs: list[Process], deadline: float) -> bool:
    """Read every process's stdout (byte-capped) until all end or ``deadline`` (monotonic) passes.

    Returns True when the deadline passed (everything still running was killed). A process that
    writes more than its cap is killed at once and marked ``overflow``. On return every process
    has been killed and reaped, so no child outlives the call.
    """
    selector = selectors.DefaultSelector()
    for proc in procs:
        assert proc.popen.stdout is not None
        os.set_blocking(proc.popen.stdout.fileno(), False)
        selector.register(proc.popen.stdout, selectors.EVENT_READ, proc)
    timed_out = False
    try:
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in selector.select(timeout=min(left, 0.25)):
                proc = key.data
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fileobj)
                    proc.closed = True
                    continue
                room = proc.cap - len(proc.out)
                proc.out += chunk[:max(0, room)]
                if len(chunk) > room:
                    proc.overflow = True
                    selector.unregister(key.fileobj)
                    proc.kill()
    finally:
        selector.close()
        for proc in procs:
            proc.kill()
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
    return timed_out


_status_lock = threading.Lock()
_status: SandboxStatus | None = None


def reset_status() -> None:
    """Forget the cached probe (tests change ``ROUTER_SANDBOX_BWRAP``)."""
    global _status
    with _status_lock:
        _status = None


def sandbox_status() -> SandboxStatus:
    """Probe once whether bubblewrap can make a sandbox here (cached; about 30 ms)."""
    global _status
    with _status_lock:
        if _status is None:
            _status = _probe()
        return _status


def _probe() -> SandboxStatus:
    if os.name != "posix" or not sys.platform.startswith("linux"):
        return SandboxStatus(False, reason="bubblewrap needs Linux")
    bwrap = _bwrap_path()
    if bwrap is None:
        return SandboxStatus(False, reason=("running code is switched off (ROUTER_SANDBOX_BWRAP)"
                                            if os.environ.get(BWRAP_ENV) is not None else
                                            "bubblewrap is not installed (apt-get install bubblewrap; on a "
                                            "Space, list it in packages.txt)"))
    if os.geteuid() == 0 and not Path("/usr/bin/setpriv").exists():
        return SandboxStatus(False, reason="setpriv (util-linux) is missing, so the sandbox cannot drop root")
    mode = "privileged bwrap, unprivileged uid" if os.geteuid() == 0 else "user namespace"
    probe = "import os,sys; print('sandbox-ok', os.getuid(), len(os.environ.get('OPENROUTER_API_KEY', '')))"
    start = time.monotonic()
    try:
        done = subprocess.run(_command(bwrap, ["-c", probe]), capture_output=True, timeout=20, env=dict(_CHILD_ENV))
    except (OSError, subprocess.SubprocessError) as exc:
        return SandboxStatus(False, reason=f"bubblewrap could not start ({exc})", bwrap=bwrap)
    elapsed = (time.monotonic() - start) * 1000
    out = done.stdout.decode("utf-8", "replace").split()
    if done.returncode != 0 or not out or out[0] != "sandbox-ok":
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = err[-1] if err else f"exit status {done.returncode}"
        if "namespace" in why.lower():
            why += " (user namespaces are not available here, as in some containers)"
        return SandboxStatus(False, reason=f"bubblewrap cannot make a sandbox here: {why}", bwrap=bwrap)
    if len(out) < 3 or out[1] == "0":
        return SandboxStatus(False, reason="the sandboxed process still ran as root", bwrap=bwrap)
    if out[2] != "0":  # pragma: no cover - --clearenv failed
        return SandboxStatus(False, reason="the parent's environment reached the sandbox", bwrap=bwrap)
    return SandboxStatus(True, mode=mode, bwrap=bwrap, startup_ms=round(elapsed, 1))
