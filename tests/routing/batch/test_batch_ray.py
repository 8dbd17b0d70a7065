"""Batch routing on Ray Data (``--engine ray``): a real local Ray, a real actor pool, small inputs.

Ray starts once for the module (``num_cpus=2``) and stops after it. Results are checked
against the local engine on the same input; the kill test really SIGKILLs the batch command.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

pytest.importorskip("ray")
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from routing.batch.cli import main  # noqa: E402

from routing.batch.local import run_file
from routing.batch.ray_engine import done_parts, init_ray, run_ray  # noqa: E402
from routing.errors import UserError  # noqa: E402
from routing.service import RouterService  # noqa: E402
from tests.conftest import router_settings  # noqa: E402
from tests.routing.batch.test_batch import DEEPSEEK, PROMPTS, asked_with, read_csv, write_prompts_csv  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", autouse=True)
def ray_local():
    import ray

    if ray.is_initialized():          # another module's Ray: start ours
        ray.shutdown()
    init_ray(None, num_cpus=2, object_store_mb=300)
    yield
    ray.shutdown()


def prompts(n):
    return [f"{PROMPTS[i % 5]} (row {i})" for i in range(n)]


def local_run(settings, src, out, **kwargs):
    return run_file(RouterService(settings, background=False).router, src, out, max_rows=0, max_mb=0, **kwargs)


SUMMARY_KEYS = ("rows", "processed", "ok", "failed", "traffic", "traffic_share", "confidence", "cost_estimate_usd")
#: What one engine's summary.json says that the other's cannot (its own files and figures).
LOCAL_ONLY_KEYS = {"results_jsonl", "interrupted_this_run", "set_aside_rows"}
RAY_ONLY_KEYS = {"results_parquet", "input_files", "ray"}


# --------------------------------------------------------------------------- route mode

def test_route_on_two_actors_equals_the_local_engine(protocol_server, tmp_path):
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=None)
    texts = prompts(150)
    texts[7] = "=HYPERLINK(\"http://x\")"          # formula neutralised the same way
    texts[9] = "   "                                # an empty prompt fails the same way
    src = write_prompts_csv(tmp_path / "in.csv", texts, extra={3: "@note"})
    local = local_run(settings, src, tmp_path / "local.csv", chunk_size=16)
    ray_summary = run_ray(settings, src, tmp_path / "ray.csv", num_actors=2, batch_size=32, chunk_size=16)
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()   # same file, byte for byte
    for key in SUMMARY_KEYS:
        assert ray_summary[key] == local[key], key
    assert ray_summary["ray"]["blocks"] == 5 and ray_summary["ray"]["num_actors"] == 2
    assert ray_summary["failed"] == 1 and "empty" in ray_summary["errors"][0]["error"]
    assert protocol_server.chat_requests() == []                      # route mode calls nobody
    # Both engines write the summary and the charts beside their results, with one writer: the same keys.
    written = {}
    for engine, summary in (("local", local), ("ray", ray_summary)):
        assert Path(summary["charts_html"]).read_text(encoding="utf-8").count("plotly-graph-div") >= 3, engine
        written[engine] = json.loads(Path(summary["summary_json"]).read_text(encoding="utf-8"))
        assert written[engine]["engine"] == engine
    assert set(written["local"]) - LOCAL_ONLY_KEYS == set(written["ray"]) - RAY_ONLY_KEYS
    assert written["ray"]["traffic"] == written["local"]["traffic"] == local["traffic"]
    assert written["ray"]["cost_estimate_usd"] == written["local"]["cost_estimate_usd"]
    again = run_ray(settings, src, tmp_path / "ray.csv", num_actors=2, batch_size=32, chunk_size=16)
    assert again["processed_this_run"] == 0 and again["resumed_rows"] == 150 and again["ray"]["startup_s"] is None


def test_parquet_and_jsonl_in_a_folder_parquet_out(protocol_server, tmp_path):
    """A folder of Parquet + JSONL files: one batch, row ids across files in path order, Parquet out."""
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=None)
    texts = prompts(60)
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"prompt": texts[:25], "n": list(range(25))}), folder / "a.parquet")
    (folder / "b.jsonl").write_text("".join(json.dumps({"prompt": t, "n": 25 + i}) + "\n"
                                            for i, t in enumerate(texts[25:])), encoding="utf-8")
    (folder / "_ignored.csv").write_text("nothing,here\n", encoding="utf-8")
    summary = run_ray(settings, folder, tmp_path / "out.parquet", num_actors=1, batch_size=10)
    assert summary["input_files"] == 2 and summary["rows"] == 60 and summary["ray"]["blocks"] == 3 + 4
    table = pq.read_table(tmp_path / "out.parquet")                   # a Parquet dataset folder
    assert table.column("row").to_pylist() == list(range(60))       # every row once, in order
    assert table.column("n").to_pylist() == [str(i) for i in range(60)]
    assert table.schema.field("confidence").type == pa.float64()
    both = write_prompts_csv(tmp_path / "all.csv", texts)
    local_run(settings, both, tmp_path / "local.csv")
    local = read_csv(tmp_path / "local.csv")
    assert table.column("selected_model").to_pylist() == [r["selected_model"] for r in local]
    for model in RouterService(settings, background=False).pool.ids:
        assert table.column(f"score_{model}").to_pylist() == pytest.approx([float(r[f"score_{model}"]) for r in local])


@pytest.mark.slow
def test_learned_selector_on_ray_matches_the_local_engine(protocol_server, tmp_path):
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=None, selector="learned")
    if not settings.selector_dir.exists():
        pytest.skip(f"no trained selector in {settings.selector_dir}")
    src = write_prompts_csv(tmp_path / "in.csv", prompts(80))
    local_run(settings, src, tmp_path / "local.csv")
    summary = run_ray(settings, src, tmp_path / "ray.csv", num_actors=2, batch_size=64)
    local, ray_rows = read_csv(tmp_path / "local.csv"), read_csv(tmp_path / "ray.csv")
    assert summary["ok"] == 80 and {r["selector"] for r in ray_rows} == {r["selector"] for r in local}
    assert [r["selected_model"] for r in ray_rows] == [r["selected_model"] for r in local]
    for a, b in zip(ray_rows, local):
        for key in (k for k in a if k.startswith("score_") or k == "confidence"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=2e-4)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name, content, message", [
    ("nocol.csv", b"id,body\n1,hi\n", "No prompt column.*'id', 'body'"),
    ("latin.csv", b"prompt\ncaf\xe9\n", "not UTF-8: byte 0xe9"),
    ("empty.csv", b"", "is empty"),
    ("header.csv", b"prompt\n", "header .* but no rows"),
    ("bad.parquet", b"not parquet at all", "not a readable Parquet file"),
])
def test_bad_input_gets_the_local_engines_message(protocol_server, tmp_path, name, content, message):
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=None)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as ray_error:
        run_ray(settings, path, tmp_path / "out.parquet")
    if not name.endswith(".parquet"):
        with pytest.raises(UserError) as local_error:
            local_run(settings, path, tmp_path / "local.csv")
        assert str(ray_error.value) == str(local_error.value)            # the very same message
    assert not done_parts(tmp_path / "out.parquet")


def test_other_input_into_the_same_output_is_refused(protocol_server, tmp_path):
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=None)
    run_ray(settings, write_prompts_csv(tmp_path / "a.csv", PROMPTS), tmp_path / "out.parquet")
    with pytest.raises(UserError, match="different input"):
        run_ray(settings, write_prompts_csv(tmp_path / "b.csv", PROMPTS[::-1]), tmp_path / "out.parquet")


def test_command_line_reports_bad_input_without_ray_or_a_traceback(tmp_path, capsys, monkeypatch):
    for key, value in dict(ROUTER_SELECTOR="rules", ROUTER_LOCAL_MODEL="0", ROUTER_LIVE_PRICES="0",
                           ROUTER_DATA_DIR=str(tmp_path / "data"), OPENROUTER_API_KEY="").items():
        monkeypatch.setenv(key, value)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,hi\n", encoding="utf-8")
    assert main([str(bad), "--out", str(tmp_path / "o.parquet"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert "No prompt column" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main([str(bad), "--out", str(tmp_path / "o.csv"), "--num-actors", "2"])        # ray flags need --engine ray
    assert "only apply with --engine ray" in capsys.readouterr().err


def test_ray_messages_go_to_a_log_file_not_into_the_progress_bar(tmp_path):
    """The batch command on Ray: the terminal's stderr holds only the progress bar; Ray's warnings, Ray
    Data's execution log and the core worker's lines go to OUTPUT.ray.log, which the summary names."""
    src = write_prompts_csv(tmp_path / "in.csv", prompts(12))
    env = dict(os.environ, OPENROUTER_API_KEY="", ROUTER_SELECTOR="rules", ROUTER_LOCAL_MODEL="0",
               ROUTER_LIVE_PRICES="0", ROUTER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO),
               RAY_USAGE_STATS_ENABLED="0")
    done = subprocess.run([sys.executable, "-m", "routing.batch", str(src), "--out", str(tmp_path / "out.csv"),
                           "--engine", "ray", "--num-actors", "2", "--batch-size", "4"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.strip() for line in re.split(r"[\r\n]+", done.stderr) if line.strip()]
    bar = re.compile(r"route \(ray\): +(\d+row \[[^\]]*\]|\d+%\|[^|]*\| \d+/\d+ \[[^\]]*\])")
    assert lines and all(bar.fullmatch(line) for line in lines), lines                 # the bar, nothing else
    log = tmp_path / "out.ray.log"
    text = log.read_text(encoding="utf-8")
    assert "Dataset" in text and ("WARNING" in text or "INFO" in text)                 # Ray's own lines, kept
    assert f"ray's own messages: {log}" in done.stdout
    assert json.loads((tmp_path / "out.summary.json").read_text(encoding="utf-8"))["ray"]["log_file"] == str(log)


# --------------------------------------------------------------------------- answer and compare

def test_answer_mode_on_ray_against_the_protocol_server(protocol_server, tmp_path):
    settings = router_settings(protocol_server, tmp_path, max_fallbacks=0)
    protocol_server.set_model(DEEPSEEK, status=500, error_message="upstream exploded")
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS + [""] + PROMPTS[1:])
    summary = run_ray(settings, src, tmp_path / "out.csv", mode="answer", num_actors=2, batch_size=3, workers=2)
    assert summary["ok"] == 8 and summary["failed"] == 2
    rows = read_csv(tmp_path / "out.csv")
    assert [int(r["row"]) for r in rows] == list(range(10))
    assert rows[0]["status"] == "failed" and "upstream exploded" in rows[0]["error"]
    assert rows[5]["status"] == "failed" and "empty" in rows[5]["error"]
    assert rows[1]["answered_by"] == "llama-3.3"
    assert rows[1]["response"] == "[meta-llama/llama-3.3-70b-instruct] answer to: " + PROMPTS[1]
    assert int(rows[1]["total_tokens"]) > 0 and float(rows[1]["cost_usd"]) > 0
    assert summary["actual_cost_usd"] > 0 and summary["cost_estimate_usd"]["rows_with_estimated_tokens"] == 0
    for prompt in PROMPTS[1:]:
        assert len(asked_with(protocol_server, prompt)) == 2                 # each of its two rows asked once
    assert not list((tmp_path / "out.parts").glob(".part-*.jsonl"))           # row journals gone once parts exist


def test_answer_mode_falls_back_and_respects_the_daily_budget(protocol_server, tmp_path):
    """The app's rules on Ray: a failing model falls back; past the daily budget no paid call is made."""
    settings = router_settings(protocol_server, tmp_path, max_fallbacks=1)
    protocol_server.set_model(DEEPSEEK, status=500, error_message="upstream exploded")
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:2])
    summary = run_ray(settings, src, tmp_path / "out.csv", mode="answer", num_actors=1, batch_size=8)
    rows = read_csv(tmp_path / "out.csv")
    assert summary["ok"] == 2 and rows[0]["answered_by"] != "deepseek-r1" and int(rows[0]["fallbacks"]) == 1
    broke = router_settings(protocol_server, tmp_path, daily_budget_usd=1e-12, data_dir=tmp_path / "data2")
    before = len(protocol_server.chat_requests())
    capped = run_ray(broke, write_prompts_csv(tmp_path / "c.csv", PROMPTS[2:4]), tmp_path / "capped.csv",
                     mode="answer", num_actors=1)
    assert capped["ok"] == 0 and len(protocol_server.chat_requests()) == before      # no paid call past the budget
    local_run(broke, tmp_path / "c.csv", tmp_path / "capped_local.csv", mode="answer")
    ray_rows, local_rows = read_csv(tmp_path / "capped.csv"), read_csv(tmp_path / "capped_local.csv")
    assert [r["error"] for r in ray_rows] == [r["error"] for r in local_rows] and ray_rows[0]["error"]


