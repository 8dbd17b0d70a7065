"""Scorers for the prose dimensions: structure, examples, formatting, creativity,
factual content (open questions) and visual description.

Each scorer returns ``(fraction of the dimension's maximum, short explanation)``. They
look at surface evidence only (organisation, markers, vocabulary, specificity), so they
reward answers that are organised, concrete and on-format, not answers that are true.
"""

from __future__ import annotations

import re

from .prompt import PromptInfo
from .text import clamp, count_matches, nonempty_lines, paragraphs, sentences, split_code, words

_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i me my what which who whom whose when "
    "where why how do does did can could would should will shall may might must not no yes so than then too "
    "very just about into over under up down out all any some each more most other such only own same also "
    "write please give tell explain describe me".split())
_EXAMPLE_RE = re.compile(
    r"(?<!\w)(for example|for instance|e\.g\.|such as|examples?:|consider|suppose|imagine|let'?s say|"
    r"say you|as an example|to illustrate|here'?s an example|sample|example usage|# usage|>>>)(?!\w)",
    re.I)
_LIST_RE = re.compile(r"^[ \t]*(?:[-*+•]|\d+[.)])\s+\S", re.M)
_HEADING_RE = re.compile(r"^[ \t]*(?:#{1,6}\s+\S|\*\*[^*\n]{2,80}\*\*:?\s*$|[A-Z][^.!?\n]{2,60}:\s*$)", re.M)
_TRANSITION_RE = re.compile(
    r"\b(first(ly)?|second(ly)?|then|next|finally|in summary|to summari[sz]e|in conclusion|overall|"
    r"however|therefore|as a result|on the other hand|additionally|moreover)\b", re.I)
_HEDGE_RE = re.compile(r"\b(i think|i believe|maybe|perhaps|i'?m not sure|not certain|it depends|"
                       r"i don'?t know|possibly|might be)\b", re.I)
_CLICHE_RE = re.compile(
    r"\b(once upon a time|happily ever after|little did (he|she|they) know|in a world where|"
    r"tapestry|testament to|a sense of wonder|suddenly|all of a sudden|it was a dark and stormy night|"
    r"the end\.?$|in conclusion)\b", re.I | re.M)
_FIGURATIVE_RE = re.compile(r"\b(like a|like an|like the|as if|as though|as \w+ as)\b", re.I)
_SENSORY = frozenset(
    "red orange yellow green blue purple violet pink brown black white gray grey golden silver crimson "
    "scarlet azure emerald amber ivory bright dim dark glow glowing glimmer shimmer sparkle shadow shadows "
    "light sunlight moonlight shining gleaming whisper whispered roar echo hum murmur silence silent rustle "
    "crackle soft rough smooth cold warm icy hot damp wet velvet silky sweet bitter sour salty fragrant scent "
    "smell aroma taste breeze wind rain mist fog sky ocean waves forest petals stars moon sun".split())
_COLOURS = frozenset(
    "red orange yellow green blue purple violet pink brown black white gray grey golden gold silver crimson "
    "scarlet azure emerald amber ivory beige teal turquoise navy maroon indigo lavender colorful colourful pastel "
    "vibrant muted".split())
_VISUAL_GROUPS: dict[str, frozenset[str]] = {
    "colour": _COLOURS,
    "space": frozenset("left right above below beneath behind front foreground background center centre middle "
                       "beside next top bottom corner edge horizon distance across around atop under over "
                       "surrounding".split()),
    "shape": frozenset("round circular square rectangular triangular curved straight jagged tall short wide "
                       "narrow tiny small large huge vast long thin thick towering sprawling flat".split()),
    "texture": frozenset("smooth rough soft glossy matte shiny polished weathered wooden stone glass metal "
                         "metallic velvet silk fabric brick marble rusty cracked worn".split()),
    "light": frozenset("light bright dim dark shadow shadows glow glowing shining sunlight moonlight lit "
                       "illuminated sparkling shimmering reflection reflecting golden hazy misty".split()),
}
_FORM_LINES = {"haiku": (3, 3), "limerick": (5, 5), "sonnet": (12, 16)}


def _content_words(text: str) -> list[str]:
    return [w.lower() for w in words(text) if w.lower() not in _STOPWORDS and len(w) > 2]


def _mattr(tokens: list[str], window: int = 50) -> float:
    """Moving-average type/token ratio (length-robust vocabulary richness)."""
    if not tokens:
        return 0.0
    if len(tokens) <= window:
        return len(set(tokens)) / len(tokens)
    ratios = [len(set(tokens[i:i + window])) / window for i in range(0, len(tokens) - window + 1, 5)]
    return sum(ratios) / len(ratios)


