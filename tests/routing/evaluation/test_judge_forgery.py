"""A wrong answer must not make the prompt's tests pass by forging the judge's verdict.

Each attempt below is a *wrong* solution (it passes none of its suite's tests on its own merits)
plus a trick aimed at the judge: shadowing the built-ins or standard modules the tests use
(``set``, ``abs``, ``sorted``, ``all``, ``str``, ``math``...), smuggling names in through imports,
ending iteration early with ``StopIteration``, objects that claim to equal or contain anything,
forged verdict records, rewriting its own harness, killing its process, and so on. Every attempt
runs in the real bubblewrap sandbox and must be judged failing on every test; correct solutions of
the same suites must still pass every test.
"""

from __future__ import annotations

import os

import pytest

from routing.evaluation.sandbox import run_python, sandbox_status
from routing.evaluation.evaluator import evaluate

pytestmark = pytest.mark.skipif(not sandbox_status().available and not os.environ.get("CI"),
                                reason=f"no OS sandbox on this machine: {sandbox_status().reason}")

# ---- the prompts' tests (MBPP style) and a wrong and a correct solution for each ------------------

SIMILAR = [
    "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
    "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))",
    "assert set(similar_elements((11, 12, 14, 13),(17, 15, 14, 13))) == set((13, 14))",
]
SIMILAR_WRONG = "def similar_elements(a, b):\n    return ()\n"
SIMILAR_RIGHT = "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n"

AREA = [
    "assert math.isclose(circle_area(2), 12.566370614359172, rel_tol=0.001)",
    "assert abs(circle_area(1) - 3.141592653589793) < 0.001",
    "assert round(circle_area(3), 2) == 28.27",
    "assert isclose(circle_area(10), 314.1592653589793, rel_tol=0.001)",
]
AREA_WRONG = "def circle_area(r):\n    return 2 * r\n"
AREA_RIGHT = "import math\nfrom math import isclose\n\ndef circle_area(r):\n    return math.pi * r * r\n"

UNIQUE = [
    "assert sorted(unique([3, 1, 3, 2])) == [1, 2, 3]",
    "assert str(unique([1, 1])) == '[1]'",
    "assert all(x in unique([5, 5, 6]) for x in (5, 6))",
    "assert len(unique([5, 5, 6, 7])) == 3",
    "assert all(map(lambda case: unique(case[0]) == case[1], [([1, 1], [1]), ([2, 3, 2], [2, 3])]))",
    "assert unique([4, 4, 9]) == [4, 9]",
]
UNIQUE_WRONG = "def unique(xs):\n    return [0]\n"
UNIQUE_RIGHT = ("def unique(xs):\n    out = []\n    for x in xs:\n        if x not in out:\n"
                "            out.append(x)\n    return out\n")

SHOUT = [
    "print(shout('a'))\nassert shout('a') == 'A!'",
    "assert shout('b') == 'B!'",
    "assert shout('c') == 'C!'",
]
SHOUT_WRONG = "def shout(s):\n    return s\n"
SHOUT_RIGHT = "def shout(s):\n    return s.upper() + '!'\n"

SUITES = {"similar": SIMILAR, "area": AREA, "unique": UNIQUE, "shout": SHOUT}
WRONG = {"similar": SIMILAR_WRONG, "area": AREA_WRONG, "unique": UNIQUE_WRONG, "shout": SHOUT_WRONG}
RIGHT = {"similar": SIMILAR_RIGHT, "area": AREA_RIGHT, "unique": UNIQUE_RIGHT, "shout": SHOUT_RIGHT}

# ---- the forgeries: (suite, wrong solution + trick) -------------------------------------------------

_ALWAYS_EQUAL = """
class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __lt__(self, other):
        return True
    __gt__ = __le__ = __ge__ = __lt__
    def __hash__(self):
        return 0
    def __round__(self, n=0):
        return self
    def __sub__(self, other):
        return self
    __rsub__ = __abs__ = __neg__ = lambda self, *a: self
"""

