"""A simulated world for the learning loop: does normal use make the router route better?

Five pool models answer four kinds of prompt (coding, maths, creative writing, facts) well or
badly with a chance that depends on the kind: a hidden table known to this module and the test,
never to the router. A good answer is a real, well-formed answer; a bad one is a refusal, which
the evaluator scores low. The local protocol server (``tests/protocol_server.py``) plays the
models.

:func:`run_world` starts from the rule-based selector, serves a stream of prompts through the
app's own path (``RouterService.query``: routing, answer logging, shadow comparisons) with
automatic retraining on (``ROUTER_RETRAIN_EVERY``), and after each retraining run measures the
live selector on separate prompts: routing quality is the mean chance of a good answer of the
model it picks, straight from the hidden table (no sampling noise). The oracle picks the best
model of each kind. ``benchmarks/learning_curve.py`` prints and stores the curve; the test suite
runs a small version.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

#: P(good answer | model, kind). The rules send coding to deepseek-r1 and maths to qwen2.5:
#: in this world both are the wrong way round, so there is something to learn.
WORLD: dict[str, dict[str, float]] = {
    "coding": {"deepseek-r1": 0.55, "mistral-small": 0.2, "qwen2.5": 0.95, "gemini-flash": 0.4, "llama-3.3": 0.3},
    "math": {"deepseek-r1": 0.95, "mistral-small": 0.2, "qwen2.5": 0.55, "gemini-flash": 0.4, "llama-3.3": 0.3},
    "creative": {"deepseek-r1": 0.4, "mistral-small": 0.35, "qwen2.5": 0.4, "gemini-flash": 0.3, "llama-3.3": 0.9},
    "factual": {"deepseek-r1": 0.45, "mistral-small": 0.3, "qwen2.5": 0.4, "gemini-flash": 0.85, "llama-3.3": 0.4},
}

_TASKS = ["reverses a linked list", "parses an ISO date", "merges two sorted lists", "counts word frequencies",
          "checks for balanced brackets", "flattens a nested list", "computes a moving average",
          "validates an email address", "finds the longest common prefix", "removes duplicate lines",
          "rotates a matrix", "groups anagrams", "converts Roman numerals", "finds prime numbers",
          "deduplicates a list", "computes a checksum"]
_LANGS = ["Python", "JavaScript", "Go", "Rust", "Java", "C#"]
_CODE_ASKS = ["and explain the code.", "with a short example.", "and add a docstring.", "and show how to call it."]
_THINGS = ["the sea at night", "an old lighthouse", "a city in the rain", "the first snow", "a lost glove",
           "a paper boat", "the last train home", "autumn leaves", "a sleepy cat", "a desert road",
           "a broken clock", "the morning market", "a kite in the wind", "a quiet library", "the harvest moon"]
_FORMS = ["a short poem", "a haiku", "a limerick", "a four-line rhyme", "a short story opening", "a sonnet"]
_MOODS = ["", " in a hopeful tone", " in a melancholy tone", " for children"]
_COUNTRIES = ["Peru", "Kenya", "Norway", "Vietnam", "Chile", "Morocco", "Finland", "Nepal", "Portugal", "Ghana",
              "Canada", "Egypt", "Japan", "Mexico", "Poland", "Brazil", "Iceland", "Thailand", "Greece", "Senegal"]
_FACTS = ["What is the capital of {c}?", "When did {c} become independent?", "What is the population of {c}, roughly?",
          "What is the official language of {c}?", "What currency does {c} use?", "Which countries border {c}?"]


def make_prompt(kind: str, rng: random.Random) -> str:
    if kind == "coding":
        return f"Write a {rng.choice(_LANGS)} function that {rng.choice(_TASKS)} {rng.choice(_CODE_ASKS)}"
    if kind == "math":
        a, b = rng.randint(2, 19), rng.randint(1, 40)
        return rng.choice([f"Solve the equation {a}x + {b} = {a * rng.randint(2, 9) + b} step by step.",
                           f"Compute the derivative of x^{a} + {b}x and simplify.",
                           f"What is the probability of rolling a sum of {rng.randint(3, 11)} with two dice? Show the math."])
    if kind == "creative":
        return f"Write {rng.choice(_FORMS)} about {rng.choice(_THINGS)}{rng.choice(_MOODS)}."
    return rng.choice(_FACTS).format(c=rng.choice(_COUNTRIES))


def prompts(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (kind, prompt) pairs, the kinds in turn."""
    rng = random.Random(seed)
    kinds = list(WORLD)
    return [(kinds[i % len(kinds)], make_prompt(kinds[i % len(kinds)], rng)) for i in range(n)]


