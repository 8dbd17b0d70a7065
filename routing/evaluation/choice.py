"""Multiple-choice answers: which option did the answer pick, and in the format asked?

The prompt's options come from :mod:`.prompt` (lettered ``A)`` lines, inline ``(A)``
options or ``Option 1/2``). An answer commits when it names exactly one option label
(``B``, ``(B)``, ``Answer: B``, ``the answer is B``) or, less clearly, repeats exactly
one option's text.
"""

from __future__ import annotations

import re

from .prompt import PromptInfo
from .text import words


def _label_pattern(labels: list[str]) -> str:
    return "|".join(re.escape(label) for label in labels)


def chosen_option(info: PromptInfo, answer: str) -> tuple[str | None, str]:
    """(label, how): how is "label", "text", "ambiguous" or "none"."""
    labels = list(info.options)
    if not labels:
        return None, "none"
    text = answer.strip()
    alt = _label_pattern(labels)
    numeric = labels[0].isdigit()
    prefix = r"(?:option\s*)?" if numeric else r"(?:option\s*|choice\s*)?"
    # The whole answer is a label, maybe decorated: "B", "(B)", "B)", "**B**", "B. text".
    lead = re.match(r"^[\s*_`\"'(\[]*" + prefix + r"(" + alt + r")(?![\w'])[\s*_`\"')\].:,-]*", text, re.I)
    if lead:
        candidate = lead.group(1).upper()
        article = re.match(r"^[AaIi]\s+[a-z]", text) is not None
        short_or_named = len(text) <= 12 or "option" in lead.group(0).lower()
        if candidate in labels and not article and (not numeric or short_or_named):
            return candidate, "label"
    stated = re.findall(
        r"(?:answer|option|choice)\s*(?:is|would be|:|=)?\s*[*\"'(\[]*\s*(?:option\s*)?((?-i:" + alt + r"))\b(?![\w'])",
        text, re.I)
    stated = [s.upper() for s in stated if s.upper() in labels]
    if len(set(stated)) == 1:
        return stated[0], "label"
    if len(set(stated)) > 1:
        return stated[-1], "ambiguous"
    # Exactly one option's text appears (and no other).
    lowered = " ".join(words(text)).lower()
    hits = []
    for label, option in info.options.items():
        option_words = " ".join(words(option)).lower()
        if option_words and re.search(r"\b" + re.escape(option_words) + r"\b", lowered):
            hits.append(label)
    if len(hits) == 1:
        return hits[0], "text"
    if len(hits) > 1:
        return None, "ambiguous"
    return None, "none"


def reference_label(info: PromptInfo, reference: str | None) -> str | None:
    """The option label a reference names ("B", "(B)", "Option 2"), None when it names none."""
    if reference is None or not reference.strip():
        return None
    ref = reference.strip().strip("().").upper()
    ref = ref.split()[-1] if ref.startswith("OPTION") else ref
    return ref if ref in info.options else None


def score_choice(info: PromptInfo, answer: str, reference: str | None = None,
                 agreement: float | None = None) -> tuple[float, str]:
    """Answer-format compliance (and correctness when a reference is given), fraction of max.

    ``agreement`` (the estimated probability that the chosen option is right, from the other
    models' answers) is used only when the reference names no option: the score is then the
    expected score, ``agreement`` times the right-answer score plus the rest times the
    wrong-answer score (at most 0.1, as with a reference that disagrees).
    """
    label, how = chosen_option(info, answer)
    labels = "/".join(info.options)
    if label is None:
        if how == "ambiguous":
            return 0.1, f"names several options ({labels}) without committing to one"
        return 0.0, f"does not pick one of the options {labels}"
    answer_words = len(words(answer))
    if how == "label":
        fraction = 1.0
        note = f"picks option {label}"
        bare = answer.strip().strip("*_`\"'").rstrip(".").strip()
        if info.terse and bare.upper() != label.upper():
            if answer_words > 12:
                fraction = 0.7
                note += ", but adds an explanation the prompt did not want"
            else:
                fraction = 0.9
                note += ", not in the bare format asked"
    elif how == "text":
        fraction = 0.6
        note = f"picks option {label} by its text, not by its label"
    else:
        fraction = 0.3
        note = f"leans to option {label} but also names others"
    ref = reference_label(info, reference)
    if ref is not None:
        if ref == label:
            note += "; matches the reference"
        else:
            fraction = min(fraction, 0.1)
            note += f"; the reference is {ref}"
    elif agreement is not None:
        fraction = agreement * fraction + (1.0 - agreement) * min(fraction, 0.1)
    return fraction, note