def test_compare_mode_on_ray(protocol_server, tmp_path):
    settings = router_settings(protocol_server, tmp_path)
    protocol_server.set_model("qwen/qwen-2.5-72b-instruct", status=503)
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:2])
    summary = run_ray(settings, src, tmp_path / "out.csv", mode="compare", num_actors=1)
    assert summary["ok"] == 2 and summary["compare"]["rows"] == 2
    rows = read_csv(tmp_path / "out.csv")
    ids = RouterService(settings, background=False).pool.ids
    assert all(f"{m}_total" in rows[0] for m in ids)
    assert rows[0]["qwen2.5_error"] and not rows[0]["llama-3.3_error"]
    # A winner, or a tie among answers within the evaluator's noise: never the failed model.
    assert (rows[0]["best_model"] in ids) != bool(rows[0]["tied"])
    assert rows[0]["best_model"] != "qwen2.5" and "qwen2.5" not in rows[0]["tied"]
    from routing.learning.outcome_log import OutcomeLog

    logged = OutcomeLog.for_settings(settings).comparisons()
    assert sorted(c["prompt"] for c in logged) == sorted(PROMPTS[:2])


def test_compare_mode_without_a_key_is_refused_before_ray_runs(protocol_server, tmp_path):
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=None)
    with pytest.raises(UserError, match="Compare mode needs an OpenRouter key"):
        run_ray(settings, write_prompts_csv(tmp_path / "in.csv", PROMPTS[:2]), tmp_path / "out.csv", mode="compare")
    assert not (tmp_path / "out.parts").exists()


