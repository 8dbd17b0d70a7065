"""Label and prepare steps on a tiny corpus: label <-> pool consistency, dedupe, frozen test split."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from routing.errors import UserError
from routing.pool import load_pool
from routing.selectors.rules import RuleSelector
from routing.settings import DEFAULT_MODELS_FILE
from training.pipeline.label import label, main as label_main, read_prompts, write_labels
from training.pipeline.prepare import FROZEN_FILE, prepare

PROMPTS = [
    "Write a Python function that reverses a linked list.",
    "Solve for x: 3x + 5 = 20",
    "Write a haiku about the autumn rain.",
    "Summarize this article in three key points: the city council met on Tuesday...",
    "Translate 'good morning' into Spanish.",
    "hello! how are you today?",
    "What is the capital of Australia?",
    "Extract all the email addresses from this text: bob@x.com, amy@y.org",
    "Describe this painting of a stormy sea for alt text.",
    "A farmer has 17 sheep; all but 9 run away. Think step by step: how many are left?",
] * 3


@pytest.fixture
def pool():
    return load_pool(DEFAULT_MODELS_FILE)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"text": p + (f" (variant {i})" if i >= 10 else ""), "category": "x"})
             for i, p in enumerate(PROMPTS)]
    path.write_text("\n".join(lines + [json.dumps({"text": "   "})]))
    return path


def test_rule_labels_match_the_rule_selector_and_the_pool(corpus, pool):
    result = label("rules", [corpus], pool)
    texts = [r["text"] for r in result.records]
    assert len(texts) == 30                                   # the blank prompt is dropped
    assert result.labels == pool.ids
    assert {r["label"] for r in result.records} <= set(pool.ids)
    picks = RuleSelector(pool).select_many(texts)
    assert [r["label"] for r in result.records] == [s.selected_model for s in picks]
    assert all(set(r["scores"]) == set(pool.ids) for r in result.records)
    assert sum(result.counts.values()) == 30


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "txt"])
def test_external_prompt_files(tmp_path, fmt):
    prompts = ["first prompt", "second, with comma", "third"]
    path = tmp_path / f"p.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps([{"question": p} for p in prompts]))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps({"prompt": p}) for p in prompts))
    elif fmt == "csv":
        pd.DataFrame({"id": [1, 2, 3], "text": prompts}).to_csv(path, index=False)
    else:
        path.write_text("\n".join(prompts))
    assert read_prompts(path) == prompts


def test_prompt_file_without_a_prompt_column(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"body": ["a"]}).to_csv(path, index=False)
    with pytest.raises(UserError, match="no prompt column"):
        read_prompts(path)


def test_label_cli_reports_errors_and_writes_output(tmp_path, corpus, capsys):
    assert label_main(["--source", "outcomes"]) == 2
    assert "needs an outcome table" in capsys.readouterr().err
    out = tmp_path / "labeled_prompts.json"
    assert label_main(["--source", "rules", "--input", str(corpus), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())) == 30


def _labelled(tmp_path, corpus, pool, name="labeled_prompts.json"):
    return write_labels(label("rules", [corpus], pool), tmp_path / name)


def test_prepare_dedupes_drops_empty_and_stratifies(tmp_path, corpus, pool):
    path = _labelled(tmp_path, corpus, pool)
    records = json.loads(path.read_text())
    records += [dict(records[0]), {"text": "  ", "label": records[0]["label"]}]   # duplicate + empty
    path.write_text(json.dumps(records))
    res = prepare(path, tmp_path / "d", seed=1, val_fraction=0.2, test_fraction=0.2)
    sizes = {s: sum(c.values()) for s, c in res.counts.items()}
    assert sum(sizes.values()) == 30
    assert any("duplicate" in n for n in res.notes) and any("empty" in n for n in res.notes)
    hashes = [r["hash"] for s in ("train", "val", "test") for r in json.loads(res.paths[s].read_text())]
    assert len(hashes) == len(set(hashes))                    # no prompt in two splits
    assert res.labels == pool.ids                             # label order from the pool
    again = prepare(path, tmp_path / "d2", seed=1, val_fraction=0.2, test_fraction=0.2)
    assert json.loads(again.paths["test"].read_text()) == json.loads(res.paths["test"].read_text())


def test_test_split_stays_frozen_when_data_grows(tmp_path, corpus, pool):
    path = _labelled(tmp_path, corpus, pool)
    first = prepare(path, tmp_path / "d", seed=1)
    test_before = {r["hash"] for r in json.loads(first.paths["test"].read_text())}
    records = json.loads(path.read_text()) + [{"text": f"Write a poem about the number {i}", "label": "llama-3.3"}
                                              for i in range(20)]
    path.write_text(json.dumps(records))
    second = prepare(path, tmp_path / "d", seed=99)            # other seed, more data: same test
    test_after = {r["hash"] for r in json.loads(second.paths["test"].read_text())}
    assert test_after == test_before
    assert any("frozen" in n for n in second.notes)
    assert (tmp_path / "d" / FROZEN_FILE).is_file()


def test_prepare_needs_labelled_input(tmp_path):
    with pytest.raises(UserError, match="not found"):
        prepare(tmp_path / "missing.json", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"text": "only one", "label": "a"}]))
    with pytest.raises(UserError, match="need at least 3"):
        prepare(bad, tmp_path)
