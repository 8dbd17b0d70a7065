"""The evaluator's learned quality score: training, its benchmark's metrics, what it ranks, and
the fall-back to the heuristics when its folder is missing or corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routing.evaluation import benchmark as bench
from routing.evaluation import quality as Q
from routing.evaluation.evaluator import evaluate, evaluate_group
from training.quality import model as T
FILLER = (
    "\n\nIt is important to note that this is a complex topic and there are many factors to consider. "
    "In general, it is always a good idea to keep in mind that things can vary depending on the situation. "
    "Overall, there are many different aspects to think about, and it is important to consider all of them. "
    "I hope this helps! Let me know if you have any other questions."
)
from tests.routing.evaluation.test_evaluator import (CODE_PROMPT, FACT_ANSWER, FACT_PROMPT, GOOD_CODE, WRONG_CODE)  # noqa: E402 - shared hand-written answers

MATH_PROMPT = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
               "May. How many clips did Natalia sell altogether in April and May?")
MATH_RIGHT = "In May she sold 48 / 2 = 24 clips. Altogether she sold 48 + 24 = 72 clips.\n#### 72"
MATH_WRONG = "In May she sold 48 / 2 = 24 clips. Altogether she sold 48 + 24 = 82 clips.\n#### 82"
ARC_PROMPT = (
    "Which gas do plants absorb from the air?\nA) oxygen\nB) carbon dioxide\nC) nitrogen\nD) helium\n"
    'Print only a single choice  from "A" or "B" or "C" or "D" without explanation.\nAnswer:'
)
CAPITAL_PROMPT = "What is the capital of Australia, and why was it chosen?"
CAPITAL_RIGHT = ("The capital of Australia is Canberra. It was chosen in 1908 as a compromise between "
                 "Sydney and Melbourne, the two largest cities, which both wanted to be the capital.")
CAPITAL_WRONG = ("The capital of Australia is Sydney. It was chosen because it is the oldest and largest "
                 "city, with the busiest harbour and the famous Opera House.")
CAPITAL_PEERS = [
    "Canberra is the capital of Australia. It was a compromise between rivals Sydney and Melbourne, chosen in 1908.",
    "Australia's capital is Canberra, picked as a compromise site between Sydney and Melbourne.",
    "The capital is Canberra; neither Sydney nor Melbourne would accept the other, so a new city was built.",
]


@pytest.fixture(autouse=True)
def shipped_model():
    """Every test starts (and leaves) with the shipped quality model configured."""
    Q.configure(None)
    yield
    Q.configure(None)


def _tiny_graded(path: Path, prompts: int = 8) -> Path:
    """A graded table where careful, specific answers get high grades and curt or refusing ones low."""
    rows = []
    for p in range(prompts):
        topic = ["volcanoes", "tides", "vaccines", "rainbows", "magnets", "glaciers", "eclipses", "comets"][p % 8]
        prompt = f"Explain how {topic} work, briefly but precisely."
        good = (f"{topic.capitalize()} work through a few distinct mechanisms. First, energy builds up in a "
                f"specific place; second, it is released in a measurable way (for example {p + 3} units per "
                f"cycle). Scientists measure {topic} with dedicated instruments, and the key numbers are "
                f"{p * 7 + 11} and {p * 3 + 2}. In short: cause, mechanism, measurable effect.")
        fine = f"{topic.capitalize()} happen because of natural forces acting over time, which scientists study."
        curt = f"{topic} just happen."
        refusal = "I'm sorry, but I can't help with that."
        for model, answer, grade in (("a", good, 9), ("b", fine, 6), ("c", curt, 3), ("d", refusal, 1)):
            rows.append({"question_id": f"q{p}", "prompt": prompt, "model": model, "answer": answer,
                         "gpt4_score": grade})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_training_on_a_tiny_graded_file(tmp_path: Path) -> None:
    graded = _tiny_graded(tmp_path / "graded.csv")
    out = tmp_path / "model"
    config = T.QualityConfig(test_fraction=0.25, folds=2, alphas=(1.0, 10.0), routerbench_prompts=0)
    report = T.train(graded, out, routerbench_dir=None, config=config)
    for name in ("config.json", "model.safetensors", "README.md", "training_report.json", "test_split.json"):
        assert (out / name).is_file(), name
    from safetensors.numpy import load_file

    assert all(t.dtype == np.float16 for t in load_file(str(out / "model.safetensors")).values())
    # split by prompt: the held-out prompts are whole prompts that training never saw
    test_ids = set(json.loads((out / "test_split.json").read_text())["test_question_ids"])
    assert test_ids and report["data"]["test_prompts"] == len(test_ids)
    assert report["data"]["train_prompts"] + report["data"]["test_prompts"] == 8
    assert report["data"]["test_rows"] == 4 * len(test_ids)
    assert "pairwise" in (out / "README.md").read_text()
    # the trained model loads and ranks a fresh careful answer above a curt one and a refusal
    model = Q.QualityModel(out)
    prompt = "Explain how earthquakes work, briefly but precisely."
    careful = ("Earthquakes work through a few distinct mechanisms. First, stress builds up along a fault; "
               "second, it is released as seismic waves (for example 5 units on the moment scale). "
               "Scientists measure earthquakes with seismometers, and the key numbers are 30 and 7.")
    curt = "earthquakes just happen."
    refusal = "I'm sorry, but I can't help with that."
    scores = [model.score(prompt, a)["score"] for a in (careful, curt, refusal)]
    assert scores[0] > scores[1] > scores[2], scores
    assert set(model.combination) >= {"open/alone"}


def test_graded_metrics_on_a_toy_table() -> None:
    groups = ["a", "a", "a", "b", "b", "b", "c", "c"]
    grades = [3, 2, 1, 5, 5, 1, 4, 4]           # group c: one tied pair only, no pair counts
    scores = [0.9, 0.5, 0.5, 0.1, 0.2, 0.3, 0.1, 0.9]
    agreement, pairs = bench.graded_pairwise(groups, grades, scores)
    # a: 3>2 right, 3>1 right, 2>1 tied score (0.5); b: both 5>1 pairs wrong; the 5=5 pair is no pair
    assert pairs == 5
    assert agreement == pytest.approx(2.5 / 5)
    rho, prompts = bench.graded_spearman(groups, grades, scores)
    # a: rho = 1.5 / sqrt(3); b: -1.5 / sqrt(3); c: grades constant, skipped
    assert prompts == 2
    assert rho == pytest.approx(0.0, abs=1e-12)
    rho_a, _ = bench.graded_spearman(groups[:3], grades[:3], scores[:3])
    assert rho_a == pytest.approx(1.5 / np.sqrt(3))
    # the length baseline of the graded mode is the answer length, judged the same way
    answers = ["x" * 30, "x" * 20, "x" * 10]
    assert bench.graded_pairwise(groups[:3], grades[:3], [len(a) for a in answers]) == (1.0, 3)
    low, high = bench.graded_pairwise_ci(groups, grades, scores, resamples=50)
    assert 0.0 <= low <= agreement <= high <= 1.0
    assert np.isnan(bench.graded_pairwise(["a"], [3], [0.5])[0])
    # by regime: each regime's prompts alone (a and c are "open", b is "code")
    per = bench.by_regime(groups, np.asarray(grades, float), {"s": np.asarray(scores)}, ["open"] * 3 + ["code"] * 3
                          + ["open"] * 2, names=("s",))
    assert per["open"] == {"prompts": 2, "s": pytest.approx(2.5 / 3)} and per["code"] == {"prompts": 1, "s": 0.0}


def test_length_matched_pairs_are_only_those_length_cannot_order() -> None:
    groups = ["a", "a", "a", "b", "b"]
    grades = [3, 2, 1, 5, 1]
    scores = [0.9, 0.1, 0.5, 0.2, 0.8]
    lengths = [100, 105, 300, 50, 54]       # a: only 3-vs-2 is matched (105 <= 1.1 * 100); b: 54 <= 55
    agreement, pairs = bench.length_matched_pairwise(groups, grades, scores, lengths)
    assert pairs == 2 and agreement == pytest.approx(0.5)      # a's pair right, b's wrong
    assert bench.length_matched_pairwise(groups, grades, scores, [1, 1, 1, 1, 1]) == bench.graded_pairwise(
        groups, grades, scores)
    assert bench.length_matched_pairwise(["a", "a"], [2, 1], [1, 0], [10, 12])[1] == 0


def test_graded_mode_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graded = _tiny_graded(tmp_path / "graded.csv", prompts=6)
    out = tmp_path / "graded.json"
    assert bench.main(["--graded", str(graded), "--out", str(out), "--folds", "3",
                       "--data-dir", str(tmp_path / "no-routerbench")]) == 0
    report = json.loads(out.read_text())
    cv = report["cross_validation"]
    assert sum(m["prompts"] for m in report["cross_validation_by_regime"].values()) == 6
    for name in ("length", "heuristic_alone", "quality_alone", "combined_alone", "quality_peers", "combined_peers"):
        assert 0.0 <= cv[name]["pairwise"] <= 1.0 and cv[name]["pairs"] == 6 * 6
    # this table is easy: the learned recipe, cross-validated by prompt, gets it right
    assert cv["quality_alone"]["pairwise"] > cv["length"]["pairwise"]
    matched = report["cross_validation_length_matched"]
    assert matched["ratio"] == bench.LENGTH_MATCH_RATIO and 0 <= matched["length"]["pairs"] <= 6 * 6
    assert "speed" in report and "pairwise" in capsys.readouterr().out


RIGHT_AND_WRONG = [
    # (prompt, right answer, fluent wrong answer, peers, reference)
    (MATH_PROMPT, MATH_RIGHT, MATH_WRONG, None, None),
    (MATH_PROMPT, MATH_RIGHT, "She sold 48 clips in April and 24 in May, so 96 clips in total.\n#### 96",
     None, "72"),
    (CODE_PROMPT, GOOD_CODE, WRONG_CODE, None, None),
    (ARC_PROMPT, "B", "C", ["B", "B", "B", "A"], None),
    (CAPITAL_PROMPT, CAPITAL_RIGHT, CAPITAL_WRONG, CAPITAL_PEERS, None),
]


@pytest.mark.parametrize("prompt, right, wrong, peers, reference", RIGHT_AND_WRONG,
                         ids=["math-arithmetic", "math-reference", "code-sandbox", "choice-peers", "open-peers"])
def test_a_right_answer_scores_above_a_fluent_wrong_one(prompt, right, wrong, peers, reference) -> None:
    good = evaluate(prompt, right, peers=peers, reference=reference)
    bad = evaluate(prompt, wrong, peers=peers, reference=reference)
    assert good["learned"] is not None and bad["learned"] is not None, good["notice"]
    assert good["normalized"] > bad["normalized"], (good["explanations"], bad["explanations"])


def test_an_answer_padded_with_filler_scores_below_its_concise_original() -> None:
    concise = evaluate(FACT_PROMPT, FACT_ANSWER)
    assert concise["learned"] is not None and concise["penalties"]["filler"] == 0.0
    for padding in (FILLER, FILLER * 3):
        padded = evaluate(FACT_PROMPT, FACT_ANSWER + padding)
        # the padding earns the learned score nothing, and the heuristics penalise it
        assert padded["learned"]["score"] <= concise["learned"]["score"]
        assert padded["penalties"]["filler"] < 0 and "filler" in padded["explanations"]["filler"]
        assert padded["normalized"] < concise["normalized"]
    # one polite sign-off is not padding
    signed = evaluate(FACT_PROMPT, FACT_ANSWER + "\n\nI hope this helps!")
    assert signed["penalties"]["filler"] == 0.0


def test_the_blend_stays_in_range_and_keeps_the_heuristic_table() -> None:
    result = evaluate(FACT_PROMPT, FACT_ANSWER)
    assert 0.0 <= result["normalized"] <= 1.0
    assert 0.0 <= result["learned"]["score"] <= 1.0 and 1.0 <= result["learned"]["grade"] <= 10.0
    assert result["regime"] == "open" and result["learned"]["regime"] == "open/alone"
    assert result["notice"] is None and "learned quality" in result["explanations"]["learned_quality"]
    assert result["heuristic_normalized"] == evaluate(FACT_PROMPT, FACT_ANSWER, learned=False)["normalized"]
    assert sum(result["dimensions"].values()) > 0
    assert evaluate(FACT_PROMPT, "")["normalized"] == 0.0
    group = evaluate_group(CAPITAL_PROMPT, {"r": CAPITAL_RIGHT, "w": CAPITAL_WRONG,
                                            **{f"p{i}": p for i, p in enumerate(CAPITAL_PEERS)}})
    assert group["r"]["learned"]["used_peers"] and group["r"]["normalized"] > group["w"]["normalized"]


FUNCTION_TASKS = [
    "Write a function to remove all elements from a given list present in another list.",
    "Write a python function to count inversions in an array.",
    "The input is a dictionary of students. Write a function to filter students above the minimum.",
    'def add(a: int, b: int) -> int:\n    """Return the sum of a and b.\n    >>> add(2, 3)\n    5\n    """\n',
    "Please implement a nearest neighbors function in zig.",
    "Write code for this.\nassert reverse_words('a b') == 'b a'",
    # the request after a leading clause (the one mbpp test prompt the detector missed)
    "Given a list of tuples, write a function that returns the first value of the tuple with the smallest "
    "second value.",
]
PROGRAM_TASKS = [
    "write a python script that simulate N-body interaction under gravity.",
    "How to build a gallery slideshow with buttons with only HTML and CSS, without JavaScript?",
    "Implement a code to connect with a MQTT server using Arduino on a ESP8266 Microcontroller?",
    "Could you show me an example of an error that is caught by a sum type in rust but missed in python?",
    "Fix this bug:\n```python\ndef area(r):\n    return 3.14 * r ** 2 + 1\n```",
]


@pytest.mark.parametrize("prompt", FUNCTION_TASKS)
def test_a_prompt_that_asks_for_one_function_is_the_outcome_fitted_code_regime(prompt: str) -> None:
    """One function is right or wrong (MBPP, HumanEval): its blend is fitted on right/wrong outcomes."""
    result = evaluate(prompt, "```python\ndef f(x):\n    return x\n```", run_code=False)
    assert result["regime"] == "code" and result["learned"]["regime"] == "code/alone"


@pytest.mark.parametrize("prompt", PROGRAM_TASKS)
def test_any_other_coding_request_is_the_program_regime_fitted_on_grades(prompt: str) -> None:
    """Scripts, explanations with code, fixes: judged on the whole answer, as the graded prompts are.
    Before the split they took MBPP's blend, which gives the learned score no weight alone."""
    result = evaluate(prompt, "Here is a way to do it:\n```python\nprint('hello')\n```\nIt prints hello.",
                      run_code=False)
    assert "code_quality" in result["applied"]
    assert result["regime"] == "program" and result["learned"]["regime"] == "program/alone"
    weights = Q.get_model().combination["program/alone"]
    assert weights["quality"] > 0 and "judge grades" in Q.get_model().config["combination"]["program/alone"]["source"]


