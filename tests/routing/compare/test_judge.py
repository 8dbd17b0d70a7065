"""The LLM judge: robust grade parsing, and pairwise verdicts that count only when both orders agree."""

from __future__ import annotations

import re

import pytest

from routing.errors import UnknownModelError
from routing.compare.judge import Judge, parse_grade, parse_verdict

JUDGE = "google/gemini-2.0-flash-001"  # the default judge (gemini-flash) as the server sees it

GOOD = "def reverse(s):\n    return s[::-1]  # GOOD"
BAD = "def reverse(s): return s  # BAD"


@pytest.mark.parametrize("reply, grade", [
    ("Clear and correct.\nGrade: 8", 8.0),
    ("**Rating:** 7/10", 7.0),
    ("Rating: [[9]]", 9.0),
    ("On a scale of 1 to 10 ... the answer deserves 6/10.", 6.0),
    ("I'd give it 4 out of 10", 4.0),
    ("Scale is 1-10. Grade: 3\n\nFinal grade: 5", 5.0),
    ("<think>maybe Grade: 2</think>The answer is fine. Grade: 7", 7.0),
    ("7", 7.0),
    ("Grade: 11", None),
    ("Grade: 0", None),
    ("The answer is good.", None),
    ("", None),
])
def test_parse_grade(reply, grade):
    assert parse_grade(reply) == grade


@pytest.mark.parametrize("reply, verdict", [
    ("A is more complete. [[A]]", "A"),
    ("Both fine.\n[[C]]", "C"),
    ("Verdict: B", "B"),
    ("**Winner:** Answer A", "A"),
    ("Overall, Answer B is clearly better.", "B"),
    ("It's a tie.", "C"),
    ("B", "B"),
    ("I cannot decide.", None),
])
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def _answers_in(content: str) -> tuple[str, str]:
    a = re.search(r"\[Answer A\]\n(.*?)\n\[End of answer A\]", content, re.S).group(1)
    b = re.search(r"\[Answer B\]\n(.*?)\n\[End of answer B\]", content, re.S).group(1)
    return a, b


def fair_judge(model, messages):
    """Picks whichever answer contains GOOD, wherever it is shown."""
    a, b = _answers_in(messages[-1]["content"])
    return "A is right. [[A]]" if "GOOD" in a else ("B is right. [[B]]" if "GOOD" in b else "[[C]]")


def test_pairwise_asks_in_both_orders_and_counts_an_agreed_win(protocol_server, make_service):
    protocol_server.set_model(JUDGE, reply=fair_judge)
    judge = Judge(make_service().router)
    verdict = judge.compare("Write a function that reverses a string", ("bad-model", BAD), ("good-model", GOOD))
    assert verdict.winner == "good-model" and verdict.consistent and verdict.verdicts == ["B", "A"]
    shown = [_answers_in(r.json["messages"][-1]["content"]) for r in protocol_server.chat_requests(JUDGE)]
    assert sorted(shown) == sorted([(BAD, GOOD), (GOOD, BAD)])  # both orders, each exactly once


def test_position_biased_judge_gives_no_win(protocol_server, make_service):
    protocol_server.set_model(JUDGE, reply="The first one is better. [[A]]")
    verdict = Judge(make_service().router).compare("Reverse a string", ("x", BAD), ("y", GOOD))
    assert verdict.winner is None and not verdict.consistent and verdict.verdicts == ["A", "A"]
    assert len(protocol_server.chat_requests(JUDGE)) == 2


def test_unparseable_or_failing_judge_is_no_win_and_no_crash(protocol_server, make_service):
    protocol_server.set_model(JUDGE, reply="Hmm, hard to say.")
    judge = Judge(make_service().router)
    assert judge.compare("q", ("x", "1"), ("y", "2")).winner is None
    protocol_server.set_model(JUDGE, status=500)
    verdict = judge.compare("q", ("x", "1"), ("y", "2"))
    assert verdict.winner is None and len(verdict.errors) == 2 and "500" in verdict.errors[0]


def test_grade_uses_the_rubric_and_parses_the_reply(protocol_server, make_service):
    protocol_server.set_model(JUDGE, reply=lambda m, msgs: "Correct and concise.\nGrade: 9"
                              if "GOOD" in msgs[-1]["content"] else "Wrong output.\nGrade: 2")
    judge = Judge(make_service().router)
    grades = judge.grade_many("Reverse a string in Python", {"good": GOOD, "bad": BAD})
    assert grades["good"].grade == 9.0 and grades["bad"].grade == 2.0
    sent = protocol_server.chat_requests(JUDGE)[0].json["messages"][-1]["content"]
    assert "Grade the answer from 1 to 10" in sent and "Reverse a string in Python" in sent


def test_grade_errors_are_reported_not_raised(protocol_server, make_service):
    protocol_server.set_model(JUDGE, reply="Looks fine to me.")
    judge = Judge(make_service().router)
    g = judge.grade("q", "a")
    assert g.grade is None and "no grade" in g.error
    protocol_server.set_model(JUDGE, status=503)
    g = judge.grade("q", "a")
    assert g.grade is None and "failed" in g.error


def test_judge_model_is_configurable_and_validated(protocol_server, make_service):
    service = make_service()
    assert Judge(service.router).model == "gemini-flash"
    assert Judge(service.router, "qwen2.5").model == "qwen2.5"
    with pytest.raises(UnknownModelError, match="Valid model ids"):
        Judge(service.router, "gpt-17")


def test_long_answers_are_clipped_to_fit_the_prompt_limit(protocol_server, make_service):
    protocol_server.set_model(JUDGE, reply="Grade: 5")
    judge = Judge(make_service(max_prompt_chars=3000).router)
    assert judge.grade("q", "word " * 5000).grade == 5.0
    assert judge.compare("q", ("x", "a" * 9000), ("y", "b" * 9000)).errors == []
    assert all(len(r.json["messages"][-1]["content"]) <= 3000 for r in protocol_server.chat_requests(JUDGE))
