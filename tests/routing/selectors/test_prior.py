"""The evidence prior: the shipped selector routes the real pool by public ratings, the prompt's kind
and difficulty; it explains itself from that evidence; ratings and prices change it without
retraining; unrated models are stated; outcomes refine it."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from routing.pool import load_pool, pool_from_data
from routing.selectors import load_selector
from routing.selectors import prior as pr
from routing.settings import DEFAULT_MODELS_FILE, DEFAULT_SELECTOR_DIR, Settings

HARD_MATHS = "Prove that there are infinitely many primes p with p ≡ 3 (mod 4), and find all integer solutions of x^3 - 3x + 1 = 0."
EASY_POEM = "Write a sonnet about the sea at dawn."


@pytest.fixture(scope="module")
def pool():
    return load_pool(DEFAULT_MODELS_FILE)


@pytest.fixture(scope="module")
def selector(pool):
    return pr.PriorSelector(pool, DEFAULT_SELECTOR_DIR)


def _pool_data() -> dict:
    return json.loads(DEFAULT_MODELS_FILE.read_text(encoding="utf-8"))


def test_the_shipped_selector_is_the_evidence_prior_and_the_rules_stay_the_fallback(pool, tmp_path):
    selector, warning = load_selector(Settings(), pool)
    assert selector.name == "prior" and warning is None
    assert load_selector(Settings(), pool, "prior")[0].name == "prior"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": pr.MODEL_TYPE, "router": {"topics": []}}))
    fallback, warning = load_selector(Settings(selector_dir=broken), pool)
    assert fallback.name == "rules" and "keyword rules" in warning


def test_a_pool_without_any_rating_is_routed_by_the_rules_and_told_how_to_add_ratings():
    data = _pool_data()
    for m in data["models"]:
        m.pop("evidence")
    bare = pool_from_data(data, "no-evidence")
    selector, warning = load_selector(Settings(), bare)
    assert selector.name == "rules" and "routing.evidence refresh" in warning


def test_deepseek_r1_leads_at_cost_weight_zero_as_the_public_ratings_say(selector):
    """The old shipped classifier imitated the rules: maths to Qwen2.5, poems to Llama 3.3."""
    for prompt in (HARD_MATHS, EASY_POEM, "Fix this Python: def add(a, b): return a - b"):
        decision = selector.select(prompt)
        assert decision.selected_model == "deepseek-r1", decision.reasoning
        order = sorted(decision.scores, key=decision.scores.get, reverse=True)
        assert order[:2] == ["deepseek-r1", "gemini-flash"]      # Gemini Flash second everywhere


def test_hard_prompts_separate_the_models_and_on_easy_ones_price_decides(selector):
    hard, easy = selector.select(HARD_MATHS), selector.select(EASY_POEM)
    assert hard.details["looks_hard"] == "hard" and easy.details["looks_hard"] == "easy"
    spread = lambda d: max(d.scores.values()) - min(d.scores.values())   # noqa: E731
    assert spread(hard) > 2 * spread(easy)
    assert selector.select(EASY_POEM, cost_weight=0.3).selected_model != "deepseek-r1"
    assert selector.select(HARD_MATHS, cost_weight=0.1).selected_model == "deepseek-r1"


def test_the_decision_names_its_evidence(selector):
    decision = selector.select(HARD_MATHS, cost_weight=0.5)
    assert "looks like maths" in decision.reasoning and "hard" in decision.reasoning
    assert "DeepSeek R1 math 1413±14" in decision.reasoning and "Gemini 2.0 Flash math 1358±9" in decision.reasoning
    assert "snapshot 2025-12-17" in decision.reasoning and "cost slider (0.50) changed the pick" in decision.reasoning
    evidence = pr_evidence(decision)
    assert evidence["models"]["deepseek-r1"]["ratings"]["math"] == [1413.4, 13.7]
    assert evidence["topics"]["math"] > 0.5 and evidence["rating_mix"]["math"] > 0.3
    assert evidence["unrated_models"] == []


def pr_evidence(decision):
    from routing.selectors.base import evidence_of

    return evidence_of(decision)


def test_a_refreshed_rating_changes_the_pick_without_retraining(tmp_path):
    data = _pool_data()
    gemini = next(m for m in data["models"] if m["id"] == "gemini-flash")
    for value in gemini["evidence"]["ratings"]["categories"].values():
        value[0] += 200; value[1] += 200; value[2] += 200                      # noqa: E702
    boosted = pr.PriorSelector(pool_from_data(data, "edited"), DEFAULT_SELECTOR_DIR)
    assert boosted.select(HARD_MATHS).selected_model == "gemini-flash"


def test_a_model_without_a_public_rating_is_the_pools_median_and_is_said_to_be(tmp_path):
    data = _pool_data()
    extra = copy.deepcopy(data["models"][1])
    extra.update(id="mystery", display_name="Mystery 7B", model_name="acme/mystery-7b",
                 evidence={"ratings": None, "unknown": True})
    data["models"].append(extra)
    selector = pr.PriorSelector(pool_from_data(data, "with-unrated"), DEFAULT_SELECTOR_DIR)
    assert selector.unknown_models == ["mystery"]
    k = selector.pool.ids.index("mystery")
    rated = selector.ratings.R[selector.ratings.known]
    assert np.allclose(selector.ratings.R[k], np.median(rated, axis=0))
    decision = selector.select(HARD_MATHS)
    assert "Unrated: mystery" in decision.reasoning
    assert decision.details["models"]["mystery"]["known"] is False


def test_languages_are_read_from_the_script_and_function_words():
    assert pr.detect_language("请解释一下量子计算的基本原理") == "chinese"
    assert pr.detect_language("量子コンピュータについて説明してください") == "japanese"
    assert pr.detect_language("양자 컴퓨팅에 대해 설명해 주세요") == "korean"
    assert pr.detect_language("Объясните, пожалуйста, основы квантовых вычислений") == "russian"
    assert pr.detect_language("Quelle est la différence entre le café et le thé pour la santé ?") == "french"
    assert pr.detect_language("¿Cuál es la diferencia entre el café y el té para la salud de los niños?") == "spanish"
    assert pr.detect_language("Was ist der Unterschied zwischen Kaffee und Tee für die Gesundheit?") == "german"
    assert pr.detect_language("What is the difference between coffee and tea for health?") is None
    assert pr.detect_language("12345 + 678") is None


def test_the_rating_mix_is_a_distribution():
    topics = np.array([[0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 1.0]])
    texts = ["Quelle est la différence entre le café et le thé pour la santé ?", "x" * 3000]
    mix = pr.category_mix(topics, texts, np.array([1.0, 0.0]))
    assert np.allclose(mix.sum(axis=1), 1.0) and (mix >= 0).all()
    col = {c: i for i, c in enumerate(pr.RATING_CATEGORIES)}
    assert mix[0, col["french"]] == pytest.approx(pr.LANGUAGE_SHARE)
    assert mix[1, col["long_user"]] == pytest.approx(pr.LONG_SHARE) and mix[1, col["hard_6"]] == 0


def test_outcomes_move_the_prior_a_little_when_few_and_a_lot_when_many(selector):
    """Gemini Flash, in truth, fails maths that R1 solves: a few outcomes barely move the prior,
    many make it route maths away from Gemini even when price favours it."""
    prompts = [f"Solve for x: {i}x + {i + 3} = {2 * i + 11}, and prove your answer is unique." for i in range(60)]
    X = selector.encoder.embed(prompts)
    ids = selector.pool.ids
    truth = np.full((len(prompts), len(ids)), 0.9)
    truth[:, ids.index("gemini-flash")] = 0.0
    before = pr.predict(selector.params, X, prompts, selector.ratings).p[:, ids.index("gemini-flash")].mean()
    few = pr.refine(selector.params, selector.ratings, X[:3], prompts[:3], truth[:3])
    many = pr.refine(selector.params, selector.ratings, X, prompts, truth)
    probe = ["Solve for x: 7x + 2 = 30, and prove your answer is unique."]
    Xp = selector.encoder.embed(probe)
    p_few = pr.predict(selector.params, Xp, probe, selector.ratings, few).p[0, ids.index("gemini-flash")]
    p_many = pr.predict(selector.params, Xp, probe, selector.ratings, many).p[0, ids.index("gemini-flash")]
    assert before - p_few < before - p_many
    assert p_many < 0.35 < before
    assert many.offsets[ids.index("gemini-flash"), pr.TOPICS.index("math")] < -50


def test_the_release_gate_reads_the_prior_as_a_scorer_of_the_pool(pool):
    from routing.selectors.heads import load_scorer

    scorer = load_scorer(DEFAULT_SELECTOR_DIR, fast_path="off")
    assert scorer.labels == pool.ids and scorer.precision == "fp32"
    probs = scorer.predict([HARD_MATHS, EASY_POEM])
    assert probs.shape == (2, len(pool)) and ((probs >= 0) & (probs <= 1)).all()


def test_a_corrupt_prior_folder_is_a_load_error(tmp_path, pool):
    from routing.selectors.classifier import SelectorLoadError

    folder = tmp_path / "prior"
    pr.PriorParams.load(DEFAULT_SELECTOR_DIR).save(folder)
    (folder / pr.PARAMS_FILE).write_bytes(b"truncated")
    with pytest.raises(SelectorLoadError, match="cannot be loaded"):
        pr.PriorSelector(pool, folder)


def _maths_and_chat_outcomes(path, n=30):
    """Gemini Flash, in this world, fails every maths prompt that the other models solve."""
    rows = []
    for i in range(n):
        rows.append({"question": f"Solve for x: {i + 2}x + {i} = {3 * i + 7}. Show each step. (#{i})",
                     "scores": {"deepseek-r1": 1.0, "mistral-small": 1.0, "qwen2.5": 1.0, "gemini-flash": 0.0,
                                "llama-3.3": 1.0}})
        rows.append({"question": f"Write a friendly two-line greeting for a colleague named Sam, note {i}.",
                     "scores": {m: 1.0 for m in ("deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash",
                                                 "llama-3.3")}})
    path.write_text(json.dumps(rows))
    return path


def test_the_pipeline_refines_the_prior_with_outcomes_and_the_app_routes_with_it(tmp_path, pool):
    """python -m training.pipeline --source outcomes --strategy prior: the shipped prior updated by
    the log's outcomes, written as a selector folder the app loads, explaining how many it learned from."""
    from training.pipeline.run import run_pipeline

    table = _maths_and_chat_outcomes(tmp_path / "outcomes.json")
    result = run_pipeline("outcomes", str(table), None, 1, 1e-3, 8, tmp_path / "work", strategy="prior",
                          selector_dir=tmp_path / "sm", label_encoder_file=tmp_path / "le.json")
    assert result["gate"]["promoted"] and pr.is_prior_dir(tmp_path / "sm")
    refined = pr.PriorSelector(pool, tmp_path / "sm")
    assert refined.refinement is not None and refined.refined_rows >= 40
    probe = "Solve for x: 9x + 4 = 31. Show each step."
    shipped = pr.PriorSelector(pool, DEFAULT_SELECTOR_DIR)
    assert shipped.select(probe, cost_weight=0.5).selected_model == "gemini-flash"     # the ratings alone
    decision = refined.select(probe, cost_weight=0.5)
    assert decision.selected_model != "gemini-flash"                                # the outcomes moved it
    assert decision.scores["gemini-flash"] < shipped.select(probe).scores["gemini-flash"] - 0.2
    assert "refined by" in decision.reasoning and decision.details["refined_by_outcomes"] == refined.refined_rows
    # A greeting is unaffected: Gemini Flash still the pick there once price counts.
    assert refined.select("Write a friendly two-line greeting for a colleague named Ana.",
                          cost_weight=0.5).selected_model in ("gemini-flash", "mistral-small")
    # While the app routes with the prior, "auto" retraining refines it too (not a head).
    again = run_pipeline("outcomes", str(table), None, 1, 1e-3, 8, tmp_path / "work2", strategy="auto",
                         selector_dir=tmp_path / "sm", label_encoder_file=tmp_path / "le.json")
    assert any("strategy prior" in n for n in again["notes"]), again["notes"]


def test_the_prior_strategy_refuses_rule_labels(tmp_path):
    from routing.errors import UserError
    from training.pipeline.run import run_pipeline

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"Write a poem about the number {i}"}) for i in range(30)))
    with pytest.raises(UserError, match="learns from outcomes"):
        run_pipeline("rules", str(corpus), None, 1, 1e-3, 8, tmp_path / "work", strategy="prior",
                     selector_dir=tmp_path / "sm", label_encoder_file=tmp_path / "le.json")
