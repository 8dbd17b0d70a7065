"""Every input checked: malformed API inputs come back as AppError naming the parameter.

One app (module scope) serves every bad-input case through gradio_client; the unit tests at the
end check ``routing/safety/validation.py`` directly.
"""

import json
import math
import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.app_harness import launch_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402

MAX_TOKENS = 256          # ROUTER_MAX_TOKENS of the test app
MAX_PROMPT_CHARS = 2000   # ROUTER_MAX_PROMPT_CHARS of the test app
MAX_ROWS = 20             # ROUTER_BATCH_MAX_ROWS of the test app
MAX_MB = 0.1              # ROUTER_BATCH_MAX_MB of the test app (about 105 kB)
POOL = ["deepseek-r1", "mistral-small", "qwen2.5", "gemini-flash", "llama-3.3"]
TRAIN = "Built-in corpus, rule labels"
OPAQUE = ("upstream", "has raised an exception")


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    from routing.service import RouterService

    settings = router_settings(server, tmp_path_factory.mktemp("validation"), max_tokens=MAX_TOKENS,
                               max_prompt_chars=MAX_PROMPT_CHARS, batch_max_rows=MAX_ROWS, batch_max_mb=MAX_MB)
    with launch_app(RouterService(settings, background=False)) as url:
        yield url, Client(url, verbose=False)


@pytest.fixture(scope="module")
def client(app):
    return app[1]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("files") / "prompts.csv"
    path.write_text("prompt\nWrite a haiku about autumn\nIntegrate x^2 from 0 to 3\n", encoding="utf-8")
    return path


def _fail(client, kwargs) -> str:
    with pytest.raises(AppError) as info:
        client.predict(**kwargs)
    message = info.value.message
    assert message and message != "None", "an error without a message ({\"error\": null})"
    assert not any(o in message for o in OPAQUE), message
    return message


