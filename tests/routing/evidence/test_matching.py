"""Name matching: real pool and outcome-table names against real LMArena rating names; no guessing."""

import pytest

from routing.errors import UserError
from routing.evidence.ratings import is_release_suffix, match_names

#: Rating names as they are in lmarena_text_category_ratings.csv (2025-12-17), the ones these tests need.
CANDIDATES = [
    "deepseek-r1", "deepseek-r1-0528", "deepseek-v3", "deepseek-v3-0324", "deepseek-v3.1", "deepseek-v2.5",
    "gemini-2.0-flash-001", "gemini-1.5-flash-001", "gemini-1.5-flash-002", "gemini-1.5-flash-8b-001",
    "gemini-1.5-pro-001", "gemini-1.5-pro-002", "llama-3.3-70b-instruct", "llama-3.1-8b-instruct",
    "llama-3.1-405b-instruct-bf16", "llama-3.1-405b-instruct-fp8", "llama-3-70b-instruct", "llama-2-70b-chat",
    "mistral-small-3.1-24b-instruct-2503", "mistral-small-24b-instruct-2501", "mistral-small-2506",
    "mistral-large-2402", "mistral-large-2407", "mistral-large-2411", "mistral-large-3",
    "mistral-7b-instruct", "mistral-7b-instruct-v0.2", "mixtral-8x7b-instruct-v0.1", "qwen2.5-72b-instruct",
    "qwen2-72b-instruct", "gpt-4-0314", "gpt-4-0613", "gpt-4-0125-preview", "gpt-4-1106-preview",
    "gpt-4-turbo-2024-04-09", "gpt-4.1-2025-04-14", "gpt-4o-2024-05-13", "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106", "o1-2024-12-17", "o1-mini", "o1-preview",
    "yi-34b-chat", "wizardlm-13b", "codellama-34b-instruct", "openchat-3.5", "openchat-3.5-0106",
    "athene-70b-0725", "athene-v2-chat", "gemma-2-9b-it", "gemma-3-27b-it", "gemma-3-4b-it", "claude-3-opus-20240229",
    "grok-2-2024-08-13", "grok-2-mini-2024-08-13", "qwq-32b-preview", "palm-2", "vicuna-33b",
]


@pytest.mark.parametrize("name, expected, how", [
    # the pool (assets/models.json model_name)
    ("deepseek/deepseek-r1", "deepseek-r1", "exact"),
    ("google/gemini-2.0-flash-001", "gemini-2.0-flash-001", "exact"),
    ("meta-llama/llama-3.3-70b-instruct", "llama-3.3-70b-instruct", "exact"),
    ("qwen/qwen-2.5-72b-instruct", "qwen2.5-72b-instruct", "normalised"),
    ("mistralai/mistral-small-3.1-24b-instruct", "mistral-small-3.1-24b-instruct-2503", "prefix"),
    # outcome tables: RouterBench, Arena-Bench, LLMRouter, ZeroEval columns
    ("meta/llama-2-70b-chat", "llama-2-70b-chat", "exact"),
    ("gpt-4-1106-preview", "gpt-4-1106-preview", "exact"),
    ("zero-one-ai/Yi-34B-Chat", "yi-34b-chat", "exact"),
    ("Llama-2-70b-chat", "llama-2-70b-chat", "exact"),
    ("Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b-instruct-v0.1", "exact"),
    ("gpt-4-0314", "gpt-4-0314", "exact"),
    ("openchat_3.5", "openchat-3.5", "normalised"),
    ("gemma-2-9b-it", "gemma-2-9b-it", "exact"),
    ("llama3-70b-instruct", "llama-3-70b-instruct", "normalised"),
    ("Qwen2-72B-Instruct", "qwen2-72b-instruct", "exact"),
    ("Athene-70B", "athene-70b-0725", "prefix"),
    # release stamps that are the same model
    ("o1", "o1-2024-12-17", "prefix"),
    ("grok-2", "grok-2-2024-08-13", "prefix"),
    ("claude-3-opus", "claude-3-opus-20240229", "prefix"),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "prefix"),
    ("gpt-4-turbo", "gpt-4-turbo-2024-04-09", "prefix"),
    ("mixtral-8x7b-instruct", "mixtral-8x7b-instruct-v0.1", "prefix"),
    ("gemma-3-27b", "gemma-3-27b-it", "prefix"),
])
def test_real_names_match(name, expected, how):
    report = match_names([name], CANDIDATES)
    assert report.matches == {name: (expected, how)}
    assert not report.unmatched and not report.ambiguous