FORGERIES: dict[str, tuple[str, str]] = {
    # built-ins the tests call, redefined by the answer
    "def set": ("similar", SIMILAR_WRONG + "def set(*args):\n    return 1\n"),
    "set = lambda": ("similar", SIMILAR_WRONG + "set = lambda *args: 0\n"),
    "class set with __eq__": ("similar", SIMILAR_WRONG + """
class set:
    def __init__(self, *args):
        pass
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__
"""),
    "def abs": ("area", AREA_WRONG + "def abs(x):\n    return 0\n"),
    "def round": ("area", AREA_WRONG + "def round(x, n=0):\n    return 28.27\n"),
    "def sorted": ("unique", UNIQUE_WRONG + "def sorted(xs, **kwargs):\n    return [1, 2, 3]\n"),
    "def all": ("unique", UNIQUE_WRONG + "def all(xs):\n    return True\n"),
    "def str": ("unique", UNIQUE_WRONG + "def str(x):\n    return '[1]'\n"),
    "def len": ("unique", UNIQUE_WRONG + "def len(x):\n    return 3\n"),
    "set defined through globals()": ("similar", SIMILAR_WRONG + "globals()['set'] = lambda *a: 0\n"),
    "set defined through exec": ("similar", SIMILAR_WRONG + "exec('def set(*a):\\n    return 0')\n"),
    "__builtins__ replaced": ("similar", SIMILAR_WRONG + "__builtins__ = {'set': lambda *a: 0}\n"
                              "globals()['__builtins__'] = {'set': lambda *a: 0}\n"),
    # standard modules the tests use, faked
    "class named math": ("area", AREA_WRONG + """
class math:
    @staticmethod
    def isclose(*args, **kwargs):
        return True
"""),
    "sys.modules['math'] faked before import": ("area", AREA_WRONG + """
import sys, types
sys.modules['math'] = types.SimpleNamespace(isclose=lambda *a, **k: True)
import math
"""),
    "math bound to a namespace": ("area", AREA_WRONG + """
import types
math = types.SimpleNamespace(isclose=lambda *a, **k: True, pi=3.0)
"""),
    "def isclose": ("area", AREA_WRONG + "def isclose(*args, **kwargs):\n    return True\n"),
    "from math import isclose, then redefined": ("area", AREA_WRONG + "from math import isclose\n"
                                                 "def isclose(*args, **kwargs):\n    return True\n"),
    "MagicMock imported as isclose": ("area", AREA_WRONG + "from unittest.mock import MagicMock as isclose\n"),
    # imports aimed at the judge's namespace
    "from builtins import bool as all": ("unique", UNIQUE_WRONG + "from builtins import bool as all\n"),
    "from builtins import bool as set": ("similar", SIMILAR_WRONG + "from builtins import bool as set\n"),
    # monkeypatching the answer's own process
    "builtins.set patched": ("similar", SIMILAR_WRONG + "import builtins\nbuiltins.set = lambda *a: 0\n"),
    "builtins.all and sorted patched": ("unique", UNIQUE_WRONG + "import builtins\nbuiltins.all = lambda x: True\n"
                                        "builtins.sorted = lambda x, **k: [1, 2, 3]\n"),
    "set.__eq__ patched through gc and ctypes": ("similar", SIMILAR_WRONG + """
import ctypes, gc
try:
    gc.get_referents(set.__dict__)[0]['__eq__'] = lambda a, b: True
    gc.get_referents(tuple.__dict__)[0]['__eq__'] = lambda a, b: True
    ctypes.pythonapi.PyType_Modified(ctypes.py_object(set))
    ctypes.pythonapi.PyType_Modified(ctypes.py_object(tuple))
except Exception:
    pass
"""),
    # iteration ended early
    "StopIteration inside all(map(...))": ("unique", "def unique(xs):\n    raise StopIteration\n"),
    "exception subclassing StopIteration": ("unique", "class Done(StopIteration):\n    pass\n"
                                            "def unique(xs):\n    raise Done()\n"),
    "own exception class named StopIteration": ("unique", "class StopIteration(Exception):\n    pass\n"
                                                "def unique(xs):\n    raise StopIteration('end')\n"),
    # objects that claim to be what the tests want
    "returns an always-equal object": ("unique", _ALWAYS_EQUAL + "def unique(xs):\n    return Anything()\n"),
    "returns always-equal float subclass": ("area", """
class F(float):
    def __eq__(self, other):
        return True
    def __lt__(self, other):
        return True
    def __sub__(self, other):
        return F(0.0)
    def __abs__(self):
        return F(0.0)
    def __round__(self, n=0):
        return self
    __hash__ = float.__hash__
def circle_area(r):
    return F(2 * r)
"""),
    "returns an object whose __class__ pretends to be list": ("unique", _ALWAYS_EQUAL + """
class FakeList(Anything):
    @property
    def __class__(self):
        return list
def unique(xs):
    return FakeList()
"""),
    "returns an object containing everything": ("unique", """
class Everything:
    def __contains__(self, item):
        return True
    def __iter__(self):
        raise TypeError('not iterable')
def unique(xs):
    return Everything()
"""),
    "returns elements that equal anything": ("similar", _ALWAYS_EQUAL + "def similar_elements(a, b):\n"
                                             "    return (Anything(), Anything())\n"),
    # ending its process, or exceptions aimed at the harness
    "raise SystemExit(0) at import": ("similar", SIMILAR_WRONG + "raise SystemExit(0)\n"),
    "os._exit(0) at import": ("similar", SIMILAR_WRONG + "import os\nos._exit(0)\n"),
    "sys.exit(0) inside the function": ("similar", "import sys\ndef similar_elements(a, b):\n    sys.exit(0)\n"),
    "raises KeyboardInterrupt in the function": ("similar", "def similar_elements(a, b):\n"
                                                 "    raise KeyboardInterrupt\n"),
    # forged records and protocol abuse
    "prints verdict records with the nonce": ("similar", SIMILAR_WRONG + """
import __main__, sys
nonce = __main__._nonce
for i in range(3):
    sys.__stdout__.write(nonce + '{"kind": "test", "index": %d, "ok": true}\\n' % i)
sys.__stdout__.write(nonce + '{"kind": "done"}\\n')
sys.__stdout__.flush()
print('All tests passed')
"""),
    "makes the judge print verdict records, then stalls it": ("shout", """
import __main__, time
_calls = []
def shout(s):
    _calls.append(s)
    if len(_calls) == 1:
        records = ''.join(__main__._nonce + '{"kind": "test", "index": %d, "ok": true}\\n' % i for i in range(3))
        return '\\n' + records + __main__._nonce + '{"kind": "done"}'
    if len(_calls) == 2:
        return s
    time.sleep(60)   # the judge is killed before it gives its own verdicts
"""),
    "rewrites its harness's encoder to send always-true objects": ("unique", UNIQUE_WRONG + """
import __main__
_real_encode = __main__.encode_value
class _Yes:
    def __eq__(self, other):
        return True
    def __contains__(self, item):
        return True
    __hash__ = object.__hash__
def encode_value(value, to_handle=None, *rest):
    if callable(value) or to_handle is None or type(value) in (bool, str):
        return _real_encode(value, to_handle, *rest)
    return _real_encode(_Yes(), to_handle)
__main__.encode_value = encode_value
"""),
    "pre-loads fake replies on the judge's pipe": ("similar", SIMILAR_WRONG + """
import os, sys
fd = int(sys.argv[3])
os.write(fd, b'{"ok": true, "v": ["b", true]}\\n' * 64)
"""),
}


