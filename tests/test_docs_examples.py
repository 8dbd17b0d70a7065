"""Documented calls that users copy: they must work as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL_CARD = REPO / "selector_model" / "README.md"
LONG_PROMPT = "Write a Python function that sorts a list of numbers, and explain it. " * 150   # ~2,000 tokens


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_the_model_cards_example_routes_as_written_even_a_long_prompt(monkeypatch):
    """The card's example is what a user pastes: it must load the shipped selector and route,
    also a prompt far over the encoder's 512-token limit (an older card's example failed there)."""
    pytest.importorskip("torch")
    if not (REPO / "selector_model" / "config.json").is_file():
        pytest.skip("no selector_model/ in this checkout")
    blocks = [b for b in python_blocks(MODEL_CARD.read_text(encoding="utf-8")) if "PriorSelector(" in b]
    assert len(blocks) == 1
    monkeypatch.chdir(REPO)                                           # the paths in it are relative
    namespace: dict = {"print": lambda *a, **k: None}
    exec(compile(blocks[0], str(MODEL_CARD), "exec"), namespace)    # as a user pastes it
    selector, decision = namespace["selector"], namespace["decision"]
    assert set(decision.scores) == {"deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"}
    assert all(0.0 <= v <= 1.0 for v in decision.scores.values()) and "LMArena" in decision.reasoning
    long = selector.select(LONG_PROMPT)
    assert len(selector.encoder.tokenizer(LONG_PROMPT)["input_ids"]) > 512
    assert long.selected_model in decision.scores


def test_compare_timing_benchmark_runs_without_pytest(tmp_path):
    """It imported tests.conftest (which imports pytest); it runs where pytest is not installed."""
    out = tmp_path / "timing.json"
    block_pytest = ("import runpy, sys; sys.modules['pytest'] = None; "   # `import pytest` now raises ImportError
                    "sys.argv = ['compare_timing.py', '--runs', '1', '--scale', '0.01', '--out', sys.argv[1]]; "
                    "runpy.run_path('benchmarks/compare_timing.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", block_pytest, str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "parallel: median wall" in done.stdout and out.is_file()


def test_the_selection_figures_in_the_docs_are_what_the_built_in_set_gives():
    """docs/selectors.md quotes how many of the 100 built-in samples the rules and the shipped
    selector send where each basis expects (an older page said 78 for a selector that gave 82)."""
    pytest.importorskip("torch")
    from routing.diagnostics.selection_test import SelectionTester, builtin_samples
    from routing.pool import load_pool
    from routing.selectors import load_selector
    from routing.settings import get_settings

    settings = get_settings()
    pool = load_pool(REPO / "assets" / "models.json")
    shipped, _ = load_selector(settings, pool)
    tester = SelectionTester(settings, pool, shipped)
    counts = {basis: {name: r["correct"] for name, r in tester.run(builtin_samples(pool, basis), basis=basis)
                      ["selectors"].items()} for basis in ("rules", "evidence")}
    text = " ".join((REPO / "docs" / "selectors.md").read_text(encoding="utf-8").split())
    quoted = re.search(r"the rules send \*\*(\d+) of 100\*\* .*? and the shipped evidence prior \*\*(\d+) of 100\*\*; "
                       r".*? the prior sends \*\*(\d+) of 100\*\* and the rules \*\*(\d+) of 100\*\*", text)
    assert quoted, "the paragraph with the built-in set's figures is gone from docs/selectors.md"
    assert [int(g) for g in quoted.groups()] == [counts["rules"]["rules"], counts["rules"][shipped.name],
                                                 counts["evidence"][shipped.name], counts["evidence"]["rules"]]
