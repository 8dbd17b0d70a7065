"""Route-only batch throughput: the local engine against Ray Data with 1 and 2 actors.

For each selector (``rules``; ``learned`` when ``selector_model/`` loads) and each size in
``--rows``, the whole batch command's work is timed end to end on a CSV of prompts
(``assets/prompt_corpus.jsonl`` cycled, each made unique):

* ``local``: ``routing.batch.local.run_file`` (this process; torch uses its default threads);
* ``ray_N``: ``routing.batch.ray_engine.run_ray`` with N actors (1 CPU and 1 torch thread each),
  Ray already started: the time includes starting the actors and loading the model in each,
  reading, routing, writing the parts, the CSV and the summary.

Also: Ray's start-up (``ray.init`` of a private local instance), the fixed cost of a Ray job
(a 20-row batch), and a projection for 10 million prompts from the per-core rate (Ray, one
actor, one thread): hours on one core, and cores for one hour (linear scaling assumed; the
projection says so). The learned selector is slow on two cores, so its sizes are capped with
``--learned-max-rows`` (default 10,000); the sizes not run are listed as skipped.

    nice -n 10 python benchmarks/ray_throughput.py [--rows 10000,100000] [--actors 1,2] [--runs 1]
        [--selectors rules,learned] [--learned-max-rows 10000]

Writes ``benchmarks/results/ray_throughput.json``. Medians over ``--runs``.
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
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
warnings.filterwarnings("ignore", message=".*minimum number of concurrent actors.*")

from benchmarks.batch_throughput import corpus_prompts  # noqa: E402
from routing.batch.local import run_file  # noqa: E402
from routing.batch.ray_engine import init_ray, run_ray  # noqa: E402
from routing.service import RouterService  # noqa: E402
from routing.settings import Settings, get_settings  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "ray_throughput.json"
TARGET_PROMPTS = 10_000_000


def write_csv(path: Path, prompts: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt"])
        writer.writerows(enumerate(prompts))
    return path


def measure(fn, rows: int, runs: int) -> dict[str, Any]:
    seconds, extra = [], {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = fn(Path(tmp))
            seconds.append(time.perf_counter() - start)
            assert summary["ok"] + summary["failed"] == rows, summary
            if "ray" in summary:
                extra = {"actors_used": summary["ray"]["actors_used"], "blocks": summary["ray"]["blocks"]}
    med = statistics.median(seconds)
    return {"median_s": round(med, 2), "runs_s": [round(s, 2) for s in seconds],
            "rows_per_s": round(rows / med, 1), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--actors", default="1,2")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--selectors", default="rules,learned")
    parser.add_argument("--learned-max-rows", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",") if x.strip()]
    actor_counts = [int(x) for x in args.actors.split(",") if x.strip()]
    base = get_settings()
    report: dict[str, Any] = {
        "platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "ray": __import__("ray").__version__, "runs": args.runs, "load_average_at_start": list(os.getloadavg()),
        "note": "2 shared cores; other engineers' jobs ran at the same time (see load averages)",
        "selectors": {},
    }
    report["ray_startup_s"] = round(init_ray(None), 2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in [s.strip() for s in args.selectors.split(",") if s.strip()]:
            settings = Settings(**{**base.__dict__, "openrouter_api_key": None, "local_model_enabled": False,
                                   "live_prices": False, "selector": name, "data_dir": tmp / "data"})
            if name == "learned" and not settings.selector_dir.exists():
                report["selectors"][name] = {"skipped": f"no {settings.selector_dir}"}
                continue
            router = RouterService(settings, background=False).router
            out: dict[str, Any] = {"sizes": {}}
            small = write_csv(tmp / f"{name}-20.csv", corpus_prompts(20))
            out["ray_job_fixed_cost_s"] = measure(
                lambda d: run_ray(settings, small, d / "o.parquet", num_actors=1, charts=False), 20, 1)["median_s"]
            for rows in sizes:
                if name == "learned" and rows > args.learned_max_rows:
                    out["sizes"][str(rows)] = {"skipped": f"over --learned-max-rows {args.learned_max_rows}"}
                    continue
                src = write_csv(tmp / f"{name}-{rows}.csv", corpus_prompts(rows))
                res: dict[str, Any] = {}
                print(f"{name} {rows}: local", flush=True)
                res["local"] = measure(lambda d: run_file(router, src, d / "o.csv", max_rows=0, max_mb=0), rows, args.runs)
                for n in actor_counts:
                    print(f"{name} {rows}: ray {n} actor(s)", flush=True)
                    res[f"ray_{n}"] = measure(lambda d: run_ray(settings, src, d / "o.parquet", num_actors=n,
                                                                charts=False), rows, args.runs)
                out["sizes"][str(rows)] = res
                print(json.dumps(res), flush=True)
            report["selectors"][name] = out
    report["load_average_at_end"] = list(os.getloadavg())
    report["projection_10M"] = projection(report)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


def projection(report: dict[str, Any]) -> dict[str, Any]:
    """10 million prompts from the per-core rate: Ray with one actor (one CPU, one torch thread)."""
    out: dict[str, Any] = {"assumes": "linear scaling in actors (one core each); rate = rows / whole-job time of the largest size run "
                                      "(includes actor start and model load: slightly pessimistic); ray.init not counted"}
    for name, sel in report["selectors"].items():
        sizes = {int(k): v for k, v in (sel.get("sizes") or {}).items() if "ray_1" in v}
        if not sizes:
            continue
        rows = max(sizes)
        per_core = sizes[rows]["ray_1"]["rows_per_s"]
        out[name] = {"per_core_rows_per_s": per_core, "measured_on_rows": rows,
                     "hours_on_one_core": round(TARGET_PROMPTS / per_core / 3600, 2),
                     "cores_for_one_hour": int(-(-TARGET_PROMPTS // int(per_core * 3600)))}
        if "ray_2" in sizes[rows]:
            two = sizes[rows]["ray_2"]["rows_per_s"]
            out[name]["hours_on_this_machine_2_actors"] = round(TARGET_PROMPTS / two / 3600, 2)
            out[name]["scaling_1_to_2_actors"] = round(two / per_core, 2)
    return out


if __name__ == "__main__":
    main()
