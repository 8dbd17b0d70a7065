"""LLM judge (opt-in): a pool model grades answers 1-10 with a rubric, or picks the better of two.

The heuristic evaluator (:mod:`routing.evaluation.evaluator`) is the default because it costs nothing;
the judge spends tokens on the judge model through :meth:`Router.ask_model`.

* :meth:`Judge.grade` asks for one grade 1-10 and parses it robustly
  (``Grade: 7``, ``[[7]]``, ``7/10``, ``**Rating:** 7`` ...; :func:`parse_grade`).
* :meth:`Judge.compare` shows two answers in both orders (A/B, then B/A) and counts a win
  only when both orders agree, which cancels the judge's position bias; otherwise a tie.

Which model judges: the ``judge_model`` argument, else ``settings.judge_model`` where the
settings have one, else :data:`DEFAULT_JUDGE` when it is in the pool, else the pool's first
model. A judge grading its own answer may favour it; the UI says which model judged.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, asdict
from typing import Any, Mapping

from routing.errors import ProviderError
from routing.evaluation.text import strip_reasoning

DEFAULT_JUDGE = "gemini-flash"
MIN_GRADE, MAX_GRADE = 1, 10

RUBRIC = """\
Grade the answer from 1 to 10:
- 9-10: correct, complete and directly answers the request, well organised, nothing wrong or padded.
- 7-8: correct and useful with small gaps or minor style problems.
- 4-6: partly correct, incomplete, or ignores part of the request (wrong language, format or length).
- 2-3: mostly wrong, off-topic, or broken code / wrong final answer.
- 1: empty, a refusal without reason, gibberish or a repetition loop.
Judge correctness first (run the code and the arithmetic in your head), then completeness, then clarity."""

GRADE_TEMPLATE = """You are an impartial judge of answers written by AI assistants.

{rubric}

[Question]
{prompt}

[Answer]
{answer}
[End of answer]

Explain your judgement in at most three sentences, then give the grade on the last line exactly as
"Grade: N" where N is an integer from 1 to 10."""

PAIR_TEMPLATE = """You are an impartial judge. Compare two AI assistants' answers to the same question.
Do not let the order of the answers, their length or the assistants' names influence you.

{rubric}

[Question]
{prompt}

[Answer A]
{a}
[End of answer A]

[Answer B]
{b}
[End of answer B]

Explain briefly (at most three sentences), then give your verdict on the last line exactly as
"[[A]]" if A is better, "[[B]]" if B is better, or "[[C]]" for a tie."""

_GRADE_PATTERNS = [
    r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]",                                    # [[7]]
    r"(?:grade|rating|score)\s*[*_:=\-]*\s*(\d+(?:\.\d+)?)(?:\s*/\s*10)?",  # Grade: 7, **Rating:** 7/10
    r"(\d+(?:\.\d+)?)\s*/\s*10\b",                                       # 7/10
    r"(\d+(?:\.\d+)?)\s+out\s+of\s+10\b",                                # 7 out of 10
]
_VERDICT_PATTERNS = [
    (r"\[\[\s*([ABC]|tie)\s*\]\]", None),
    (r"(?:verdict|winner|better answer|final answer)\s*[*_:=\-]*\s*(?:answer\s+|assistant\s+)?"
     r"\(?([AB]|tie)\b\)?", None),
    (r"\b(?:answer|assistant)\s+([AB])\s+is\s+(?:clearly\s+|slightly\s+|much\s+)?better\b", None),
    (r"\b(tie|both (?:answers )?are (?:equally good|equal))\b", "C"),
]


def parse_grade(text: str) -> float | None:
    """The grade (1-10) in a judge's reply, or None when there is none.

    The last explicit marker wins (judges often restate the scale before grading); numbers
    outside 1-10 are ignored; ``<think>`` blocks are skipped.
    """
    if not isinstance(text, str):
        return None
    text = strip_reasoning(text)[0]
    for pattern in _GRADE_PATTERNS:
        values = [float(m.group(1)) for m in re.finditer(pattern, text, flags=re.I)]
        values = [v for v in values if MIN_GRADE <= v <= MAX_GRADE]
        if values:
            return values[-1]
    stripped = text.strip().strip("*_.` ")
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped) and MIN_GRADE <= float(stripped) <= MAX_GRADE:
        return float(stripped)
    return None


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"C"`` (tie) from a pairwise reply; None when unparseable (counts as a tie)."""
    if not isinstance(text, str):
        return None
    text = strip_reasoning(text)[0]
    for pattern, fixed in _VERDICT_PATTERNS:
        found = list(re.finditer(pattern, text, flags=re.I))
        if found:
            if fixed:
                return fixed
            value = found[-1].group(1).upper()
            return "C" if value == "TIE" else value
    stripped = text.strip().strip("*_.`[]() ").upper()
    return stripped if stripped in {"A", "B", "C"} else None


