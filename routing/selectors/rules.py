"""The rule-based selector of the original design, and the labeller that bootstraps training.

It detects the prompt's categories (``routing/categories.py``) with keyword and pattern rules,
then gives each model the weight of the categories the pool file assigns to it
(``"categories"`` on each model). The default mapping (``assets/models.json``):

| category | model | why |
|---|---|---|
| coding, reasoning | deepseek-r1 | a reasoning model: step-by-step code and logic |
| math, multilingual | qwen2.5 | strong at maths and non-English languages |
| factual, summarization, extraction, visual | gemini-flash | long context, broad knowledge |
| creative | llama-3.3 | fluent open-ended writing |
| chat (and anything unmatched) | mistral-small | fast and cheap for small talk |
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from routing.categories import CATEGORIES, DEFAULT_CATEGORY
from routing.pool import ModelPool
from routing.selectors.base import Selector


@dataclass(frozen=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    weight: float
    label: str


def _rules(category: str, weight: float, *patterns: str) -> list[Rule]:
    return [Rule(category, re.compile(p, re.IGNORECASE), weight, p) for p in patterns]


RULES: list[Rule] = [
    *_rules("coding", 3.0, r"```", r"\bdef \w+\(", r"\bfunction\s*\w*\(", r"\bclass \w+[:({]",
            r"#include\s*<", r"\bSELECT\b.+\bFROM\b", r"\bconsole\.log\b", r"\bimport \w+",
            r"\bTraceback \(most recent call last\)", r"=>\s*{", r"\bfn \w+\("),
    *_rules("coding", 2.0, r"\b(python|javascript|typescript|java|c\+\+|c#|rust|golang|go code|ruby|php|"
            r"kotlin|swift|scala|sql|bash|shell script|powershell|html|css|regex|regular expression)\b",
            r"\b(code|coding|program|script|function|method|algorithm|api|endpoint|compile|compiler|debug|"
            r"bug|stack trace|exception|segfault|refactor|unit tests?|repository|git|docker|kubernetes|"
            r"database|query|recursion|data structure|linked list|binary tree|big-o|leetcode)\b"),
    *_rules("coding", 2.0, r"\b(implement|dockerfile|makefile|react|node\.?js|flask|django|numpy|pandas|awk|"
            r"http requests?|typeerror|valueerror|nullpointer\w*|component|struct|array|integer overflow|"
            r"vectori[sz]ed|binary search|operator overloading|hook|linter|npm|pip install|cli)\b",
            r"`[^`\n]{2,80}`", r"\bin (c|go|r|c#)\b"),
    *_rules("math", 2.0, r"\b(solve|simplify|find (the|its|x|y)|log|area|perimeter|volume|speed|ratio|average|"
            r"discount|interest rate|km/h|mph|how long would|how far)\b", r"\d+\s*(%|km|cm|kg|mph)",
            r"\b[xy]\s*[=+\-^]"),
    *_rules("math", 3.0, r"\b(integral|derivative|differentiate|integrate|equation|solve for|matrix|"
            r"eigen\w*|probability|theorem|prove that|proof|factorial|prime|polynomial|logarithm|"
            r"geometry|triangle|hypotenuse|algebra|calculus|arithmetic|percent(age)?|fraction|"
            r"quadratic|sum of|mean|median|variance|standard deviation|compound interest)\b",
            r"\d+\s*[-+*/^×÷]\s*\d+", r"\b(how many|how much|calculate|compute|what is \d)",
            r"\\frac|\\sqrt|\\int|\$[^$]+\$"),
    *_rules("reasoning", 2.5, r"\b(puzzle|riddle|logic(al)?|deduce|deduction|infer|step by step|"
            r"step-by-step|think through|reason(ing)?|which of the following|if .+ then|paradox|"
            r"trade-?offs?|pros and cons|plan(ning)?|strategy|schedule|optimi[sz]e|decide|decision|"
            r"analy[sz]e|compare|evaluate|argument|implication|consequence)\b"),
    *_rules("reasoning", 2.0, r"\b(always (tells the truth|lies)|truth-?teller|liar|cross (a|the) (river|bridge)|"
            r"jugs?|are all|definitely|at most|at least|minimum number|immediately to the (left|right)|"
            r"next to|who owns|each (own|has|have)|weighings?|if it takes)\b"),
    *_rules("creative", 2.0, r"\b(slogans?|taglines?|villanelle|ode|toast|prophecy|fantasy|fairy|dragon|wizard|"
            r"opening (paragraph|line)|children'?s (picture )?book|invent (a|an)|letter from|in the style of)\b"),
    *_rules("creative", 3.0, r"\b(write|compose|create|invent|imagine)\b.{0,40}\b(story|poem|haiku|"
            r"limerick|sonnet|song|lyrics|rap|verse|tale|fable|script|screenplay|dialogue|monologue|"
            r"slogan|tagline|joke|ballad|narrative|fiction|novel|chapter|scene)\b",
            r"\b(story|poem|haiku|limerick|sonnet|lyrics|fairy tale|short fiction|once upon a time|"
            r"creative|fictional|rhyme|metaphor)\b"),
    *_rules("factual", 2.0, r"^\s*(who|what|when|where|which|why|how did|how does|how do|is it true)\b",
            r"\b(history|historical|capital of|population|invented|discovered|founded|born|died|century|"
            r"war|president|king|queen|empire|country|planet|element|species|chemical|physics|biology|"
            r"definition|define|meaning of|explain what|fact|facts)\b"),
    *_rules("multilingual", 3.0, r"\b(translate|translation|in (spanish|french|german|chinese|japanese|"
            r"korean|arabic|russian|hindi|portuguese|italian|dutch|turkish)|into (spanish|french|german|"
            r"chinese|japanese|korean|arabic|russian|hindi|portuguese|italian|dutch|turkish))\b",
            r"\b(qué|cómo|por qué|dónde|est-ce|pourquoi|comment|bonjour|wie|warum|bitte|obrigado|"
            r"você|perché|grazie)\b"),
    *_rules("summarization", 3.5, r"\b(summari[sz]e|summary|summarise|tl;?dr|condense|key points|"
            r"main points|in a nutshell|boil (it|this) down|shorten this|recap|abstract of|gist)\b"),
    *_rules("extraction", 3.5, r"\b(extract|pull out|list (all|every) (the )?(names|dates|emails|"
            r"numbers|entities|people|companies)|parse (this|the)|named entit|into (a )?json|as json|"
            r"into a table|structured data|fields?|key-value|identify (all|every))\b"),
    *_rules("visual", 3.0, r"\b(describe (this|the|a|an) (image|picture|photo|painting|scene|scenery|"
            r"landscape|room|view)|visuali[sz]e|alt text|what does .{0,30} look like|depict|"
            r"illustration|logo|colou?r palette|composition|photograph|painting|sketch|draw|"
            r"picture this|visual)\b"),
    *_rules("visual", 2.0, r"\b(looks? like|looked like|image generator|poster|layout|typography|colou?r scheme|"
            r"mood ?board|interior|illustrat\w*|arrange (the )?furniture|architecture|compose a (photo|shot)|"
            r"lighting|scene|for someone who has never seen)\b"),
    *_rules("chat", 2.0, r"^\s*(hi|hello|hey|yo|sup|good (morning|evening|afternoon)|thanks|thank you|"
            r"how are you|what's up)\b", r"\b(how are you|tell me a joke|i feel|i'm feeling|"
            r"any advice|what do you think|your favou?rite|recommend me|chat)\b"),
]

_NON_LATIN_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "ARABIC", "CYRILLIC", "DEVANAGARI",
                      "HEBREW", "THAI", "GREEK", "BENGALI", "TAMIL")


def non_latin_share(text: str) -> float:
    """Share of letters written in a non-Latin script (CJK, Arabic, Cyrillic...)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    other = sum(1 for c in letters if unicodedata.name(c, "").split(" ")[0] in _NON_LATIN_SCRIPTS
                or unicodedata.name(c, "").startswith("CJK"))
    return other / len(letters)


