"""The pool file is data: loaded, validated, and every mistake explained."""

import json

import pytest

from routing.errors import PoolFileError, UnknownModelError
from routing.pool import load_pool
from routing.settings import DEFAULT_MODELS_FILE, Settings

EXPECTED = {
    "deepseek-r1": "deepseek/deepseek-r1",
    "mistral-small": "mistralai/mistral-small-3.1-24b-instruct",
    "qwen2.5": "qwen/qwen-2.5-72b-instruct",
    "gemini-flash": "google/gemini-2.0-flash-001",
    "llama-3.3": "meta-llama/llama-3.3-70b-instruct",
}


def test_shipped_pool_has_the_five_models_with_prices():
    pool = load_pool(DEFAULT_MODELS_FILE)
    assert {m.id: m.model_name for m in pool} == EXPECTED
    for m in pool:
        assert m.provider == "openrouter"
        assert m.input_price_per_m > 0 and m.output_price_per_m > 0
        assert m.context_length > 0 and m.strengths and m.categories


def test_unknown_model_lists_valid_ids():
    pool = load_pool(DEFAULT_MODELS_FILE)
    with pytest.raises(UnknownModelError) as err:
        pool.get("gpt-17")
    assert "gpt-17" in str(err.value) and "deepseek-r1" in str(err.value)


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    ('{"models": []}', "empty"),
    ('{"models": {"a": 1}}', "list"),
    ('{"models": [{"id": "x", "provider": "openrouter"}]}', "model_name"),
    ('{"models": [{"id": "x", "provider": "carrier-pigeon", "model_name": "x"}]}', "provider"),
    ('{"models": [{"id": "x", "provider": "openai_compatible", "model_name": "x"}]}', "base_url"),
    ('{"models": [{"id": "x", "provider": "openrouter", "model_name": "x", "input_price_per_m": "cheap"}]}', "bad value"),
    ('{"models": [{"id": "x", "provider": "openrouter", "model_name": "x"}, {"id": "x", "provider": "openrouter", "model_name": "y"}]}', "repeats"),
    ('{"models": [{"id": "x", "provider": "openrouter", "model_name": "x", "categories": ["juggling"]}]}', "unknown categories"),
])
def test_bad_pool_files_are_explained(tmp_path, content, message):
    path = tmp_path / "models.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(PoolFileError, match=message):
        load_pool(path)


def test_custom_openai_compatible_endpoint(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"models": [
        {"id": "llama-local", "provider": "openai_compatible", "model_name": "llama3.2",
         "base_url": "http://localhost:11434/v1/", "categories": ["chat"]}]}))
    pool = load_pool(path)
    assert pool.get("llama-local").base_url == "http://localhost:11434/v1"


def test_live_prices_replace_file_prices_only_for_listed_models():
    pool = load_pool(DEFAULT_MODELS_FILE)
    before = pool.get("qwen2.5").input_price_per_m
    updated = pool.apply_live_prices([
        {"id": "deepseek/deepseek-r1", "pricing": {"prompt": "0.0000007", "completion": "0.0000025"},
         "context_length": 128000},
        {"id": "google/gemini-2.0-flash-001", "pricing": {"prompt": "oops", "completion": "1"}},
    ])
    assert updated == ["deepseek-r1"]
    r1 = pool.get("deepseek-r1")
    assert r1.input_price_per_m == pytest.approx(0.7) and r1.output_price_per_m == pytest.approx(2.5)
    assert r1.price_source == "live" and r1.context_length == 128000
    assert pool.get("qwen2.5").input_price_per_m == before


def test_live_price_failure_never_raises():
    pool = load_pool(DEFAULT_MODELS_FILE)

    def broken():
        raise ConnectionError("offline")

    pool.refresh_prices_in_background(broken).join(5)
    assert all(m.price_source == "file" for m in pool)


def test_settings_from_env():
    s = Settings.from_env({"OPENROUTER_API_KEY": "  ", "OPENROUTER_BASE_URL": "http://127.0.0.1:9/v1/",
                           "ROUTER_MAX_PROMPT_CHARS": "50", "ROUTER_ALLOW_TRAINING": "yes"})
    assert s.openrouter_api_key is None
    assert s.openrouter_base_url == "http://127.0.0.1:9/v1"
    assert s.max_prompt_chars == 50 and s.allow_training is True
    with pytest.raises(ValueError, match="ROUTER_DEADLINE"):
        Settings.from_env({"ROUTER_DEADLINE": "soon"})


def test_offline_start_up_reaches_out_for_no_prices(protocol_server, tmp_path):
    """Offline (no OpenRouter key) the app still asked openrouter.ai for prices at start-up."""
    from routing.service import RouterService
    from tests.conftest import router_settings

    offline = RouterService(router_settings(protocol_server, tmp_path, openrouter_api_key=None, live_prices=True),
                            background=False)
    offline.start_background_work()
    keyed = RouterService(router_settings(protocol_server, tmp_path / "k", live_prices=True), background=False)
    keyed.start_background_work()
    keyed_thread = [t for t in __import__("threading").enumerate() if t.name == "live-prices"]
    for thread in keyed_thread:
        thread.join(10)                                                # the listing was read (or failed)
    listings = [r for r in protocol_server.requests if r.path.endswith("/models")]
    assert len(listings) == 1                                          # the keyed service's only
