"""The Gradio app's API through gradio_client, with the local protocol server as OpenRouter."""

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.app_harness import launch_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402

PUBLIC_ENDPOINTS = {"/query", "/query-specific", "/feedback", "/query-compare", "/batch-query", "/calibrate",
                    "/test-selection", "/train",
                    "/pool", "/pool-test", "/pool-save", "/pool-remove", "/pool-revert",
                    "/routes", "/routes-test", "/routes-save", "/routes-remove", "/health", "/traffic"}


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from routing.service import RouterService

    service = RouterService(router_settings(server, tmp_path_factory.mktemp("app")), background=False)
    with launch_app(service) as url:
        yield Client(url, verbose=False)


def test_public_endpoints_are_exactly_the_documented_ones(client):
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named == PUBLIC_ENDPOINTS


def test_query_returns_the_documented_shape(client, server):
    result = client.predict(prompt="Write a limerick about a sleepy cat", api_name="/query")
    for key in ("prompt", "selected_model", "response", "selection_confidence", "reasoning", "answered_by",
                "fallbacks", "usage", "cost_usd", "latency_ms", "scores"):
        assert key in result, key
    assert result["selected_model"] == "llama-3.3" and result["answered_by"] == "llama-3.3"
    assert result["response"].startswith("[meta-llama/llama-3.3-70b-instruct]")
    assert len(result["scores"]) == 5


def test_query_with_cost_weight_and_exclusions(client):
    result = client.predict(prompt="Write a limerick about a sleepy cat", cost_weight=0.0,
                            exclude=["llama-3.3"], api_name="/query")
    assert result["selected_model"] != "llama-3.3"


def test_query_specific(client):
    result = client.predict(prompt="hello", model="qwen2.5", api_name="/query-specific")
    assert result["answered_by"] == "qwen2.5"


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt="", api_name="/query"), "empty"),
    (dict(prompt="hi", model="gpt-17", api_name="/query-specific"), "Valid model ids"),
    (dict(prompt="hi", exclude=["nope"], api_name="/query"), "Unknown model"),
])
def test_user_errors_come_back_as_messages(client, kwargs, message):
    with pytest.raises(AppError, match=message):
        client.predict(**kwargs)


def test_provider_failure_falls_back_through_the_api(client, server):
    server.set_model("meta-llama/llama-3.3-70b-instruct", status=502)
    try:
        result = client.predict(prompt="Write a limerick about a sleepy cat", api_name="/query")
    finally:
        server.set_model("meta-llama/llama-3.3-70b-instruct")
    assert result["answered_by"] != "llama-3.3"
    assert result["fallbacks"][0]["model"] == "llama-3.3" and result["fallbacks"][0]["status"] == 502


def test_health_endpoint(client):
    rows = client.predict(api_name="/health")
    assert {r["model"] for r in rows} == {"deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"}


def test_routes_endpoints_read_and_test_for_everyone_and_refuse_edits(client):
    view = client.predict(api_name="/routes")
    assert view["routes"] == [] and not view["exists"] and not view["editable"]
    assert "ROUTER_ALLOW_ROUTE_EDIT=1" in view["refusal"]
    tested = client.predict(prompt="Write a limerick about a sleepy cat", api_name="/routes-test")
    assert tested["routes"] == [] and tested["route"] is None and tested["selected_model"] == "llama-3.3"
    with pytest.raises(AppError, match="ROUTER_ALLOW_ROUTE_EDIT=1"):
        client.predict(name="legal", examples=["a b", "c d", "e f"], target="deepseek-r1", api_name="/routes-save")
    with pytest.raises(AppError, match="ROUTER_ALLOW_ROUTE_EDIT=1"):
        client.predict(name="legal", api_name="/routes-remove")
    with pytest.raises(AppError, match="empty"):
        client.predict(prompt="", api_name="/routes-test")
