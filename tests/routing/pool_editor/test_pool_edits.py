"""Editing the pool from the page: validated, saved to the data-dir override, swapped in without a restart.

A real RouterService against the local protocol server (its "OpenRouter" and, here, also the
OpenAI-compatible endpoint a model is added for).
"""

import json
import threading
import time

import pytest

from routing.errors import UserError
from routing.pool_editor import remove_model, revert_pool, save_model
from routing.settings import DEFAULT_MODELS_FILE, POOL_OVERRIDE
from tests.protocol_server import listing_entry

SHIPPED = ["deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"]
KEY_ENV = "POOL_TEST_ENDPOINT_KEY"
KEY = "endpoint-key-1234567890"


def endpoint(server, **more):
    """The form's fields for an OpenAI-compatible model served by the protocol server."""
    fields = {"id": "llama-local", "display_name": "Llama (local)", "base_url": server.base_url,
              "model_name": "local/llama-3.2", "api_key_env": KEY_ENV, "input_price_per_m": 0.1,
              "output_price_per_m": 0.2, "context_length": 8192, "strengths": "free, private",
              "categories": ["chat"]}
    fields.update(more)
    return fields


@pytest.fixture
def editable(make_service, protocol_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    protocol_server.models_listing.append(listing_entry("local/llama-3.2"))
    return make_service(allow_pool_edit=True)


def override_of(service):
    return service.settings.data_dir / POOL_OVERRIDE


def test_an_added_endpoint_is_saved_to_the_override_and_answers_without_a_restart(editable, protocol_server):
    service, shipped = editable, DEFAULT_MODELS_FILE.read_bytes()
    old_router = service.router
    result = save_model(service, endpoint(protocol_server))

    saved = json.loads(override_of(service).read_text())
    entry = next(m for m in saved["models"] if m["id"] == "llama-local")
    assert entry == {**endpoint(protocol_server), "provider": "openai_compatible"}
    assert [m["id"] for m in saved["models"]] == SHIPPED + ["llama-local"]
    assert all(m.get("evidence") for m in saved["models"][:5])        # the shipped models' evidence kept
    assert DEFAULT_MODELS_FILE.read_bytes() == shipped                 # the shipped file untouched
    assert result["model_id"] == "llama-local" and "llama-local" in result["pool"]["models"][-1]["id"]

    assert service.pool.ids == SHIPPED + ["llama-local"] and service.router is not old_router
    assert service.router.pool is service.pool and service.hub.pool is service.pool
    assert service.learning.recorder.pool is service.pool and service.learning.shadow.router is service.router
    answer = service.query("hello there", exclude=SHIPPED)
    assert answer["answered_by"] == "llama-local"
    assert answer["response"].startswith("[local/llama-3.2]")
    chat = protocol_server.chat_requests("local/llama-3.2")
    assert len(chat) == 1 and chat[0].authorization == f"Bearer {KEY}"   # its own key, not OpenRouter's ("good")


def test_start_up_loads_the_override(editable, protocol_server, make_service):
    save_model(editable, endpoint(protocol_server))
    restarted = make_service(allow_pool_edit=False)         # a new process with the same data dir
    assert restarted.pool.ids == SHIPPED + ["llama-local"]
    assert restarted.pool.source == str(override_of(editable))


def test_editing_keeps_the_evidence_block_and_other_keys(make_service, protocol_server, tmp_path):
    evidence = {"ratings": {"name": "x", "categories": {"full": [1200.0, 1190.0, 1210.0]}}, "list_price": None}
    pool_file = tmp_path / "own.json"
    pool_file.write_text(json.dumps({"_comment": "mine", "models": [
        {"id": "a", "provider": "openai_compatible", "base_url": protocol_server.base_url, "model_name": "m-a",
         "evidence": evidence, "notes": "kept"},
        {"id": "b", "provider": "openrouter", "model_name": "test/model-b"}]}))
    service = make_service(allow_pool_edit=True, models_file=pool_file)
    save_model(service, {"id": "a", "base_url": protocol_server.base_url, "model_name": "m-a",
                         "input_price_per_m": 3}, edit_id="a")
    saved = json.loads(override_of(service).read_text())
    assert saved["_comment"] == "mine"
    assert saved["models"][0]["evidence"] == evidence and saved["models"][0]["notes"] == "kept"
    assert saved["models"][0]["input_price_per_m"] == 3 and list(saved["models"][0])[:2] == ["id", "provider"]
    assert service.pool.get("a").evidence == evidence and service.pool.get("a").input_price_per_m == 3
    with pytest.raises(UserError, match="openrouter model"):   # the form edits endpoint models only
        save_model(service, {"id": "b", "base_url": protocol_server.base_url, "model_name": "x"}, edit_id="b")
    assert json.loads(pool_file.read_text())["models"][0].get("input_price_per_m") is None   # ROUTER_MODELS_FILE untouched


@pytest.mark.parametrize("change, message", [
    ({"base_url": "file:///etc/passwd"}, "http:// or https://"),
    ({"base_url": "http:///v1"}, "must name a host"),
    ({"base_url": "https://user:secret@example.com/v1"}, "user name or password"),
    ({"base_url": "http://example.com/v1?x=1"}, "query or fragment"),
    ({"api_key_env": "my key"}, "NAME of an environment variable"),
    ({"api_key_env": "sk-or-v1-0123456789abcdef"}, "never the key itself"),
    ({"api_key_env": "OPENROUTER_API_KEY"}, "OpenRouter models only"),
    ({"api_key_env": "ROUTER_UI_USERS"}, "never sent to another endpoint"),
    ({"id": "llama-3.3"}, "already has a model with id 'llama-3.3'"),
    ({"id": "router"}, "reserved"),
    ({"id": "bad\x07id"}, "control or invisible character"),
    ({"id": "x" * 65}, "at most 64 characters"),
    ({"display_name": "Llama\u202eevil"}, "control or invisible character"),
    ({"model_name": ""}, "model_name is empty"),
    ({"input_price_per_m": -1}, "input_price_per_m must be a number from 0"),
    ({"output_price_per_m": "nan"}, "output_price_per_m must be a number from 0"),
    ({"output_price_per_m": "cheap"}, "output_price_per_m must be a number from 0"),
    ({"context_length": 0}, "context_length must be a whole number"),
    ({"categories": ["juggling"]}, "unknown 'juggling'"),
])
def test_bad_input_is_refused_and_nothing_changes(editable, protocol_server, change, message):
    service = editable
    pool, router = service.pool, service.router
    with pytest.raises(UserError, match=message.replace("?", r"\?").replace("(", r"\(")):
        save_model(service, endpoint(protocol_server, **change))
    assert not override_of(service).exists()
    assert service.pool is pool and service.router is router and pool.ids == SHIPPED


def test_editing_off_refuses_every_change(make_service, protocol_server):
    service = make_service()    # ROUTER_ALLOW_POOL_EDIT unset
    pool = service.pool
    for change in (lambda: save_model(service, endpoint(protocol_server)),
                   lambda: remove_model(service, "llama-3.3"),
                   lambda: revert_pool(service)):
        with pytest.raises(UserError, match="ROUTER_ALLOW_POOL_EDIT=1"):
            change()
    assert not override_of(service).exists() and service.pool is pool


def test_a_public_app_without_a_login_refuses_editing_even_when_allowed(make_service, protocol_server):
    service = make_service(allow_pool_edit=True, server_name="0.0.0.0")
    with pytest.raises(UserError, match="ROUTER_UI_USERS"):
        save_model(service, endpoint(protocol_server))
    assert not override_of(service).exists()
    with_login = make_service(allow_pool_edit=True, server_name="0.0.0.0", ui_users=(("owner", "pw"),))
    save_model(with_login, endpoint(protocol_server))
    assert "llama-local" in with_login.pool


def test_remove_then_revert_deletes_the_override_and_reloads_the_shipped_pool(editable, protocol_server):
    service = editable
    save_model(service, endpoint(protocol_server))
    remove_model(service, "deepseek-r1")
    assert service.pool.ids == SHIPPED[1:] + ["llama-local"]
    assert "deepseek-r1" not in [m["id"] for m in json.loads(override_of(service).read_text())["models"]]
    with pytest.raises(UserError, match="No model 'gpt-17'"):
        remove_model(service, "gpt-17")

    result = revert_pool(service)
    assert not override_of(service).exists()
    assert service.pool.ids == SHIPPED and service.pool.source == str(DEFAULT_MODELS_FILE)
    assert "Reverted" in result["message"]
    with pytest.raises(UserError, match="nothing to revert"):
        revert_pool(service)


def test_the_last_model_cannot_be_removed(make_service, protocol_server, tmp_path):
    pool_file = tmp_path / "one.json"
    pool_file.write_text(json.dumps([{"id": "only", "provider": "openrouter", "model_name": "test/model-a"}]))
    service = make_service(allow_pool_edit=True, models_file=pool_file)
    with pytest.raises(UserError, match="only model"):
        remove_model(service, "only")
    assert not override_of(service).exists()


def test_a_request_in_flight_finishes_on_the_pool_it_started_with(editable, protocol_server):
    service = editable
    protocol_server.set_model("meta-llama/llama-3.3-70b-instruct", delay=1.5)
    answers = []
    asking = threading.Thread(target=lambda: answers.append(service.query_specific("hello", "llama-3.3")))
    asking.start()
    deadline = time.monotonic() + 10
    while not protocol_server.chat_requests("meta-llama/llama-3.3-70b-instruct") and time.monotonic() < deadline:
        time.sleep(0.02)
    remove_model(service, "llama-3.3")              # while its answer is on the way
    assert "llama-3.3" not in service.pool
    asking.join(timeout=20)
    assert answers and answers[0]["answered_by"] == "llama-3.3"
    assert answers[0]["response"].startswith("[meta-llama/llama-3.3-70b-instruct]")
    with pytest.raises(UserError, match="Unknown model 'llama-3.3'"):
        service.query_specific("hello", "llama-3.3")   # new requests use the new pool


def test_health_carries_over_for_unchanged_models_only(editable, protocol_server):
    service = editable
    save_model(service, endpoint(protocol_server))
    service.router.health.record_failure("llama-3.3", "boom")
    service.router.health.record_failure("llama-local", "boom")
    save_model(service, endpoint(protocol_server, base_url=protocol_server.base_url + "/"), edit_id="llama-local")
    assert service.router.health.snapshot("llama-3.3")["consecutive_failures"] == 1   # same endpoint
    assert service.router.health.snapshot("llama-local")["consecutive_failures"] == 1  # same URL (trailing / dropped)
    save_model(service, endpoint(protocol_server, model_name="test/model-a"), edit_id="llama-local")
    assert service.router.health.snapshot("llama-local")["consecutive_failures"] == 0  # another model: afresh
