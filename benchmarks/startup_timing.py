"""Time from `python app.py` to a served page, and the first and a later offline answer.

Runs the real app in a subprocess without an OpenRouter key (so answers come from the local
Gemma 3 270M model), on a free port, and asks /query twice through gradio_client.

    python benchmarks/startup_timing.py [--cache-dir DIR] [--runs 2] [--out benchmarks/results/startup_timing.json]

With a fresh --cache-dir the first run includes building the local model's cache (the slow
GGUF load); later runs start from the cache, as a second start of the app does.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["What is the capital of France?", "Write one sentence about the sea."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(cache_dir: Path, timeout: float) -> dict:
    from gradio_client import Client

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               ROUTER_CACHE_DIR=str(cache_dir), ROUTER_LIVE_PRICES="0", ROUTER_DATA_DIR=str(cache_dir / "data"))
    url = f"http://127.0.0.1:{port}/"
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - start > timeout:
                raise TimeoutError("no page within the timeout")
            time.sleep(0.1)
        page_s = time.monotonic() - start
        client = Client(url, verbose=False)
        answers = []
        for prompt in PROMPTS:
            t = time.monotonic()
            r = client.predict(prompt=prompt, api_name="/query")
            answers.append({"prompt": prompt, "seconds": round(time.monotonic() - t, 2),
                            "answered_by": r["answered_by"], "notice": r["notice"],
                            "selected_model": r["selected_model"], "response": r["response"][:200]})
        return {"page_s": round(page_s, 2), "first_answer_s": answers[0]["seconds"],
                "later_answer_s": answers[1]["seconds"], "answers": answers}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="local model cache (default: a new temp dir)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "startup_timing.json")
    args = parser.parse_args()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="router-cache-"))
    runs = []
    for i in range(args.runs):
        run = one_run(cache, args.timeout)
        run["cache"] = "cold" if i == 0 and args.cache_dir is None else "warm"
        runs.append(run)
        print(f"run {i + 1} ({run['cache']} cache): page {run['page_s']} s, first answer {run['first_answer_s']} s, "
              f"later answer {run['later_answer_s']} s, answered by {run['answers'][0]['answered_by']}")
    warm = [r for r in runs if r["cache"] == "warm"]
    report = {"cpu_count": os.cpu_count(), "runs": runs,
              "median_page_s": statistics.median(r["page_s"] for r in runs),
              "median_warm_first_answer_s": statistics.median(r["first_answer_s"] for r in warm) if warm else None,
              "median_later_answer_s": statistics.median(r["later_answer_s"] for r in runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))


if __name__ == "__main__":
    main()
