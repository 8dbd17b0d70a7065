# Harness of the judge's process (runs inside its own sandbox; codec.py is prepended to it).
#
# argv: LIMITS REPLY_FD REQUEST_FD. stdin: {"tests", "plan", "nonce"} as JSON.
# Runs each of the prompt's tests here, in a process that never executes the answer's code, not
# even its imports. The plan (sandbox.judge_plan, read from the tests and the answer's source
# without running either) says how each name the tests read is resolved: built-ins are this
# process's real built-ins; standard modules and the modules/objects the answer imported by name
# are imported here, by this process; only the functions under test (and other names of the
# answer) are proxies, and using a proxy (calling, indexing, iterating...) asks the answer's
# process over a pipe, which returns plain data (exact built-in types) or an opaque handle. So the
# verdict is computed here from plain values: shadowing set/all/math, editing the answer's
# harness, exiting early, printing markers, ending iteration with StopIteration or returning
# always-equal objects cannot turn a failing test into a pass.
import builtins, importlib, json, os, sys

try:
    import resource
    _NAMES = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC")
    for _name, _value in zip(_NAMES, map(int, sys.argv[1].split(","))):
        resource.setrlimit(getattr(resource, _name), (_value, _value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
except Exception as _exc:
    sys.stdout.write("rlimits could not be set: %r\n" % (_exc,))
    sys.stdout.flush()
    os._exit(3)
_replies = os.fdopen(int(sys.argv[2]), "r", encoding="utf-8")
_requests = os.fdopen(int(sys.argv[3]), "w", encoding="utf-8")
_payload = json.loads(sys.stdin.read())
_nonce = _payload["nonce"]
_out = sys.__stdout__
# What the tests print (a doctest's print(f(x)) prints the answer's text) goes nowhere: only
# _emit writes records, so an answer's string cannot pose as a verdict.
sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")
_MAX_REPLY = 8 << 20


def _emit(kind, **data):
    data["kind"] = kind
    _out.write(_nonce + json.dumps(data) + "\n")
    _out.flush()


class AnswerGone(Exception):
    """The answer's process ended (exited, crashed or was killed) before answering."""


def _ask(msg):
    try:
        _requests.write(json.dumps(msg) + "\n")
        _requests.flush()
    except (BrokenPipeError, OSError, ValueError):
        raise AnswerGone("the answer's process has ended") from None
    line = _replies.readline(_MAX_REPLY)
    if not line.endswith("\n"):
        raise AnswerGone("the answer's process ended (or sent a reply that is too long)")
    reply = json.loads(line)
    if type(reply) is not dict:
        raise AnswerGone("malformed reply")
    if reply.get("ok") is True:
        return decode_value(reply.get("v"), Remote)
    name, message = str(reply.get("type", "Exception")), str(reply.get("e", ""))[:300]
    kind = getattr(builtins, name, None)
    # Built-in exceptions keep their type (a test may expect ValueError), except those that steer
    # the interpreter's protocols: a StopIteration from the answer would end all(map(...)) early.
    if not (isinstance(kind, type) and issubclass(kind, Exception)) or issubclass(kind, AnswerGone) \
            or issubclass(kind, (StopIteration, StopAsyncIteration)):
        kind = RuntimeError
    raise kind(name + ": " + message if kind is RuntimeError else message)


def _send(value):
    def refuse(obj):
        if isinstance(obj, Remote):
            return object.__getattribute__(obj, "_rid")
        raise TypeError(f"a {type(obj).__name__} cannot be passed to the answer's code")
    return encode_value(value, refuse)


class Remote:
    """An object of the answer's process. Equal only to itself; every use is a request."""

    __slots__ = ("_rid",)

    def __init__(self, rid):
        object.__setattr__(self, "_rid", rid)

    def _op(self, op, **extra):
        return _ask(dict(op=op, h=object.__getattribute__(self, "_rid"), **extra))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._op("attr", name=name)

    def __setattr__(self, name, value):
        raise AttributeError("objects of the answer are read-only in tests")

    def __call__(self, *args, **kwargs):
        return self._op("call", args=[_send(a) for a in args], kwargs={k: _send(v) for k, v in kwargs.items()})

    def __getitem__(self, key):
        return self._op("item", key=_send(key))

    def __len__(self):
        n = self._op("len")
        if type(n) is not int:
            raise TypeError("len() of an answer object is not an int")
        return n

    def __iter__(self):
        items = self._op("iter")
        return iter(items if type(items) is list else [])

    def __contains__(self, key):
        # Membership is a comparison: made here, on the plain items the object iterates over,
        # never by the answer's __contains__.
        items = self._op("iter")
        if type(items) is not list:
            raise TypeError("an answer object that cannot be iterated has no members to compare")
        return key in items

    def __bool__(self):
        return self._op("bool") is True

    def __str__(self):
        text = self._op("str")
        return text if type(text) is str else "<answer object>"

    def __repr__(self):
        text = self._op("repr")
        return text if type(text) is str else "<answer object>"

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return object.__getattribute__(self, "_rid")


_ns = {"__name__": "__main__", "__builtins__": builtins}
_plan = _payload["plan"]
_real_builtins = dict(vars(builtins))
for _name, _module in _plan["modules"].items():
    try:
        _ns[_name] = importlib.import_module(_module)
    except BaseException:
        pass
for _name, (_module, _attribute) in _plan["objects"].items():
    try:
        _ns[_name] = getattr(importlib.import_module(_module), _attribute)
    except BaseException:
        try:
            _ns[_name] = importlib.import_module(_module + "." + _attribute)
        except BaseException:
            pass
_proxies = list(_plan["proxies"])
for _name, (_module, _attribute) in _plan["submodules"].items():
    try:
        _ns[_name] = importlib.import_module(_module + "." + _attribute)
    except BaseException:
        _proxies.append(_name)       # not a module: the answer's object, used through a proxy
vars(builtins).update(_real_builtins)   # whatever those imports did, the built-ins are the real ones
for _name in _proxies:
    try:
        _ns[_name] = _ask({"op": "get", "name": _name})
    except AnswerGone:
        break
    except BaseException:
        pass
for _index, _test in enumerate(_payload["tests"]):
    try:
        exec(compile(_test, "<test>", "exec"), _ns)
        _emit("test", index=_index, ok=True)
    except BaseException as exc:
        _emit("test", index=_index, ok=False, error=type(exc).__name__ + ": " + str(exc)[:200])
_emit("done")
