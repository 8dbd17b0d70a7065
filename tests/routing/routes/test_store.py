"""The routes file's checks: every malformed file or route is refused with a message naming what is wrong,
and writes are atomic. No encoder is loaded here."""

from __future__ import annotations

import json
import time

import pytest

from routing.routes.store import (MAX_FILE_BYTES, Route, RoutesFileError, Target, parse_routes, read_routes,
                                  write_routes)
from routing.settings import Settings, routes_path
from tests.routing.routes.example_routes import COOKING, LEGAL, routes_json

POOL = ["deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"]


def write(tmp_path, data) -> str:
    path = tmp_path / "routes.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_no_file_means_no_routes(tmp_path):
    assert read_routes(tmp_path / "routes.json", POOL) == []


def test_a_good_file_reads_with_each_kind_of_target(tmp_path):
    data = routes_json("deepseek-r1", {"rule": "cheapest"})
    data["routes"].append({"name": "not-r1", "examples": ["a b c", "d e f", "g h i"],
                           "target": {"exclude": ["deepseek-r1"]}})
    routes = read_routes(write(tmp_path, data), POOL)
    assert [r.name for r in routes] == ["legal", "cooking", "not-r1"]
    assert routes[0].target == Target(model="deepseek-r1") and routes[0].negatives == tuple(LEGAL["negatives"])
    assert routes[1].target == Target(rule="cheapest")
    assert routes[2].target == Target(exclude=("deepseek-r1",)) and routes[2].negatives == ()


@pytest.mark.parametrize("change, message", [
    (lambda d: d["routes"][0].update(examples=["only one example"]), r"route 'legal': examples has 1 prompt; give 3 to 10"),
    (lambda d: d["routes"][0].update(examples=[f"example {i}" for i in range(11)]), "has 11 prompts; give 3 to 10"),
    (lambda d: d["routes"][1].update(name="legal"), "two routes are named 'legal'"),
    (lambda d: d["routes"][1].update(name="LEGAL"), "two routes are named 'LEGAL'"),
    (lambda d: d["routes"][0].update(target="gpt-17"), r"target 'gpt-17' is not a pool model; use one of deepseek-r1"),
    (lambda d: d["routes"][0].update(target={"exclude": ["gpt-17"]}), "excludes 'gpt-17', not in the pool"),
    (lambda d: d["routes"][0].update(target={"exclude": POOL}), "excludes every pool model"),
    (lambda d: d["routes"][0].update(target={"rule": "fastest"}), "rule 'fastest' is unknown"),
    (lambda d: d["routes"][0].pop("target"), "has no target"),
    (lambda d: d["routes"][0].update(exmaples=["x"]), "unknown field 'exmaples'"),
    (lambda d: d["routes"][0].update(examples=LEGAL["examples"][:2] + [LEGAL["examples"][0].upper()]),
     r"examples\[3\] repeats examples\[1\]"),
    (lambda d: d["routes"][0].update(negatives=[LEGAL["examples"][0]]), "both an example and a negative"),
    (lambda d: d["routes"][1].update(examples=COOKING["examples"][:3] + [LEGAL["examples"][0]]),
     "is an example of both 'legal' and 'cooking'"),
    (lambda d: d["routes"][0].update(name=""), "name is empty"),
    (lambda d: d["routes"][0].update(name="a\u202eb"), "control or invisible character"),
    (lambda d: d["routes"][0].update(examples=["x" * 2001, "b", "c"]), "2,001 characters; the most is 2,000"),
    (lambda d: d.update(routes={"legal": {}}), "a list under \"routes\""),
])
def test_a_bad_route_is_refused_naming_what_is_wrong(tmp_path, change, message):
    data = routes_json()
    change(data)
    with pytest.raises(RoutesFileError, match=message):
        read_routes(write(tmp_path, data), POOL)


def test_bad_json_is_refused_with_where(tmp_path):
    with pytest.raises(RoutesFileError, match=r"not valid JSON: .* line 1, column \d+"):
        read_routes(write(tmp_path, '{"routes": [ {"name": "legal",, }'), POOL)
    with pytest.raises(RoutesFileError, match="not UTF-8"):
        path = tmp_path / "bin.json"
        path.write_bytes(b'{"routes": ["\xff"]}')
        read_routes(path, POOL)


def test_a_10_mb_file_is_refused_from_its_size_without_being_read(tmp_path):
    path = tmp_path / "routes.json"
    with path.open("wb") as handle:       # 10 MB of valid-looking JSON
        handle.write(b'{"routes": [' + b" " * (10 * 1024 * 1024) + b"]}")
    start = time.perf_counter()
    with pytest.raises(RoutesFileError, match=r"has 10,485,774 bytes; the most is 1,000,000 \(1 MB\)"):
        read_routes(path, POOL)
    assert time.perf_counter() - start < 0.05


def test_writes_are_atomic_and_read_back_the_same(tmp_path):
    routes = parse_routes(routes_json("qwen2.5", {"exclude": ["deepseek-r1", "llama-3.3"]}), POOL)
    path = tmp_path / "sub" / "routes.json"
    write_routes(path, routes)
    assert read_routes(path, POOL) == routes
    assert [p.name for p in path.parent.iterdir()] == ["routes.json"]     # no temporary file left
    too_big = [Route(name=f"r{i}", examples=tuple("x" * 2000 + str(j) for j in range(10)), target=Target(model="qwen2.5"))
               for i in range(50)]
    with pytest.raises(RoutesFileError, match="the file's limit is 1,000,000"):
        write_routes(path, too_big)
    assert read_routes(path, POOL) == routes
    assert MAX_FILE_BYTES == 1_000_000


def test_the_routes_file_setting(tmp_path):
    assert routes_path(Settings(data_dir=tmp_path)) == tmp_path / "routes.json"
    assert routes_path(Settings.from_env({"ROUTER_DATA_DIR": str(tmp_path)})) == tmp_path / "routes.json"
    elsewhere = tmp_path / "mine" / "r.json"
    settings = Settings.from_env({"ROUTER_DATA_DIR": str(tmp_path), "ROUTER_ROUTES_FILE": f" {elsewhere} "})
    assert routes_path(settings) == elsewhere
    assert not Settings.from_env({}).allow_route_edit
    assert Settings.from_env({"ROUTER_ALLOW_ROUTE_EDIT": "1"}).allow_route_edit