def _corrupt_folders(tmp_path: Path) -> list[Path]:
    missing = tmp_path / "missing"
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    (garbage / "model.safetensors").write_bytes(b"\x00\x01not safetensors")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    shipped = Q.DEFAULT_MODEL_DIR
    (truncated / "config.json").write_text((shipped / "config.json").read_text())
    (truncated / "model.safetensors").write_bytes((shipped / "model.safetensors").read_bytes()[:100])
    return [missing, garbage, truncated]


def test_missing_or_corrupt_model_means_heuristics_alone_with_a_notice(tmp_path: Path) -> None:
    with_model = evaluate(FACT_PROMPT, FACT_ANSWER)
    heuristic = evaluate(FACT_PROMPT, FACT_ANSWER, learned=False)
    assert with_model["learned"] is not None
    for folder in _corrupt_folders(tmp_path):
        Q.configure(folder)
        result = evaluate(FACT_PROMPT, FACT_ANSWER)
        assert result["learned"] is None, folder
        assert result["normalized"] == heuristic["normalized"] == result["heuristic_normalized"]
        assert "unavailable" in result["notice"] and "heuristics alone" in result["notice"]
        assert result["explanations"]["learned_quality"] == result["notice"]
        assert Q.load_error()
    Q.configure(None)
    assert evaluate(FACT_PROMPT, FACT_ANSWER)["learned"] is not None


