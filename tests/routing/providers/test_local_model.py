"""The local Gemma 3 270M provider: prompt format, stop handling, loading, cache, answers.

Tests marked ``slow`` load the real model (about a minute or more from the GGUF on 2 cores);
the loaded provider is shared by the module so the GGUF is dequantised once (plus once more
for the corrupt-cache repair).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from routing.errors import ProviderError, UnknownModelError, UserError
from routing.providers.local_model import (
    ANSWER_PREFIX, CACHE_MARKER_NAME, FEW_SHOT_EXAMPLES, INSTRUCTION_LINE, LOCAL_MODEL_ID,
    STOP_SEQUENCES, LocalModelProvider, StreamTextCleaner, build_prompt, cache_marker,
    cache_matches, clean_answer, cut_at_stop, gguf_fingerprint,
)

LOAD_TIMEOUT_S = 900


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------------------------------
# Fast: prompt formatting and stop handling (no model)
# ---------------------------------------------------------------------------------------------

def test_single_question_becomes_few_shot_document_ending_in_answer_cue():
    prompt = build_prompt(user("  What is the capital of France?  ")).text
    assert prompt.startswith(INSTRUCTION_LINE)
    for question, answer in FEW_SHOT_EXAMPLES:
        assert f"Question: {question}\nAnswer: {answer}\n\n" in prompt
    assert prompt.endswith("Question: What is the capital of France?" + ANSWER_PREFIX)


def test_system_message_opens_the_document_and_history_becomes_qa_pairs():
    parts = build_prompt([
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour."},
        {"role": "user", "content": "Capital of Italy?"},
    ])
    assert parts.head.startswith("Answer in French.\n\n" + INSTRUCTION_LINE)
    assert parts.body == "Question: Hi\nAnswer: Bonjour.\n\nQuestion: Capital of Italy?"
    assert parts.tail == ANSWER_PREFIX
    assert parts.text == parts.head + parts.body + parts.tail


@pytest.mark.parametrize("messages, fragment", [
    ([], "empty"),
    (user("   "), "empty"),
    ([{"role": "system", "content": "Be nice."}], "last message"),
    (user("Hi") + [{"role": "assistant", "content": "Hello"}], "last message"),
    ([{"role": "robot", "content": "Hi"}], "role"),
    ([{"role": "user", "content": None}], "content"),
    (["just a string"], "role"),
])
def test_bad_messages_are_user_errors(messages, fragment):
    with pytest.raises(UserError, match=fragment):
        build_prompt(messages)


def test_answer_is_cut_at_the_first_stop_sequence_and_stripped():
    assert cut_at_stop(" Paris.\n\nQuestion: What") == (" Paris.\n", True)
    assert cut_at_stop("no stop here") == ("no stop here", False)
    assert clean_answer(" Paris.\n\nQuestion: What is") == "Paris."
    assert clean_answer(" line one\nline two\n\n\n\nrambling") == "line one\nline two"


@pytest.mark.parametrize("pieces", [
    [" Par", "is.", "\n", "\nQues", "tion:", " What is it?"],        # stop split over pieces
    [" Roses", " are red,", "\n", "violets", " are blue", "\n\n"],   # no stop; trailing blanks
    ["\n", " ", "The", " Q", "uestion", " is", " good", "\n\n\n", "junk"],
    [" a\n", "Q", "uick", " fox"],                                   # looks like a stop, is not
])
def test_streamed_deltas_concatenate_to_the_clean_answer(pieces):
    cleaner = StreamTextCleaner(STOP_SEQUENCES)
    deltas = [cleaner.feed(p) for p in pieces] + [cleaner.finish()]
    assert "".join(deltas) == clean_answer("".join(pieces))
    assert not any("Question:" in d for d in deltas)


def test_stream_cleaner_holds_back_a_possible_stop_until_it_is_resolved():
    cleaner = StreamTextCleaner(STOP_SEQUENCES)
    assert cleaner.feed(" Paris.") == "Paris."
    assert cleaner.feed("\nQuest") == ""              # could be "\nQuestion:"
    assert cleaner.feed("ion: next") == ""            # it was: nothing more is shown
    assert cleaner.stopped and cleaner.finish() == ""


def test_cache_marker_must_match_the_gguf_and_dtype(tmp_path: Path):
    fingerprint = gguf_fingerprint(None)
    assert len(fingerprint["sha256"]) == 64 and fingerprint["size"] > 100_000_000
    marker = cache_marker(fingerprint, "bfloat16")
    assert not cache_matches(tmp_path, marker)                      # no marker at all
    (tmp_path / CACHE_MARKER_NAME).write_text(json.dumps(marker))
    assert cache_matches(tmp_path, marker)
    assert not cache_matches(tmp_path, {**marker, "gguf_sha256": "0" * 64})   # GGUF changed
    assert not cache_matches(tmp_path, cache_marker(fingerprint, "float32"))  # dtype changed
    (tmp_path / CACHE_MARKER_NAME).write_text("{not json")
    assert not cache_matches(tmp_path, marker)


def test_bad_requests_are_refused_before_any_loading(tmp_path: Path):
    provider = LocalModelProvider(cache_dir=tmp_path)
    with pytest.raises(UnknownModelError):
        provider.chat("gpt-4o", user("Hi"))
    with pytest.raises(UserError, match="max_tokens"):
        provider.chat(LOCAL_MODEL_ID, user("Hi"), max_tokens=0)
    with pytest.raises(UserError, match="temperature"):
        provider.stream_chat(LOCAL_MODEL_ID, user("Hi"), temperature=5.0)
    with pytest.raises(UserError, match="empty"):
        provider.stream_chat(LOCAL_MODEL_ID, user(""))
    assert provider.status()["state"] == "not_started"
    assert not provider.ready


@pytest.mark.parametrize("kwargs", [{"max_new_tokens": 0}, {"threads": 0},
                                    {"dtype": "float16"}, {"max_input_tokens": 8}])
def test_bad_settings_are_rejected(tmp_path: Path, kwargs):
    with pytest.raises(ValueError):
        LocalModelProvider(cache_dir=tmp_path, **kwargs)


def test_missing_gguf_file_fails_loading_with_a_clear_error(tmp_path: Path):
    provider = LocalModelProvider(cache_dir=tmp_path, gguf_path=tmp_path / "missing.gguf")
    assert provider.wait_ready(60) is False
    status = provider.status()
    assert status["state"] == "failed" and "missing.gguf" in status["error"]
    with pytest.raises(ProviderError, match="failed to load"):
        provider.chat(LOCAL_MODEL_ID, user("Hi"))


def test_chat_while_still_loading_raises_a_retryable_error(tmp_path: Path, monkeypatch):
    provider = LocalModelProvider(cache_dir=tmp_path, load_wait_s=0.05)
    release = threading.Event()

    def slow_load():
        release.wait(30)
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(provider, "_load_locked", slow_load)
    provider.start_loading()
    provider.start_loading()                       # idempotent: still one loader
    try:
        assert provider.status()["state"] == "loading"
        with pytest.raises(ProviderError, match="still loading") as caught:
            provider.chat(LOCAL_MODEL_ID, user("Hi"))
        assert caught.value.retryable
    finally:
        release.set()
    assert provider.wait_ready(30) is False
    assert provider.status()["state"] == "failed"


# ---------------------------------------------------------------------------------------------
# Slow: the real model
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A provider loaded from the GGUF into a fresh cache dir, and its status before loading."""
    provider = LocalModelProvider(cache_dir=tmp_path_factory.mktemp("local_model_cache"),
                                  max_new_tokens=40)
    before = provider.status()
    provider.start_loading()
    during = provider.status()
    assert provider.wait_ready(LOAD_TIMEOUT_S), provider.status()
    return provider, [before, during, provider.status()]


