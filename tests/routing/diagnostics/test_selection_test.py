"""Selection testing: the built-in labelled set, user samples, side-by-side selectors, /test-selection."""

import json
import os

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from routing.errors import UserError  # noqa: E402
from routing.pool import load_pool  # noqa: E402
from routing.diagnostics.selection_test import (BUILTIN_SAMPLES, DECISION_COLUMNS, LabelledSample,
                                                SelectionTester, builtin_samples, choose_samples, decision_rows,
                                                disagreement_columns, expected_model_for, load_samples,
                                                parse_pasted_samples, run_selection_test, source_description)
from routing.selectors.base import Selector  # noqa: E402
from routing.selectors.rules import RuleSelector  # noqa: E402
from routing.settings import DEFAULT_MODELS_FILE, Settings  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    return load_pool(Settings().models_file)


def test_categories_map_to_models_through_the_pool(pool):
    mapping = RuleSelector._category_map(pool)
    assert expected_model_for("coding", pool) == (mapping["coding"], "coding") == ("deepseek-r1", "coding")
    assert expected_model_for("Creative", pool) == ("llama-3.3", "creative")
    assert expected_model_for("qwen2.5", pool) == ("qwen2.5", None)
    with pytest.raises(UserError, match="neither a pool model.*nor a category"):
        expected_model_for("gpt-17", pool)


def test_builtin_set_runs_with_accuracy_confusion_and_latency(pool):
    samples = builtin_samples(pool)
    assert len(samples) >= 50
    result = run_selection_test(RuleSelector(pool), samples)
    assert result["samples"] == len(samples) and result["selector"] == "rules"
    matrix = np.array(result["confusion"]["matrix"])
    assert matrix.shape == (len(pool), len(pool)) and matrix.sum() == len(samples)
    assert np.trace(matrix) == result["correct"]
    assert result["accuracy"] == pytest.approx(result["correct"] / len(samples), abs=1e-4)
    assert result["accuracy"] > 0.5  # the rules agree with most hand labels
    assert 0 < result["latency_ms"]["median"] <= result["latency_ms"]["p95"]
    d = result["decisions"][0]
    assert set(d) >= {"text", "expected", "selected", "correct", "confidence", "runner_up", "latency_ms"}