def _tilt_world(q_outcome: np.ndarray) -> tuple[dict, tuple, tuple]:
    """Outcome rows ranked by the heuristic (pass 0.9 / fail 0.3, a fifth of them wrong), graded
    rows ranked by the learned score."""
    rng = np.random.default_rng(0)
    label = np.array([1, 0] * 30, float)
    passed = np.where(np.arange(60) % 5 == 0, 1 - label, label)
    H_o = np.column_stack([np.where(passed == 1, 0.9, 0.3), np.zeros(60)])
    groups = np.repeat(np.arange(10), 6)
    q_g = rng.uniform(0.2, 0.8, 60)
    H_g = np.column_stack([np.full(60, 0.6) + rng.normal(0, 0.01, 60), np.zeros(60)])
    fit = T.fit_blend(H_o, q_outcome, label)
    return fit, (H_o, q_outcome, label), (H_g, q_g, q_g * 9 + 1, groups)


def test_an_outcome_fitted_blend_turns_toward_the_grades_only_where_outcomes_lose_nothing() -> None:
    # the learned score is the same on every outcome row: weighting it cannot reorder pass/fail
    rng = np.random.default_rng(1)
    fit, outcome, graded = _tilt_world(np.full(60, 0.5))
    tilted = T.tilt_toward_grades(fit, outcome, graded)
    assert tilted["quality"] / tilted["heuristic"] > fit["quality"] / max(fit["heuristic"], 1e-9)
    assert tilted["outcome_auc_tilted"] >= tilted["outcome_auc"] == pytest.approx(0.8)
    assert tilted["graded_pairwise_tilted"] > tilted["graded_pairwise"]
    assert all(tilted[k] >= 0 for k in ("heuristic", "quality", "penalty"))
    # the learned score is *against* the outcomes (as on mbpp alone): any turn costs AUC, so none
    label = outcome[2]
    against = np.where(label == 1, 0.2, 0.8) + rng.uniform(-0.05, 0.05, 60)
    fit, outcome, graded = _tilt_world(against)
    fit = {**fit, "quality": 0.0}
    assert T.tilt_toward_grades(fit, outcome, graded) == fit