# endpoint, keyword arguments, the parameter the message must name, another fragment it must contain
BAD_INPUTS = [
    # /query
    ("/query", dict(prompt=123), "prompt", "must be text"),
    ("/query", dict(prompt=["hi"]), "prompt", "must be text"),
    ("/query", dict(prompt={"text": "hi"}), "prompt", "must be text"),
    ("/query", dict(prompt=None), "prompt", "empty"),
    ("/query", dict(prompt="   "), "prompt", "empty"),
    ("/query", dict(prompt="x" * (MAX_PROMPT_CHARS + 1)), "prompt", "ROUTER_MAX_PROMPT_CHARS"),
    ("/query", dict(prompt="hi", cost_weight="abc"), "cost_weight", "from 0 to 1"),
    ("/query", dict(prompt="hi", cost_weight=-0.1), "cost_weight", "from 0 to 1"),
    ("/query", dict(prompt="hi", cost_weight=1.5), "cost_weight", "from 0 to 1"),
    ("/query", dict(prompt="hi", cost_weight=True), "cost_weight", "from 0 to 1"),
    ("/query", dict(prompt="hi", cost_weight=[0.5]), "cost_weight", "from 0 to 1"),
    ("/query", dict(prompt="hi", exclude="llama-3.3"), "exclude", "list"),
    ("/query", dict(prompt="hi", exclude={"llama-3.3": 1}), "exclude", "list"),
    ("/query", dict(prompt="hi", exclude=[123]), "exclude", "Valid model ids"),
    ("/query", dict(prompt="hi", exclude=["nope"]), "exclude", "Valid model ids"),
    ("/query", dict(prompt="hi", exclude=POOL), "exclude", "at least one"),
    ("/query", dict(prompt="hi", max_tokens=-5), "max_tokens", f"from 1 to {MAX_TOKENS}"),
    ("/query", dict(prompt="hi", max_tokens=0), "max_tokens", f"from 1 to {MAX_TOKENS}"),
    ("/query", dict(prompt="hi", max_tokens=10**12), "max_tokens", f"from 1 to {MAX_TOKENS}"),
    ("/query", dict(prompt="hi", max_tokens=MAX_TOKENS + 1), "max_tokens", f"from 1 to {MAX_TOKENS}"),
    ("/query", dict(prompt="hi", max_tokens="abc"), "max_tokens", "whole number"),
    ("/query", dict(prompt="hi", max_tokens=1.5), "max_tokens", "whole number"),
    ("/query", dict(prompt="hi", max_tokens=True), "max_tokens", "whole number"),
    # /query-specific
    ("/query-specific", dict(prompt=123, model="qwen2.5"), "prompt", "must be text"),
    ("/query-specific", dict(prompt="", model="qwen2.5"), "prompt", "empty"),
    ("/query-specific", dict(prompt="hi", model=""), "model", "qwen2.5"),
    ("/query-specific", dict(prompt="hi", model="gpt-17"), "model", "Valid model ids"),
    ("/query-specific", dict(prompt="hi", model=123), "model", "Valid model ids"),
    ("/query-specific", dict(prompt="hi", model=["qwen2.5"]), "model", "Valid model ids"),
    ("/query-specific", dict(prompt="hi", model="qwen2.5", max_tokens=-5), "max_tokens", "from 1"),
    ("/query-specific", dict(prompt="hi", model="qwen2.5", max_tokens="many"), "max_tokens", "whole number"),
    # /query-compare
    ("/query-compare", dict(prompt=123), "prompt", "must be text"),
    ("/query-compare", dict(prompt=""), "prompt", "empty"),
    ("/query-compare", dict(prompt="hi", models="qwen2.5"), "models", "list"),
    ("/query-compare", dict(prompt="hi", models=5), "models", "list"),
    ("/query-compare", dict(prompt="hi", models=["nope"]), "models", "Valid model ids"),
    ("/query-compare", dict(prompt="hi", models=[None]), "models", "Valid model ids"),
    ("/query-compare", dict(prompt="hi", cost_weight="abc"), "cost_weight", "from 0 to 1"),
    ("/query-compare", dict(prompt="hi", cost_weight=2), "cost_weight", "from 0 to 1"),
    ("/query-compare", dict(prompt="hi", judge="abc"), "judge", "true or false"),
    ("/query-compare", dict(prompt="hi", judge=5), "judge", "true or false"),
    ("/query-compare", dict(prompt="hi", judge=True, judge_model="nope"), "judge_model", "Valid model ids"),
    ("/query-compare", dict(prompt="hi", judge_model=5), "judge_model", "Valid model ids"),
    ("/query-compare", dict(prompt="hi", max_tokens=0), "max_tokens", "from 1"),
    ("/query-compare", dict(prompt="hi", max_tokens=10**12), "max_tokens", "from 1"),
    # /batch-query
    ("/batch-query", dict(prompts=["hi"], mode="fast"), "mode", "route, answer, compare"),
    ("/batch-query", dict(prompts=["hi"], mode=5), "mode", "route, answer, compare"),
    ("/batch-query", dict(prompts="hi"), "prompts", "list"),
    ("/batch-query", dict(prompts={"a": "hi"}), "prompts", "list"),
    ("/batch-query", dict(prompts=[1, 2]), "prompts", "text"),
    ("/batch-query", dict(prompts=[{"prompt": "hi"}]), "prompts", "text"),
    ("/batch-query", dict(prompts=["hi"] * (MAX_ROWS + 1)), "prompts", "ROUTER_BATCH_MAX_ROWS"),
    ("/batch-query", dict(prompts=["x" * 60_000, "y" * 60_000]), "prompts", "ROUTER_BATCH_MAX_MB"),
    ("/batch-query", dict(file="prompts.csv"), "file", "handle_file"),
    ("/batch-query", dict(file=123), "file", "handle_file"),
    ("/batch-query", dict(file={"path": "/etc/passwd"}), "file", "handle_file"),
    ("/batch-query", dict(prompts=["hi"], prompt_column=5), "prompt_column", "text"),
    ("/batch-query", dict(), "file", "prompts"),
    # /test-selection
    ("/test-selection", dict(samples=123), "samples", "text"),
    ("/test-selection", dict(samples=["a"]), "samples", "text"),
    ("/test-selection", dict(samples="x" * 1_000_001), "samples", "characters"),
    ("/test-selection", dict(samples="text,expected\n" + "hi,chat\n" * 2001), "samples", "rows"),
    ("/test-selection", dict(file="samples.csv"), "file", "handle_file"),
    ("/test-selection", dict(file=5), "file", "handle_file"),
    # /train (training is off in this app: inputs are checked first, then the switch)
    ("/train", dict(data="nope"), "data", TRAIN),
    ("/train", dict(data=5), "data", TRAIN),
    ("/train", dict(data=TRAIN, epochs=0), "epochs", "from 1 to 50"),
    ("/train", dict(data=TRAIN, epochs=1000), "epochs", "from 1 to 50"),
    ("/train", dict(data=TRAIN, epochs="abc"), "epochs", "whole number"),
    ("/train", dict(data=TRAIN, epochs=2.5), "epochs", "whole number"),
    ("/train", dict(data=TRAIN, learning_rate="abc"), "learning_rate", "number"),
    ("/train", dict(data=TRAIN, learning_rate=-1), "learning_rate", "number"),
    ("/train", dict(data=TRAIN, learning_rate=1), "learning_rate", "number"),
    ("/train", dict(data=TRAIN, batch_size=0), "batch_size", "from 1 to 256"),
    ("/train", dict(data=TRAIN, batch_size=100_000), "batch_size", "from 1 to 256"),
    ("/train", dict(data=TRAIN, batch_size="abc"), "batch_size", "whole number"),
    ("/train", dict(data=TRAIN, base_model=5), "base_model", "text"),
    ("/train", dict(data=TRAIN, upload="prompts.csv"), "upload", "handle_file"),
    ("/train", dict(data=TRAIN, upload=5), "upload", "handle_file"),
    ("/train", dict(data=TRAIN, strategy="magic"), "strategy", "Fine-tune"),
    ("/query", dict(prompt="hi", latency_weight=2), "latency_weight", "from 0"),
]