def _judged(suite: str, source: str) -> list[bool]:
    return run_python(source, SUITES[suite], timeout_s=3.0).tests


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_the_wrong_solutions_fail_and_the_right_ones_pass(suite: str) -> None:
    assert not any(_judged(suite, WRONG[suite]))
    result = run_python(RIGHT[suite], SUITES[suite], timeout_s=3.0)
    assert all(result.tests), result.test_errors


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forgery_is_judged_failing(name: str) -> None:
    suite, source = FORGERIES[name]
    result = run_python(source, SUITES[suite], timeout_s=3.0)
    assert not any(result.tests), (name, result.tests, result.test_errors)


def test_there_are_at_least_thirty_distinct_forgeries() -> None:
    assert len(FORGERIES) >= 30 and len(set(FORGERIES.values())) == len(FORGERIES)


def test_answer_imports_never_run_in_the_judge() -> None:
    # The answer binds the helper the tests use to an object of its choosing through an import:
    # the judge resolves ``isclose`` (and ``math``) itself.
    source = AREA_WRONG + "from unittest.mock import MagicMock as isclose\nimport math\n"
    result = run_python(source, AREA, timeout_s=3.0)
    assert result.tests == [False] * len(AREA), result.test_errors


def test_correct_solutions_that_use_imports_and_helpers_still_pass() -> None:
    source = """
import math
from collections import Counter
from functools import reduce
import statistics as stats

def _helper(x):
    return x * x

def circle_area(r):
    return math.pi * _helper(r)

def similar_elements(a, b):
    return tuple((Counter(a) & Counter(b)).keys())
"""
    tests = AREA + SIMILAR + ["assert stats.mean([circle_area(1), circle_area(1)]) > 3.14",
                              "assert reduce(lambda a, b: a + b, [circle_area(1)] * 2) > 6"]
    result = run_python(source, tests, timeout_s=5.0)
    assert all(result.tests), result.test_errors


