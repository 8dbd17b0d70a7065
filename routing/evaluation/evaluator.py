"""Heuristic answer evaluator for the compare-all feature.

``evaluate(prompt, answer)`` scores one answer on the design's dimensions, applying only
those that fit the prompt (a coding prompt is judged on code quality, a story on
creativity, a multiple-choice question on committing to one option in the format asked),
subtracts penalties (repetition loops, refusals, truncation, error text, AI boilerplate,
generic filler, empty answers) and normalises the total by the maximum of the applied dimensions.

Given ``peers`` (other models' answers to the same prompt), a multiple-choice or math
answer is also judged by agreement: the share of peers reaching the same option or final
value estimates the chance it is right (self-consistency across models), and the
correctness part of ``factual_content`` / ``math_accuracy`` becomes the expected score
under that chance. A reference, when given, decides instead. :func:`evaluate_group`
scores every answer of a comparison with the others as its peers.

:data:`DIMENSIONS` and :data:`PENALTIES` are the single source of truth for names and
point ranges; charts read them. The scorers live in :mod:`routing.evaluation`.
The learned quality score (:mod:`routing.evaluation.quality`, a linear model trained on
GPT-4's grades of open-ended answers, folder ``quality_model/``) is blended with the heuristic
figure and the penalty share by a logistic curve whose weights were fitted per regime (multiple
choice, a two-option question, one function, a program, maths, open-ended; alone or with peers) on training prompts (:mod:`training.quality`);
a heuristic 0 (empty, no valid option, penalties beyond the points) stays 0. ``normalized`` is
that blend, in [0, 1]; ``heuristic_normalized`` keeps the heuristics' own figure and ``learned`` the model's part. The
per-dimension table stays the explanation. Without the model folder (missing or corrupt)
``normalized`` is the heuristic figure and ``notice`` / ``explanations["learned_quality"]`` say so.
A typical answer takes a few milliseconds, plus up to
``sandbox.DEFAULT_TIMEOUT_S`` when Python code is run (``run_code=True``). Code runs only in the
bubblewrap sandbox (:mod:`routing.evaluation.sandbox`); where none can be made it is scored
statically and the explanation says so. The work per answer is bounded whatever its text: the
scorers read at most :data:`MAX_ANSWER_CHARS` of the answer (and of each peer) and
:data:`MAX_PROMPT_CHARS` of the prompt.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

from routing.evaluation import penalties as _penalties
from routing.evaluation import quality as _quality
from routing.evaluation.agreement import PeerAgreement, comparable_kind, peer_agreement
from routing.evaluation.choice import chosen_option, reference_label, score_choice
from routing.evaluation.code import score_code
from routing.evaluation.mathcheck import final_answer, score_math
from routing.evaluation.prompt import KINDS, PromptInfo, analyze_prompt
from routing.evaluation.prose import (score_creativity, score_examples, score_factual, score_formatting,
                                      score_structure, score_visual)
from routing.evaluation.text import clamp, strip_reasoning

#: Dimension name -> maximum points.
DIMENSIONS: dict[str, float] = {
    "structure": 2.0,
    "examples": 1.5,
    "formatting": 1.0,
    "code_quality": 4.0,
    "math_accuracy": 4.0,
    "creativity": 4.0,
    "factual_content": 3.0,
    "visual_description": 3.0,
}
#: Penalty name -> most negative points it can take.
PENALTIES: dict[str, float] = {
    "empty": -14.0,
    "repetition": -4.0,
    "refusal": -4.0,
    "truncation": -2.0,
    "error_text": -2.0,
    "boilerplate": -1.0,
    "filler": -2.0,
}
#: All penalties together never go below this.
PENALTY_FLOOR: float = -14.0
#: Characters of an answer (and of each peer's answer) the scorers read, after a thinking model's
#: reasoning is left out. Answers are untrusted and evaluate() runs on the thread that logs
#: outcomes, so the work per answer is bounded: 100,000 characters is far beyond real answers
#: (about 25,000 tokens), and a longer one is scored on its first 100,000 (``details["clipped_chars"]``
#: says how long it was).
MAX_ANSWER_CHARS: int = 100_000
#: Characters of the prompt read (a prompt's tests, options and instructions come far earlier).
MAX_PROMPT_CHARS: int = 100_000

#: Regimes of the learned combination (each has its own fitted weights, alone and with peers):
#: multiple choice among three or more options; a two-option question (where half of all guesses
#: agree, so a peer vote means less and the blend is fitted apart); code for one function (right or
#: wrong, as on MBPP); a program or other coding request judged as a whole; maths; open-ended.
REGIMES: tuple[str, ...] = ("choice", "binary", "code", "program", "math", "open")
#: Regimes whose answers have a result the peers vote on (an option, a final value).
VOTING_REGIMES: tuple[str, ...] = ("choice", "binary", "math")

__all__ = ["DIMENSIONS", "PENALTIES", "PENALTY_FLOOR", "MAX_ANSWER_CHARS", "MAX_PROMPT_CHARS", "KINDS", "REGIMES",
           "evaluate", "evaluate_group", "applied_dimensions", "regime", "peer_head_applies", "penalty_share",
           "clip_answer"]

_PENALTY_DETECTORS: dict[str, Callable[[str], tuple[float, str]]] = {
    "empty": _penalties.empty,
    "repetition": _penalties.repetition,
    "refusal": _penalties.refusal,
    "truncation": _penalties.truncation,
    "error_text": _penalties.error_text,
    "boilerplate": _penalties.boilerplate,
    "filler": _penalties.filler,
}
#: Comparable result kind (see :func:`comparable_kind`) -> the dimension whose correctness part
#: the peers' agreement informs.
_PEER_DIMENSION: dict[str, str] = {"choice": "factual_content", "math": "math_accuracy"}
if set(_PENALTY_DETECTORS) != set(PENALTIES):  # pragma: no cover - guards edits of the tables
    raise RuntimeError("every penalty in PENALTIES needs a detector")


def applied_dimensions(info: PromptInfo, *, has_reference: bool = False) -> list[str]:
    """The dimensions that fit a prompt, in :data:`DIMENSIONS` order."""
    kinds = set(info.kinds)
    chosen: set[str] = set()
    if "multiple_choice" in kinds:
        chosen.add("factual_content")
    else:
        if not info.terse:
            chosen.update(("structure", "formatting"))
        if "coding" in kinds:
            chosen.add("code_quality")
            if not info.terse:
                chosen.add("examples")
        if "math" in kinds:
            chosen.add("math_accuracy")
        if "creative" in kinds:
            chosen.add("creativity")
        if "visual" in kinds:
            chosen.add("visual_description")
        if kinds & {"factual", "general"} or (has_reference and not kinds & {"math", "coding"}):
            chosen.add("factual_content")
        if info.explanatory and not info.terse and "creative" not in kinds:
            chosen.add("examples")
        if "general" in kinds and not info.terse:
            chosen.add("examples")
    return [name for name in DIMENSIONS if name in chosen]


def regime(info: PromptInfo, applied: Sequence[str]) -> str:
    """Which combination regime a prompt falls in (:data:`REGIMES`)."""
    if info.options:
        return "binary" if len(info.options) == 2 else "choice"
    if "code_quality" in applied:
        return "code" if info.function_task else "program"
    if "math_accuracy" in applied:
        return "math"
    return "open"


def penalty_share(result: Mapping[str, Any]) -> float:
    """The penalties' points (positive) over the applied dimensions' maximum, for an
    :func:`evaluate` result: the blend's third input."""
    denominator = sum(result["max_points"].values())
    if not denominator:
        return 0.0
    return -max(PENALTY_FLOOR, sum(result["penalties"].values())) / denominator


