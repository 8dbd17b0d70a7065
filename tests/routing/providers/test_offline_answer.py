"""Without an OpenRouter key the app still answers: routed as usual, answered by the local model."""

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def offline_client(tmp_path_factory):
    from gradio_client import Client

    from routing.service import RouterService
    from tests.app_harness import launch_app
    from routing.settings import Settings

    tmp = tmp_path_factory.mktemp("offline")
    settings = Settings(openrouter_api_key=None, openrouter_base_url="http://127.0.0.1:9/v1", live_prices=False,
                        selector="rules", data_dir=tmp / "data", cache_dir=tmp / "cache", local_max_new_tokens=40)
    service = RouterService(settings)  # starts loading the local model in the background
    assert service.local.status()["state"] in {"loading", "ready"}
    with launch_app(service) as url:
        yield Client(url, verbose=False)


def test_query_without_key_is_answered_locally_and_labelled(offline_client):
    result = offline_client.predict(prompt="Write a Python function that reverses a string", api_name="/query")
    assert result["selected_model"] == "deepseek-r1"
    assert result["answered_by"] == "gemma-3-270m"
    assert result["notice"] == "no OpenRouter key: answered locally by gemma-3-270m instead of deepseek-r1"
    assert result["response"].strip()
    assert result["cost_usd"] == 0.0
    assert all(f["skipped"] and "OPENROUTER_API_KEY" in f["error"] for f in result["fallbacks"])


def test_a_later_local_answer_reuses_the_loaded_model(offline_client):
    result = offline_client.predict(prompt="What is the capital of France?", api_name="/query")
    assert result["answered_by"] == "gemma-3-270m" and result["response"].strip()
    assert result["selected_model"] == "gemini-flash"
