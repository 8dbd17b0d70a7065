"""Attacks on the file parameters: only files this server received as uploads are ever read.

The app is served as ``python app.py`` serves it (the gateway and the Gradio app mounted on one
FastAPI app), since that is where Gradio's own upload-folder check did not run: a raw queue call
naming ``/etc/passwd`` made Gradio copy it into its upload cache (from where ``/gradio_api/file=``
serves it) and the project's check, which only asked whether the path lay in that cache, passed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tests.conftest import router_settings  # noqa: E402


@pytest.fixture(scope="module")
def served(server, tmp_path_factory):
    from routing.service import RouterService
    from tests.app_harness import serve_app

    service = RouterService(router_settings(server, tmp_path_factory.mktemp("uploads-app")), background=False)
    with serve_app(service) as url:
        yield url, service


@pytest.fixture
def secret_file(tmp_path_factory):
    """A server file outside Gradio's upload folder with one comma-free line no test could guess."""
    marker = f"secret{uuid.uuid4().hex}"
    path = tmp_path_factory.mktemp("server-files") / "secrets.txt"
    path.write_text(f"{marker}\n", encoding="utf-8")
    return path, marker


def _call(url: str, api: str, data: list) -> str:
    """A raw REST call to a Gradio endpoint (no gradio_client, no upload): the event stream's text."""
    event = requests.post(f"{url}/gradio_api/call/{api}", json={"data": data}, timeout=10).json()
    return requests.get(f"{url}/gradio_api/call/{api}/{event['event_id']}", timeout=60).text


def _file(path: str | Path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def _copies_in_upload_folder(marker: str) -> list[Path]:
    from gradio.utils import get_upload_folder

    found = []
    for path in Path(get_upload_folder()).rglob("*"):
        try:
            if path.is_file() and path.stat().st_size < 1_000_000 and marker in path.read_text(errors="ignore"):
                found.append(path)
        except OSError:
            continue
    return found


@pytest.mark.parametrize("api, data", [
    ("batch-query", lambda f: [_file(f), None, "route", None]),
    ("test-selection", lambda f: ["", _file(f)]),
    ("calibrate", lambda f: [_file(f), None, 0.5, None, 300, None]),
])
def test_a_server_path_is_refused_and_never_copied(served, secret_file, api, data):
    url, _ = served
    path, marker = secret_file
    body = _call(url, api, data(path))
    assert "event: error" in body and "event: complete" not in body
    assert marker not in body                           # nothing of the file comes back
    assert _copies_in_upload_folder(marker) == []       # and Gradio did not copy it where /file= serves it


def test_a_missing_server_path_reads_like_an_existing_one(served, secret_file):
    """The refusal does not tell an attacker whether a server path exists."""
    url, _ = served
    path, _ = secret_file
    there = _call(url, "test-selection", ["", _file(path)])
    missing = _call(url, "test-selection", ["", _file(path.with_name("nothing-here.txt"))])
    assert there.replace(path.name, "X") == missing.replace("nothing-here.txt", "X")


def test_a_file_in_the_upload_folder_that_nobody_uploaded_is_refused(served):
    """Another caller's batch results live under Gradio's upload folder too: lying there is not enough."""
    from gradio.utils import get_upload_folder

    url, _ = served
    marker = f"private{uuid.uuid4().hex}"
    planted = Path(get_upload_folder()) / f"batch-results-{uuid.uuid4().hex}" / "someone-results.csv"
    planted.parent.mkdir(parents=True)
    planted.write_text(f"prompt\n{marker}\n", encoding="utf-8")
    body = _call(url, "batch-query", [_file(planted), None, "route", None])
    assert "event: error" in body and marker not in body
    assert "must be an upload" in body


def test_an_upload_is_accepted(served, tmp_path):
    from gradio_client import Client, handle_file

    url, _ = served
    src = tmp_path / "prompts.csv"
    src.write_text("prompt\nWrite a haiku about rain\nWhat is 2 + 2?\n", encoding="utf-8")
    summary, _ = Client(url, verbose=False).predict(file=handle_file(str(src)), prompts=None, mode="route",
                                                    prompt_column=None, api_name="/batch-query")
    assert summary["rows"] == 2 and summary["ok"] == 2


def test_the_tab_events_refuse_server_paths_too(served, secret_file):
    """The page's own (private) events are reachable by a raw queue call: they check as well."""
    url, _ = served
    path, marker = secret_file
    config = requests.get(f"{url}/config", timeout=10).json()
    targets = {d["api_name"]: i for i, d in enumerate(config["dependencies"])
               if d.get("api_name") in ("batch-upload", "selection-run")}
    assert set(targets) == {"batch-upload", "selection-run"}
    for name, fn_index in targets.items():
        session = uuid.uuid4().hex
        data = [_file(path), "route"] if name == "batch-upload" else ["", _file(path)]
        joined = requests.post(f"{url}/gradio_api/queue/join",
                               json={"data": data, "fn_index": fn_index, "session_hash": session}, timeout=10)
        assert joined.status_code == 200, joined.text
        stream = requests.get(f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=60).text
        assert marker not in stream, name
        assert '"success": false' in stream.replace('"success":false', '"success": false'), name
    assert _copies_in_upload_folder(marker) == []