@pytest.mark.parametrize("api_name, kwargs, param, fragment", BAD_INPUTS,
                         ids=[f"{a}-{p}-{i}" for i, (a, _, p, _) in enumerate(BAD_INPUTS)])
def test_bad_input_is_refused_with_a_message_naming_the_parameter(client, api_name, kwargs, param, fragment):
    message = _fail(client, dict(kwargs, api_name=api_name))
    assert param in message, message
    assert fragment in message, message


def test_both_file_and_samples_are_refused(client, small_csv):
    message = _fail(client, dict(samples='{"text": "hi", "expected": "chat"}', file=handle_file(str(small_csv)),
                                 api_name="/test-selection"))
    assert "samples" in message and "file" in message


def test_good_inputs_still_pass(client, small_csv):
    r = client.predict(prompt="Write a limerick about a cat", cost_weight="0.5", exclude=[], max_tokens="",
                       api_name="/query")
    assert r["answered_by"] in POOL
    r = client.predict(prompt="hello", model=" qwen2.5 ", max_tokens=MAX_TOKENS, api_name="/query-specific")
    assert r["answered_by"] == "qwen2.5"
    r = client.predict(prompt="hello", models=["qwen2.5", "qwen2.5"], judge="false", judge_model="",
                       max_tokens=None, api_name="/query-compare")
    assert list(r["results"]) == ["qwen2.5"]
    summary, _ = client.predict(file=handle_file(str(small_csv)), mode="route", prompt_column="",
                                api_name="/batch-query")
    assert summary["rows"] == 2
    result = client.predict(samples='{"text": "Write a haiku about autumn", "expected": "creative"}',
                            api_name="/test-selection")
    assert result["samples"] == 1
    with pytest.raises(AppError, match="ROUTER_ALLOW_TRAINING=1"):  # good inputs reach the switch
        client.predict(data=TRAIN, epochs=2, learning_rate=1e-4, batch_size=16, api_name="/train")


SERVER_FILE = {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}  # not an upload
REST_CASES = [  # raw REST calls: Gradio itself refuses these before the handler runs
    ("query", ["hi"], "prompt, cost_weight, exclude, max_tokens"),
    ("query", [], "prompt, cost_weight, exclude, max_tokens"),
    ("query-specific", ["hi"], "prompt, model, max_tokens"),
    ("batch-query", [SERVER_FILE, None, "route", None], "`file` must be an upload"),
    ("test-selection", ["", SERVER_FILE, ""], "`file` must be an upload"),
    ("test-selection", ["", SERVER_FILE], "samples, file, basis"),      # every input, in order
    ("train", [TRAIN, SERVER_FILE, "", 4, 1e-4, 16, None], "`upload` must be an upload"),
    ("train", [TRAIN, {"path": "x.csv"}, "", 4, 1e-4, 16, None], "`upload` must be an upload"),
    ("query", [123, 0, None, None, 0], "prompt must be text"),
]


@pytest.mark.parametrize("api_name, data, fragment", REST_CASES,
                         ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(REST_CASES)])