def peer_head_applies(kind: str, prompt_has_tests: bool, peers_vote: bool) -> bool:
    """Whether peers may reach the learned score: for multiple choice and maths only when they
    voted on the answer's result (as for the heuristics), never for code that the prompt's own
    tests check; always for programs and open-ended prompts."""
    if kind in VOTING_REGIMES:
        return peers_vote
    if kind == "code":
        return not prompt_has_tests
    return True


def clip_answer(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """``text`` (an answer, or a prompt) cut to at most ``limit`` characters, at the last line break
    when there is one near the end (so that the last line read is whole)."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", limit - limit // 10, limit)
    return text[:cut if cut > 0 else limit]


def _score_dimension(name: str, info: PromptInfo, answer: str, reference: str | None,
                     run_code: bool, agreement: float | None = None) -> tuple[float, str]:
    if name == "structure":
        return score_structure(info, answer)
    if name == "examples":
        return score_examples(info, answer)
    if name == "formatting":
        return score_formatting(info, answer)
    if name == "code_quality":
        return score_code(info, answer, run_code=run_code)
    if name == "math_accuracy":
        return score_math(answer, reference, agreement)
    if name == "creativity":
        return score_creativity(info, answer)
    if name == "factual_content":
        if info.options:
            return score_choice(info, answer, reference, agreement)
        return score_factual(info, answer, reference)
    if name == "visual_description":
        return score_visual(info, answer)
    raise KeyError(name)


def _reference_decides(kind: str | None, info: PromptInfo, reference: str | None) -> bool:
    """True when the reference settles correctness, so peers' agreement is not used."""
    if kind == "choice":
        return reference_label(info, reference) is not None
    return bool(reference and reference.strip())


def evaluate(prompt: str, answer: str, *, reference: str | None = None,
             run_code: bool = True, peers: Sequence[str] | None = None,
             learned: bool = True) -> dict[str, Any]:
    """Score ``answer`` to ``prompt``.

    ``reference`` is an optional expected answer (a number, an option label, a short
    text); ``run_code=False`` never executes code. ``peers`` are other models' answers to
    the same prompt: for multiple-choice and math prompts without a usable reference the
    share of peers reaching the same option / final value scales the correctness points.
    Returns a dict with ``dimensions`` (every dimension's points, 0 when not applied),
    ``max_points`` (applied ones), ``applied``, ``explanations``, ``penalties`` (negative
    points), ``total``, ``normalized`` in [0, 1], ``kind`` (detected prompt kinds) and
    ``details``; with ``peers``, ``details["peer_agreement"]`` is the share of the voting
    peers that agree (None when there is nothing to compare) and ``details["peer_votes"]``
    has the counts.

    ``normalized`` blends the heuristic figure (kept as ``heuristic_normalized``) with the
    learned quality score (``learned``: its ``score``, estimated ``grade``, ``regime``, the
    fitted ``weights``; None when the model is unavailable or ``learned=False``); ``notice`` is
    None or says why the heuristics alone decided. Peers reach the learned score only where
    they may reach the heuristics: not when a reference is given, nor for code the prompt's own
    tests check.
    """
    prompt = clip_answer(prompt if isinstance(prompt, str) else str(prompt or ""), MAX_PROMPT_CHARS)
    answer = answer if isinstance(answer, str) else str(answer or "")
    answer, reasoning_chars = strip_reasoning(answer)   # score what the user reads, not the thinking
    full_chars = len(answer)
    answer = clip_answer(answer)                        # bounded work, whatever the answer's length
    info = analyze_prompt(prompt)
    applied = applied_dimensions(info, has_reference=bool(reference and reference.strip()))
    dimensions = {name: 0.0 for name in DIMENSIONS}
    explanations = {name: "not applicable to this prompt" for name in DIMENSIONS}
    penalty_points = {name: 0.0 for name in PENALTIES}
    details: dict[str, Any] = {"reasoning_chars": reasoning_chars} if reasoning_chars else {}
    if len(answer) < full_chars:
        details["clipped_chars"] = full_chars
    agreement: PeerAgreement | None = None
    probability: float | None = None  # estimated chance the answer is right, from the peers
    reference_decides = False
    result_kind = comparable_kind(info, applied)
    home = _PEER_DIMENSION.get(result_kind or "")
    if peers is not None:
        peer_texts = [clip_answer(strip_reasoning(p if isinstance(p, str) else str(p or ""))[0]) for p in peers]
        agreement = peer_agreement(info, answer, peer_texts, result_kind)
        reference_decides = _reference_decides(result_kind, info, reference)
        probability = None if reference_decides else agreement.probability
        details["peer_agreement"] = agreement.share
        details["peer_votes"] = {"result": agreement.result, "agree": agreement.agree, "voters": agreement.voters,
                                 "peers": agreement.peers, "used": probability is not None}

    empty_severity, empty_note = _PENALTY_DETECTORS["empty"](answer)
    if empty_severity:
        penalty_points["empty"] = PENALTIES["empty"]
        for name in applied:
            explanations[name] = "empty answer"
        explanations["empty"] = empty_note
    else:
        for name in applied:
            fraction, note = _score_dimension(name, info, answer, reference, run_code,
                                              probability if name == home else None)
            if name == home and agreement is not None:
                note += "; " + agreement.note() + (" (the reference decides)" if reference_decides else "")
            dimensions[name] = round(DIMENSIONS[name] * clamp(fraction), 3)
            explanations[name] = note
        for name, detector in _PENALTY_DETECTORS.items():
            if name == "empty":
                continue
            severity, note = detector(answer)
            if severity > 0:
                penalty_points[name] = round(PENALTIES[name] * clamp(severity), 3)
                explanations[name] = note
        if info.options:
            details["chosen_option"] = chosen_option(info, answer)[0]
        if "math_accuracy" in applied:
            details["final_answer"] = final_answer(answer)[0]

    max_points = {name: DIMENSIONS[name] for name in applied}
    penalty_total = max(PENALTY_FLOOR, sum(penalty_points.values()))
    total = round(sum(dimensions.values()) + penalty_total, 3)
    denominator = sum(max_points.values())
    heuristic = round(clamp(total / denominator) if denominator else 0.0, 4)
    normalized = heuristic
    learned_part: dict[str, Any] | None = None
    notice: str | None = None
    kind_of_regime = regime(info, applied)
    if not learned:
        notice = "learned quality score not used (learned=False): heuristics alone"
    elif empty_severity:
        notice = "empty answer: the learned quality score is not used"
    else:
        model = _quality.get_model()
        scored: dict[str, Any] | None = None
        if model is None:
            notice = f"learned quality model unavailable ({_quality.load_error()}): heuristics alone"
        else:
            peers_reach = peer_head_applies(kind_of_regime, bool(info.tests), probability is not None) and \
                peers is not None and not (reference and reference.strip())
            quality_peers = None
            if peers_reach:
                # free text: identical peers are one voice; a vote (choice, maths): every peer counts
                quality_peers = list(peer_texts) if kind_of_regime in VOTING_REGIMES \
                    else distinct_peers(answer, peer_texts)
            try:
                scored = model.score(prompt, answer, quality_peers)
            except Exception as exc:  # noqa: BLE001 - a scoring failure must not lose the heuristic score
                notice = f"learned quality score failed ({type(exc).__name__}: {exc}): heuristics alone"
        if model is not None and scored is not None:
            mode = "peers" if (scored["used_peers"] or probability is not None) else "alone"
            blended, key = model.combine(f"{kind_of_regime}/{mode}", heuristic, scored["score"],
                                         -max(PENALTY_FLOOR, sum(penalty_points.values())) / denominator
                                         if denominator else 0.0)
            # A zero from the heuristics (empty, refused, no valid option, penalties beyond the
            # points) is a veto: such answers got GPT-4's lowest grades (mean 1.2 of 10 in the data).
            normalized = round(clamp(blended), 4) if heuristic > 0 else 0.0
            weights = dict(model.combination.get(key, {}))
            learned_part = {**scored, "regime": key, "weights": weights}
            grade = f"learned quality {scored['grade']:.1f}/10{' (with peers)' if scored['used_peers'] else ''}"
            if weights.get("quality", 1.0) > 0:
                explanations["learned_quality"] = (
                    f"{grade}, blended with the heuristics' {heuristic:.2f} ({key} weights) -> {normalized:.2f}")
            else:   # fitted on right/wrong outcomes, where the learned score did not help
                explanations["learned_quality"] = (
                    f"{grade}, not weighted here: on right/wrong outcomes of this kind ({key}) it did not help, "
                    f"so the score follows the heuristics' {heuristic:.2f} -> {normalized:.2f}")
    if notice and not empty_severity:
        explanations["learned_quality"] = notice
    return {
        "dimensions": dimensions,
        "max_points": max_points,
        "applied": applied,
        "explanations": explanations,
        "penalties": penalty_points,
        "total": total,
        "normalized": round(normalized, 4),
        "kind": list(info.kinds),
        "details": details,
        "heuristic_normalized": heuristic,
        "regime": kind_of_regime,
        "learned": learned_part,
        "notice": notice,
    }


def distinct_peers(answer: str, peers: Sequence[str]) -> list[str]:
    """The peers the learned quality model reads as independent voices on free text (open-ended
    and code regimes): copies of the answer itself and repeats among the peers (same text up to
    case and spacing) dropped. Without this, three models sending the same refusal template
    outvote two real answers on the text-consensus features. In :data:`VOTING_REGIMES` every peer
    counts, as in training: two models answering "B" agree, and that agreement is the signal."""
    key = lambda text: " ".join(text.split()).lower()  # noqa: E731
    seen, out = {key(answer)}, []
    for text in peers:
        k = key(text)
        if k not in seen:
            seen.add(k)
            out.append(text)
    return out


#: Normalised scores closer than this are a tie: the evaluator cannot tell such answers apart
#: (compare-all names no winner and the outcome log no label among them).
TIE_MARGIN = 0.01


def evaluate_group(prompt: str, answers: Mapping[str, str], *, workers: int = 1,
                   **kwargs: Any) -> dict[str, dict[str, Any]]:
    """Evaluate every answer to one prompt with the others as its peers (leave-one-out).

    ``answers`` maps a name (a model id) to its answer; ``kwargs`` go to :func:`evaluate`
    (``reference``, ``run_code``). ``workers`` > 1 scores answers in threads (code runs
    in subprocesses, so this overlaps the runs). Returns name -> :func:`evaluate` result,
    in the order of ``answers``.
    """
    if "peers" in kwargs:
        raise TypeError("evaluate_group chooses the peers itself (every other answer)")
    names = list(answers)
    texts = [answers[name] for name in names]

    def one(index: int) -> dict[str, Any]:
        peers = texts[:index] + texts[index + 1:]
        return evaluate(prompt, texts[index], peers=peers, **kwargs)

    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(names)), thread_name_prefix="evaluate") as pool:
            results = list(pool.map(one, range(len(names))))
    else:
        results = [one(i) for i in range(len(names))]
    return dict(zip(names, results))