def score_structure(info: PromptInfo, answer: str) -> tuple[float, str]:
    """Organisation: well-formed sentences, paragraphs/lists for long answers, a direct
    opening, a length that fits the request (short questions may get short answers)."""
    _, prose = split_code(answer)
    n_words = len(words(answer))
    sents = sentences(prose)
    notes = []
    if sents:
        good = sum(1 for s in sents if re.match(r"^[\W_]*[A-Z0-9]", s) and re.search(r"[.!?:)\"'*`]\s*$", s))
        well_formed = good / len(sents)
    else:
        well_formed = 1.0 if n_words and answer.strip().startswith("```") else 0.5
    short_ok = info.terse or info.short_answer_ok
    if info.word_limit:
        ratio = n_words / info.word_limit
        under = re.search(r"(?i)(under|at most|no more|less than|maximum)\s+(of\s+)?\d+\s+words", info.question)
        length = 1.0 if 0.7 <= ratio <= 1.3 or (ratio < 1.0 and under) else 0.2
        notes.append(f"{n_words} words for {info.word_limit} asked")
    elif short_ok:
        length = 1.0 if n_words >= 1 else 0.0
    else:
        length = clamp((n_words - 8) / 52)  # 8 words: 0, 60 words and more: 1
        if length < 0.5:
            notes.append("very short" if n_words < 20 else "short")
    paras = paragraphs(answer)
    organised = len(paras) >= 2 or bool(_LIST_RE.search(answer)) or bool(_HEADING_RE.search(answer))
    if n_words > 150:
        organisation = 1.0 if organised else 0.15
        notes.append("organised in paragraphs/lists" if organised else "one long block")
    elif n_words > 60:
        organisation = 1.0 if organised or count_matches(_TRANSITION_RE, answer) else 0.5
    else:
        organisation = 1.0 if short_ok or n_words >= 25 else 0.5
    question_words = set(_content_words(info.question[-600:]))
    opening = " ".join(sents[:2]) if sents else answer[:300]
    direct = 1.0 if not question_words or question_words & set(_content_words(opening)) or len(sents) <= 2 else 0.0
    if not direct:
        notes.append("opening does not address the question")
    score = 0.25 * well_formed + 0.25 * organisation + 0.2 * direct + 0.3 * length
    return clamp(score), ", ".join(notes) or "clear sentences and organisation"


def score_examples(info: PromptInfo, answer: str) -> tuple[float, str]:
    """Concrete examples: example markers, usage snippets, sample input/output."""
    markers = count_matches(_EXAMPLE_RE, answer)
    blocks, _ = split_code(answer)
    usage = 0
    if "coding" in info.kinds:
        usage = count_matches(re.compile(r"^[ \t]*(print\(|console\.log|assert |System\.out|>>> )", re.M), answer)
        usage += count_matches(re.compile(r"(?i)\b(output|returns?)\s*:"), answer)
    fraction = clamp(0.4 * min(markers, 2) + 0.35 * min(usage, 2) + (0.1 if len(blocks) >= 2 else 0.0))
    if markers == 0 and usage == 0:
        return fraction, "no examples"
    return fraction, f"{markers} example marker(s)" + (f", {usage} usage/output line(s)" if usage else "")


def score_formatting(info: PromptInfo, answer: str) -> tuple[float, str]:
    """Markdown that helps and is well formed: fenced code, closed fences, balanced
    emphasis, no wall of text."""
    from .code import extract_code  # local import: code imports prompt, not prose

    blocks, prose = split_code(answer)
    notes = []
    score = 1.0
    if not blocks and extract_code(answer):
        score -= 0.4
        notes.append("code not in a fenced block")
    if any(not b.closed for b in blocks):
        score -= 0.4
        notes.append("unclosed code fence")
    if prose.count("**") % 2 or prose.count("`") % 2:
        score -= 0.2
        notes.append("unbalanced markdown")
    longest = max((len(words(p)) for p in paragraphs(prose)), default=0)
    if longest > 220:
        score -= 0.3
        notes.append("wall of text")
    if re.search(r"&(amp|lt|gt|quot|#\d+);|\\n\\n|<br\s*/?>|</?(p|div|span)>", prose):
        score -= 0.2
        notes.append("escaped/raw markup")
    if len(words(answer)) > 200 and not (_LIST_RE.search(answer) or _HEADING_RE.search(answer) or blocks):
        score -= 0.1
    return clamp(score), ", ".join(notes) or "well formatted"