@pytest.mark.slow
def test_status_goes_from_not_started_through_loading_to_ready(loaded):
    provider, statuses = loaded
    assert [s["state"] for s in statuses] == ["not_started", "loading", "ready"]
    assert statuses[-1]["source"] == "gguf" and statuses[-1]["error"] is None
    assert statuses[-1]["load_seconds"] > 0
    assert provider.ready


@pytest.mark.slow
def test_loading_and_answering_leave_torch_threads_as_the_process_had_them(loaded):
    import torch

    before = torch.get_num_threads()
    provider, _ = loaded
    provider.threads = 1 if before > 1 else 2          # generate with another count than the process's
    try:
        provider.chat(LOCAL_MODEL_ID, user("Say hi."))
    finally:
        provider.threads = None
    seen = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert torch.get_num_threads() == before and seen == [before]   # the app's threads and new ones


@pytest.mark.slow
def test_simple_question_gets_a_non_empty_on_topic_answer(loaded):
    provider, _ = loaded
    result = provider.chat(LOCAL_MODEL_ID, user("What is the capital of France?"))
    assert "paris" in result.text.lower()
    assert "Question:" not in result.text and result.text == result.text.strip()
    assert (result.provider, result.model, result.cost_usd) == ("local", LOCAL_MODEL_ID, 0.0)
    usage = result.usage
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert result.latency_ms > 0 and result.finish_reason == "stop"