def test_rest_calls_get_messages_not_error_null(app, api_name, data, fragment):
    import httpx

    url = app[0].rstrip("/") + f"/gradio_api/call/{api_name}"
    event = httpx.post(url, json={"data": data}, timeout=30)
    assert event.status_code == 200, event.text
    stream = httpx.get(f"{url}/{event.json()['event_id']}", timeout=60).text
    assert "event: error" in stream, stream
    payload = json.loads(stream.split("data:", 1)[1].strip().splitlines()[0])
    assert payload["error"] and fragment in payload["error"], payload


def test_launch_sets_max_file_size_from_router_batch_max_mb(client):
    assert client.config["max_file_size"] == int(MAX_MB * 1024 * 1024)


def test_oversize_upload_is_refused_before_it_is_stored(app, tmp_path):
    import httpx
    from gradio.utils import get_upload_folder

    url, client = app
    big = tmp_path / f"oversize-{uuid.uuid4().hex}.csv"  # a name no earlier upload can have
    big.write_text("prompt\n" + "\n".join(f"prompt number {i} " + "x" * 100 for i in range(2000)) + "\n",
                   encoding="utf-8")
    assert big.stat().st_size > MAX_MB * 1024 * 1024
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # gradio_client checks first
        client.predict(file=handle_file(str(big)), mode="route", api_name="/batch-query")
    # a client that does not check: the server refuses the upload itself, and stores nothing
    with big.open("rb") as fh:
        response = httpx.post(url.rstrip("/") + "/gradio_api/upload", files={"files": (big.name, fh)}, timeout=30)
    assert response.status_code == 413, response.text
    assert not list(Path(get_upload_folder()).rglob(big.name))


# --------------------------------------------------------------------------- routing/safety/validation.py

@pytest.fixture()
def v():
    from routing.safety import validation
    return validation


def _user_error(fn, *args, **kwargs) -> str:
    from routing.errors import UserError

    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("value, expected", [(0, 0.0), (1, 1.0), (0.25, 0.25), ("0.5", 0.5), (" 1 ", 1.0),
                                             (None, 0.0), ("", 0.0), (".5", 0.5), ("5e-1", 0.5), ("+1", 1.0)])
def test_cost_weight_accepts_numbers_from_0_to_1(v, value, expected):
    assert v.check_cost_weight(value) == expected


@pytest.mark.parametrize("value", ["abc", -0.01, 1.01, True, False, [0.5], {"x": 1}, math.nan, math.inf, "nan",
                                   "\u0661", "\uff11", "0_5", "infinity", "0x1"])
def test_cost_weight_refuses_the_rest(v, value):
    message = _user_error(v.check_cost_weight, value)
    assert message.startswith("cost_weight must be a number from 0 to 1") and repr(value)[:10] in message


def test_the_message_says_what_to_send_instead(v):
    assert _user_error(v.check_cost_weight, "abc") == "cost_weight must be a number from 0 to 1 (got 'abc')."


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("  ", None), (1, 1), (256, 256),
                                             (5.0, 5), ("12", 12)])
def test_max_tokens_accepts_whole_numbers_in_range_or_empty(v, value, expected):
    assert v.check_max_tokens(value, limit=256) == expected


@pytest.mark.parametrize("value", [0, -5, 257, 10**12, 1.5, "abc", True, [3], math.nan, "1e3",
                                   "\u0661\u0662", "\uff11\uff12", "1_0"])
def test_max_tokens_refuses_the_rest(v, value):
    message = _user_error(v.check_max_tokens, value, limit=256)
    assert message.startswith("max_tokens must be a whole number from 1 to 256")


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("true", True), ("False", False),
                                             (None, False)])
def test_booleans(v, value, expected):
    assert v.check_bool(value, "judge") is expected


@pytest.mark.parametrize("value", ["abc", 1, 0, 2.0, [], "yes please"])
def test_booleans_refuse_the_rest(v, value):
    assert _user_error(v.check_bool, value, "judge").startswith("judge must be true or false")


def test_prompt_checks(v):
    assert v.check_prompt("hi", max_chars=10) == "hi"
    assert "prompt must be text" in _user_error(v.check_prompt, 123, max_chars=10)
    assert "int" in _user_error(v.check_prompt, 123, max_chars=10)
    assert "empty" in _user_error(v.check_prompt, "  \n", max_chars=10)
    assert "empty" in _user_error(v.check_prompt, None, max_chars=10)
    assert "ROUTER_MAX_PROMPT_CHARS" in _user_error(v.check_prompt, "x" * 11, max_chars=10)


