"""The endpoint test spends nothing: it reads GET {base_url}/models and never sends a chat request."""

import pytest

from routing.errors import UserError
from routing.pool_editor import test_endpoint as probe_endpoint
from tests.protocol_server import listing_entry

KEY_ENV = "POOL_TEST_ENDPOINT_KEY"
KEY = "endpoint-key-1234567890"


@pytest.fixture
def settings(make_service, protocol_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    protocol_server.models_listing.append(listing_entry("local/llama-3.2"))
    return make_service(allow_pool_edit=True).settings


def fields(server, **more):
    return {"base_url": server.base_url, "model_name": "local/llama-3.2", "api_key_env": KEY_ENV, **more}


def test_a_listed_model_passes_without_any_chat_request(settings, protocol_server):
    check = probe_endpoint(settings, fields(protocol_server))
    assert check.ok and check.state == "listed" and check.chat_requests == 0
    assert "lists local/llama-3.2" in check.message and "nothing was spent" in check.message
    assert protocol_server.chat_requests() == []
    gets = [r for r in protocol_server.requests if r.method == "GET"]
    assert [r.path for r in gets] == ["/v1/models"]
    assert gets[0].authorization == f"Bearer {KEY}"      # the endpoint's own key, never OpenRouter's ("good")


def test_a_model_the_endpoint_does_not_list_is_named(settings, protocol_server):
    check = probe_endpoint(settings, fields(protocol_server, model_name="local/llama-3"))
    assert not check.ok and check.state == "not_listed"
    assert "does not list local/llama-3." in check.message and "Did you mean local/llama-3.2?" in check.message
    assert "local/llama-3.2" in check.listed and protocol_server.chat_requests() == []


def test_an_endpoint_without_a_model_list_says_a_test_would_need_a_paid_call(settings, protocol_server):
    base = protocol_server.base_url.replace("/v1", "/no-list")    # the server answers 404 there
    check = probe_endpoint(settings, fields(protocol_server, base_url=base))
    assert not check.ok and check.state == "no_listing"
    assert "does not list its models" in check.message
    assert "would need a real chat request, which may be paid; this test does not make one" in check.message
    assert [r.method for r in protocol_server.requests] == ["GET"]   # nothing posted


def test_a_refused_key_and_an_unreachable_host_are_told_apart(settings, protocol_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "")
    check = probe_endpoint(settings, fields(protocol_server))
    assert check.ok and "no key in POOL_TEST_ENDPOINT_KEY" in check.message   # listed, but it cannot be called yet
    check = probe_endpoint(settings, fields(protocol_server, base_url="http://127.0.0.1:9/v1"))
    assert check.state == "unreachable" and "Could not reach 127.0.0.1:9" in check.message


def test_the_openrouter_key_is_never_sent_to_another_endpoint(settings, protocol_server, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-owner-key-123456")
    with pytest.raises(UserError, match="OpenRouter models only"):
        probe_endpoint(settings, fields(protocol_server, api_key_env="OPENROUTER_API_KEY"))
    check = probe_endpoint(settings, fields(protocol_server, api_key_env=""))   # no key: none is sent
    assert check.ok and protocol_server.requests[-1].authorization is None


@pytest.mark.parametrize("change, message", [
    ({"base_url": "file:///etc/passwd"}, "http:// or https://"),
    ({"base_url": "http://"}, "must name a host"),
    ({"api_key_env": "lower_case"}, "NAME of an environment variable"),
])
def test_bad_input_is_refused_before_any_request(settings, protocol_server, change, message):
    with pytest.raises(UserError, match=message):
        probe_endpoint(settings, fields(protocol_server, **change))
    assert protocol_server.requests == []


def test_the_test_is_refused_while_editing_is_off(make_service, protocol_server):
    with pytest.raises(UserError, match="ROUTER_ALLOW_POOL_EDIT=1"):
        probe_endpoint(make_service().settings, fields(protocol_server))
    assert protocol_server.requests == []
