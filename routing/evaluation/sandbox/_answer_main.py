# Harness of the answer's process (runs inside the sandbox; codec.py is prepended to it).
#
# argv: LIMITS REQUEST_FD REPLY_FD. stdin: {"source", "nonce"} as JSON.
# 1. Sets hard rlimits, then runs the answer's top-level statements one by one, recording on
#    stdout (lines starting with the nonce) whether each ran and what each print() printed.
#    Everything this process reports is the answer's own word: its code can rewrite this harness.
# 2. If REQUEST_FD >= 0, serves the judge's requests (get a name, call, attribute, item, len,
#    iter, bool, str, repr) with plain data or handles, until the judge closes the pipe.
#    The judge never sends the tests, only these operations, so this process never learns what
#    a test expects.
import ast, builtins, io, json, os, sys

try:
    import resource
    _NAMES = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC")
    for _name, _value in zip(_NAMES, map(int, sys.argv[1].split(","))):
        resource.setrlimit(getattr(resource, _name), (_value, _value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
except Exception as _exc:  # the limits are part of the sandbox: refuse to run without them
    sys.stdout.write("rlimits could not be set: %r\n" % (_exc,))
    sys.stdout.flush()
    os._exit(3)
_request_fd, _reply_fd = int(sys.argv[2]), int(sys.argv[3])
_payload = json.loads(sys.stdin.read())
sys.stdin = io.StringIO("")
_nonce = _payload["nonce"]
_out = sys.__stdout__


def _emit(kind, **data):
    data["kind"] = kind
    _out.write(_nonce + json.dumps(data, default=str) + "\n")
    _out.flush()


_prints = []
_real_print = builtins.print


def _print(*args, **kwargs):
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename != "<answer>":
        frame = frame.f_back
    buf = io.StringIO()
    _real_print(*args, file=buf, **{k: v for k, v in kwargs.items() if k in ("sep", "end")})
    if len(_prints) < 200:
        _prints.append([frame.f_lineno if frame else 0, buf.getvalue()[:2000]])


builtins.print = _print
_ns = {"__name__": "__main__", "__builtins__": builtins}


def _error_kind(exc):
    if isinstance(exc, ImportError):
        return "missing_module"
    if isinstance(exc, EOFError):
        return "needs_input"
    if isinstance(exc, AssertionError):
        return "assertion"
    if isinstance(exc, (OSError, MemoryError)):  # the sandbox said no (files, network, limits)
        return "blocked"
    return "error"


try:
    _tree = ast.parse(_payload["source"], "<answer>")
except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
    _emit("syntax", error=repr(exc)[:300])
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
_emit("ran")

if _request_fd >= 0:
    _objects = {}

    def _to_handle(obj):
        _objects[len(_objects) + 1] = obj
        return len(_objects)

    def _from_handle(number):
        return _objects[number]

    def _serve(msg):
        op = msg["op"]
        if op == "get":
            if _tree is None:
                raise NameError("the answer does not compile")
            return _ns[msg["name"]]
        target = _objects[msg["h"]]
        if op == "attr":
            return getattr(target, msg["name"])
        if op == "call":
            args = [decode_value(a, _from_handle) for a in msg["args"]]
            kwargs = {k: decode_value(v, _from_handle) for k, v in msg["kwargs"].items()}
            return target(*args, **kwargs)
        if op == "item":
            return target[decode_value(msg["key"], _from_handle)]
        if op == "len":
            return len(target)
        if op == "iter":
            items = []
            for item in target:
                items.append(item)
                if len(items) > 100_000:
                    raise ValueError("too many items to compare")
            return items
        if op == "bool":
            return bool(target)
        if op == "str":
            return str(target)
        if op == "repr":
            return repr(target)
        raise ValueError("unknown operation")

    _requests = os.fdopen(_request_fd, "r", encoding="utf-8")
    _replies = os.fdopen(_reply_fd, "w", encoding="utf-8")
    for _line in _requests:
        try:
            _value = _serve(json.loads(_line))
            _reply = {"ok": True, "v": encode_value(_value, _to_handle)}
        except BaseException as exc:  # an answer's exception goes back to the test that caused it
            _reply = {"ok": False, "type": type(exc).__name__, "e": str(exc)[:300]}
        try:
            _replies.write(json.dumps(_reply) + "\n")
            _replies.flush()
        except (BrokenPipeError, OSError, ValueError):
            break
_emit("done")
