"""Behaviour of the heuristic answer evaluator and of its benchmark's metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from routing.evaluation import benchmark as bench
from routing.evaluation import code as code_module
from routing.evaluation.sandbox import run_python
from routing.evaluation.evaluator import DIMENSIONS, PENALTIES, PENALTY_FLOOR, evaluate

CODE_PROMPT = (
    "Write a python function `is_palindrome(s)` that returns True when the string reads the same "
    "backwards.\nassert is_palindrome('level')\nassert not is_palindrome('abc')\n"
    "assert is_palindrome('')"
)
GOOD_CODE = (
    "Here is a simple solution:\n\n```python\ndef is_palindrome(s):\n    return s == s[::-1]\n```\n\n"
    "It compares the string with its reverse, for example `is_palindrome('level')` is True."
)
WRONG_CODE = (
    "Here is a simple solution:\n\n```python\ndef is_palindrome(s):\n    return s == s[1:]\n```\n\n"
    "It compares the string with its reverse, for example `is_palindrome('level')` is True."
)
BROKEN_CODE = (
    "Here is a simple solution:\n\n```python\ndef is_palindrome(s)\n    return s == s[::-1\n```\n\n"
    "It compares the string with its reverse, for example `is_palindrome('level')` is True."
)
JS_CODE = (
    "Here is a simple solution:\n\n```javascript\nfunction is_palindrome(s) {\n"
    "  return s === s.split('').reverse().join('');\n}\n```\n\n"
    "It compares the string with its reverse, for example `is_palindrome('level')` is true."
)
MATH_PROMPT = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
               "May. How many clips did Natalia sell altogether in April and May?")
STORY_PROMPT = "Write a short story about a lighthouse keeper who befriends a storm."
STORY = (
    "Every night Mara climbed the ninety-one steps of the lighthouse, her lantern swinging like a small "
    "golden moon. The sea below growled and hissed against the black rocks.\n\n"
    "One October evening the storm arrived early. It pressed its grey face to the glass and whispered her "
    "name. \"Why do you shine at me?\" it asked, its voice rumbling like distant thunder.\n\n"
    "\"So the ships can find their way home,\" Mara said. The storm was quiet for a long moment, then it "
    "softened into a silver drizzle, as if it too wanted to see the boats return safely.\n\n"
    "From then on, whenever the wind rose, Mara left a second lamp burning in the window, a warm amber "
    "light just for her strange, restless friend."
)
FACT_PROMPT = "Why is the sky blue?"
FACT_ANSWER = (
    "The sky looks blue because of Rayleigh scattering. Sunlight contains all visible wavelengths, and "
    "when it passes through the atmosphere the short blue wavelengths (around 450 nm) are scattered by "
    "nitrogen and oxygen molecules far more than red ones (about 700 nm), roughly 5 times more. That "
    "scattered blue light reaches our eyes from every direction, so the whole sky appears blue. At sunset "
    "the light travels through more air, the blue is scattered away, and reds and oranges remain."
)
ARC_PROMPT = (
    "Which gas do plants absorb from the air?\nA) oxygen\nB) carbon dioxide\nC) nitrogen\nD) helium\n"
    'Print only a single choice  from "A" or "B" or "C" or "D" without explanation.\nAnswer:\nB\n\n'
    "What is the mass of a carbon atom that has 6 protons, 7 neutrons, and 6 electrons?\nA) 19\nB) 7\n"
    'C) 13\nD) 6\nPrint only a single choice  from "A" or "B" or "C" or "D" without explanation.\nAnswer:'
)


def test_dimension_tables_are_the_single_source() -> None:
    result = evaluate(FACT_PROMPT, FACT_ANSWER)
    assert set(result["dimensions"]) == set(DIMENSIONS)
    assert set(result["penalties"]) == set(PENALTIES)
    assert DIMENSIONS == {"structure": 2.0, "examples": 1.5, "formatting": 1.0, "code_quality": 4.0,
                          "math_accuracy": 4.0, "creativity": 4.0, "factual_content": 3.0,
                          "visual_description": 3.0}
    assert PENALTY_FLOOR == -14.0


@pytest.mark.parametrize("prompt, answer", [
    (CODE_PROMPT, GOOD_CODE), (CODE_PROMPT, BROKEN_CODE), (CODE_PROMPT, JS_CODE),
    (MATH_PROMPT, "48 / 2 = 24 in May, so 48 + 24 = 72.\n#### 72"),
    (STORY_PROMPT, STORY), (FACT_PROMPT, FACT_ANSWER), (ARC_PROMPT, "C"), (ARC_PROMPT, "I do not know"),
    ("Describe the view of a city skyline at night.", "Tall glass towers glow with golden and blue light; "
     "below them the dark river reflects red signs on the left bank."),
    ("hello", "Hi! How can I help you today?"), (FACT_PROMPT, ""), ("", "some answer"),
    (FACT_PROMPT, "blue " * 400),
])
def test_every_dimension_present_and_within_range(prompt: str, answer: str) -> None:
    result = evaluate(prompt, answer, run_code=False)
    for key in ("dimensions", "max_points", "applied", "explanations", "penalties", "total",
                "normalized", "kind"):
        assert key in result
    assert set(result["dimensions"]) == set(DIMENSIONS)
    for name, points in result["dimensions"].items():
        assert 0.0 <= points <= DIMENSIONS[name], (name, points)
        assert name in result["explanations"]
        if name not in result["applied"]:
            assert points == 0.0
    assert set(result["max_points"]) == set(result["applied"])
    assert all(result["max_points"][n] == DIMENSIONS[n] for n in result["applied"])
    for name, points in result["penalties"].items():
        assert PENALTIES[name] <= points <= 0.0
    assert sum(result["penalties"].values()) >= PENALTY_FLOOR or result["total"] >= PENALTY_FLOOR
    assert 0.0 <= result["normalized"] <= 1.0
    assert result["kind"]


def test_working_code_beats_broken_and_wrong_code() -> None:
    good = evaluate(CODE_PROMPT, GOOD_CODE)
    wrong = evaluate(CODE_PROMPT, WRONG_CODE)
    broken = evaluate(CODE_PROMPT, BROKEN_CODE)
    assert "coding" in good["kind"] and "code_quality" in good["applied"]
    assert good["dimensions"]["code_quality"] > wrong["dimensions"]["code_quality"]
    assert good["dimensions"]["code_quality"] > broken["dimensions"]["code_quality"]
    assert good["normalized"] > wrong["normalized"] > broken["normalized"]
    assert "3/3" in good["explanations"]["code_quality"]
    assert "does not parse" in broken["explanations"]["code_quality"]


def test_broken_code_loses_without_running_code() -> None:
    good = evaluate(CODE_PROMPT, GOOD_CODE, run_code=False)
    broken = evaluate(CODE_PROMPT, BROKEN_CODE, run_code=False)
    assert good["dimensions"]["code_quality"] > broken["dimensions"]["code_quality"]


def test_run_code_false_never_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("code was executed although run_code=False")

    monkeypatch.setattr(code_module, "run_python", forbidden)
    result = evaluate(CODE_PROMPT, GOOD_CODE, run_code=False)
    assert "not run" in result["explanations"]["code_quality"]


def test_code_in_the_wrong_language_loses() -> None:
    python = evaluate(CODE_PROMPT, GOOD_CODE, run_code=False)
    javascript = evaluate(CODE_PROMPT, JS_CODE, run_code=False)
    assert javascript["dimensions"]["code_quality"] < python["dimensions"]["code_quality"]
    assert "python was asked" in javascript["explanations"]["code_quality"]
    assert javascript["normalized"] < python["normalized"]


def test_own_examples_that_do_not_hold_lose() -> None:
    prompt = "Write a python function to square a number."
    right = "```python\ndef square(x):\n    return x * x\n\nprint(square(3))  # Output: 9\n```"
    wrong = "```python\ndef square(x):\n    return x * 2\n\nprint(square(3))  # Output: 9\n```"
    assert evaluate(prompt, right)["dimensions"]["code_quality"] > evaluate(prompt, wrong)["dimensions"][
        "code_quality"]


def test_right_final_math_answer_beats_wrong_one_with_reference() -> None:
    right = evaluate(MATH_PROMPT, "In May she sold 48 / 2 = 24 clips. In total 48 + 24 = 72.\n#### 72",
                     reference="72")
    wrong = evaluate(MATH_PROMPT, "In May she sold 48 / 2 = 24 clips. In total 48 + 24 = 74.\n#### 74",
                     reference="72")
    assert "math" in right["kind"]
    assert right["dimensions"]["math_accuracy"] >= 3.5
    assert wrong["dimensions"]["math_accuracy"] <= 1.0
    assert right["normalized"] > wrong["normalized"]
    assert right["details"]["final_answer"] == "72"


def test_math_without_reference_checks_the_arithmetic() -> None:
    consistent = evaluate(MATH_PROMPT, "48 / 2 = 24, and 48 + 24 = 72. The answer is 72.")
    wrong_sums = evaluate(MATH_PROMPT, "48 / 2 = 26, and 48 + 26 = 70. The answer is 70.")
    assert consistent["dimensions"]["math_accuracy"] > wrong_sums["dimensions"]["math_accuracy"]


def test_multiple_choice_commitment_and_format() -> None:
    clean = evaluate(ARC_PROMPT, "C")
    decorated = evaluate(ARC_PROMPT, "C) 13")
    no_choice = evaluate(ARC_PROMPT, "I do")
    invalid = evaluate(ARC_PROMPT, "G")
    assert "multiple_choice" in clean["kind"]
    assert clean["applied"] == ["factual_content"]
    assert clean["details"]["chosen_option"] == "C"
    assert clean["normalized"] > decorated["normalized"] > no_choice["normalized"]
    assert invalid["normalized"] == 0.0
    with_reference = evaluate(ARC_PROMPT, "A", reference="C")
    assert with_reference["normalized"] < clean["normalized"]


def test_numbered_options_are_detected() -> None:
    prompt = ("The trophy doesn't fit into the suitcase because _ is too large.\n"
              "Option 1: trophy\nOption 2: suitcase\nAnswer with 1 or 2.")
    result = evaluate(prompt, "Option 1")
    assert result["details"]["chosen_option"] == "1"


def test_repetition_loop_is_penalised() -> None:
    loop = FACT_ANSWER + " " + "The sky is blue because the sky is blue. " * 30
    result = evaluate(FACT_PROMPT, loop)
    assert result["penalties"]["repetition"] < -2.0
    assert result["normalized"] < evaluate(FACT_PROMPT, FACT_ANSWER)["normalized"]


def test_refusal_is_penalised() -> None:
    result = evaluate(FACT_PROMPT, "I'm sorry, but I can't help with that request.")
    assert result["penalties"]["refusal"] == PENALTIES["refusal"]
    assert result["normalized"] < 0.2


def test_truncated_answer_is_penalised() -> None:
    cut = FACT_ANSWER.rsplit(" ", 9)[0].rstrip(".")  # stops mid-sentence
    cut_code = "Here is the code:\n\n```python\ndef is_palindrome(s):\n    return s =="
    truncated = evaluate(FACT_PROMPT, cut)
    assert truncated["penalties"]["truncation"] < 0
    assert truncated["normalized"] < evaluate(FACT_PROMPT, FACT_ANSWER)["normalized"]
    assert evaluate(CODE_PROMPT, cut_code, run_code=False)["penalties"]["truncation"] == PENALTIES["truncation"]


def test_error_text_and_boilerplate_are_penalised() -> None:
    error = evaluate(FACT_PROMPT, "Error: upstream provider returned 503 Service Unavailable")
    boiler = evaluate(FACT_PROMPT, "As an AI language model, I think " + FACT_ANSWER)
    assert error["penalties"]["error_text"] < 0
    assert boiler["penalties"]["boilerplate"] < 0


@pytest.mark.parametrize("answer", ["", "   \n\t "])
def test_empty_answer_scores_zero(answer: str) -> None:
    result = evaluate(FACT_PROMPT, answer)
    assert result["normalized"] == 0.0
    assert result["penalties"]["empty"] == PENALTIES["empty"]
    assert all(points == 0.0 for points in result["dimensions"].values())


def test_story_scores_on_creativity_not_on_code() -> None:
    result = evaluate(STORY_PROMPT, STORY)
    assert "creative" in result["kind"]
    assert "creativity" in result["applied"] and "code_quality" not in result["applied"]
    assert result["dimensions"]["code_quality"] == 0.0
    assert result["dimensions"]["creativity"] >= 2.0
    flat = evaluate(STORY_PROMPT, "A man kept a lighthouse. There was a storm. They were friends. The end.")
    assert result["dimensions"]["creativity"] > flat["dimensions"]["creativity"]


def test_visual_prompt_uses_visual_description() -> None:
    prompt = "Describe the view of a city skyline at night."
    vivid = ("Tall glass towers glow with golden and blue light against the dark sky. Below them the wide "
             "river reflects red and white signs, and on the left a round, brightly lit bridge arches over "
             "the water.")
    vague = "It is nice. There are many buildings and it looks good."
    rich = evaluate(prompt, vivid)
    assert "visual_description" in rich["applied"]
    assert rich["dimensions"]["visual_description"] > evaluate(prompt, vague)["dimensions"]["visual_description"]


def test_bad_inputs_do_not_crash() -> None:
    weird = evaluate("```python\n" * 5, "```\n" * 7 + "\x00\x01 ((((")
    assert 0.0 <= weird["normalized"] <= 1.0
    assert evaluate(None, None)["normalized"] == 0.0  # type: ignore[arg-type]


def test_sandbox_stops_loops_and_blocks_writes_outside(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('x')\nwhile True:\n    pass\n", timeout_s=1.0)
    assert result.timed_out
    assert not target.exists()
    assert result.statements and not result.statements[0].ok


def test_sandbox_reports_tests_and_prints() -> None:
    result = run_python("def f(x):\n    return x + 1\nprint(f(1))\n", ["assert f(1) == 2", "assert f(1) == 3"])
    assert result.tests == [True, False]
    assert result.prints == [(3, "2\n")]


# ---- benchmark -------------------------------------------------------------------------------------

TOY_GROUPS = ["g1", "g1", "g1", "g2", "g2", "g2", "g3"]
TOY_LABELS = [1, 0, 1, 0, 1, 0, 1]
TOY_SCORES = [0.9, 0.5, 0.4, 0.1, 0.7, 0.7, 0.2]


def test_roc_auc_on_toy_table() -> None:
    # Positives 0.9, 0.4, 0.7, 0.2 vs negatives 0.5, 0.1, 0.7: wins 3 + 1 + 2.5 (one tie) + 1 = 7.5 of 12.
    assert bench.roc_auc(TOY_LABELS, TOY_SCORES) == pytest.approx(7.5 / 12)
    assert math.isnan(bench.roc_auc([1, 1], [0.2, 0.3]))


def test_pairwise_accuracy_on_toy_table() -> None:
    # g1: 0.9 > 0.5 (win), 0.4 < 0.5 (loss); g2: 0.7 > 0.1 (win), 0.7 = 0.7 (tie); g3 has no pair.
    accuracy, pairs, tie_rate = bench.pairwise_accuracy(TOY_GROUPS, TOY_LABELS, TOY_SCORES)
    assert pairs == 4
    assert accuracy == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert tie_rate == pytest.approx(0.25)
    nan_accuracy, no_pairs, _ = bench.pairwise_accuracy(["a"], [1], [0.3])
    assert no_pairs == 0 and math.isnan(nan_accuracy)


def _toy_routerbench(folder: Path) -> None:
    prompt = repr([ARC_PROMPT])
    frame = pd.DataFrame({
        "Unnamed: 0": [0, 1],
        "sample_id": ["arc.1", "arc.2"],
        "prompt": [prompt, prompt],
        "eval_name": ["arc", "arc"],
        "m1": [1.0, 0.0],
        "m2": [0.0, None],
        "m1|model_response": [repr(["C"]), repr(["I do"])],
        "m2|model_response": [repr(["Unfortunately I"]), repr(["C"])],
        "m1|total_cost": [0.1, 0.1],
        "m2|total_cost": [0.1, 0.1],
    })
    frame.to_csv(folder / "arc_challenge_test.csv", index=False)


def test_load_answers_reads_the_routerbench_layout(tmp_path: Path) -> None:
    _toy_routerbench(tmp_path)
    answers = bench.load_answers(tmp_path / "arc_challenge_test.csv")
    assert len(answers) == 3  # the row with a missing score is dropped
    assert set(answers["model"]) == {"m1", "m2"}
    assert answers.loc[answers["model"] == "m1", "answer"].tolist() == ["C", "I do"]
    assert answers["prompt"].iloc[0].endswith("Answer:")


def test_benchmark_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _toy_routerbench(tmp_path)
    out = tmp_path / "report.json"
    assert bench.main(["--data-dir", str(tmp_path), "--out", str(out), "--no-run-code",
                       "--datasets", "arc_challenge"]) == 0
    report = json.loads(out.read_text())
    result = report["results"]["arc_challenge_test"]
    assert result["answers"] == 3 and result["pairs"] == 1
    assert result["pairwise_accuracy"] == 1.0  # "C" beats "Unfortunately I" on the same prompt
    assert "arc_challenge_test" in capsys.readouterr().out


def test_benchmark_skips_when_data_folder_is_missing(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert bench.main(["--data-dir", str(tmp_path / "missing"), "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_benchmark_runs_on_the_shared_data_when_present(tmp_path: Path) -> None:
    if not bench.DEFAULT_DATA_DIR.is_dir():
        pytest.skip(f"shared data folder {bench.DEFAULT_DATA_DIR} not found")
    results = bench.run(bench.DEFAULT_DATA_DIR, ["test"], ["winograde"], run_code=False, limit=40)
    assert results["winograde_test"]["auc"] > 0.5


# --- agreement with the other models' answers (peers) -------------------------------------------

from routing.evaluation.evaluator import evaluate_group  # noqa: E402

PEER_MATH_RIGHT = "She sold 48 / 2 = 24 clips in May, so 48 + 24 = 72 clips.\nThe answer is 72."
PEER_MATH_WRONG = "She sold 48 / 2 = 24 clips in May, so 48 + 24 = 72 clips.\nThe answer is 96."


def test_agreeing_choice_scores_above_a_lone_dissenter() -> None:
    results = evaluate_group(ARC_PROMPT, {"m1": "C", "m2": "C", "m3": "C", "m4": "B"})
    assert results["m1"]["normalized"] > results["m4"]["normalized"]
    assert results["m1"]["details"]["peer_agreement"] == pytest.approx(2 / 3)
    assert results["m4"]["details"]["peer_agreement"] == 0.0
    assert results["m4"]["details"]["peer_votes"] == {"result": "B", "agree": 0, "voters": 3, "peers": 3,
                                                      "used": True}
    assert "0 of 3 other answers" in results["m4"]["explanations"]["factual_content"]
    # Alone, the two bare letters tie: the agreement is what separates them.
    assert evaluate(ARC_PROMPT, "C")["normalized"] == evaluate(ARC_PROMPT, "B")["normalized"]


def test_agreeing_final_number_scores_above_a_lone_dissenter() -> None:
    peers = [PEER_MATH_RIGHT, "Total: 48 + 24 = 72. The answer is 72.", PEER_MATH_WRONG]
    agreeing = evaluate(MATH_PROMPT, PEER_MATH_RIGHT, peers=peers[1:])
    dissenting = evaluate(MATH_PROMPT, PEER_MATH_WRONG, peers=peers[:2])
    assert agreeing["dimensions"]["math_accuracy"] > dissenting["dimensions"]["math_accuracy"]
    assert agreeing["details"]["peer_agreement"] == 0.5 and dissenting["details"]["peer_agreement"] == 0.0
    assert "reach 72" in agreeing["explanations"]["math_accuracy"]


def test_the_reference_beats_the_majority() -> None:
    majority = evaluate(ARC_PROMPT, "B", reference="C", peers=["B", "B", "B"])
    dissenter = evaluate(ARC_PROMPT, "C", reference="C", peers=["B", "B", "B"])
    assert dissenter["normalized"] > majority["normalized"]
    assert majority["details"]["peer_votes"]["used"] is False
    assert "the reference decides" in majority["explanations"]["factual_content"]
    math_majority = evaluate(MATH_PROMPT, PEER_MATH_WRONG, reference="72", peers=[PEER_MATH_WRONG] * 3)
    math_dissenter = evaluate(MATH_PROMPT, PEER_MATH_RIGHT, reference="72", peers=[PEER_MATH_WRONG] * 3)
    assert math_dissenter["normalized"] > math_majority["normalized"]
    # With a reference the peers change nothing.
    assert majority["normalized"] == evaluate(ARC_PROMPT, "B", reference="C")["normalized"]


@pytest.mark.parametrize("prompt, answer", [(ARC_PROMPT, "B"), (MATH_PROMPT, PEER_MATH_RIGHT),
                                            (CODE_PROMPT, GOOD_CODE)])
def test_without_peers_nothing_changes(prompt: str, answer: str) -> None:
    alone = evaluate(prompt, answer, run_code=False)
    assert evaluate(prompt, answer, run_code=False, peers=None) == alone
    assert "peer_agreement" not in alone["details"]
    nobody = evaluate(prompt, answer, run_code=False, peers=[])
    assert nobody["normalized"] == alone["normalized"] and nobody["details"]["peer_agreement"] is None


def test_peers_leave_prompts_without_a_comparable_result_alone() -> None:
    alone = evaluate(CODE_PROMPT, GOOD_CODE, run_code=False)
    with_peers = evaluate(CODE_PROMPT, GOOD_CODE, run_code=False, peers=[WRONG_CODE, BROKEN_CODE])
    assert with_peers["normalized"] == alone["normalized"]
    assert with_peers["details"]["peer_agreement"] is None


def test_peers_without_a_result_abstain_and_bad_peers_do_not_crash() -> None:
    result = evaluate(ARC_PROMPT, "C", peers=["", None, "I cannot tell", 42, "C"])  # type: ignore[list-item]
    assert result["details"]["peer_votes"] == {"result": "C", "agree": 1, "voters": 1, "peers": 5, "used": True}
    uncommitted = evaluate(ARC_PROMPT, "Maybe", peers=["C", "C"])
    assert uncommitted["details"]["peer_agreement"] is None
    assert uncommitted["normalized"] == evaluate(ARC_PROMPT, "Maybe")["normalized"]


def test_evaluate_group_is_leave_one_out() -> None:
    answers = {"x": "C", "y": "B", "z": "C", "e": ""}
    results = evaluate_group(ARC_PROMPT, answers)
    assert list(results) == list(answers)
    for name, answer in answers.items():
        others = [a for n, a in answers.items() if n != name]
        assert results[name] == evaluate(ARC_PROMPT, answer, peers=others)
    assert results["x"]["details"]["peer_votes"]["agree"] == 1  # z, not itself
    assert results["e"]["normalized"] == 0.0
    assert evaluate_group(ARC_PROMPT, answers, workers=3) == results
    assert evaluate_group(ARC_PROMPT, {}) == {}
    with pytest.raises(TypeError):
        evaluate_group(ARC_PROMPT, answers, peers=["C"])


def test_benchmark_reports_the_with_peers_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _toy_routerbench(tmp_path)
    out = tmp_path / "report.json"
    assert bench.main(["--data-dir", str(tmp_path), "--out", str(out), "--no-run-code",
                       "--datasets", "arc_challenge"]) == 0
    peers = json.loads(out.read_text())["results"]["arc_challenge_test"]["with_peers"]
    assert set(peers) >= {"auc", "pairwise_accuracy", "auc_ci95", "pairwise_accuracy_ci95", "tie_rate"}
    assert peers["pairwise_accuracy"] == 1.0
    assert "with peers" in capsys.readouterr().out


def test_reasoning_of_thinking_models_is_not_scored():
    """DeepSeek R1 (in the pool) and its distills served by Ollama/vLLM put their reasoning in
    <think> blocks: the user reads the answer after it, and that is what gets scored."""
    from routing.evaluation.text import strip_reasoning

    prompt = "What is 12 * 12? Give just the number."
    thinking = ("<think>\nLet me see. 12 * 12 = 144? Or maybe 124...\n```python\nprint(12*12)\n```\n"
                "- step one\n- step two\n</think>\n\n144")
    plain = evaluate(prompt, "144", reference="144")
    scored = evaluate(prompt, thinking, reference="144")
    assert scored["normalized"] == plain["normalized"] and scored["total"] == plain["total"]
    assert scored["details"]["reasoning_chars"] > 50 and scored["details"]["final_answer"] == "144"
    # A template that opens the block in the prompt: the reply starts inside it.
    assert strip_reasoning("so it is 124, wait, 144</think>144")[0] == "144"
    # Cut off while still thinking: nothing visible, scored as an empty answer.
    cut = evaluate(prompt, "<think>12 * 12 is 144 so the answer is 144", reference="144")
    assert cut["penalties"]["empty"] < 0 and cut["normalized"] == 0
    # Text without tags is untouched; "<" alone is not a tag.
    assert strip_reasoning("a < b and b > c") == ("a < b and b > c", 0)


def test_peers_reasoning_does_not_vote():
    prompt = "Which is larger?\nA) 3\nB) 7\nAnswer with the letter."
    peers = ["<think>A looks larger... no, B) 7 is larger</think>B", "B", "<think>Answer: A? no.</think>B"]
    result = evaluate(prompt, "B", peers=peers)
    assert result["details"]["peer_votes"]["result"] == "B"
    assert result["details"]["peer_votes"]["agree"] == 3 and result["details"]["peer_agreement"] == 1.0


def test_three_copies_of_a_refusal_do_not_outvote_two_real_answers():
    """Identical answers are one voice for the text-consensus features: before the fix, three models
    sending the same refusal scored 0.73 against the real poems' 0.30 in a group of five."""
    from routing.evaluation.evaluator import evaluate_group

    prompt = "Write a four-line rhyme about the sea at night."
    poem = ("The tide comes in with silver light,\nIt hums a song to the quiet night,\n"
            "The harbour sleeps, the lanterns glow,\nAnd dreams drift out where the currents go.")
    refusal = "I'm sorry, but I can't help with that."
    group = evaluate_group(prompt, {"a": poem, "b": refusal, "c": refusal, "d": refusal, "e": poem})
    alone = evaluate_group(prompt, {"a": poem, "b": refusal})
    assert min(group["a"]["normalized"], group["e"]["normalized"]) > max(group[m]["normalized"] for m in "bcd")
    assert group["b"]["normalized"] == pytest.approx(alone["b"]["normalized"], abs=0.02)


def test_on_multiple_choice_every_agreeing_peer_is_a_voice_for_the_learned_score():
    """Peers that give the same option are agreement, the signal of the choice regime (the quality
    model's blend is fitted that way): dropping identical peers as for free text left a majority
    answer with no agreeing peer at all, scoring it exactly like the lone dissenter, and cost
    Winogrande's AUC with peers 0.852 -> 0.849."""
    from routing.evaluation.evaluator import evaluate_group

    prompt = ("The trophy doesn't fit into the brown suitcase because it is too large. What is too large?\n"
              "Option 1: the trophy\nOption 2: the suitcase\nAnswer with 1 or 2.")
    majority, dissent = "The answer is Option 1: the trophy.", "The answer is Option 2: the suitcase."
    group = evaluate_group(prompt, {"a": majority, "b": majority, "c": majority, "d": majority, "e": dissent})
    a, e = group["a"], group["e"]
    assert a["details"]["peer_votes"]["used"] and a["learned"]["used_peers"] and e["learned"]["used_peers"]
    assert a["learned"]["score"] > e["learned"]["score"] + 0.05
    assert a["normalized"] > e["normalized"]