@pytest.mark.slow
def test_streamed_chunks_concatenate_to_the_final_text(loaded):
    provider, _ = loaded
    chunks = list(provider.stream_chat(LOCAL_MODEL_ID, [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Write a haiku about the sea"}]))
    assert chunks[-1].done and all(not c.done for c in chunks[:-1])
    final = chunks[-1].result
    assert final.text and "".join(c.delta for c in chunks) == final.text


@pytest.mark.slow
def test_max_tokens_caps_the_answer(loaded):
    provider, _ = loaded
    result = provider.chat(LOCAL_MODEL_ID, user("Tell me a long story about a dragon."),
                           max_tokens=3)
    assert 1 <= result.usage["completion_tokens"] <= 3
    assert result.finish_reason == "length"
    capped = provider.chat(LOCAL_MODEL_ID, user("Count to five."), max_tokens=10_000)
    assert capped.usage["completion_tokens"] <= provider.max_new_tokens
    assert capped.raw["max_tokens_capped_from"] == 10_000


@pytest.mark.slow
def test_over_long_prompt_is_cut_from_the_left_and_noted(loaded):
    provider, _ = loaded
    question = "Summarise this. " + "The quick brown fox jumps over the lazy dog. " * 300
    ids, dropped = provider.encode_prompt(user(question + "What animal jumps?"))
    assert len(ids) == provider.max_input_tokens and dropped > 0
    text = provider._tokenizer.decode(ids)
    assert INSTRUCTION_LINE in text and text.endswith("What animal jumps?" + ANSWER_PREFIX)
    result = provider.chat(LOCAL_MODEL_ID, user(question), max_tokens=2)
    assert result.raw["prompt_truncated_tokens"] > 0
    assert result.usage["prompt_tokens"] == provider.max_input_tokens


@pytest.mark.slow
def test_second_instance_loads_from_the_cache(loaded):
    provider, _ = loaded
    assert cache_matches(provider.cache_path,
                         cache_marker(gguf_fingerprint(None), provider.dtype))
    assert not list(provider.cache_dir.glob(".tmp-*"))        # the temp folder was renamed
    again = LocalModelProvider(cache_dir=provider.cache_dir, max_new_tokens=20)
    assert again.wait_ready(LOAD_TIMEOUT_S), again.status()
    assert again.status()["source"] == "cache"
    assert again.chat(LOCAL_MODEL_ID, user("What is the capital of France?")).text


@pytest.mark.slow
def test_corrupt_cache_falls_back_to_the_gguf_and_is_repaired(loaded, tmp_path_factory):
    provider, _ = loaded
    cache_dir = tmp_path_factory.mktemp("corrupt_cache")
    broken = cache_dir / provider.cache_path.name
    shutil.copytree(provider.cache_path, broken)
    weights = broken / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 3)

    repaired = LocalModelProvider(cache_dir=cache_dir)
    assert repaired.wait_ready(LOAD_TIMEOUT_S), repaired.status()
    status = repaired.status()
    assert status["source"] == "gguf" and "could not be read" in status["cache_warning"]
    original = provider.cache_path / "model.safetensors"
    assert weights.stat().st_size == original.stat().st_size      # rewritten in full

    third = LocalModelProvider(cache_dir=cache_dir)
    assert third.wait_ready(LOAD_TIMEOUT_S) and third.status()["source"] == "cache"
