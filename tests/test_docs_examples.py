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


def test_model_card_pipeline_example_handles_long_prompts_in_float32(monkeypatch):
    """The card's `pipeline(...)` failed on prompts over 512 tokens and loaded float16."""
    torch = pytest.importorskip("torch")
    if not (REPO / "selector_model" / "config.json").is_file():
        pytest.skip("no selector_model/ in this checkout")
    blocks = [b for b in python_blocks(MODEL_CARD.read_text(encoding="utf-8")) if "pipeline(" in b]
    assert len(blocks) == 1
    monkeypatch.chdir(REPO)                                           # model="selector_model" is relative
    namespace: dict = {}
    exec(compile(blocks[0], str(MODEL_CARD), "exec"), namespace)    # as a user pastes it 
    clf = namespace["clf"]
    [scores] = clf(LONG_PROMPT)                                        # RuntimeError without truncation=True
    assert clf.model.dtype == torch.float32
    assert len(clf.tokenizer(LONG_PROMPT)["input_ids"]) > 512
    assert len(scores) == 5 and abs(sum(s["score"] for s in scores) - 1) < 1e-3
    assert scores[0]["label"] in {"deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"}


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
