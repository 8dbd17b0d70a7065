"""Routes edited from the page: owner-only, checked, saved atomically and reloaded without a restart; a
pool change that breaks a route turns routes off visibly, and the editor can mend it."""

from __future__ import annotations

import json

import pytest

from routing.errors import UserError
from routing.routes.edit import remove_route, routes_view, save_route, try_prompt
from routing.routes.policy import editing_refusal
from routing.routes.store import RoutesFileError
from routing.settings import routes_path
from tests.routing.routes.example_routes import COOKING, HELD_OUT, LEGAL


def fields(route: dict, target, **extra) -> dict:
    return {"name": route["name"], "examples": "\n".join(route["examples"]), "negatives": "\n".join(route["negatives"]),
            "description": route["description"], "target": target, **extra}


def test_editing_is_refused_unless_the_owner_turns_it_on(make_service):
    service = make_service()
    with pytest.raises(UserError, match="ROUTER_ALLOW_ROUTE_EDIT=1"):
        save_route(service, fields(LEGAL, "deepseek-r1"))
    with pytest.raises(UserError, match="ROUTER_ALLOW_ROUTE_EDIT=1"):
        remove_route(service, "legal")
    assert not routes_path(service.settings).exists()
    public = make_service(allow_route_edit=True, server_name="0.0.0.0")
    assert "reachable beyond this machine without a login" in editing_refusal(public.settings)
    assert editing_refusal(make_service(allow_route_edit=True, server_name="0.0.0.0",
                                        ui_users=(("owner", "pw"),)).settings) is None
    assert try_prompt(service, "hello")["route"] is None     # testing a prompt is open to everyone


def test_add_replace_and_remove_a_route_without_a_restart(make_service):
    service = make_service(allow_route_edit=True)
    router = service.router
    added = save_route(service, fields(LEGAL, "deepseek-r1"))
    assert added["message"].startswith("Added route 'legal' to ") and "leave-one-out accuracy" in added["message"]
    assert service.router is router and router.routes is service.routes and [r.name for r in service.routes.routes] == ["legal"]
    assert service.query(HELD_OUT["legal"][0])["selected_model"] == "deepseek-r1"

    save_route(service, fields(COOKING, "cheapest"))
    on_disk = json.loads(routes_path(service.settings).read_text(encoding="utf-8"))
    assert [r["name"] for r in on_disk["routes"]] == ["legal", "cooking"]
    assert on_disk["routes"][1]["target"] == {"rule": "cheapest"}

    replaced = save_route(service, fields(LEGAL, "exclude", exclude=["mistral-small"], name="law"), edit_name="legal")
    assert replaced["message"].startswith("Saved route 'law' (was 'legal')")
    view = routes_view(service)
    assert [r["name"] for r in view["routes"]] == ["law", "cooking"]
    assert view["routes"][0]["target"] == {"exclude": ["mistral-small"]}
    law = view["routes"][0]
    assert law["threshold"] >= 0.2 and set(law["leave_one_out"]) >= {"accuracy", "precision", "recall"}
    assert view["editable"] and view["overall"]["examples"] == len(LEGAL["examples"]) + len(COOKING["examples"])

    tested = try_prompt(service, HELD_OUT["cooking"][1])
    assert tested["route"] == "cooking" and tested["selected_model"] == "mistral-small"
    assert [s["name"] for s in tested["routes"]] == ["law", "cooking"]
    assert tested["routes"][1]["matched"] and not tested["routes"][0]["matched"]

    removed = remove_route(service, "law")
    assert removed["message"].startswith("Removed route 'law'") and [r["name"] for r in removed["routes"]["routes"]] == ["cooking"]
    with pytest.raises(RoutesFileError, match="No route 'law'"):
        remove_route(service, "law")


@pytest.mark.parametrize("bad, message", [
    (dict(examples="only\ntwo"), "examples has 2 prompts; give 3 to 10"),
    (dict(target="gpt-17"), "not a pool model"),
    (dict(target=""), "target is empty"),
    (dict(target="exclude"), "needs the models to leave out"),
    (dict(name=""), "name is empty"),
])
def test_a_bad_route_is_refused_and_nothing_is_saved(make_service, bad, message):
    service = make_service(allow_route_edit=True)
    with pytest.raises(RoutesFileError, match=message):
        save_route(service, {**fields(LEGAL, "deepseek-r1"), **bad})
    assert not routes_path(service.settings).exists() and not service.routes


def test_a_failed_reload_puts_the_previous_file_back(make_service, monkeypatch):
    service = make_service(allow_route_edit=True)
    save_route(service, fields(LEGAL, "deepseek-r1"))
    before = routes_path(service.settings).read_bytes()

    def broken():
        raise RuntimeError("encoder gone")
    monkeypatch.setattr(service, "reload_routes", broken)
    with pytest.raises(RuntimeError):
        save_route(service, fields(COOKING, "cheapest"))
    assert routes_path(service.settings).read_bytes() == before and [r.name for r in service.routes.routes] == ["legal"]


def test_a_pool_change_that_breaks_a_route_turns_routes_off_visibly_and_the_editor_mends_it(make_service):
    from routing.pool_editor import remove_model

    service = make_service(allow_route_edit=True, allow_pool_edit=True)
    save_route(service, fields(LEGAL, "llama-3.3"))
    save_route(service, fields(COOKING, "cheapest"))
    remove_model(service, "llama-3.3")
    assert not service.routes
    warning = service.routes_warning
    assert "Routes are off until the file is fixed" in warning and "'llama-3.3' is not a pool model" in warning
    assert warning in service.status()["warnings"] and routes_view(service)["warning"] == warning

    remove_route(service, "legal")                          # the broken route goes; the file's others are kept
    assert [r.name for r in service.routes.routes] == ["cooking"] and service.routes_warning is None
    assert warning not in service.status()["warnings"]
    assert service.query(HELD_OUT["cooking"][0])["route"] == "cooking"