@pytest.mark.parametrize("name", [
    "gpt-4",                               # not gpt-4.1-…, gpt-4o-…, gpt-4-1106-preview (ambiguous: 0314/0613)
    "WizardLM/WizardLM-13B-V1.2",          # the table has wizardlm-13b: a shorter name is not the same release
    "mistralai/mixtral-8x7b-chat", "mistralai/mistral-7b-chat", "meta/code-llama-instruct-34b-chat",
    "claude-v2", "claude-2.1", "Mistral-7B-Instruct-v0.1", "vicuna-33b-v1.3", "palm-2-chat-bison-001",
    "Mistral-Large-2",                     # not mistral-large-2402: the 2 is a version, not the start of a date
    "mistral-large",                       # not mistral-large-3 (a major version is another model)
    "Llama-3.1-405B-Inst-fp8", "Meta-Llama-3.1-8B-Instruct", "o1-mini-2024-09-12", "deepseek-v2.5-0908",
    "llama-3.1-405b",                      # -instruct-bf16 / -fp8: a precision is not a release stamp
    "athene",                              # not athene-v2-chat (v2 is a later model) nor athene-70b-0725 (a size)
    "qwq-32b",                             # not qwq-32b-preview
    "llama-3.1",                           # not llama-3.1-8b-instruct (a size)
    "palm",                                # not palm-2
    "google/gemma-3-270m",
    "",
])
def test_names_that_must_not_match(name):
    report = match_names([name], CANDIDATES)
    assert report.matches == {}


def test_gpt_4_is_ambiguous_between_its_dated_releases_only():
    report = match_names(["gpt-4"], CANDIDATES)
    assert report.ambiguous == {"gpt-4": ["gpt-4-0314", "gpt-4-0613"]}


@pytest.mark.parametrize("name, candidates", [
    ("gemini-1.5-flash", ["gemini-1.5-flash-001", "gemini-1.5-flash-002"]),    # ZeroEval; not -8b-001
    ("gemini-1.5-pro", ["gemini-1.5-pro-001", "gemini-1.5-pro-002"]),
    ("gpt-3.5-turbo", ["gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106"]),          # Arena-Bench
    ("gpt-4o", ["gpt-4o-2024-05-13", "gpt-4o-2024-08-06"]),
])
def test_ambiguous_names_are_listed_not_matched(name, candidates):
    report = match_names([name], CANDIDATES)
    assert report.matches == {} and report.unmatched == []
    assert sorted(report.ambiguous[name]) == candidates


def test_an_exact_match_wins_over_longer_releases():
    assert match_names(["deepseek-r1", "deepseek-v3"], CANDIDATES).matches == {
        "deepseek-r1": ("deepseek-r1", "exact"), "deepseek-v3": ("deepseek-v3", "exact")}


def test_several_names_at_once_are_sorted_into_the_three_lists():
    report = match_names(["deepseek/deepseek-r1", "claude-v2", "gpt-4"], CANDIDATES)
    assert report.matches == {"deepseek/deepseek-r1": ("deepseek-r1", "exact")}
    assert report.unmatched == ["claude-v2"] and list(report.ambiguous) == ["gpt-4"]


def test_the_mapping_decides_first():
    report = match_names(["claude-v2", "deepseek/deepseek-r1", "gpt-4"], CANDIDATES,
                         mapping={"claude-v2": "claude-3-opus-20240229", "deepseek/deepseek-r1": "deepseek-r1-0528",
                                  "gpt-4": None})
    assert report.matches == {"claude-v2": ("claude-3-opus-20240229", "map"),
                              "deepseek/deepseek-r1": ("deepseek-r1-0528", "map")}
    assert report.unmatched == ["gpt-4"] and report.ambiguous == {}      # None: no public rating, on purpose


def test_a_mapping_to_a_name_not_in_the_table_is_an_error_naming_it():
    with pytest.raises(UserError, match="gpt-17"):
        match_names(["deepseek/deepseek-r1"], CANDIDATES, mapping={"x": "gpt-17"})


@pytest.mark.parametrize("suffix, ok", [
    ("-2503", True), ("-001", True), ("-20241022", True), ("-2024-08-13", True), ("-v0.1", True), ("-v1.0", True),
    ("-it", True), ("-instruct-2501", True), ("-latest-20250326", True), ("_0106", True),
    ("", False), ("2503", False), (".2503", False), (".1-2025-04-14", False), ("o-2024-05-13", False), ("402", False),
    ("-3", False), ("-1", False), ("-v2-chat", False), ("-preview", False), ("-1106-preview", False),
    ("-8b-instruct", False), ("-mini-2024-07-18", False), ("-instruct-fp8", False), ("-2503:free", False),
])
def test_what_counts_as_a_release_stamp(suffix, ok):
    assert is_release_suffix(suffix) is ok
