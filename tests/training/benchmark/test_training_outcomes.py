"""Outcome tables: RouterBench CSV and LLMRouter JSON, ties, missing cells, unknown models, costs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from routing.errors import UserError
from training.pipeline.label import best_models, label_outcomes
from training.benchmark.outcomes import estimate_costs, load_prices, read_many, read_outcomes


def _routerbench_csv(path, with_cost=True):
    rows = {
        "Unnamed: 0": [7, 8, 9, 10],
        "sample_id": ["a", "b", "c", "d"],
        "prompt": ["['Q: 1+1?', 'Answer:']", "['Write a poem']", "plain text prompt", "['']"],
        "eval_name": ["x"] * 4,
        "org/model-a": [1.0, 0.0, 1.0, 1.0],
        "model-b": [1.0, 1.0, np.nan, 0.0],
        "org/model-a|model_response": ["2", "r", "t", "x"],
        "oracle_model_to_route_to": ["org/model-a"] * 4,
    }
    if with_cost:
        rows["org/model-a|total_cost"] = [0.01, 0.01, 0.01, 0.01]
        rows["model-b|total_cost"] = [0.001, 0.001, np.nan, 0.001]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_routerbench_layout_reads_prompts_models_and_costs(tmp_path):
    t = read_outcomes(_routerbench_csv(tmp_path / "rb.csv"))
    assert t.models == ["org/model-a", "model-b"]          # metadata and |response columns ignored
    assert t.prompts[0] == "Q: 1+1?\nAnswer:"                # Python-literal list of turns joined
    assert t.prompts[2] == "plain text prompt"
    assert len(t) == 3 and t.dropped["empty_prompt"] == 1    # the empty prompt row is dropped
    assert np.isnan(t.scores[2, 1])                          # a missing cell stays missing
    assert t.costs is not None and t.costs[0, 1] == pytest.approx(0.001)


def test_no_cost_columns_gives_no_costs(tmp_path):
    t = read_outcomes(_routerbench_csv(tmp_path / "rb.csv", with_cost=False))
    assert t.costs is None


def test_ties_go_to_the_cheaper_model_and_missing_never_wins(tmp_path):
    t = read_outcomes(_routerbench_csv(tmp_path / "rb.csv"))
    # row 0: both 1.0 -> model-b is cheaper; row 1: b wins; row 2: b missing -> a
    assert best_models(t) == ["model-b", "model-b", "org/model-a"]
    records, labels, _ = label_outcomes(t)
    assert records[0]["scores"] == {"org/model-a": 1.0, "model-b": 1.0}   # per-model scores kept
    assert "model-b" not in records[2]["scores"]


def test_llmrouter_json_with_unknown_models_against_a_pool(tmp_path, pool):
    rows = [{"question": "hi there", "scores": {"mistral-small": 1.0, "gpt-x": 1.0, "qwen2.5": 0.5}},
            {"question": "only unknown", "scores": {"gpt-x": 1.0}},
            {"question": "integral of x", "scores": {"qwen2.5": 0.9, "deepseek-r1": 0.9}}]
    path = tmp_path / "o.json"
    path.write_text(json.dumps(rows))
    t = read_outcomes(path)
    assert t.models == ["mistral-small", "gpt-x", "qwen2.5", "deepseek-r1"]
    records, labels, notes = label_outcomes(t, pool)
    assert labels == pool.ids
    assert len(records) == 2                               # the row scoring only gpt-x is dropped
    assert any("gpt-x" in n for n in notes)
    assert records[0]["label"] == "mistral-small"
    assert records[1]["label"] == "qwen2.5"                # tie with deepseek-r1 -> cheaper pool price


def test_no_overlap_with_the_pool_is_a_clear_error(tmp_path, pool):
    path = tmp_path / "o.json"
    path.write_text(json.dumps([{"question": "q", "scores": {"gpt-x": 1}}]))
    with pytest.raises(UserError, match="none of its models"):
        label_outcomes(read_outcomes(path), pool)


@pytest.mark.parametrize("content,match", [("not json", "not valid JSON"), ("[]", "no rows"),
                                           ('[{"scores": {"a": 1}}]', "no prompt column")])
def test_bad_outcome_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=match):
        read_outcomes(path)


def test_missing_file_and_scores_out_of_range(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_outcomes(tmp_path / "nope.csv")
    pd.DataFrame({"prompt": ["a"], "votes": [12]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(UserError, match="no model score columns"):
        read_outcomes(tmp_path / "x.csv")


def test_pooling_tables_and_estimating_costs(tmp_path):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps([{"question": "x" * 400, "scores": {"m1": 1, "m2": 0}}]))
    b.write_text(json.dumps([{"question": "y", "scores": {"m2": 1, "m3": 0}}]))
    t = read_many([a, b])
    assert t.models == ["m1", "m2", "m3"] and np.isnan(t.scores[1, 0])
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"m1": {"input_price": 1.0, "output_price": 2.0}, "m2": 0.5, "m3": 0.1}))
    c = estimate_costs(t, load_prices(prices), output_tokens=100)
    # 400 chars ~ 100 input tokens: 100 * 1.0 + 100 * 2.0 per million
    assert c.costs[0, 0] == pytest.approx(300 / 1e6)
    with pytest.raises(UserError, match="no price for m3"):
        estimate_costs(t, {"m1": (1, 1), "m2": (1, 1)})


@pytest.fixture
def pool():
    from routing.pool import load_pool
    from routing.settings import DEFAULT_MODELS_FILE

    return load_pool(DEFAULT_MODELS_FILE)


def _long_rows():
    return [
        {"prompt": "Solve 2x = 4", "model": "org/big", "score": 1.0, "cost": 0.01},
        {"prompt": "Solve 2x = 4", "model": "small", "score": 0.0, "cost": 0.001},
        {"prompt": "Write a haiku", "model": "small", "score": 1.0, "cost": 0.001},
        {"prompt": "Write a haiku", "model": "org/big", "score": 1.0, "cost": 0.02},
        {"prompt": "Write a haiku", "model": "org/big", "score": 0.0, "cost": 0.02},   # repeated: averaged
        {"prompt": "Name a prime", "model": "small", "score": 7.0, "cost": 0.001},      # out of range
        {"prompt": "Name a prime", "model": "org/big", "score": 1.0, "cost": 0.01},
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_long_layout_one_row_per_prompt_and_model(tmp_path, fmt):
    """Evaluation logs (EmbedLLM, RouterEval, most harnesses) keep one row per (prompt, model)."""
    rows = _long_rows()
    path = tmp_path / f"long.{fmt}"
    if fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif fmt == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        path.write_text(json.dumps(rows))
    t = read_outcomes(path)
    assert t.models == ["org/big", "small"]                      # not "score" or "cost" as models
    assert t.prompts == ["Solve 2x = 4", "Write a haiku", "Name a prime"]
    assert t.scores[0].tolist() == [1.0, 0.0]
    assert t.scores[1].tolist() == [0.5, 1.0]                    # repeated pair averaged
    assert t.scores[2, 0] == 1.0 and np.isnan(t.scores[2, 1])   # 7.0 is not a score: missing
    assert t.costs is not None and t.costs[1, 0] == pytest.approx(0.02)
    records, labels, _ = label_outcomes(t)
    assert labels == ["org/big", "small"] and records[0]["label"] == "org/big"


def test_long_layout_with_boolean_correctness_and_no_cost(tmp_path):
    pd.DataFrame({"question": ["q1", "q1", "q2", "q2"], "model_name": ["a", "b", "a", "b"],
                  "is_correct": [True, False, False, True]}).to_parquet(tmp_path / "log.parquet")
    t = read_outcomes(tmp_path / "log.parquet")
    assert t.models == ["a", "b"] and t.costs is None
    assert t.scores.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_broken_parquet_and_long_layout_without_model_names(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="not a readable Parquet"):
        read_outcomes(tmp_path / "bad.parquet")
    pd.DataFrame({"prompt": ["a", "b"], "model": [None, None], "score": [1, 0]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(UserError, match="names no model"):
        read_outcomes(tmp_path / "x.csv")


def test_prompt_cells_in_chat_formats():
    from training.text import prompt_text

    # RouterBench: a Python-literal list of turns.
    assert prompt_text("['Q: 1+1?', 'Answer:']") == "Q: 1+1?\nAnswer:"
    # OpenAI-style messages as JSON (null is not Python, so this needs the JSON reader).
    messages = '[{"role": "system", "content": null}, {"role": "user", "content": "Hi there"}]'
    assert prompt_text(messages) == "Hi there"
    # Content given as a list of typed parts (multimodal message layout).
    parts = [{"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "text", "text": "this"}]}]
    assert prompt_text(parts) == "Describe\nthis"
    # A list that is just text in brackets stays as written.
    assert prompt_text("[citation needed]") == "[citation needed]"


def test_parquet_list_cells_read_as_turns(tmp_path):
    # Two turns: numpy prints such an array without commas, so reading its text would fail.
    df = pd.DataFrame({"prompt": [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Solve 2x = 4"}],
                                  [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Write a haiku"}]],
                       "a": [1.0, 0.0], "b": [0.0, 1.0]})
    df.to_parquet(tmp_path / "chat.parquet")
    t = read_outcomes(tmp_path / "chat.parquet")
    assert t.prompts == ["Be brief.\nSolve 2x = 4", "Be kind.\nWrite a haiku"] and t.models == ["a", "b"]


def test_gzipped_tables_are_read_and_answer_lengths_price_the_output(tmp_path):
    """ZeroEval ships ``.csv.gz`` with the answers and no costs: the answers' own length prices them."""
    import gzip

    plain = _routerbench_csv(tmp_path / "t.csv", with_cost=False)
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    t = read_outcomes(packed)
    assert t.models == ["org/model-a", "model-b"] and len(t) == 3 and t.costs is None
    # model-a's answers are "2", "r", "t" (1 char); model-b has none: its answers cost the stated 100 tokens.
    assert t.answer_chars[:, 0].tolist() == [1.0, 1.0, 1.0] and np.isnan(t.answer_chars[:, 1]).all()
    c = estimate_costs(t, {"org/model-a": (0.0, 4e6), "model-b": (0.0, 1e6)}, output_tokens=100)
    assert c.costs[:, 0] == pytest.approx([1.0] * 3)          # 1 char = 0.25 tokens x 4 USD/token
    assert c.costs[:, 1] == pytest.approx([100.0] * 3)
    assert c.rows([0]).answer_chars.shape == (1, 2)            # the lengths follow a row selection
    jsonl = tmp_path / "rows.jsonl.gz"
    jsonl.write_bytes(gzip.compress(b'{"prompt": "hi", "m": 1}\n'))
    assert read_outcomes(jsonl).models == ["m"]
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot be read"):
        read_outcomes(broken)
