"""Plain-data codec for values crossing between the answer's process and the judge's.

Runs inside both sandboxes (its source is prepended to each harness) and is importable for
tests. Only values of exact built-in types cross by value: None, bool, int, float, complex, str,
bytes, list, tuple, dict, set and frozenset (nested, with limits on depth and size). Anything
else crosses as a numbered *handle*: the judge sees an opaque proxy whose equality is identity,
so an object that claims to equal everything cannot make a test pass. Subclasses of the built-in
types (a namedtuple, an IntEnum, an ``int`` whose ``__eq__`` returns True) are sent as their base
value, and numpy scalars as their ``item()``: the receiving side only ever builds exact types.
"""

import base64

MAX_DEPTH = 32
MAX_ITEMS = 200_000
_BASES = (bool, int, float, complex, str, bytes, tuple, list, dict, frozenset, set)


class CodecError(ValueError):
    """A value that cannot cross (too deep, too large, or malformed)."""


def _spend(budget, depth):
    """Count one more item against a value's limits; the shared budget list for its parts."""
    budget = [MAX_ITEMS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise CodecError("value too large to compare")
    if depth > MAX_DEPTH:
        raise CodecError("value nested too deeply")
    return budget


def encode_value(value, to_handle=None, _depth=0, _budget=None):
    """``value`` as JSON-ready tagged lists; ``to_handle(obj) -> int`` names other objects."""
    budget = _spend(_budget, _depth)
    kind = type(value)
    if value is None:
        return ["n"]
    if kind is bool:
        return ["b", value]
    if kind is int:
        return ["i", format(value, "x")]
    if kind is float:
        return ["f", value.hex()]
    if kind is complex:
        return ["c", value.real.hex(), value.imag.hex()]
    if kind is str:
        return ["s", value]
    if kind is bytes:
        return ["y", base64.b64encode(value).decode("ascii")]
    if kind in (list, tuple, set, frozenset):
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[kind]
        return [tag, [encode_value(item, to_handle, _depth + 1, budget) for item in value]]
    if kind is dict:
        return ["d", [[encode_value(k, to_handle, _depth + 1, budget), encode_value(v, to_handle, _depth + 1, budget)]
                      for k, v in value.items()]]
    for base in _BASES:  # a subclass crosses as its base value, never with its own methods
        if isinstance(value, base):
            plain = base(value)
            if type(plain) is base:
                return encode_value(plain, to_handle, _depth, budget)
    if getattr(kind, "__module__", "") == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        plain = value.item()
        if type(plain) in _BASES:
            return encode_value(plain, to_handle, _depth, budget)
    if to_handle is None:
        raise CodecError(f"a {kind.__name__} cannot be sent")
    return ["h", int(to_handle(value))]


def decode_value(data, from_handle=None, _depth=0, _budget=None):
    """The exact built-in value a tagged list stands for (handles through ``from_handle``)."""
    budget = _spend(_budget, _depth)
    if type(data) is not list or not data or type(data[0]) is not str:
        raise CodecError("malformed value")
    tag = data[0]
    try:
        if tag == "n":
            return None
        if tag == "b" and type(data[1]) is bool:
            return data[1]
        if tag == "i" and type(data[1]) is str and len(data[1]) <= 20_000:
            return int(data[1], 16)
        if tag == "f" and type(data[1]) is str:
            return float.fromhex(data[1])
        if tag == "c":
            return complex(float.fromhex(data[1]), float.fromhex(data[2]))
        if tag == "s" and type(data[1]) is str:
            return data[1]
        if tag == "y" and type(data[1]) is str:
            return base64.b64decode(data[1].encode("ascii"), validate=True)
        if tag in ("l", "t", "S", "F") and type(data[1]) is list:
            items = [decode_value(item, from_handle, _depth + 1, budget) for item in data[1]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and type(data[1]) is list:
            out = {}
            for pair in data[1]:
                if type(pair) is not list or len(pair) != 2:
                    raise CodecError("malformed mapping")
                out[decode_value(pair[0], from_handle, _depth + 1, budget)] = \
                    decode_value(pair[1], from_handle, _depth + 1, budget)
            return out
        if tag == "h" and type(data[1]) is int and from_handle is not None:
            return from_handle(data[1])
    except CodecError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise CodecError(f"malformed value ({type(exc).__name__})") from None
    raise CodecError("malformed value")
