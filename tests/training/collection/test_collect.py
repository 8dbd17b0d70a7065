"""training.collection.collect: estimate first, refuse over budget, bounded concurrency, resume after SIGKILL,
a RouterBench-layout table that training.pipeline.label --source outcomes reads."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from routing.errors import UserError
from training.collection.collect import (EXIT_REFUSED, EXIT_STOPPED, ModelAnswers, collect, main, plan_collect,
                                         run_ledger, work_dir)

REPO = Path(__file__).resolve().parents[3]
PROMPTS = ["What is 2 + 2?", "Write a haiku about rain.", "Explain TCP, briefly.",
           "Translate 'good morning' into French.", "Name three prime numbers."]
MODELS = ["mistral-small", "qwen2.5", "llama-3.3"]


def write_prompts(path: Path, prompts: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt"])
        for p in prompts:
            writer.writerow([p])
    return path


def read_table(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def asked_with(server, prompt: str, model_name: str | None = None):
    """Chat requests that reached the server whole and asked ``prompt`` (see tests/routing/batch/test_batch.py)."""
    return [r for r in server.chat_requests(model_name)
            if isinstance(r.json, dict) and r.json.get("messages") and r.json["messages"][-1].get("content") == prompt]


def model_name(service, model_id: str) -> str:
    return service.pool.get(model_id).model_name


def cli_env(server, tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, OPENROUTER_API_KEY="good", OPENROUTER_BASE_URL=server.base_url, ROUTER_SELECTOR="rules",
                ROUTER_LOCAL_MODEL="0", ROUTER_LIVE_PRICES="0", ROUTER_MAX_RETRIES="0",
                ROUTER_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), **extra)


# --------------------------------------------------------------------------- the estimate and refusals

def test_refuses_over_budget_before_sending_anything(protocol_server, tmp_path, monkeypatch, capsys):
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    out = tmp_path / "table.csv"
    for key, value in cli_env(protocol_server, tmp_path).items():
        monkeypatch.setenv(key, value)
    code = main([str(src), "--out", str(out), "--budget-usd", "0.0001", "--models", ",".join(MODELS)])
    captured = capsys.readouterr()
    assert code == EXIT_REFUSED
    assert "15 calls to make" in captured.out                # the estimate is printed first ...
    for m in MODELS:
        assert m in captured.out
    assert "total" in captured.out and "up to $" in captured.out
    assert "is above the budget of $0.000100" in captured.err and "Nothing was sent" in captured.err
    assert protocol_server.chat_requests() == []              # ... and nothing was sent
    assert not out.exists()

    # The same command with enough budget goes ahead (so the refusal above was the budget's).
    assert main([str(src), "--out", str(out), "--budget-usd", "1", "--models", ",".join(MODELS)]) == 0
    assert len(protocol_server.chat_requests()) == 15
    assert len(read_table(out)) == len(PROMPTS)


def test_estimate_is_an_upper_bound_at_pool_prices(make_service, tmp_path):
    from routing.budget import cost_bound, input_token_bound

    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    plan = plan_collect(service.router, src, tmp_path / "t.csv", budget_usd=1, models="qwen2.5", max_tokens=50)
    spec = service.pool.get("qwen2.5")
    assert plan.calls == len(PROMPTS) and plan.models == ["qwen2.5"]
    assert plan.estimate_usd == pytest.approx(sum(cost_bound(spec, input_token_bound(p), 50) for p in PROMPTS))
    assert plan.estimate_usd > 0


def test_unknown_model_lists_the_valid_ids(make_service, tmp_path):
    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    with pytest.raises(UserError, match="Unknown model 'gpt-9'. Valid model ids: deepseek-r1, mistral-small"):
        collect(service.router, src, tmp_path / "t.csv", budget_usd=1, models="mistral-small,gpt-9")


def test_without_a_key_it_refuses_up_front(protocol_server, make_service, tmp_path):
    service = make_service(openrouter_api_key=None)
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    with pytest.raises(UserError, match="OPENROUTER_API_KEY.*Nothing was sent"):
        collect(service.router, src, tmp_path / "t.csv", budget_usd=1)
    assert protocol_server.chat_requests() == []


def test_it_never_overwrites_a_file_it_did_not_write(make_service, protocol_server, tmp_path):
    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    with pytest.raises(UserError, match="is the prompt file itself"):
        collect(service.router, src, src, budget_usd=1)
    mine = tmp_path / "mine.csv"
    mine.write_text("precious\n", encoding="utf-8")
    with pytest.raises(UserError, match="was not written by training.collection.collect"):
        collect(service.router, src, mine, budget_usd=1)
    assert mine.read_text(encoding="utf-8") == "precious\n" and src.read_text(encoding="utf-8").startswith("prompt")
    assert protocol_server.chat_requests() == []


def test_table_must_be_csv(make_service, tmp_path):
    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    with pytest.raises(UserError, match=r"must be a \.csv file"):
        collect(service.router, src, tmp_path / "t.parquet", budget_usd=1)


# --------------------------------------------------------------------------- the table

def test_table_is_routerbench_layout_and_training_label_reads_it(protocol_server, make_service, tmp_path):
    from training.pipeline.label import label
    from training.benchmark.outcomes import read_outcomes

    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    out = tmp_path / "table.csv"
    run = collect(service.router, src, out, budget_usd=1, models=MODELS, max_tokens=64)
    assert run.complete and run.ok == 15 and run.failed == 0
    with out.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == (["sample_id", "prompt", "eval_name"] + MODELS + [f"{m}|model_response" for m in MODELS]
                      + [f"{m}|total_cost" for m in MODELS] + ["oracle_model_to_route_to"])
    rows = read_table(out)
    assert [r["prompt"] for r in rows] == PROMPTS                 # each prompt once, in file order
    for r in rows:
        for m in MODELS:
            assert 0.0 <= float(r[m]) <= 1.0
            assert r[f"{m}|model_response"].startswith(f"[{model_name(service, m)}] answer to:")
            assert float(r[f"{m}|total_cost"]) > 0               # the provider's reported cost
        assert r["oracle_model_to_route_to"] in MODELS

    table = read_outcomes(out)
    assert table.models == MODELS and len(table) == len(PROMPTS) and table.costs is not None
    result = label("outcomes", [out], service.pool)
    assert [rec["text"] for rec in result.records] == PROMPTS
    assert [rec["label"] for rec in result.records] == [r["oracle_model_to_route_to"] for r in rows]

    # ... and the command line does the same.
    labels = tmp_path / "labeled.json"
    done = subprocess.run([sys.executable, "-m", "training.pipeline.label", "--source", "outcomes", "--input", str(out),
                           "--out", str(labels)], cwd=REPO, env=cli_env(protocol_server, tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(labels.read_text(encoding="utf-8"))) == len(PROMPTS)


def test_scores_are_peer_aware_group_scores(make_service, protocol_server, tmp_path):
    """Three models agree on 4, one says 5: the group score (peers) marks the odd one down."""
    from routing.evaluation.evaluator import evaluate_group

    service = make_service()
    replies = {"mistral-small": "The answer is 4.", "qwen2.5": "The answer is 4.", "llama-3.3": "The answer is 5."}
    for m, reply in replies.items():
        protocol_server.set_model(model_name(service, m), reply=reply)
    prompt = "What is 2 + 2? Give the final number."
    src = write_prompts(tmp_path / "in.csv", [prompt])
    out = tmp_path / "t.csv"
    collect(service.router, src, out, budget_usd=1, models=MODELS, run_code=False)
    row = read_table(out)[0]
    expected = evaluate_group(prompt, replies, run_code=False)
    for m in MODELS:
        assert float(row[m]) == pytest.approx(expected[m]["normalized"], abs=1e-6)
    assert float(row["llama-3.3"]) < float(row["mistral-small"])


def test_a_failed_call_is_a_failed_cell_and_a_rerun_asks_it_again(protocol_server, make_service, tmp_path):
    from training.benchmark.outcomes import read_outcomes

    service = make_service()
    broken = model_name(service, "qwen2.5")
    protocol_server.set_model(broken, status=500, error_message="upstream exploded")
    src = write_prompts(tmp_path / "in.csv", PROMPTS)
    out = tmp_path / "t.csv"
    run = collect(service.router, src, out, budget_usd=1, models=MODELS)
    assert run.complete and run.ok == 10 and run.failed == 5
    assert run.table["failed_cells"] == 5 and run.table["answered_cells"] == 10
    assert all(e["model"] == "qwen2.5" and "exploded" in e["error"] for e in run.errors)
    rows = read_table(out)
    assert [r["qwen2.5"] for r in rows] == [""] * 5                     # no score ...
    assert [r["qwen2.5|total_cost"] for r in rows] == [""] * 5          # ... and no cost
    assert all(r["oracle_model_to_route_to"] in ("mistral-small", "llama-3.3") for r in rows)
    assert read_outcomes(out).models == ["mistral-small", "llama-3.3"]   # readable; a column of gaps is left out

    protocol_server.set_model(broken)                                    # the model is back
    before = len(protocol_server.chat_requests())
    again = collect(service.router, src, out, budget_usd=1, models=MODELS)
    assert again.plan.done == 10 and again.asked == 5 and again.ok == 5
    assert {r.model for r in protocol_server.chat_requests()[before:]} == {broken}
    assert all(r["qwen2.5"] for r in read_table(out))


def test_adding_a_model_later_adds_its_column(protocol_server, make_service, tmp_path):
    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS[:2])
    out = tmp_path / "t.csv"
    collect(service.router, src, out, budget_usd=1, models="mistral-small")
    before = len(protocol_server.chat_requests())
    run = collect(service.router, src, out, budget_usd=1, models="llama-3.3")
    assert run.asked == 2 and len(protocol_server.chat_requests()) - before == 2
    assert run.table["models"] == ["mistral-small", "llama-3.3"]
    assert all(r["mistral-small"] and r["llama-3.3"] for r in read_table(out))


def test_another_input_for_the_same_table_is_refused(make_service, tmp_path):
    service = make_service()
    out = tmp_path / "t.csv"
    collect(service.router, write_prompts(tmp_path / "a.csv", PROMPTS[:2]), out, budget_usd=1, models="mistral-small")
    with pytest.raises(UserError, match="different input"):
        collect(service.router, write_prompts(tmp_path / "b.csv", PROMPTS[2:4]), out, budget_usd=1,
                models="mistral-small")


# --------------------------------------------------------------------------- spending limits during the run

def test_the_table_ledger_stops_the_run_at_the_budget_and_a_higher_budget_resumes(protocol_server, make_service,
                                                                                  tmp_path):
    """The provider charges more than the pool's prices: the estimate fits, the real spend does not."""
    service = make_service()
    src = write_prompts(tmp_path / "in.csv", [f"{p} (row {i})" for i, p in enumerate(PROMPTS * 2)])
    out = tmp_path / "t.csv"
    plan = plan_collect(service.router, src, out, budget_usd=1, models="mistral-small", max_tokens=16)
    budget = 7e-5                              # under two calls at the server's real price
    assert plan.estimate_usd < budget          # the estimate (pool prices) fits ...
    run = collect(service.router, src, out, budget_usd=budget, models="mistral-small", max_tokens=16, concurrency=1)
    assert run.stopped is not None and run.stopped.kind == "budget"
    assert 1 <= run.ok < 10                    # ... the ledger stops the run part-way
    assert len(protocol_server.chat_requests()) == run.ok
    spent = run_ledger(work_dir(out), budget).summary()["spent_usd"]
    assert spent == pytest.approx(run.spent_usd)
    last = max(float(r["mistral-small|total_cost"]) for r in read_table(out))
    assert spent - last <= budget              # no call started once the spend (with holds) reached the cap
    assert len(read_table(out)) == run.ok      # the rows done so far are in the table

    more = collect(service.router, src, out, budget_usd=1, models="mistral-small", max_tokens=16)
    assert more.complete and more.plan.done == run.ok and more.asked == 10 - run.ok
    assert len(protocol_server.chat_requests()) == 10                 # nothing asked twice
    assert len(read_table(out)) == 10