@dataclass
class Grade:
    """One graded answer."""

    model: str | None
    grade: float | None
    judge_model: str
    reply: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PairVerdict:
    """The result of judging two answers in both orders."""

    first: str
    second: str
    judge_model: str
    winner: str | None                      # first / second model name, or None (tie or disagreement)
    verdicts: list[str | None] = field(default_factory=list)  # per order, in that order's A/B terms
    consistent: bool = False                # both orders named the same answer (or both a tie)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + "\n[... answer truncated for the judge ...]"


class Judge:
    """Grades with one pool model through ``router.ask_model`` (no fallback to another judge)."""

    def __init__(self, router: Any, judge_model: str | None = None, *, max_tokens: int = 400):
        self.router = router
        pool = router.pool
        wanted = (judge_model or router.settings.judge_model
                  or (DEFAULT_JUDGE if DEFAULT_JUDGE in pool else pool.ids[0]))
        self.model = pool.get(str(wanted).strip()).id  # UnknownModelError lists the valid ids
        self.max_tokens = max_tokens

    def _budget(self, fixed: str, parts: int) -> int:
        limit = int(getattr(self.router.settings, "max_prompt_chars", 20000))
        return max(200, (limit - len(fixed) - 200) // max(1, parts))

    def _ask(self, text: str) -> str:
        return self.router.ask_model(self.model, text, max_tokens=self.max_tokens).text

    def grade(self, prompt: str, answer: str, *, model: str | None = None) -> Grade:
        """Grade one answer 1-10; provider failures come back as ``Grade.error`` (never raised)."""
        budget = self._budget(GRADE_TEMPLATE + RUBRIC, 2)
        text = GRADE_TEMPLATE.format(rubric=RUBRIC, prompt=_clip(prompt, budget), answer=_clip(answer, budget))
        try:
            reply = self._ask(text)
        except ProviderError as exc:
            return Grade(model, None, self.model, error=f"judge {self.model} failed: {exc.message}")
        grade = parse_grade(reply)
        return Grade(model, grade, self.model, reply,
                     None if grade is not None else f"judge {self.model} gave no grade 1-10")

    def grade_many(self, prompt: str, answers: Mapping[str, str], *, concurrency: int = 5) -> dict[str, Grade]:
        """Grade several models' answers at once (threads)."""
        if not answers:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(answers))),
                                thread_name_prefix="judge") as pool:
            futures = {m: pool.submit(self.grade, prompt, a, model=m) for m, a in answers.items()}
            return {m: f.result() for m, f in futures.items()}

    def _pair_once(self, prompt: str, a: str, b: str) -> tuple[str | None, str | None]:
        budget = self._budget(PAIR_TEMPLATE + RUBRIC, 3)
        text = PAIR_TEMPLATE.format(rubric=RUBRIC, prompt=_clip(prompt, budget), a=_clip(a, budget),
                                    b=_clip(b, budget))
        try:
            return parse_verdict(self._ask(text)), None
        except ProviderError as exc:
            return None, f"judge {self.model} failed: {exc.message}"

    def compare(self, prompt: str, first: tuple[str, str], second: tuple[str, str]) -> PairVerdict:
        """Judge ``(name, answer)`` pairs in both orders; a win counts only when both orders agree."""
        (n1, a1), (n2, a2) = first, second
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="judge-pair") as pool:
            forward = pool.submit(self._pair_once, prompt, a1, a2)     # A = first
            backward = pool.submit(self._pair_once, prompt, a2, a1)    # A = second
            (v1, e1), (v2, e2) = forward.result(), backward.result()
        winner = None
        if v1 == "A" and v2 == "B":
            winner = n1
        elif v1 == "B" and v2 == "A":
            winner = n2
        consistent = winner is not None or (v1 == "C" and v2 == "C")
        return PairVerdict(n1, n2, self.model, winner, [v1, v2], consistent, [e for e in (e1, e2) if e])


__all__ = ["Judge", "Grade", "PairVerdict", "parse_grade", "parse_verdict", "RUBRIC", "DEFAULT_JUDGE"]