# --------------------------------------------------------------------------- a real kill

def _ray_pids(driver_pid: int) -> set[int]:
    """Worker processes of the Ray instance the batch command (``driver_pid``) started."""
    pids = set()
    for session in Path("/tmp/ray").glob(f"session_*_{driver_pid}"):
        for log in (session / "logs").glob("python-core-worker-*_*.log"):
            pids.add(int(log.stem.rsplit("_", 1)[1]))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_killed_ray_batch_resumes_without_redoing_blocks(protocol_server, tmp_path):
    """SIGKILL `python -m routing.batch --engine ray` mid-way; the rerun redoes no finished block."""
    protocol_server.set_model("*", delay=0.1)
    texts = prompts(40)
    src = write_prompts_csv(tmp_path / "in.csv", texts)
    out = tmp_path / "out.csv"
    parts = tmp_path / "out.parts"
    env = dict(os.environ, OPENROUTER_API_KEY="good", OPENROUTER_BASE_URL=protocol_server.base_url,
               ROUTER_SELECTOR="rules", ROUTER_LOCAL_MODEL="0", ROUTER_LIVE_PRICES="0", ROUTER_MAX_RETRIES="0",
               ROUTER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "routing.batch", str(src), "--out", str(out), "--mode", "answer",
           "--engine", "ray", "--num-actors", "1", "--batch-size", "4", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(done_parts(parts)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    workers = _ray_pids(proc.pid)                  # the killed driver's Ray dies with it (fate sharing) ...
    deadline = time.monotonic() + 60
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers and not any(_alive(p) for p in workers), "the killed batch's Ray workers lived on"
    before = done_parts(parts)                     # ... so nothing is written after this point
    assert 2 <= len(before) < 10, "the kill should land mid-batch"
    assert not out.exists()
    asked_before = {t: len(asked_with(protocol_server, t)) for t in texts}

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed: {4 * len(before)}" in done.stdout and f"({len(before)} resumed)" in done.stdout
    rows = read_csv(out)
    assert [int(r["row"]) for r in rows] == list(range(40))          # every row exactly once, in order
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(40)]
    assert all(r["status"] in ("ok", "interrupted") for r in rows)
    for first in before:                                               # finished blocks were not redone
        for i in range(first, first + 4):
            assert len(asked_with(protocol_server, texts[i])) == 1, texts[i]
    redone = [t for t in texts if len(asked_with(protocol_server, t)) > 1]
    assert redone == []                            # nothing asked (paid) twice: rows in flight at the kill ...
    cut = [texts[int(r["row"])] for r in rows if r["status"] == "interrupted"]
    assert len(cut) <= 2 and all(asked_before[t] <= 1 for t in cut)   # ... (2 workers) are recorded as interrupted
    assert pq.read_table(parts).num_rows == 40


def test_answer_mode_on_ray_weighs_the_latency_its_actor_observes(protocol_server, tmp_path):
    """--latency-weight reaches the actors (it was dropped there): once an actor has seen the usual
    pick answer slowly, later rows for it go to a faster model; without the knob they stay."""
    from tests.routing.test_latency_routing import CODE

    settings = router_settings(protocol_server, tmp_path, max_fallbacks=0, cooldown_failures=1000)
    router = RouterService(settings, background=False).router
    slow = router.route(CODE).selected_model
    other = next(p for p in PROMPTS if router.route(p).selected_model != slow)
    protocol_server.set_model(router.pool.get(slow).model_name, delay=0.4)
    src = write_prompts_csv(tmp_path / "in.csv", [other, CODE, other, CODE])
    picks = {}
    for weight in (0.0, 1.0):
        out = tmp_path / f"out{weight}.csv"
        run_ray(settings, src, out, mode="answer", num_actors=1, batch_size=8, workers=1, latency_weight=weight)
        picks[weight] = [r["answered_by"] for r in read_csv(out)]
    assert picks[0.0][1] == picks[0.0][3] == slow
    assert picks[1.0][1] == slow and picks[1.0][3] != slow          # measured slow on row 1: avoided on row 3
    with pytest.raises(UserError, match="latency_weight"):
        run_ray(settings, src, tmp_path / "bad.csv", latency_weight=1.5)
