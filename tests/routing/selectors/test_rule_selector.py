"""The rule-based selector: categories, the pool's mapping, the cost slider, exclusions."""

import numpy as np
import pytest

from routing.errors import UnknownModelError, UserError
from routing.pool import load_pool
from routing.selectors.rules import RuleSelector, top_category
from routing.settings import DEFAULT_MODELS_FILE


@pytest.fixture(scope="module")
def selector():
    return RuleSelector(load_pool(DEFAULT_MODELS_FILE))


@pytest.mark.parametrize("prompt, category, model", [
    ("Write a Python function that merges two sorted lists.", "coding", "deepseek-r1"),
    ("Solve for x: 3x + 7 = 22", "math", "qwen2.5"),
    ("Write a short poem about autumn leaves", "creative", "llama-3.3"),
    ("Who was the first emperor of Rome?", "factual", "gemini-flash"),
    ("请用中文解释一下量子纠缠。", "multilingual", "qwen2.5"),
    ("Summarize the following article in three bullet points: The city council met on Tuesday...",
     "summarization", "gemini-flash"),
    ("hey, how are you doing today?", "chat", "mistral-small"),
])
def test_categories_map_to_models(selector, prompt, category, model):
    assert top_category(prompt) == category
    sel = selector.select(prompt)
    assert sel.selected_model == model
    assert sel.selector == "rules"
    assert set(sel.scores) == set(selector.pool.ids)
    assert sum(sel.scores.values()) == pytest.approx(1.0)
    assert sel.confidence == pytest.approx(sel.scores[model])
    assert model in sel.reasoning and category in sel.reasoning


def test_cost_slider_moves_to_a_cheaper_model_and_says_so(selector):
    prompt = "Write a Python function that merges two sorted lists."
    assert selector.select(prompt).selected_model == "deepseek-r1"
    cheap = selector.select(prompt, cost_weight=1.0)
    assert cheap.selected_model != "deepseek-r1"
    assert cheap.quality_pick == "deepseek-r1"
    assert "cost slider" in cheap.reasoning and "changed the pick" in cheap.reasoning


def test_exclusions(selector):
    sel = selector.select("Write a haiku about rain", exclude=["llama-3.3"])
    assert sel.selected_model != "llama-3.3" and "llama-3.3" not in sel.ranking
    with pytest.raises(UnknownModelError):
        selector.select("hi", exclude=["nope"])
    with pytest.raises(UserError, match="Every model is excluded"):
        selector.select("hi", exclude=selector.pool.ids)


def test_batch_scoring_matches_single(selector):
    prompts = ["hello", "integrate x^2 dx", "Translate 'good night' into French"]
    matrix = selector.score(prompts)
    assert matrix.shape == (3, 5)
    for p, row in zip(prompts, matrix):
        assert np.allclose(row, selector.score([p])[0])
    assert [s.selected_model for s in selector.select_many(prompts)] == \
        [selector.select(p).selected_model for p in prompts]
