"""Agreement with other models' answers to the same prompt (self-consistency across models).

When several models answer the same prompt, the answer most of them reach is more often
right than a lone dissenter's: majority voting over sampled answers ("self-consistency",
Wang et al. 2022) and over different models is a standard way to estimate correctness
without a reference. This module extracts each answer's final *result*, one that can be
compared exactly:

- multiple choice: the option the answer commits to (:func:`.choice.chosen_option`);
- math: the final answer (:func:`.mathcheck.final_answer`), as a number when it is one.

Other prompts (code, prose) have no comparable result here: running every peer's code on
shared inputs would cost one sandbox run per pair of answers, so code is left out.

:func:`peer_agreement` counts the peers whose result equals the answer's (peers without a
result abstain) and turns the vote into ``probability``, a smoothed estimate that the
answer is right: ``(agree + 0.5) / (voters + 1)``, so one agreeing peer gives 0.75, one
dissenting peer 0.25, and no voters leaves no estimate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .choice import chosen_option
from .mathcheck import close, final_answer, parse_number
from .prompt import PromptInfo

#: Pseudo-votes of the smoothing prior (half for, half against).
PRIOR_VOTES: float = 1.0

Result = tuple[str, object]


@dataclass(frozen=True)
class PeerAgreement:
    """How many peers reach the same result as the answer."""

    result: str | None   # the answer's own result, readable ("B", "42")
    agree: int           # peers with the same result
    voters: int          # peers that have a comparable result
    peers: int           # peers given (with or without a result)

    @property
    def share(self) -> float | None:
        """Share of the voting peers that agree; None when nobody voted or the answer has no result."""
        if self.result is None or not self.voters:
            return None
        return self.agree / self.voters

    @property
    def probability(self) -> float | None:
        """Smoothed estimate that the answer's result is right (None: no evidence)."""
        if self.result is None or not self.voters:
            return None
        return (self.agree + PRIOR_VOTES / 2) / (self.voters + PRIOR_VOTES)

    def note(self) -> str:
        """One line for the explanations."""
        if self.result is None:
            return "no final result to compare with the other answers"
        if not self.voters:
            return f"none of the {self.peers} other answer(s) has a comparable result"
        return f"{self.agree} of {self.voters} other answers also reach {self.result}"


def comparable_kind(info: PromptInfo, applied: Sequence[str]) -> str | None:
    """"choice", "math" or None: which kind of result answers to this prompt can agree on."""
    if info.options and "factual_content" in applied:
        return "choice"
    if "math_accuracy" in applied:
        return "math"
    return None


def answer_result(info: PromptInfo, answer: str, kind: str | None) -> Result | None:
    """The answer's comparable result as (readable text, value), or None when it has none."""
    if not kind or not isinstance(answer, str) or not answer.strip():
        return None
    if kind == "choice":
        label, how = chosen_option(info, answer)
        return (label, label) if label is not None and how in ("label", "text") else None
    final, _ = final_answer(answer)
    if final is None:
        return None
    value = parse_number(final)
    if value is not None:
        return final.strip()[:40], value
    text = re.sub(r"[\s$\\{}().,*]|\\text|\\left|\\right", "", final.lower())
    return (final.strip()[:40], text) if text else None


def same_result(a: Result, b: Result) -> bool:
    """Equal results (numbers up to the rounding of the digits shown)."""
    va, vb = a[1], b[1]
    if isinstance(va, float) and isinstance(vb, float):
        return close(va, vb)
    return va == vb


def peer_agreement(info: PromptInfo, answer: str, peers: Sequence[str], kind: str | None) -> PeerAgreement:
    """Count the ``peers`` whose result equals ``answer``'s."""
    own = answer_result(info, answer, kind)
    results = [answer_result(info, peer, kind) for peer in peers]
    voting = [r for r in results if r is not None]
    if own is None:
        return PeerAgreement(None, 0, len(voting), len(peers))
    agree = sum(1 for r in voting if same_result(own, r))
    return PeerAgreement(own[0], agree, len(voting), len(peers))