def test_the_apps_daily_limit_stops_the_run(protocol_server, make_service, tmp_path):
    service = make_service(daily_budget_usd=5e-5)
    src = write_prompts(tmp_path / "in.csv", [f"{p} (row {i})" for i, p in enumerate(PROMPTS * 2)])
    out = tmp_path / "t.csv"
    run = collect(service.router, src, out, budget_usd=1, models="mistral-small", max_tokens=16, concurrency=1)
    assert run.stopped is not None and run.stopped.kind == "daily"
    assert "ROUTER_DAILY_BUDGET_USD" in run.stopped.why
    assert 1 <= run.ok < 10 and run.failed == 0          # the refused calls are not failed cells ...
    assert service.ledger.summary()["spent_usd"] == pytest.approx(run.spent_usd)
    assert len(read_table(out)) == run.ok


def test_concurrency_is_bounded(make_service, tmp_path):
    service = make_service()
    src = write_prompts(tmp_path / "in.csv", PROMPTS * 2)
    real = service.router.ask_model
    lock = threading.Lock()
    counts = {"in_flight": 0, "most": 0, "started": 0}
    barrier = threading.Barrier(3, timeout=20)   # the first three calls wait for each other: three run at once

    def counted(model_id, prompt, **kw):
        with lock:
            counts["in_flight"] += 1
            counts["most"] = max(counts["most"], counts["in_flight"])
            counts["started"] += 1
            first = counts["started"] <= 3
        try:
            if first:
                barrier.wait()               # BrokenBarrierError (a failed call) if fewer than 3 ran at once
            return real(model_id, prompt, **kw)
        finally:
            with lock:
                counts["in_flight"] -= 1

    service.router.ask_model = counted
    run = collect(service.router, src, tmp_path / "t.csv", budget_usd=1, models=MODELS, concurrency=3)
    assert run.ok == 30 and run.failed == 0
    assert counts["most"] == 3               # ... and never more


