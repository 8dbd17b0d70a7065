"""Scoring one answer is bounded work, whatever the answer's text.

Answers are untrusted: a model can be steered into sending megabytes of unclosed fences, tiny
fences, nested brackets or one endless line, and evaluate() runs on the single thread that logs
outcomes. Each crafted answer (about 2 MB) is scored in a fresh process, so that a slow (or
stuck) scorer is killed at the deadline instead of hanging the test run; the figure compared with
the bound is the wall time of evaluate() alone, measured inside that process after a warm-up.

The bound is generous (a loaded, shared 2-core machine): before the work was bounded these answers
took 5-20 s each (one of them, a ``# Output:`` claim followed by a long run of spaces, hours);
bounded, each takes well under a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from routing.settings import REPO_ROOT

BOUND_S = 5.0
#: The child is killed here (a scorer that is quadratic on 2 MB would otherwise run for hours).
KILL_AFTER_S = 60.0

CODE_PROMPT = ("Write a Python function `triple(n)` that returns three times n.\n"
               "assert triple(7) == 21\nassert triple(0) == 0")
OPEN_PROMPT = "Explain how photosynthesis works, with an example."
TWO_MB = 2_000_000

CASES: dict[str, tuple[str, str]] = {
    "unclosed python fences": (CODE_PROMPT, "```python\n" * (TWO_MB // 10)),
    "bare fences": (CODE_PROMPT, "```\n" * (TWO_MB // 4)),
    "open and close fences of two lengths": (CODE_PROMPT, "````\n```\n" * (TWO_MB // 9)),
    "many tiny fences": (CODE_PROMPT, "```python\nx=1\n```\n" * (TWO_MB // 18)),
    "many tiny fences, open-ended prompt": (OPEN_PROMPT, "```\n" * (TWO_MB // 4)),
    "tag blocks": (CODE_PROMPT, "[PYTHON]\n" * (TWO_MB // 9)),
    "deeply nested brackets in a fence": (CODE_PROMPT, "```python\n" + "(" * TWO_MB + "\n```\n"),
    "deeply nested brackets, bare": (CODE_PROMPT, "def f(x):\n    return " + "[" * TWO_MB),
    "one 2 MB line": (CODE_PROMPT, "x = 1; " * (TWO_MB // 7)),
    "many lines": (CODE_PROMPT, "a\n" * (TWO_MB // 2)),
    "an output claim and a long run of spaces": (
        "Write a Python program that prints the sum of 2 and 3.",
        "```python\nprint(2 + 3)  # Output: 5" + " " * TWO_MB + "x\n```\n"),
    "many words": (OPEN_PROMPT, "word " * (TWO_MB // 5)),
    "reasoning tags": (OPEN_PROMPT, "<think>x</think><thinking>" * (TWO_MB // 26) + "The answer."),
    "a 2 MB prompt of fences": ("```\n" * (TWO_MB // 4), "```python\ndef triple(n):\n    return 3 * n\n```\n"),
}

_CHILD = """
import json, sys, time
from routing.evaluation.evaluator import evaluate
from routing.evaluation.sandbox import sandbox_status
name, run_code = sys.argv[1], sys.argv[2] == "1"
sandbox_status()
evaluate("Write a function `f(x)` that returns x.", "```python\\ndef f(x):\\n    return x\\n```", run_code=False)
prompt, answer = json.load(sys.stdin)
start = time.monotonic()
result = evaluate(prompt, answer, run_code=run_code)
wall = time.monotonic() - start
print(json.dumps({"wall": wall, "normalized": result["normalized"], "applied": result["applied"]}))
"""


def _score_in_child(name: str, run_code: bool) -> dict:
    prompt, answer = CASES[name]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, name, "1" if run_code else "0"],
                              input=json.dumps([prompt, answer]), capture_output=True, text=True,
                              env=env, cwd=REPO_ROOT, timeout=KILL_AFTER_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: evaluate() was still running after {KILL_AFTER_S:.0f} s")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_answer_is_scored_in_bounded_time(name: str) -> None:
    out = _score_in_child(name, run_code=False)
    assert out["wall"] < BOUND_S, f"{name}: evaluate() took {out['wall']:.2f} s"
    assert 0.0 <= out["normalized"] <= 1.0 and out["applied"]


@pytest.mark.parametrize("name", ["many tiny fences", "tag blocks", "an output claim and a long run of spaces"])
def test_running_the_code_adds_at_most_the_sandbox_clock(name: str) -> None:
    from routing.evaluation.sandbox import DEFAULT_TIMEOUT_S, sandbox_status
    if not sandbox_status().available and not os.environ.get("CI"):   # CI must prove the sandbox: no skip there
        pytest.skip(f"no OS sandbox: {sandbox_status().reason}")
    out = _score_in_child(name, run_code=True)
    assert out["wall"] < BOUND_S + DEFAULT_TIMEOUT_S, f"{name}: evaluate() took {out['wall']:.2f} s"
    assert 0.0 <= out["normalized"] <= 1.0


def test_a_long_answer_is_read_up_to_the_cap_and_says_so() -> None:
    from routing.evaluation.evaluator import MAX_ANSWER_CHARS, evaluate
    body = "Photosynthesis turns light into chemical energy in the chloroplasts of plant cells. " * 10
    answer = (body + "\n\n") * (3 * MAX_ANSWER_CHARS // len(body))
    result = evaluate(OPEN_PROMPT, answer, run_code=False)
    assert result["details"]["clipped_chars"] > MAX_ANSWER_CHARS
    short = evaluate(OPEN_PROMPT, body, run_code=False)
    assert "clipped_chars" not in short["details"]
    # the part read is the start of the answer, cut at a line break
    assert 0.0 < result["normalized"] <= 1.0


def test_clip_answer_cuts_at_a_line_break() -> None:
    from routing.evaluation.evaluator import clip_answer
    assert clip_answer("abc", 10) == "abc"
    assert clip_answer("a" * 95 + "\n" + "b" * 20, 100) == "a" * 95        # at the last line break near the end
    assert clip_answer("a" * 50 + "\n" + "b" * 60, 100) == ("a" * 50 + "\n" + "b" * 60)[:100]  # none near: cut
    assert clip_answer("x" * 50, 20) == "x" * 20