def score_creativity(info: PromptInfo, answer: str) -> tuple[float, str]:
    """Vocabulary richness, imagery, figurative language, fitting form, few clichés."""
    tokens = [w.lower() for w in words(answer)]
    if not tokens:
        return 0.0, "no text"
    richness = clamp((_mattr(tokens) - 0.5) / 0.3)
    sensory = sum(1 for t in tokens if t in _SENSORY)
    imagery = clamp(sensory / max(3.0, len(tokens) / 25))
    figurative = clamp(count_matches(_FIGURATIVE_RE, answer) / 2)
    cliches = count_matches(_CLICHE_RE, answer)
    freshness = clamp(1.0 - 0.35 * cliches)
    form = info.creative_form or ""
    lines = nonempty_lines(answer)
    notes = []
    if form in _FORM_LINES:
        low, high = _FORM_LINES[form]
        fits = low <= len(lines) <= high + 1
        notes.append(f"{len(lines)} lines for a {form}")
    elif form in ("poem", "song", "lyrics", "rap"):
        short_lines = sum(1 for ln in lines if len(ln.split()) <= 14)
        fits = len(lines) >= 4 and short_lines / max(1, len(lines)) >= 0.7
        notes.append("verse lines" if fits else "not laid out as verse")
    elif form in ("story", "tale", "fable", "screenplay"):
        fits = len(tokens) >= 120 and (len(paragraphs(answer)) >= 2 or '"' in answer or "“" in answer)
        notes.append("developed narrative" if fits else "thin narrative")
    else:
        fits = len(tokens) >= 30 or form in ("joke", "riddle", "slogan")
    score = 0.3 * richness + 0.2 * imagery + 0.15 * figurative + 0.15 * freshness + 0.2 * (1.0 if fits else 0.2)
    notes.append(f"vocabulary {richness:.2f}, imagery {sensory}, figures {count_matches(_FIGURATIVE_RE, answer)}")
    if cliches:
        notes.append(f"{cliches} cliché(s)")
    return clamp(score), ", ".join(notes)


def _token_recall(reference: str, answer: str) -> float:
    ref = set(_content_words(reference))
    if not ref:
        return 0.0
    return len(ref & set(_content_words(answer))) / len(ref)


def score_factual(info: PromptInfo, answer: str, reference: str | None = None) -> tuple[float, str]:
    """Open questions: specific content (names, numbers, dates), a direct answer, little
    hedging; with a reference, how much of it the answer contains."""
    _, prose = split_code(answer)
    tokens = words(prose)
    if not tokens:
        return 0.0, "no text"
    sents = sentences(prose)
    starts = {s.split()[0] for s in sents if s.split()} if len(sents) > 1 else set()
    proper = sum(1 for t in tokens if t[0].isupper() and t not in starts and t.lower() not in _STOPWORDS)
    numbers = sum(1 for t in tokens if t[0].isdigit())
    density = (proper + numbers) / max(10.0, len(tokens))
    specificity = clamp(density / 0.08)
    hedges = count_matches(_HEDGE_RE, prose)
    hedging = clamp(1.0 - 0.25 * max(0, hedges - 1))
    question_words = set(_content_words(info.question[-600:]))
    first = set(_content_words(" ".join(sents[:2]) if sents else prose[:300]))
    direct = 1.0 if not question_words or question_words & first else 0.4
    depth = clamp(len(tokens) / (3.0 if info.terse else 6.0 if info.short_answer_ok else 60.0))
    score = 0.35 * specificity + 0.2 * hedging + 0.2 * direct + 0.25 * depth
    notes = [f"{proper} names, {numbers} numbers"]
    if hedges > 1:
        notes.append(f"hedges {hedges}x")
    if reference is not None and reference.strip():
        recall = _token_recall(reference, answer)
        score = 0.3 * score + 0.7 * recall
        notes.append(f"covers {recall:.0%} of the reference")
    return clamp(score), ", ".join(notes)


def score_visual(info: PromptInfo, answer: str) -> tuple[float, str]:
    """Visual detail: colours, spatial layout, shapes/sizes, textures, light."""
    tokens = [w.lower() for w in words(answer)]
    if not tokens:
        return 0.0, "no text"
    covered = [name for name, lexicon in _VISUAL_GROUPS.items() if any(t in lexicon for t in tokens)]
    hits = sum(1 for t in tokens if any(t in lexicon for lexicon in _VISUAL_GROUPS.values()))
    coverage = len(covered) / len(_VISUAL_GROUPS)
    density = clamp(hits / max(4.0, len(tokens) / 12))
    score = 0.6 * coverage + 0.4 * density
    return clamp(score), f"covers {', '.join(covered) or 'no visual aspects'} ({hits} visual words)"