# --------------------------------------------------------------------------- resume after SIGKILL

def test_killed_collect_resumes_with_every_pair_exactly_once(protocol_server, tmp_path):
    """Really kill `python -m training.collection.collect` mid-way, rerun it, and find every pair once."""
    protocol_server.set_model("*", delay=0.15)
    prompts = [f"{PROMPTS[i % 5]} (row {i})" for i in range(12)]
    src = write_prompts(tmp_path / "in.csv", prompts)
    out = tmp_path / "table.csv"
    env = cli_env(protocol_server, tmp_path)
    cmd = [sys.executable, "-m", "training.collection.collect", str(src), "--out", str(out), "--budget-usd", "1",
           "--models", ",".join(MODELS), "--concurrency", "2", "--max-tokens", "64"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = work_dir(out)

    def lines() -> int:
        files = list((folder / "answers").glob("*.jsonl")) if (folder / "answers").is_dir() else []
        return sum(f.read_bytes().count(b"\n") for f in files)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and lines() < 8 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    before: dict[str, set[int]] = {}
    for m in MODELS:
        store = ModelAnswers(folder, m)
        path = store.store.path
        whole = path.read_text(encoding="utf-8").split("\n")[:-1] if path.exists() else []  # a kill can cut the last
        before[m] = {json.loads(line)["row"] for line in whole if line.strip()}
    done_before = sum(len(v) for v in before.values())
    assert 8 <= done_before < len(prompts) * len(MODELS), "the kill should land mid-run"
    assert not out.exists()                                # the table is written at the end

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert f"({done_before} already answered, skipped)" in done.stdout
    for m in MODELS:
        path = ModelAnswers(folder, m).store.path
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert sorted(r["row"] for r in records) == list(range(len(prompts))), m   # every pair exactly once
        assert all(r["status"] == "ok" for r in records)
        for i in before[m]:                                # pairs done before the kill were not asked again
            assert len(asked_with(protocol_server, prompts[i], _pool_name(m))) == 1, (m, i)
    rows = read_table(out)
    assert [r["prompt"] for r in rows] == prompts          # each prompt once
    assert all(r[m] for r in rows for m in MODELS)


def _pool_name(model_id: str) -> str:
    from routing.pool import load_pool
    from routing.settings import get_settings

    return load_pool(get_settings().models_file).get(model_id).model_name


def test_a_second_run_on_the_same_table_is_refused_while_one_runs(make_service, tmp_path):
    from filelock import FileLock

    service = make_service()
    out = tmp_path / "t.csv"
    folder = work_dir(out)
    folder.mkdir()
    with FileLock(str(folder / "collect.lock")):
        with pytest.raises(UserError, match="already being collected"):
            collect(service.router, write_prompts(tmp_path / "in.csv", PROMPTS), out, budget_usd=1)


def test_stopped_command_exits_3_and_says_how_to_go_on(protocol_server, tmp_path, monkeypatch, capsys):
    src = write_prompts(tmp_path / "in.csv", [f"{p} (row {i})" for i, p in enumerate(PROMPTS * 2)])
    out = tmp_path / "t.csv"
    for key, value in cli_env(protocol_server, tmp_path).items():
        monkeypatch.setenv(key, value)
    args = [str(src), "--out", str(out), "--models", "mistral-small", "--max-tokens", "16", "--concurrency", "1"]
    assert main(args + ["--budget-usd", "0.00007"]) == EXIT_STOPPED
    err = capsys.readouterr().err
    assert "the budget for this table ($0.000070) is reached" in err and "higher --budget-usd" in err
    assert main(args + ["--budget-usd", "1"]) == 0
    assert "already answered, skipped" in capsys.readouterr().out
    assert len(read_table(out)) == 10
