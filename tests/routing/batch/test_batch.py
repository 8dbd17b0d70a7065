"""Batch routing: every mode through gradio_client, resume after a real kill, the batch command."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from routing.batch.cli import main

from routing.batch.local import job_previous_rows, job_results_path, preview_columns, previous_rows, run_file

from routing.batch.rows import csv_columns, summarize
from routing.batch.io import ResultsStore, prompt_hash  # noqa: E402
from routing.errors import UserError  # noqa: E402
from tests.conftest import router_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
PROMPTS = [
    "Write a Python function that reverses a linked list",   # deepseek-r1 (coding)
    "Write a limerick about a sleepy cat",                   # llama-3.3 (creative)
    "What is the capital of Australia?",                     # gemini-flash (factual)
    "Integrate x^2 from 0 to 3",                             # qwen2.5 (math)
    "hey, how are you today?",                               # mistral-small (chat)
]
DEEPSEEK = "deepseek/deepseek-r1"


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_prompts_csv(path, prompts, extra=None):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt", "note"])
        for i, p in enumerate(prompts):
            writer.writerow([f"r{i}", p, (extra or {}).get(i, "")])
    return path


# --------------------------------------------------------------------------- the runner

def test_route_mode_makes_no_api_calls_and_batches_the_selector(make_service, protocol_server, tmp_path):
    service = make_service(openrouter_api_key=None)
    calls = []
    score = service.selector.score
    service.selector.score = lambda prompts: calls.append(len(prompts)) or score(prompts)
    src = write_prompts_csv(tmp_path / "in.csv", [PROMPTS[i % 5] + f" #{i}" for i in range(40)])
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="route", chunk_size=16)
    assert calls == [16, 16, 8]                     # one forward pass per chunk
    assert protocol_server.chat_requests() == []    # no key, no API call
    assert summary["rows"] == summary["ok"] == 40 and summary["failed"] == 0
    assert abs(sum(summary["traffic_share"].values()) - 1) < 1e-6
    assert sum(summary["confidence"]["counts"]) == 40
    cost = summary["cost_estimate_usd"]
    assert cost["all_cheapest"] <= cost["routed"] <= cost["all_priciest"]
    assert cost["priciest_model"] == "deepseek-r1" and cost["cheapest_model"] == "mistral-small"
    rows = read_csv(tmp_path / "out.csv")
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(40)]
    assert rows[0]["selected_model"] == "deepseek-r1" and float(rows[0]["score_deepseek-r1"]) > 0.5
    assert {f"score_{m}" for m in service.pool.ids} <= set(rows[0])


def test_answer_mode_records_a_failing_row_and_goes_on(make_service, protocol_server, tmp_path):
    service = make_service(max_fallbacks=0)
    protocol_server.set_model(DEEPSEEK, status=500, error_message="upstream exploded")
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS + [""])
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="answer")
    assert summary["ok"] == 4 and summary["failed"] == 2
    rows = read_csv(tmp_path / "out.csv")
    assert rows[0]["status"] == "failed" and "upstream exploded" in rows[0]["error"]
    assert rows[5]["status"] == "failed" and "empty" in rows[5]["error"]
    assert rows[1]["answered_by"] == "llama-3.3"
    assert rows[1]["response"] == "[meta-llama/llama-3.3-70b-instruct] answer to: " + PROMPTS[1]
    assert int(rows[1]["total_tokens"]) > 0 and float(rows[1]["cost_usd"]) > 0
    assert summary["actual_cost_usd"] > 0
    assert summary["cost_estimate_usd"]["rows_with_estimated_tokens"] == 0  # real usage used


def test_compare_mode_gets_every_model_and_a_best_one(make_service, protocol_server, tmp_path):
    service = make_service()
    protocol_server.set_model("qwen/qwen-2.5-72b-instruct", status=503)
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:2])
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="compare")
    assert summary["ok"] == 2 and summary["compare"]["rows"] == 2
    rows = read_csv(tmp_path / "out.csv")
    for m in service.pool.ids:
        assert f"{m}_total" in rows[0]
    assert rows[0]["qwen2.5_error"] and not rows[0]["llama-3.3_error"]
    # A winner, or a tie among the answers that scored within the evaluator's noise: never the failed model.
    assert (rows[0]["best_model"] in service.pool.ids) != bool(rows[0]["tied"])
    assert rows[0]["best_model"] != "qwen2.5" and "qwen2.5" not in rows[0]["tied"]
    assert rows[0]["llama-3.3_response"].startswith("[meta-llama/llama-3.3-70b-instruct]")
    from routing.learning.outcome_log import OutcomeLog

    logged = OutcomeLog.for_settings(service.settings).comparisons()
    assert sorted(c["prompt"] for c in logged) == sorted(PROMPTS[:2])  # training data, as in Compare all


def test_rerun_resumes_without_redoing_rows(make_service, protocol_server, tmp_path):
    service = make_service()
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    first = run_file(service.router, src, tmp_path / "out.jsonl", mode="answer")
    again = run_file(service.router, src, tmp_path / "out.jsonl", mode="answer")
    assert first["processed_this_run"] == 5 and again["processed_this_run"] == 0 and again["resumed_rows"] == 5
    assert len(protocol_server.chat_requests()) == 5
    assert again["ok"] == 5


def test_results_of_another_file_are_refused(make_service, tmp_path):
    service = make_service()
    run_file(service.router, write_prompts_csv(tmp_path / "a.csv", PROMPTS), tmp_path / "out.csv")
    with pytest.raises(UserError, match="different input"):
        run_file(service.router, write_prompts_csv(tmp_path / "b.csv", PROMPTS[::-1]), tmp_path / "out.csv")


def test_unknown_mode_is_a_clear_error(make_service, tmp_path):
    with pytest.raises(UserError, match="Unknown mode 'fast'.*route, answer, compare"):
        run_file(make_service().router, write_prompts_csv(tmp_path / "a.csv", PROMPTS), tmp_path / "o.csv", mode="fast")


def test_same_upload_maps_to_the_same_results_file(tmp_path):
    a = write_prompts_csv(tmp_path / "a.csv", PROMPTS)
    b = write_prompts_csv(tmp_path / "b.csv", PROMPTS)
    assert job_results_path(tmp_path, a, "route", None) == job_results_path(tmp_path, b, "route", None)
    assert job_results_path(tmp_path, a, "route", None) != job_results_path(tmp_path, a, "answer", None)
    assert job_results_path(tmp_path, a, "route", None) != job_results_path(tmp_path, a, "route", "note")


def test_compare_mode_without_a_key_is_refused_before_any_row(make_service, protocol_server, tmp_path):
    """Without a key no pool model can answer: refuse up front instead of filling every row with errors."""
    service = make_service(openrouter_api_key=None)
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:2])
    with pytest.raises(UserError, match="Compare mode needs an OpenRouter key.*Route only"):
        run_file(service.router, src, tmp_path / "out.csv", mode="compare")
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.csv").exists()
    assert protocol_server.chat_requests() == []
    assert run_file(service.router, src, tmp_path / "out.csv", mode="route")["ok"] == 2   # route needs no key


def test_start_over_sets_the_earlier_results_aside_and_runs_every_row(make_service, protocol_server, tmp_path):
    service = make_service()
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    out = tmp_path / "out.csv"
    assert previous_rows(out) == 0
    first = run_file(service.router, src, out, mode="answer")
    assert previous_rows(out) == 5 and first["started_over"] is False and first["set_aside_rows"] == 0
    again = run_file(service.router, src, out, mode="answer", start_over=True)
    assert again["started_over"] is True and again["set_aside_rows"] == 5
    assert again["resumed_rows"] == 0 and again["processed_this_run"] == 5
    assert len(protocol_server.chat_requests()) == 10                    # every row asked again
    kept = Path(again["set_aside_jsonl"])                                  # the earlier rows are not lost
    assert kept.parent == tmp_path and kept.name.startswith("out.before-") and kept.suffix == ".jsonl"
    assert [r["row"] for r in ResultsStore(kept).iter_records()] == list(range(5))
    assert kept.with_suffix(".csv").is_file()
    assert [r["row"] for r in ResultsStore(tmp_path / "out.jsonl").iter_records()] == list(range(5))
    resumed = run_file(service.router, src, out, mode="answer")            # the default still resumes
    assert resumed["resumed_rows"] == 5 and resumed["processed_this_run"] == 0 and "set_aside_jsonl" not in resumed


def test_previous_run_of_the_same_upload_is_found(make_service, tmp_path):
    service = make_service()
    data = service.settings.data_dir
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    assert job_previous_rows(data, src, "route", "prompt") == 0
    run_file(service.router, src, job_results_path(data, src, "route", "prompt"), prompt_column="prompt")
    assert job_previous_rows(data, src, "route", "prompt") == 5
    assert job_previous_rows(data, src, "answer", "prompt") == 0 and job_previous_rows(data, src, "route", None) == 0


def test_preview_columns_are_few_the_users_first_and_wide_enough(make_service):
    ids = make_service().pool.ids
    compare = preview_columns("compare", ["id", "prompt", "note", "a", "b"], "prompt", ids)
    names = [c for c, _ in compare]
    assert len(csv_columns("compare", ["id", "prompt", "note", "a", "b"], ids)) > 40          # the download
    assert names[:4] == ["id", "prompt", "note", "a"]      # the user's columns keep their place: a few, not all
    assert names[4:8] == ["status", "selected_model", "confidence", "runner_up"] and len(names) <= 16
    assert {"best_model", "router_correct", "error"} <= set(names) and names[-1] == "error"
    assert [f"{m}_total" for m in ids] == [n for n in names if n.endswith("_total")]
    assert [c for c, _ in preview_columns("route", ["text", "id"], "text", ids)][:2] == ["text", "id"]
    widths = dict(compare)
    assert widths["error"] >= 300 and widths["prompt"] >= 300
    assert all(w >= 10 * len(n) + 24 for n, w in compare if 10 * len(n) + 24 <= 320)   # headers do not wrap
    clash = [c for c, _ in preview_columns("answer", ["status", "prompt"], "prompt", ids)]
    assert "input_status" in clash and clash.count("status") == 1 and "response" in clash


def test_batch_command_starts_over_when_asked(cli_env, tmp_path, capsys):
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    out = str(tmp_path / "res.csv")
    assert main([str(src), "--out", out]) == 0
    assert main([str(src), "--out", out]) == 0
    assert "resumed: 5  this run: 0" in capsys.readouterr().out
    assert main([str(src), "--out", out, "--start-over"]) == 0
    printed = capsys.readouterr().out
    assert "resumed: 0  this run: 5" in printed and "started over: the previous 5 rows were moved to" in printed


# --------------------------------------------------------------------------- the batch command

@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    for key, value in dict(ROUTER_SELECTOR="rules", ROUTER_LOCAL_MODEL="0", ROUTER_LIVE_PRICES="0",
                           ROUTER_DATA_DIR=str(tmp_path / "data"), OPENROUTER_API_KEY="").items():
        monkeypatch.setenv(key, value)


def test_batch_command_streams_a_file_larger_than_one_chunk(cli_env, tmp_path, capsys):
    prompts = [f"{PROMPTS[i % 5]} (variant {i})" for i in range(150)]
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"text": p, "n": i}) + "\n" for i, p in enumerate(prompts)), encoding="utf-8")
    assert main([str(src), "--out", str(tmp_path / "res.csv"), "--chunk-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "rows: 150  ok: 150  failed: 0" in out and "traffic:" in out and "estimated cost" in out
    records = list(ResultsStore(tmp_path / "res.jsonl").iter_records())
    assert [r["row"] for r in records] == list(range(150))
    assert [r["input"]["n"] for r in records] == list(range(150))
    rows = read_csv(tmp_path / "res.csv")
    assert len(rows) == 150 and rows[149]["text"] == prompts[149]


def test_batch_command_reports_bad_input_without_a_traceback(cli_env, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,hi\n", encoding="utf-8")
    assert main([str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "No prompt column" in err and "'id', 'body'" in err and "Traceback" not in err


def test_killed_batch_resumes_with_every_row_exactly_once(protocol_server, tmp_path):
    """Really kill `python -m routing.batch` mid-way, rerun it, and find every row once."""
    protocol_server.set_model("*", delay=0.15)
    prompts = [f"{PROMPTS[i % 5]} (row {i})" for i in range(24)]
    src = write_prompts_csv(tmp_path / "in.csv", prompts)
    out = tmp_path / "out.csv"
    env = dict(os.environ, OPENROUTER_API_KEY="good", OPENROUTER_BASE_URL=protocol_server.base_url,
               ROUTER_SELECTOR="rules", ROUTER_LOCAL_MODEL="0", ROUTER_LIVE_PRICES="0", ROUTER_MAX_RETRIES="0",
               ROUTER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "routing.batch", str(src), "--out", str(out), "--mode", "answer", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    jsonl = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if jsonl.exists() and jsonl.read_text(encoding="utf-8").count("\n") >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    written = jsonl.read_text(encoding="utf-8").split("\n")[:-1]      # whole lines only (a kill can cut the last)
    before = {json.loads(line)["row"] for line in written if line.strip()}
    assert 6 <= len(before) < len(prompts), "the kill should land mid-batch"
    assert not out.exists()  # the CSV is only made at the end

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"resumed: {len(before)}" in done.stdout
    rows = [json.loads(line)["row"] for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert sorted(rows) == list(range(len(prompts)))             # every row exactly once
    assert [r["id"] for r in read_csv(out)] == [f"r{i}" for i in range(len(prompts))]
    for i in before:                                               # rows done before the kill were not redone
        assert len(asked_with(protocol_server, prompts[i])) == 1, prompts[i]


def asked_with(server, prompt):
    """Chat requests that reached the server whole and asked ``prompt``.

    A request the kill cut off is recorded too, without its body: the client (urllib3) sends
    the headers and the body in two writes, and SIGKILL can land between them, leaving a
    request whose ``json`` is None (or a cut JSON string). That request never reached a
    model, so it is not an ask; reading ``r.json["messages"]`` on it was the flaky
    ``TypeError`` of the test above.
    """
    return [r for r in server.chat_requests()
            if isinstance(r.json, dict) and r.json.get("messages") and r.json["messages"][-1].get("content") == prompt]


def test_a_request_cut_by_a_kill_is_not_counted_as_an_ask(protocol_server):
    """The race of the kill test, made to happen: headers sent, then the client dies."""
    import socket

    def die_after(data: bytes, recorded: int) -> None:
        with socket.create_connection(("127.0.0.1", protocol_server.port)) as sock:
            sock.sendall(data)                        # ... and the client is gone
        deadline = time.monotonic() + 10              # wait for the server's handler to record it
        while len(protocol_server.chat_requests()) < recorded and time.monotonic() < deadline:
            time.sleep(0.01)

    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n")
    die_after(head, 1)                                # killed between the two writes: no body at all
    die_after(head + b'{"model": "m", "messages": [{"role": "user", "content": "Write', 2)   # mid-body
    cut = protocol_server.chat_requests()
    assert [r.json for r in cut] == [None, '{"model": "m", "messages": [{"role": "user", "content": "Write']
    assert asked_with(protocol_server, "Write") == []


# --------------------------------------------------------------------------- through gradio_client

@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    from gradio_client import Client

    from routing.service import RouterService
    from tests.app_harness import launch_app

    service = RouterService(router_settings(server, tmp_path_factory.mktemp("batch-app")), background=False)
    with launch_app(service) as url:
        yield Client(url, verbose=False), service, url


@pytest.fixture(autouse=False)
def fresh_server(server):
    server.reset()
    yield server
    server.reset()


def test_batch_query_is_public_and_the_tab_events_are_not(app):
    client, _, _ = app
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert "/batch-query" in named and not {n for n in named if n.startswith("/batch") and n != "/batch-query"}


def test_api_route_mode_with_a_prompt_list(app, fresh_server):
    client, service, _ = app
    summary, csv_file = client.predict(prompts=PROMPTS, mode="route", api_name="/batch-query")
    assert summary["rows"] == 5 and summary["ok"] == 5 and summary["mode"] == "route"
    assert summary["traffic"] == {"deepseek-r1": 1, "mistral-small": 1, "qwen2.5": 1, "gemini-flash": 1,
                                  "llama-3.3": 1}
    assert "results_jsonl" not in summary and "summary_json" not in summary  # no server paths leak
    assert str(service.settings.data_dir) not in json.dumps(summary)
    rows = read_csv(csv_file)
    assert [r["prompt"] for r in rows] == PROMPTS
    assert fresh_server.chat_requests() == []


def test_api_route_mode_with_an_uploaded_csv_neutralises_formulas(app, tmp_path, fresh_server):
    from gradio_client import handle_file

    client, _, _ = app
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:3] + ["=HYPERLINK(\"http://x\")"],
                            extra={0: "@evil", 1: "+1", 2: "fine"})
    summary, csv_file = client.predict(file=handle_file(str(src)), api_name="/batch-query")
    assert summary["rows"] == 4 and summary["prompt_column"] == "prompt" and summary["columns"] == ["id", "prompt", "note"]
    rows = read_csv(csv_file)
    assert [r["note"] for r in rows] == ["'@evil", "'+1", "fine", ""]
    assert rows[3]["prompt"] == "'=HYPERLINK(\"http://x\")"
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"]


def test_api_same_upload_again_resumes(app, tmp_path, fresh_server):
    """A batch interrupted in the app (browser closed, restart) continues when the file is run again."""
    from gradio_client import handle_file

    client, _, _ = app
    src = write_prompts_csv(tmp_path / "again.csv", [p + " (again)" for p in PROMPTS])
    first, _ = client.predict(file=handle_file(str(src)), mode="answer", api_name="/batch-query")
    second, csv_file = client.predict(file=handle_file(str(src)), mode="answer", api_name="/batch-query")
    assert first["processed_this_run"] == 5 and second["resumed_rows"] == 5 and second["processed_this_run"] == 0
    assert len(fresh_server.chat_requests()) == 5 and len(read_csv(csv_file)) == 5


def test_api_answer_mode(app, fresh_server):
    client, service, _ = app
    summary, csv_file = client.predict(prompts=PROMPTS[:3] + ["   "], mode="answer", api_name="/batch-query")
    assert summary["ok"] == 3 and summary["failed"] == 1 and "empty" in summary["errors"][0]["error"]
    rows = read_csv(csv_file)
    for row, model in zip(rows, ["deepseek-r1", "llama-3.3", "gemini-flash"]):
        assert row["answered_by"] == model
        assert row["response"] == f"[{service.pool.get(model).model_name}] answer to: {row['prompt']}"
    assert rows[3]["status"] == "failed"
    assert len(fresh_server.chat_requests()) == 3


def test_api_compare_mode(app, fresh_server):
    client, service, _ = app
    summary, csv_file = client.predict(prompts=PROMPTS[:1], mode="compare", api_name="/batch-query")
    assert summary["ok"] == 1 and summary["compare"]["rows"] == 1
    assert len(fresh_server.chat_requests()) == len(service.pool.ids)
    row = read_csv(csv_file)[0]
    assert all(row[f"{m}_response"].startswith("[") for m in service.pool.ids)


@pytest.mark.parametrize("content, kwargs, message", [
    (b"id,body\n1,hi\n", {}, "No prompt column.*'id', 'body'"),
    (b"", {}, "empty"),
    (b"prompt\ncaf\xe9\n", {}, "not UTF-8: byte 0xe9"),
    (b"prompt\nhi\n", {"mode": "fast"}, "mode must be one of"),
])
def test_api_bad_files_come_back_as_messages(app, tmp_path, content, kwargs, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client, _, _ = app
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        client.predict(file=handle_file(str(path)), api_name="/batch-query", **kwargs)


def test_api_needs_a_file_or_prompts(app):
    from gradio_client.exceptions import AppError

    client, _, _ = app
    with pytest.raises(AppError, match="Give `file`"):
        client.predict(api_name="/batch-query")


def test_api_too_many_rows_and_too_large(server, tmp_path):
    """The limits come from settings (ROUTER_BATCH_MAX_ROWS / ROUTER_BATCH_MAX_MB)."""
    import gradio as gr
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from routing.service import RouterService
    from ui.batch_tab import add_batch_api

    service = RouterService(router_settings(server, tmp_path, batch_max_rows=3, batch_max_mb=0.01), background=False)
    with gr.Blocks() as demo:
        add_batch_api(service)
    _, url, _ = demo.queue().launch(prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="4 rows; the limit is 3"):
            client.predict(file=handle_file(str(write_prompts_csv(tmp_path / "a.csv", PROMPTS[:4]))),
                           api_name="/batch-query")
        with pytest.raises(AppError, match="the limit is 3"):
            client.predict(prompts=PROMPTS[:4], api_name="/batch-query")
        big = tmp_path / "big.csv"
        big.write_text("prompt\n" + "x" * 20000 + "\n", encoding="utf-8")
        with pytest.raises(AppError, match="limit is 0.01 MB"):
            client.predict(file=handle_file(str(big)), api_name="/batch-query")
    finally:
        demo.close()


def test_api_compare_without_a_key_is_a_message_not_rows_of_errors(server, tmp_path):
    import gradio as gr
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from routing.service import RouterService
    from ui.batch_tab import add_batch_api

    server.reset()
    service = RouterService(router_settings(server, tmp_path, openrouter_api_key=None), background=False)
    with gr.Blocks() as demo:
        add_batch_api(service)
    _, url, _ = demo.queue().launch(prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        with pytest.raises(AppError, match="Compare mode needs an OpenRouter key"):
            Client(url, verbose=False).predict(prompts=PROMPTS[:2], mode="compare", api_name="/batch-query")
    finally:
        demo.close()
    assert server.chat_requests() == []
    assert not (service.settings.data_dir / "batch").exists()       # no results file of failed rows


def test_api_refuses_server_paths(app):
    """A raw REST call naming a file on the server is refused: only uploads are read.

    Gradio refuses it before the handler runs; ``ui.batch_tab.uploaded_path`` checks again.
    """
    import requests

    _, _, url = app
    payload = {"data": [{"path": str(REPO / "assets" / "selection_samples.jsonl"),
                         "meta": {"_type": "gradio.FileData"}}, None, "route", None]}
    event = requests.post(f"{url.rstrip('/')}/gradio_api/call/batch-query", json=payload, timeout=10).json()
    body = requests.get(f"{url.rstrip('/')}/gradio_api/call/batch-query/{event['event_id']}", timeout=30).text
    assert "event: error" in body and "event: complete" not in body  # Gradio and ui.batch_tab both refuse


def test_summary_counts_match_the_results_file(make_service, tmp_path):
    service = make_service()
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    run_file(service.router, src, tmp_path / "o.csv")
    summary = summarize(ResultsStore(tmp_path / "o.jsonl"), service.pool)
    assert summary["processed"] == 5 and summary["traffic"]["qwen2.5"] == 1
    assert prompt_hash(PROMPTS[0]) == next(ResultsStore(tmp_path / "o.jsonl").iter_records())["prompt_hash"]


def test_uploaded_path_accepts_only_files_the_app_received_as_uploads(tmp_path):
    import gradio as gr
    from gradio.context import LocalContext
    from gradio.utils import get_upload_folder

    from ui.batch_tab import uploaded_path

    uploaded = str(Path(get_upload_folder()) / "x" / "in.csv")
    lying_there = str(Path(get_upload_folder()) / "y" / "someone-elses-results.csv")
    with pytest.raises(UserError, match="must be an upload"):      # outside a Gradio event: nothing was uploaded
        uploaded_path({"path": uploaded})
    demo = gr.Blocks()
    demo.upload_file_set.add(uploaded)
    token = LocalContext.blocks.set(demo)
    try:
        assert uploaded_path({"path": uploaded}) == Path(uploaded)
        assert uploaded_path(uploaded_path({"path": uploaded})) == Path(uploaded)  # a checked path checks again
        for bad in ({"path": "/etc/passwd"}, {"path": lying_there}, {"path": uploaded + "/../../in.csv"}, {}, 3):
            with pytest.raises(UserError, match="must be an upload"):
                uploaded_path(bad)
    finally:
        LocalContext.blocks.reset(token)


# --------------------------------------------------------------------------- costs, outputs

def _tidy_number(text):
    """A CSV number cell with no float noise: 10 significant digits at most (``1.72e-05``, not ``...99998e-05``)."""
    value = float(text)
    return value == float(f"{value:.10g}") and len(text.replace("-", "").replace(".", "").split("e")[0]) <= 11


def test_costs_read_as_dollars_in_the_preview_and_without_float_noise_in_the_csv(make_service, tmp_path):
    service = make_service()
    src = write_prompts_csv(tmp_path / "in.csv", [f"{p} please, number {i}" for i, p in enumerate(PROMPTS * 4)])
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="answer")
    rows = read_csv(tmp_path / "out.csv")
    costs = [r["cost_usd"] for r in rows]
    assert all(costs) and all(_tidy_number(c) for c in costs), costs      # no 1.7199999999999998e-05
    result_columns = csv_columns("answer", ["id", "prompt", "note"], service.pool.ids)[3:]
    for row in rows:
        for column in result_columns:
            try:
                float(row[column])
            except ValueError:
                continue
            assert _tidy_number(row[column]), (column, row[column])
    assert summary["actual_cost_usd"] == float(f"{summary['actual_cost_usd']:.10g}")
    assert all(v == float(f"{v:.10g}") for v in summary["cost_estimate_usd"].values() if isinstance(v, float))
    from routing.batch.local import money_columns, preview_results

    money = money_columns("answer", ["id", "prompt", "note"], service.pool.ids)
    assert money == {"cost_usd"} and money_columns("route", ["cost_usd", "prompt"], service.pool.ids) == set()
    preview = preview_results(tmp_path / "out.csv", ["id", "cost_usd"], money=money)
    assert [r[0] for r in preview] == [r["id"] for r in rows]
    assert all(re.fullmatch(r"\$0\.0000\d{1,3}", cost) for _, cost in preview), preview   # $0.0000172


def test_dollars_are_readable_at_any_size():
    from routing.batch.money import dollars, tidy

    assert dollars(1.7199999999999998e-05) == "$0.0000172" and tidy(1.7199999999999998e-05) == 1.72e-05
    assert [dollars(v) for v in (0, 0.5, 0.0123, 1e-5, 1234.5, -0.003)] == \
        ["$0", "$0.50", "$0.0123", "$0.00001", "$1,234.50", "-$0.003"]
    assert dollars(None) == dollars("") == "" and dollars("n/a") == "n/a" and tidy(0.1 + 0.2) == 0.3


def test_the_summary_markdown_shows_small_costs_as_dollars(make_service):
    from ui.batch_tab import summary_markdown

    pool = make_service().pool
    summary = {"rows": 1, "ok": 1, "failed": 0, "traffic_share": {"llama-3.3": 1.0}, "actual_cost_usd": 1.72e-05,
               "cost_estimate_usd": {"routed": 1.7199999999999998e-05, "all_priciest": 4.5e-05,
                                     "all_cheapest": 2e-06, "priciest_model": "deepseek-r1",
                                     "cheapest_model": "mistral-small", "rows_with_estimated_tokens": 0}}
    text = summary_markdown(summary, pool)
    assert r"routed **\$0\.0000172** against \$0\.000045 all to" in text        # md_text escapes $ and .
    assert r"Cost reported by the providers: \$0\.0000172." in text and "e-05" not in text


def test_the_local_engine_writes_the_summary_and_the_charts_beside_its_results(cli_env, tmp_path, capsys):
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    assert main([str(src), "--out", str(tmp_path / "res.csv")]) == 0
    printed = capsys.readouterr().out
    written = json.loads((tmp_path / "res.summary.json").read_text(encoding="utf-8"))
    assert written["engine"] == "local" and written["rows"] == 5
    assert set(written["traffic"]) == set(written["traffic_share"])
    assert (tmp_path / "res.charts.html").read_text(encoding="utf-8").count("plotly-graph-div") >= 3
    assert f"summary: {tmp_path / 'res.summary.json'}" in printed
    assert f"charts: {tmp_path / 'res.charts.html'}" in printed