def test_user_samples_as_csv_and_jsonl(pool, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("Prompt,Expected\nWrite a haiku about rain,creative\nhello there!,mistral-small\n",
                    encoding="utf-8-sig")
    samples = load_samples(path, pool)
    assert samples == [LabelledSample("Write a haiku about rain", "llama-3.3", "creative"),
                       LabelledSample("hello there!", "mistral-small", None)]
    pasted = parse_pasted_samples('{"text": "Integrate x^2 dx", "expected_model": "qwen2.5"}', pool, tmp_path)
    assert pasted == [LabelledSample("Integrate x^2 dx", "qwen2.5", None)]


@pytest.mark.parametrize("content, message", [
    ("text,other\nhi,x\n", "No expectation column.*text, other"),
    ("text,expected\nhi,banana\n", "Sample 1: Expected label 'banana'"),
    ("text,expected\n,coding\n", "Sample 1 has an empty 'text'"),
])
def test_bad_user_samples_are_explained(pool, tmp_path, content, message):
    path = tmp_path / "s.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        load_samples(path, pool)


def test_empty_paste_is_explained(pool, tmp_path):
    with pytest.raises(UserError, match="Paste samples first"):
        parse_pasted_samples("  ", pool, tmp_path)


def test_without_a_learned_model_only_the_rules_run_and_say_why(pool, tmp_path):
    settings = Settings(selector_dir=tmp_path / "nothing", label_encoder_file=tmp_path / "none.json")
    result = SelectionTester(settings, pool).run([LabelledSample("Write a poem", "llama-3.3", "creative")])
    assert list(result["selectors"]) == ["rules"]
    assert "Learned selector not shown" in result["learned_unavailable"]
    assert result["disagreements"] == []


class FakeLearned(Selector):
    """Always picks the cheapest model: enough to check the side-by-side and the disagreements."""

    name = "learned"

    def score(self, prompts):
        row = np.full(len(self.pool), 0.1)
        row[self.pool.ids.index("mistral-small")] = 0.6
        return np.tile(row, (len(prompts), 1))


def test_rules_and_learned_side_by_side_list_disagreements(pool):
    tester = SelectionTester(Settings(), pool, active=FakeLearned(pool))
    samples = [LabelledSample("Write a limerick about a cat", "llama-3.3", "creative"),
               LabelledSample("hi, how are you?", "mistral-small", "chat")]
    result = tester.run(samples)
    assert list(result["selectors"]) == ["rules", "learned"] and result["learned_unavailable"] is None
    assert result["summary"]["learned"]["accuracy"] == 0.5
    assert result["disagreements"] == [{"text": "Write a limerick about a cat", "expected": "llama-3.3",
                                        "rules": "llama-3.3", "learned": "mistral-small"}]


def test_test_selection_api_returns_json(protocol_server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from routing.service import RouterService
    from tests.app_harness import launch_app
    from tests.conftest import router_settings

    service = RouterService(router_settings(protocol_server, tmp_path), background=False)
    with launch_app(service) as url:
        client = Client(url, verbose=False)
        result = client.predict(api_name="/test-selection")
        assert result["source"] == BUILTIN_SAMPLES.name and result["samples"] == len(builtin_samples(service.pool))
        # Judged against the public ratings by default, and it says so: every category expects R1.
        assert result["basis"] == "evidence" and "rated best by LMArena" in result["expectation"]
        rules = result["selectors"]["rules"]
        assert {d["expected"] for d in rules["decisions"]} == {"deepseek-r1"} and rules["accuracy"] < 0.5
        assert json.dumps(rules["confusion"]) and {"median", "p95"} <= set(rules["latency_ms"])
        by_rules = client.predict(basis="rules", api_name="/test-selection")
        assert by_rules["basis"] == "rules" and by_rules["selectors"]["rules"]["accuracy"] > 0.5
        assert "agreement with the rules" in by_rules["expectation"]
        with pytest.raises(AppError, match="Judge picks against"):
            client.predict(basis="vibes", api_name="/test-selection")
        pasted = client.predict(samples="text,expected\nWrite a sonnet about the sea,creative\n",
                                api_name="/test-selection")
        assert pasted["samples"] == 1 and pasted["selectors"]["rules"]["decisions"][0]["selected"] == "llama-3.3"
        path = tmp_path / "s.jsonl"
        path.write_text('{"question": "Solve 2x + 3 = 7", "category": "math"}\n', encoding="utf-8")
        uploaded = client.predict(file=handle_file(str(path)), basis="rules", api_name="/test-selection")
        assert uploaded["source"] == "s.jsonl" and uploaded["selectors"]["rules"]["correct"] == 1
        uploaded = client.predict(file=handle_file(str(path)), api_name="/test-selection")
        assert uploaded["selectors"]["rules"]["decisions"][0]["expected"] == "deepseek-r1"   # math 1413±14
        with pytest.raises(AppError, match="neither a pool model"):
            client.predict(samples="text,expected\nhi,banana\n", api_name="/test-selection")


# --------------------------------------------------------------------------- which samples run; the table

def test_what_the_user_gave_is_what_runs(pool, tmp_path):
    """Upload, else pasted text, else the built-in set: no separate switch to forget."""
    path = tmp_path / "s.csv"
    path.write_text("text,expected\nIntegrate x^2 dx,math\n", encoding="utf-8")
    pasted = '{"text": "Write a haiku about rain", "expected": "creative"}'
    assert choose_samples(pool, samples_text=pasted, file_path=path) == (
        [LabelledSample("Integrate x^2 dx", "qwen2.5", "math")], "s.csv")
    assert choose_samples(pool, samples_text=pasted) == (
        [LabelledSample("Write a haiku about rain", "llama-3.3", "creative")], "pasted")
    samples, source = choose_samples(pool, samples_text="  \n")
    assert source == BUILTIN_SAMPLES.name and samples == builtin_samples(pool)
    assert "uploaded file" in source_description(pasted, True) and "ignored" in source_description(pasted, True)
    assert "pasted samples" in source_description(pasted, False)
    assert "built-in set" in source_description("", False)


def test_decisions_table_puts_the_verdict_before_the_prompt(pool):
    result = SelectionTester(Settings(), pool, active=FakeLearned(pool)).run(
        [LabelledSample("Write a limerick about a cat " * 20, "llama-3.3", "creative")])
    names = [c for c, _ in DECISION_COLUMNS]
    assert names[:4] == ["selector", "expected", "selected", "correct"] and names[-1] == "prompt"
    rows = decision_rows(result)
    assert rows[0][:4] == ["rules", "llama-3.3", "llama-3.3", "✓"] and rows[1][:4] == ["learned", "llama-3.3",
                                                                                        "mistral-small", "✗"]
    assert rows[0][-1].startswith("Write a limerick")
    assert [c for c, _ in disagreement_columns(result)] == ["expected", "rules", "learned", "text"]


def test_categories_expect_the_best_rated_model_and_pools_without_ratings_fall_back_to_the_rules(pool):
    from routing.diagnostics.selection_test import basis_description, check_basis, default_basis, expected_model_for
    from routing.pool import pool_from_data

    assert default_basis(pool) == "evidence"
    assert expected_model_for("math", pool, "evidence") == ("deepseek-r1", "math")
    assert expected_model_for("math", pool, "rules") == ("qwen2.5", "math")        # the rules' own mapping
    assert expected_model_for("gemini-flash", pool, "evidence") == ("gemini-flash", None)   # a model id as given
    assert "math → DeepSeek R1 (math 1413)" in basis_description("evidence", pool)
    data = json.loads(DEFAULT_MODELS_FILE.read_text(encoding="utf-8"))
    for m in data["models"]:
        m.pop("evidence")
    bare = pool_from_data(data, "no-evidence")
    assert default_basis(bare) == "rules" and check_basis(None, bare) == "rules"
    with pytest.raises(UserError, match="Judge picks against"):
        check_basis("vibes", pool)