# ---- the score --------------------------------------------------------------------------------------

SIMILAR_PROMPT = ("Write a function to find the similar elements from the given two tuple lists.\n"
                  + "\n".join(SIMILAR))


def _fenced(code: str) -> str:
    return f"Here is the function:\n\n```python\n{code.strip()}\n```\n"


def test_evaluate_scores_a_forging_answer_like_the_wrong_answer_it_is() -> None:
    forging = SIMILAR_WRONG + "def set(*args):\n    return 1\n"
    inert = SIMILAR_WRONG + "def sett(*args):\n    return 1\n"     # the same text, the forging made inert
    correct = SIMILAR_RIGHT + "def sett(*args):\n    return 1\n"
    scores = {name: evaluate(SIMILAR_PROMPT, _fenced(code), peers=None)
              for name, code in (("forging", forging), ("inert", inert), ("correct", correct))}
    code_quality = {name: s["dimensions"]["code_quality"] for name, s in scores.items()}
    normalized = {name: s["normalized"] for name, s in scores.items()}
    assert "passes 0/3" in scores["forging"]["explanations"]["code_quality"]
    assert "passes 3/3" in scores["correct"]["explanations"]["code_quality"]
    assert code_quality["forging"] <= code_quality["inert"] < code_quality["correct"]
    assert normalized["forging"] <= normalized["inert"] + 1e-9
    assert normalized["correct"] - normalized["forging"] >= 0.05, normalized


def test_the_functions_under_test_may_share_a_name_with_a_standard_module() -> None:
    # ``copy`` is a standard module, but here the tests call the answer's function of that name.
    source = "def copy(xs):\n    return list(xs)\n\ndef random(seed):\n    return seed % 7\n"
    tests = ["assert copy((1, 2)) == [1, 2]", "assert random(9) == 2", "assert math.floor(2.5) == 2"]
    result = run_python(source, tests, timeout_s=3.0, subjects=["copy"])
    assert result.tests == [True, True, True], result.test_errors


def test_the_judge_plan_resolves_builtins_and_modules_itself() -> None:
    from routing.evaluation.sandbox import judge_plan
    source = ("import types, statistics as st\nfrom math import isclose, floor\nfrom os import path as p\n"
              "math = types.SimpleNamespace()\ndef set(x):\n    return 1\ndef f(x):\n    return x\n")
    tests = ["assert set(f(1)) == set([1]) and math.isclose(f(1), 1) and isclose(1, 1)",
             "assert floor(st.mean([f(1), 2])) == 1 and p.join('a', 'b') == 'a/b'",
             "y = f(2)\nassert y == 2 and np.allclose(f(3), 3)"]
    plan = judge_plan(source, tests, subjects=["f"])
    assert plan["proxies"] == ["f"]
    assert plan["modules"] == {"math": "math", "st": "statistics", "np": "numpy"}
    assert plan["objects"] == {"isclose": ["math", "isclose"], "floor": ["math", "floor"]}
    assert plan["submodules"] == {"p": ["os", "path"]}


def test_renamed_imports_are_modules_of_the_judge_or_the_answers_functions() -> None:
    source = "from os import path as p\nfrom math import gcd as greatest_common_divisor\n"
    tests = ["assert p.join('a', 'b') == 'a/b'", "assert greatest_common_divisor(12, 18) == 6"]
    result = run_python(source, tests, timeout_s=3.0)
    assert result.tests == [True, True], result.test_errors