_FOREIGN_WORDS = frozenset("""
el los las del que por para con una es cuál qué cómo diferencia dime escribe también muy pero
le les des est une pour avec je tu vous nous quelle quel peux écrire très mais aussi c'est
der die das und ist ich nicht was zwischen sie wir ein eine mit für auch sehr aber
os não são como uma em faço você muito também
il di che è per sono questo della gli
""".split())


def foreign_word_share(text: str) -> float:
    """Share of words that are common function words of Spanish, French, German, Portuguese, Italian."""
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    if len(words) < 3:
        return 0.0
    return sum(w in _FOREIGN_WORDS for w in words) / len(words)


def categorize(prompt: str) -> tuple[dict[str, float], list[str]]:
    """Category weights for a prompt, and the rules that fired (for the explanation)."""
    weights = {c: 0.0 for c in CATEGORIES}
    fired: list[str] = []
    text = prompt.strip()
    for rule in RULES:
        if rule.pattern.search(text):
            weights[rule.category] += rule.weight
            fired.append(f"{rule.category}: /{rule.label[:40]}/")
    share = non_latin_share(text)
    if share > 0.3:
        weights["multilingual"] += 6.0 * share
        fired.append(f"multilingual: {share:.0%} non-Latin script")
    foreign = foreign_word_share(text)
    if foreign >= 0.15:
        weights["multilingual"] += 3.0 + 6.0 * foreign
        fired.append(f"multilingual: {foreign:.0%} non-English function words")
    # A long pasted text with an instruction is usually summarisation or extraction.
    if len(text) > 1500 and weights["summarization"] == 0 and weights["extraction"] == 0:
        weights["summarization"] += 1.0
        fired.append("summarization: long input")
    if not any(weights.values()):
        weights[DEFAULT_CATEGORY] = 1.0
        fired.append(f"{DEFAULT_CATEGORY}: no rule matched")
    return weights, fired