GOOD = {
    "coding": ("Here is a clear solution:\n\n```python\ndef solve(items):\n    \"\"\"Return the result for items.\"\"\"\n"
               "    result = []\n    for item in items:\n        if item not in result:\n            result.append(item)\n"
               "    return result\n\nprint(solve([1, 2, 2, 3]))  # [1, 2, 3]\n```\n\nIt walks the input once and keeps "
               "what it has seen, so it runs in linear time for short inputs; the example shows the output."),
    "math": ("Step 1: write down what is given.\nStep 2: apply the rule and simplify each term.\n"
             "Step 3: check the result by substituting it back.\n\nSo the answer is 3, and the check confirms it."),
    "creative": ("The tide comes in with silver light,\nIt hums a song to the quiet night,\nThe harbour sleeps, "
                 "the lanterns glow,\nAnd dreams drift out where the currents go."),
    "factual": ("The answer is Lima. It has been the capital since the colonial era, it is the largest city in "
                "the country, and it sits on the Pacific coast, which made it the centre of trade and government."),
}
BAD = "I'm sorry, but I can't help with that."


def is_good(model: str, kind: str, prompt: str) -> bool:
    """Whether ``model`` answers this prompt well: a fixed draw with the table's chance."""
    draw = int(hashlib.sha256(f"{model}\0{prompt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return draw < WORLD[kind][model]


def quality(pick: Callable[[str], str], test: Sequence[tuple[str, str]]) -> float:
    """Mean chance of a good answer of the model ``pick`` chooses (from the hidden table)."""
    return sum(WORLD[kind][pick(prompt)] for kind, prompt in test) / len(test)


def oracle_quality(test: Sequence[tuple[str, str]]) -> float:
    return sum(max(WORLD[kind].values()) for kind, _ in test) / len(test)


@dataclass
class Curve:
    start: float
    oracle: float
    points: list[dict[str, Any]] = field(default_factory=list)  # one per retraining run

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 4), "oracle": round(self.oracle, 4), "runs": self.points}


def reply_for(pool: Any, kinds: dict[str, str]) -> Callable[[str, list], str]:
    """The protocol server's reply function for this world (``kinds``: prompt -> kind)."""
    by_name = {spec.model_name: spec.id for spec in pool}

    def reply(model_name: str, messages: list) -> str:
        prompt = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        kind = kinds.get(prompt)
        if kind is None:  # not a world prompt (e.g. a judge's): a plain answer
            return "OK."
        return GOOD[kind] if is_good(by_name[model_name], kind, prompt) else BAD

    return reply


def run_world(server: Any, work: Path, *, stream: int, test: int, every: int, train_args: Sequence[str],
              settings_overrides: dict[str, Any] | None = None, seed: int = 0,
              progress: Callable[[str], None] = lambda line: None) -> Curve:
    """Serve ``stream`` prompts with shadows and retraining every ``every`` rows; the learning curve."""
    from benchmarks.harness import router_settings
    from routing.service import RouterService

    served, held_out = prompts(stream, seed), prompts(test, seed + 1)
    kinds = {p: k for k, p in served + held_out}
    overrides = dict(selector="auto", selector_dir=work / "selector_model", label_encoder_file=work / "le.json",
                     allow_training=True, retrain_every=every, shadow_rate=1.0, shadow_budget_usd=100.0,
                     read_timeout=30.0)
    overrides.update(settings_overrides or {})
    settings = router_settings(server, work, **overrides)
    service = RouterService(settings, background=False)
    service.learning.retrainer.extra_args = list(train_args)
    server.set_model("*", reply=reply_for(service.pool, kinds))

    def measure() -> float:
        selector = service.selector
        return quality(lambda p: selector.select(p).selected_model, held_out)

    curve = Curve(start=measure(), oracle=oracle_quality(held_out))
    progress(f"start ({service.selector.name}): quality {curve.start:.3f}, oracle {curve.oracle:.3f}")
    retrainer = service.learning.retrainer
    for i, (_, prompt) in enumerate(served, 1):
        service.query(prompt)
        service.learning.flush()
        if retrainer.maybe_start() or retrainer.running:
            retrainer.wait()
            run = retrainer.state()["runs"][-1]
            point = {"after_prompts": i, "rows": run["rows"], "promoted": bool(run.get("promoted")),
                     "reason": run.get("reason"), "quality": round(measure(), 4),
                     "spend_usd": round(service.ledger.summary()["spent_usd"], 6),
                     "shadow_spend_usd": round(service.learning.shadow.ledger.summary()["spent_usd"], 6)}
            rejected = Path(settings.selector_dir).with_name(Path(settings.selector_dir).name + ".rejected")
            if not point["promoted"] and (rejected / "config.json").is_file():
                # What the gate turned down: the price of promoting only what is surely better.
                from routing.selectors.learned import LearnedSelector

                refused = LearnedSelector(service.pool, rejected, rejected / "label_encoder.json")
                point["refused_quality"] = round(quality(lambda p: refused.select(p).selected_model, held_out), 4)
            point["strategy"] = run.get("strategy")
            curve.points.append(point)
            progress(f"after {i} prompts ({run['rows']} rows): {'promoted' if point['promoted'] else 'kept'} "
                     f"({point['reason']}); quality {point['quality']:.3f}"
                     + (f" (the refused candidate: {point['refused_quality']:.3f})" if "refused_quality" in point else ""))
    return curve
