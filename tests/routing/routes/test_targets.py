"""Each kind of target end to end: ``service.query`` and the gateway (the openai SDK's
``/v1/chat/completions`` ``router`` object, ``/v1/route``) carry ``route`` and ``route_similarity``;
the real MiniLM matches, the local protocol server plays OpenRouter, the keyword rules are the selector."""

from __future__ import annotations

import json
import os
import re

import httpx
import openai
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from routing.settings import routes_path  # noqa: E402
from tests.app_harness import serve_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402
from tests.routing.routes.example_routes import HELD_OUT, routes_json  # noqa: E402

LEGAL_Q = HELD_OUT["legal"][0]        # the rules send it to mistral-small
COOKING_Q = HELD_OUT["cooking"][0]    # the rules send it to gemini-flash
OTHER_Q = "Write a haiku about rain"  # no route: the rules send it to llama-3.3
NOT_THESE = ["mistral-small", "llama-3.3"]   # the rules' first two for LEGAL_Q: the exclude target leaves gemini-flash

TARGETS = {"model": ("deepseek-r1", "deepseek-r1"), "cheapest": ({"rule": "cheapest"}, "mistral-small"),
           "exclude": ({"exclude": NOT_THESE}, "gemini-flash")}


def write_routes(settings, data) -> None:
    path = routes_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def build(server, tmp_path, data=None, **overrides):
    from routing.service import RouterService

    settings = router_settings(server, tmp_path, **overrides)
    if data is not None:
        write_routes(settings, data)
    return RouterService(settings, background=False)


def matched(reasoning: str, route: str) -> tuple[float, float]:
    found = re.search(rf"Route \u201c{route}\u201d matched: similarity (\d\.\d\d) against its threshold (\d\.\d\d)",
                      reasoning)
    assert found, reasoning
    return float(found.group(1)), float(found.group(2))


@pytest.mark.parametrize("kind", list(TARGETS))
def test_each_target_decides_a_query(protocol_server, tmp_path, kind):
    target, expected = TARGETS[kind]
    plain = build(protocol_server, tmp_path / "plain")
    assert plain.routes.routes == [] and plain.query(LEGAL_Q)["selected_model"] == "mistral-small"

    service = build(protocol_server, tmp_path / "routes", routes_json(legal_target=target))
    result = service.query(LEGAL_Q)
    assert result["route"] == "legal" and result["selected_model"] == expected and result["answered_by"] == expected
    threshold = service.routes.thresholds["legal"]
    assert result["route_similarity"] >= threshold
    similarity, said_threshold = matched(result["reasoning"], "legal")
    assert similarity == pytest.approx(result["route_similarity"], abs=0.006)
    assert said_threshold == pytest.approx(threshold, abs=0.006)
    assert protocol_server.chat_requests(service.pool.get(expected).model_name)
    if kind == "exclude":
        assert not set(NOT_THESE) & set(result["ranking"])
        assert "The selector decides without mistral-small, llama-3.3" in result["reasoning"]
    else:
        assert result["ranking"][0] == expected and len(result["ranking"]) == 5    # the rest are the fallbacks


def test_no_match_falls_through_to_the_selector_and_says_so(protocol_server, tmp_path):
    service = build(protocol_server, tmp_path, routes_json())
    result = service.query(OTHER_Q)
    assert result["route"] is None and result["route_similarity"] is None
    assert result["selected_model"] == "llama-3.3"               # the rules' pick, as without routes
    assert result["reasoning"].startswith("No route matched (closest: \u201c")
    assert "below its threshold" in result["reasoning"]


def test_the_cheapest_rule_skips_a_model_that_cannot_be_called(protocol_server, tmp_path):
    service = build(protocol_server, tmp_path, routes_json())
    for _ in range(service.settings.cooldown_failures):
        service.router.health.record_failure("mistral-small", "down")
    result = service.query(COOKING_Q)
    assert result["route"] == "cooking" and result["selected_model"] == "llama-3.3"   # the next cheapest
    assert result["ranking"][-1] == "mistral-small" and result["fallbacks"] == []
    assert "the cheapest model that can be called now: Llama" in result["reasoning"]


def test_a_target_the_request_rules_out_does_not_decide(protocol_server, tmp_path):
    service = build(protocol_server, tmp_path, routes_json())
    result = service.query(LEGAL_Q, exclude=["deepseek-r1"])
    assert result["route"] is None and result["selected_model"] == "mistral-small"
    assert "Its model, deepseek-r1, is excluded for this request: the selector decided." in result["reasoning"]
    named = service.query_specific(LEGAL_Q, "qwen2.5")      # a named model: no routing at all
    assert named["route"] is None and named["answered_by"] == "qwen2.5"


def test_a_bad_routes_file_is_not_used_and_the_page_says_why(protocol_server, tmp_path):
    data = routes_json()
    data["routes"][0]["examples"] = ["just one"]
    service = build(protocol_server, tmp_path, data)
    assert not service.routes
    assert any("Routes are off until the file is fixed" in w and "examples has 1 prompt" in w
               for w in service.status()["warnings"])
    assert service.query(LEGAL_Q)["route"] is None


@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory):
    service = build(server, tmp_path_factory.mktemp("routes-gw"), routes_json())
    with serve_app(service) as url:
        yield url, service


@pytest.mark.parametrize("kind", list(TARGETS))
def test_the_gateway_names_the_route_for_each_target(gateway, server, kind):
    url, service = gateway
    target, expected = TARGETS[kind]
    write_routes(service.settings, routes_json(legal_target=target))
    service.reload_routes()
    server.reset()
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": LEGAL_Q}]

    completion = client.chat.completions.create(model="router", messages=messages)
    router = completion.model_extra["router"]
    assert completion.model == expected and router["route"] == "legal"
    assert router["route_similarity"] >= service.routes.thresholds["legal"]
    matched(router["reasoning"], "legal")

    chunks = list(client.chat.completions.create(model="router", messages=messages, stream=True))
    last = next(c for c in reversed(chunks) if (c.model_extra or {}).get("router"))
    assert last.model_extra["router"]["route"] == "legal" and last.model == expected

    decision = httpx.post(url + "/v1/route", json={"model": "router", "messages": messages}, timeout=30).json()
    assert decision["selected_model"] == expected and decision["route"] == "legal"
    assert decision["route_similarity"] == pytest.approx(router["route_similarity"], abs=1e-3)
    assert len(server.chat_requests()) == 2                   # /v1/route called no model


def test_the_gateway_says_no_route_as_null(gateway):
    url, service = gateway
    decision = httpx.post(url + "/v1/route", json={"model": "router", "messages": [{"role": "user", "content": OTHER_Q}]},
                          timeout=30).json()
    assert decision["route"] is None and decision["route_similarity"] is None
    assert decision["selected_model"] == "llama-3.3"
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)
    completion = client.chat.completions.create(model="router", messages=[{"role": "user", "content": OTHER_Q}])
    assert completion.model_extra["router"]["route"] is None
    assert completion.model_extra["router"]["route_similarity"] is None