def top_category(prompt: str) -> str:
    weights, _ = categorize(prompt)
    return max(CATEGORIES, key=lambda c: (weights[c], c == DEFAULT_CATEGORY))


class RuleSelector(Selector):
    """Keyword and pattern rules mapped to models through the pool's ``categories``."""

    name = "rules"
    smoothing = 0.25  # weight every model keeps, so scores stay soft and ties break on price

    def __init__(self, pool: ModelPool):
        super().__init__(pool)
        self.category_model = self._category_map(pool)

    @staticmethod
    def _category_map(pool: ModelPool) -> dict[str, str]:
        """Category -> model id; unclaimed categories go to the 'chat' model, else the cheapest."""
        claimed = {c: m.id for m in reversed(pool.models) for c in m.categories}
        fallback = claimed.get(DEFAULT_CATEGORY) or min(pool.models, key=lambda m: m.blended_price_per_m).id
        return {c: claimed.get(c, fallback) for c in CATEGORIES}

    def model_weights(self, prompt: str) -> tuple[np.ndarray, dict[str, float], list[str]]:
        weights, fired = categorize(prompt)
        ids = self.pool.ids
        row = np.full(len(ids), self.smoothing)
        for category, w in weights.items():
            row[ids.index(self.category_model[category])] += w
        return row, weights, fired

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        rows = []
        for p in prompts:
            row, _, _ = self.model_weights(p)
            rows.append(row / row.sum())
        return np.vstack(rows) if rows else np.zeros((0, len(self.pool)))

    def explain(self, prompt: str, row: np.ndarray) -> tuple[str, dict[str, Any]]:
        _, weights, fired = self.model_weights(prompt)
        ranked = sorted((w, c) for c, w in weights.items() if w > 0)[::-1]
        cats = ", ".join(f"{c} ({w:g})" for w, c in ranked[:3])
        top = ranked[0][1]
        why = (f"Rules detected {cats}; {top} prompts go to "
               f"{self.pool.get(self.category_model[top]).display_name}.")
        return why, {"categories": {c: w for w, c in ranked}, "rules_fired": fired[:12], "category": top}
