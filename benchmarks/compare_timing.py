"""Compare-all wall time against the slowest model's time (and against asking one by one).

The local protocol server (tests/protocol_server.py) answers as the five pool models with
per-model delays shaped like real OpenRouter latencies for a ~300-token answer (scaled by
``--scale``), one model failing after a short delay. Each run goes through the same code
path as the app (``routing.compare.run.compare_all``: ask, evaluate with code execution, pick the
winner, append to the outcome log); ``--api`` also times ``/query-compare`` through
``gradio_client``. Prints medians and writes ``benchmarks/results/compare_timing.json``.

    python benchmarks/compare_timing.py [--runs 5] [--scale 1.0] [--api]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from routing.compare.run import compare_all  # noqa: E402
from routing.learning.outcome_log import OutcomeLog  # noqa: E402
from routing.service import RouterService  # noqa: E402
from benchmarks.harness import ProtocolServer, router_settings  # noqa: E402 - no pytest needed

PROMPT = "Write a Python function that checks whether a string is a palindrome, with an example."
ANSWER = ("Here is a small, well-tested function:\n\n```python\ndef is_palindrome(text: str) -> bool:\n"
          "    \"\"\"True when text reads the same backwards, ignoring case and non-letters.\"\"\"\n"
          "    letters = [c.lower() for c in text if c.isalnum()]\n    return letters == letters[::-1]\n\n"
          "print(is_palindrome('A man, a plan, a canal: Panama'))  # True\n```\n\n"
          "It keeps only letters and digits, lower-cases them and compares the list with its reverse. "
          "The check is O(n) in time and memory.")
# Seconds per model for a ~300-token answer: time to first token plus generation, typical of
# OpenRouter for these models (DeepSeek R1 reasons first, so it is by far the slowest).
DELAYS = {"deepseek/deepseek-r1": 6.0, "mistralai/mistral-small-3.1-24b-instruct": 1.5,
          "qwen/qwen-2.5-72b-instruct": 2.5, "google/gemini-2.0-flash-001": 1.0,
          "meta-llama/llama-3.3-70b-instruct": 2.0}
FAILING = "mistralai/mistral-small-3.1-24b-instruct"


def run_once(service: RouterService, log: OutcomeLog) -> dict:
    start = time.monotonic()
    c = compare_all(service.router, PROMPT, outcome_log=log)
    wall = (time.monotonic() - start) * 1000
    latencies = [r.latency_ms or 0.0 for r in c.results.values()]
    return {"wall_ms": wall, "slowest_ms": max(latencies), "sum_ms": sum(latencies),
            "answered": sum(r.ok for r in c.results.values()), "logged": c.logged}


def run_api(url: str) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    start = time.monotonic()
    result = client.predict(prompt=PROMPT, api_name="/query-compare")
    wall = (time.monotonic() - start) * 1000
    latencies = [r["latency_ms"] or 0.0 for r in result["results"].values()]
    return {"wall_ms": wall, "slowest_ms": max(latencies), "sum_ms": sum(latencies)}


def summarise(rows: list[dict]) -> dict:
    med = {k: round(statistics.median(r[k] for r in rows), 1) for k in ("wall_ms", "slowest_ms", "sum_ms")}
    med["overhead_ms"] = round(statistics.median(r["wall_ms"] - r["slowest_ms"] for r in rows), 1)
    med["wall_over_slowest"] = round(statistics.median(r["wall_ms"] / r["slowest_ms"] for r in rows), 3)
    med["wall_over_sum"] = round(statistics.median(r["wall_ms"] / r["sum_ms"] for r in rows), 3)
    med["runs"] = len(rows)
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every model delay")
    parser.add_argument("--api", action="store_true", help="also time /query-compare via gradio_client")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "compare_timing.json"))
    args = parser.parse_args()

    delays = {m: d * args.scale for m, d in DELAYS.items()}
    report: dict = {"prompt": PROMPT, "delays_s": delays, "failing_model": FAILING, "platform": platform.platform(),
                    "cpus": os.cpu_count(), "python": platform.python_version()}
    with ProtocolServer() as server, tempfile.TemporaryDirectory() as tmp:
        for name, delay in delays.items():
            server.set_model(name, reply=ANSWER, delay=delay, status=503 if name == FAILING else None)
        service = RouterService(router_settings(server, Path(tmp), read_timeout=60.0), background=False)
        log = OutcomeLog.for_settings(service.settings)
        run_once(service, log)  # warm-up (imports, first sandbox run)
        parallel = [run_once(service, log) for _ in range(args.runs)]
        report["parallel"] = summarise(parallel)
        one_by_one = RouterService(router_settings(server, Path(tmp), compare_concurrency=1, read_timeout=60.0),
                                   background=False)
        report["one_at_a_time"] = summarise([run_once(one_by_one, log) for _ in range(max(1, args.runs // 2))])
        if args.api:
            import gradio as gr

            from ui.compare_tab import add_compare_api

            with gr.Blocks() as demo:
                add_compare_api(service)
            demo.queue()
            _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, ssr_mode=False)
            try:
                report["api"] = summarise([run_api(url) for _ in range(args.runs)])
            finally:
                demo.close()
        report["log_rows"] = len(log)

    shown = ", ".join(f"{m.split('/')[-1]} {d:g}" for m, d in delays.items())
    print(f"delays (s): {shown}; {FAILING} fails")
    for key in ("parallel", "one_at_a_time", "api"):
        if key in report:
            s = report[key]
            print(f"{key:>14}: median wall {s['wall_ms'] / 1000:.2f} s, slowest model {s['slowest_ms'] / 1000:.2f} s, "
                  f"sum {s['sum_ms'] / 1000:.2f} s -> wall/slowest {s['wall_over_slowest']:.3f}, "
                  f"wall/sum {s['wall_over_sum']:.3f}, overhead {s['overhead_ms']:.0f} ms ({s['runs']} runs)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