def test_fit_blends_tilts_only_when_asked_and_only_outcome_fitted_regimes() -> None:
    _, (H_o, q_o, t_o), (H_g, q_g, y_g, groups) = _tilt_world(np.full(60, 0.5))
    keys = ["code/peers"] * 120
    H = np.concatenate([H_o, H_g])
    q = np.concatenate([q_o, q_g])
    target = np.concatenate([t_o, Q.grade_to_score(y_g)])
    outcome = np.arange(120) < 60
    prompts = [f"rb{i}" for i in range(60)] + [f"g{g}" for g in groups]
    plain = T.fit_blends(keys, H, q, target, outcome=outcome)["code/peers"]
    tilted = T.fit_blends(keys, H, q, target, outcome=outcome, tilt_groups=prompts)["code/peers"]
    assert "graded_pairwise_tilted" not in plain and plain["source"] == "right/wrong outcomes"
    assert tilted["graded_pairwise_tilted"] > tilted["graded_pairwise"]
    assert tilted["source"] == "right/wrong outcomes"


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch):
    from routing.evaluation.sandbox import reset_status
    monkeypatch.setenv("ROUTER_SANDBOX_BWRAP", "off")
    reset_status()
    yield
    monkeypatch.delenv("ROUTER_SANDBOX_BWRAP")
    reset_status()