def test_model_ids(v):
    assert v.check_model_id(" qwen2.5 ", POOL) == "qwen2.5"
    assert v.check_model_id("", POOL, allow_empty=True) is None
    assert v.check_model_id(None, POOL, "judge_model", allow_empty=True) is None
    for bad in ("gpt-17", 123, ["qwen2.5"]):
        message = _user_error(v.check_model_id, bad, POOL)
        assert "model" in message and "Valid model ids: " + ", ".join(POOL) in message
    assert "Choose" in _user_error(v.check_model_id, "", POOL)


def test_model_lists(v):
    assert v.check_model_list(None, POOL, "exclude") == []
    assert v.check_model_list([], POOL, "exclude") == []
    assert v.check_model_list(["qwen2.5", " qwen2.5", "llama-3.3"], POOL, "models") == ["qwen2.5", "llama-3.3"]
    assert "must be a list" in _user_error(v.check_model_list, "qwen2.5", POOL, "models")
    assert "must be a list" in _user_error(v.check_model_list, 5, POOL, "models")
    message = _user_error(v.check_model_list, ["qwen2.5", "nope", 3], POOL, "exclude")
    assert "exclude" in message and "'nope'" in message and "3" in message and "Valid model ids" in message
    assert len(_user_error(v.check_model_list, ["x"] * 10_000, POOL, "exclude")) < 500


def test_choices(v):
    assert v.check_choice("route", ("route", "answer"), "mode") == "route"
    assert v.check_choice(None, ("route", "answer"), "mode", default="route") == "route"
    assert _user_error(v.check_choice, "fast", ("route", "answer"), "mode") == \
        "mode must be one of route, answer (got 'fast')."


def test_numbers_in_ranges(v):
    assert v.check_int(4, "epochs", 1, 50) == 4
    assert v.check_int(4.0, "epochs", 1, 50) == 4
    assert v.check_int(None, "epochs", 1, 50, default=4) == 4
    assert v.check_float("1e-4", "learning_rate", 1e-6, 1e-2) == 1e-4
    assert "epochs must be a whole number from 1 to 50" in _user_error(v.check_int, 51, "epochs", 1, 50)
    assert "learning_rate must be a number from" in _user_error(v.check_float, 0, "learning_rate", 1e-6, 1e-2)


def test_optional_text(v):
    assert v.check_optional_text(None, "prompt_column") is None
    assert v.check_optional_text("  ", "prompt_column") is None
    assert v.check_optional_text(" text ", "prompt_column") == "text"
    assert "prompt_column must be text" in _user_error(v.check_optional_text, 5, "prompt_column")
    assert "at most 10" in _user_error(v.check_optional_text, "x" * 11, "prompt_column", max_chars=10)


def test_prompt_lists(v):
    assert v.check_prompt_list(["a", "b"], max_rows=5, max_mb=1) == ["a", "b"]
    assert v.check_prompt_list(None, max_rows=5, max_mb=1) is None
    assert "list" in _user_error(v.check_prompt_list, "a", max_rows=5, max_mb=1)
    assert "prompts[1] must be text" in _user_error(v.check_prompt_list, ["a", 2], max_rows=5, max_mb=1)
    assert "ROUTER_BATCH_MAX_ROWS" in _user_error(v.check_prompt_list, ["a"] * 6, max_rows=5, max_mb=1)
    assert "ROUTER_BATCH_MAX_MB" in _user_error(v.check_prompt_list, ["é" * 600_000], max_rows=5, max_mb=1)


def test_pasted_samples(v):
    assert v.check_samples_text(None) == ""
    assert v.check_samples_text(json.dumps({"text": "hi", "expected": "chat"})).startswith("{")
    assert "samples must be text" in _user_error(v.check_samples_text, 5)
    assert "characters" in _user_error(v.check_samples_text, "x" * 11, max_chars=10)
    assert "rows" in _user_error(v.check_samples_text, "h\n" + "a\n" * 4, max_rows=3)
    assert v.check_samples_text("h\n" + "a\n" * 3, max_rows=3)


def test_errors_name_their_parameter(v):
    from routing.errors import UserError

    with pytest.raises(v.InvalidInput) as info:
        v.check_cost_weight("abc")
    assert info.value.param == "cost_weight" and isinstance(info.value, UserError)


def test_max_file_size_bytes(v):
    assert v.max_file_size_bytes(20) == 20 * 1024 * 1024
    assert v.max_file_size_bytes(0.5) == 512 * 1024
    assert v.max_file_size_bytes(0) is None