def test_training_refuses_to_fit_on_code_that_cannot_run(no_sandbox, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # Without bubblewrap the mbpp answers would be scored statically and the code blend fitted on
    # that: a different model, saved without a word. It stops and says why instead.
    graded = tmp_path / "graded.csv"
    graded.write_text("question_id,prompt,answer,gpt4_score\n", encoding="utf-8")
    out = tmp_path / "model"
    assert T.main(["--graded", str(graded), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot be run here" in err and "ROUTER_SANDBOX_BWRAP" in err and "--no-run-code" in err
    assert not out.exists()


@pytest.mark.parametrize("mode", [[], ["--graded", "missing.csv"]], ids=["auc-table", "graded"])
def test_the_evaluator_benchmark_refuses_figures_of_code_that_cannot_run(no_sandbox, mode, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert bench.main(["--data-dir", str(tmp_path), "--out", str(out), *mode]) == 2
    assert "--no-run-code" in capsys.readouterr().err and not out.exists()


def test_peer_agreement_survives_rewording_that_word_overlap_misses() -> None:
    # The same claim in other word forms shares no word with its peer but many character n-grams;
    # the unrelated answer shares neither.
    answers = ["Oxidation of metallic surfaces produces rusting.",
               "Metal surface oxidises, producing rust.",
               "Bananas are yellow.",
               "Penguins live in Antarctica."]
    feats = Q.group_peer_features(answers)
    char = feats[:, Q.PEER_FEATURES.index("peer_char_mean")]
    assert feats[0, Q.PEER_FEATURES.index("peer_tfidf_max")] == 0.0      # no word in common
    assert char[0] > 2 * char[2] and char[1] > 2 * char[3]
    assert 0.0 <= char.min() and char.max() <= 1.0


@pytest.mark.parametrize("answers", [["", "", ""], ["a", "", "b"], ["x" * 300_000, "x" * 300_000, "y"]],
                         ids=["all-empty", "too-short-for-ngrams", "huge"])
def test_peer_features_of_degenerate_groups_are_finite(answers) -> None:
    feats = Q.group_peer_features(answers)
    assert feats.shape == (len(answers), len(Q.PEER_FEATURES)) and np.isfinite(feats).all()


@pytest.mark.parametrize("run_code", [True, False], ids=["default", "no-run-code"])
def test_the_blend_is_fitted_on_heuristics_scored_as_the_app_scores_them(run_code: bool, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The app runs answer code, so the graded rows' heuristic figures (what the program regime's
    # blend is fitted on) must come from running it too, in training and in the benchmark's CV.
    seen: list[bool] = []
    real = T.heuristic_scores

    def spy(frame, **kwargs):
        seen.append(kwargs.get("run_code", False))
        return real(frame, **kwargs)

    monkeypatch.setattr(T, "heuristic_scores", spy)
    graded = _tiny_graded(tmp_path / "graded.csv")
    config = T.QualityConfig(test_fraction=0.25, folds=2, alphas=(10.0,), routerbench_prompts=0, run_code=run_code)
    T.train(graded, None, routerbench_dir=None, config=config)
    bench.graded_cross_validation(T.load_graded(graded), folds=2, run_code=run_code)
    assert seen == [run_code] * 4


def test_style_features_tell_dense_prose_from_wordy_prose() -> None:
    dense = ("Paris, the capital of France, holds the Louvre (opened 1793).\n\n"
             "Its Metro carries about 4 million riders daily; Haussmann rebuilt the centre in 1853-1870.")
    wordy = ("It is the case that the city of Paris is in the country of France and it is a city that is "
             "one of the cities that is in the north of the country, and it is a city that has a lot of things.")
    d, w = (dict(zip(Q.TEXT_FEATURES, Q.text_features("Tell me about Paris.", a))) for a in (dense, wordy))
    assert d["stopword_share"] < w["stopword_share"]
    assert d["punctuation_variety"] > w["punctuation_variety"]
    assert d["log_paragraphs"] > w["log_paragraphs"]
    assert d["capitalised_share"] > w["capitalised_share"]
    assert d["mean_word_length"] > w["mean_word_length"]
    hedged = Q.text_features("Q?", "It may depend. However, it might possibly work, but I'm sorry, I cannot say.")
    h = dict(zip(Q.TEXT_FEATURES, hedged))
    assert h["hedges"] > 0
    assert all(np.isfinite(Q.text_features("Q?", text)).all() for text in ("", "?", "\n\n\n", "a" * 30000))


TWO_OPTIONS = ("The trophy doesn't fit into the brown suitcase because _ is too large.\nA) the trophy\n"
               'B) the suitcase\nPrint only a single choice  from "A" or "B" without explanation. Answer:')


def test_a_two_option_question_has_its_own_regime_and_old_folders_give_it_the_choice_blend(tmp_path: Path) -> None:
    """Half of all guesses agree on two options, so the peers' vote means less there than on four:
    the blend is fitted apart ("binary"); a folder trained before that regime scores it as choice."""
    assert evaluate(TWO_OPTIONS, "A")["regime"] == "binary"
    assert evaluate(ARC_PROMPT, "B")["regime"] == "choice"
    group = evaluate_group(TWO_OPTIONS, {"a": "A", "b": "A", "c": "A", "d": "B"})
    assert group["a"]["learned"]["regime"] == "binary/peers"
    assert group["a"]["normalized"] > group["d"]["normalized"]
    assert Q.blend_key({"choice/peers": {}, "open/alone": {}}, "binary/peers") == "choice/peers"
    assert Q.blend_key({"choice/alone": {}, "open/alone": {}}, "binary/peers") == "choice/alone"
    assert Q.blend_key({"open/alone": {}}, "binary/alone") == "open/alone"
    assert Q.blend_key({"math/alone": {}, "open/alone": {}}, "math/peers") == "math/alone"


def _outcome_world(informative: bool, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """400 right/wrong answers to 80 prompts ranked by the heuristic (a fifth of them wrong); the
    learned score either also knows who is right or is noise."""
    rng = np.random.default_rng(seed)
    n = 400
    right = (rng.uniform(size=n) < 0.6).astype(float)
    noisy = np.where(rng.uniform(size=n) < 0.2, 1 - right, right)
    H = np.column_stack([np.where(noisy == 1, 0.8, 0.4) + rng.normal(0, 0.05, n), np.zeros(n)])
    q = (0.3 + 0.4 * right + rng.normal(0, 0.15, n)) if informative else rng.uniform(0, 1, n)
    return ["binary/peers"] * n, H, np.clip(q, 0, 1), right, [f"p{i // 5}" for i in range(n)]


def test_an_outcome_fitted_regime_keeps_the_learned_score_only_where_cross_validation_says_it_helps() -> None:
    keys, H, q, target, prompts = _outcome_world(informative=False)
    outcome = np.ones(len(keys), bool)
    fitted_in_sample = T.fit_blends(keys, H, q, target, outcome=outcome)["binary/peers"]
    assert fitted_in_sample["quality"] > 0          # the premise: noise gets a weight in sample
    checked = T.fit_blends(keys, H, q, target, outcome=outcome, outcome_groups=prompts)["binary/peers"]
    assert checked["quality"] == 0.0 and checked["learned_kept"] is False
    assert checked["cv_auc_learned"] <= checked["cv_auc_without"]
    assert checked["heuristic"] > 0 and checked["source"] == "right/wrong outcomes"
    # a learned score that knows who is right keeps its weight
    keys, H, q, target, prompts = _outcome_world(informative=True)
    kept = T.fit_blends(keys, H, q, target, outcome=outcome, outcome_groups=prompts)["binary/peers"]
    assert kept["learned_kept"] is True and kept["quality"] > 0
    assert kept["cv_auc_learned"] > kept["cv_auc_without"]
    # graded-only regimes are never checked this way (no outcomes to check on)
    graded = T.fit_blends(["open/alone"] * len(keys), H, q, target, outcome=np.zeros(len(keys), bool),
                          outcome_groups=prompts)["open/alone"]
    assert "learned_kept" not in graded


def test_the_benchmark_compares_the_evaluator_with_its_heuristics_on_the_same_answers() -> None:
    labels = [1, 0, 1, 0, 1, 0]
    groups = ["a", "a", "b", "b", "c", "c"]
    better = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3]           # AUC 1.0
    worse = [0.4, 0.6, 0.8, 0.2, 0.7, 0.3]            # one of 9 pairs lost: AUC 8/9
    diff = bench.paired_auc_difference(groups, labels, better, worse, resamples=300)
    assert diff["auc_difference"] == pytest.approx(1 - 8 / 9, abs=1e-4)
    low, high = diff["auc_difference_ci95"]
    assert 0.0 <= low <= diff["auc_difference"] <= high
    same = bench.paired_auc_difference(groups, labels, better, better, resamples=50)
    assert same["auc_difference"] == 0.0 and same["auc_difference_ci95"] == (0.0, 0.0)


def test_the_explanation_says_when_a_regime_gives_the_learned_score_no_weight(monkeypatch) -> None:
    model = Q.get_model()
    weights = dict(model.combination["binary/peers"])
    answers = {"a": "A", "b": "A", "c": "B"}
    monkeypatch.setitem(model.combination, "binary/peers", {**weights, "quality": 0.0})
    text = evaluate_group(TWO_OPTIONS, answers)["a"]["explanations"]["learned_quality"]
    assert "not weighted here" in text and "binary/peers" in text and "blended" not in text
    monkeypatch.setitem(model.combination, "binary/peers", {**weights, "quality": 1.5})
    text = evaluate_group(TWO_OPTIONS, answers)["a"]["explanations"]["learned_quality"]
    assert "blended with the heuristics'" in text and "not weighted" not in text


def test_the_graded_mode_takes_a_fold_seed_and_records_it(tmp_path: Path) -> None:
    graded = _tiny_graded(tmp_path / "graded.csv", prompts=6)
    reports = {}
    for seed in (0, 1):
        out = tmp_path / f"graded{seed}.json"
        assert bench.main(["--graded", str(graded), "--out", str(out), "--folds", "3", "--seed", str(seed),
                           "--data-dir", str(tmp_path / "no-routerbench")]) == 0
        reports[seed] = json.loads(out.read_text())
    assert reports[1]["command"].endswith("--seed 1") and "--seed" not in reports[0]["command"]
    assert reports[1]["cross_validation"]["length"] == reports[0]["cross_validation"]["length"]  # not a fold figure
