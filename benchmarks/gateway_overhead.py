"""What the OpenAI-compatible gateway adds, and whether it holds 50 concurrent streams.

Runs ``python app.py`` in a subprocess against the local protocol server (also its own
process) standing in for OpenRouter, and measures side by side, request after request:

- ``backend``: the openai SDK straight to the protocol server (what the model's endpoint costs);
- ``selector``: ``Router.route`` alone, in this process, with the app's default selector;
- ``gateway``: the openai SDK to the app's ``/v1/chat/completions`` (non-streamed), and streamed
  (time to the first content chunk and to the end).

The gateway's overhead is, per request, the gateway's time minus the backend's time (measured
just before) minus the routing decision's time inside the app (``router.route_ms`` of that very
answer), as a median over the requests: the time the gateway adds beyond the model call and the
routing decision it has to make anyway. The selector timed alone in this process is printed
beside it as a check.

Then a second app, whose backend streams slowly (``--words`` words, ``--chunk-delay`` s apart),
gets ``--streams`` concurrent streamed requests; every stream must arrive whole, with no error.

    python benchmarks/gateway_overhead.py [--requests 200] [--streams 50] [--out benchmarks/results/gateway_overhead.json]
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
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["Write a limerick about a sleepy cat",
           "Write a Python function that reverses a linked list and explain the algorithm",
           "What is the derivative of x^3 * sin(x)?",
           "Summarise the causes of the French Revolution in three sentences"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def protocol_server(*args: str):
    proc = subprocess.Popen([sys.executable, "-m", "tests.protocol_server", *args], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the protocol server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def app(backend_url: str, data_dir: Path):
    port = free_port()
    env = {**os.environ, "OPENROUTER_API_KEY": "bench", "OPENROUTER_BASE_URL": backend_url,
           "ROUTER_LOCAL_MODEL": "0", "ROUTER_LIVE_PRICES": "0", "ROUTER_MAX_RETRIES": "0",
           "ROUTER_DATA_DIR": str(data_dir), "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("ROUTER_API_KEYS", None)
    log = open(data_dir / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited (see {data_dir / 'app.log'})")
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not start in 180 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3), "n": len(ordered)}


def overhead(requests: int, data_dir: Path) -> dict:
    from routing.service import RouterService
    from routing.settings import Settings

    with protocol_server() as backend_url, app(backend_url, data_dir / "overhead") as url:
        direct = openai.OpenAI(base_url=backend_url, api_key="bench", max_retries=0)
        gateway = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        service = RouterService(Settings.from_env({"ROUTER_LOCAL_MODEL": "0", "ROUTER_LIVE_PRICES": "0",
                                                   "ROUTER_DATA_DIR": str(data_dir / "selector")}),
                                background=False)
        times: dict[str, list[float]] = {"backend": [], "selector": [], "gateway": [], "stream_first": [],
                                         "stream_total": [], "route_in_app": [], "added": [], "added_stream": []}
        for i in range(requests + 5):  # the first 5 warm up (connections, caches) and are not counted
            prompt = PROMPTS[i % len(PROMPTS)] + f" (request {i})"
            messages = [{"role": "user", "content": prompt}]
            model = service.router.route(prompt).selected_model
            spec = service.pool.get(model)

            t = time.perf_counter()
            direct.chat.completions.create(model=spec.model_name, messages=messages)
            backend = time.perf_counter() - t

            t = time.perf_counter()
            service.router.route(prompt)
            selector = time.perf_counter() - t

            t = time.perf_counter()
            answer = gateway.chat.completions.create(model="router", messages=messages)
            through = time.perf_counter() - t
            assert answer.choices[0].message.content, "the gateway gave an empty answer"

            t = time.perf_counter()
            first = None
            for chunk in gateway.chat.completions.create(model="router", messages=messages, stream=True):
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - t
            total = time.perf_counter() - t
            route = answer.model_extra["router"]["route_ms"] / 1000
            if i >= 5:
                for name, value in (("backend", backend), ("selector", selector), ("gateway", through),
                                    ("stream_first", first or total), ("stream_total", total),
                                    ("route_in_app", route), ("added", through - backend - route),
                                    ("added_stream", total - backend - route)):
                    times[name].append(ms(value))
        result = {name: summary(values) for name, values in times.items()}
        result["selector_name"] = service.selector.name
        result["gateway_overhead_median_ms"] = result["added"]["median_ms"]
        result["stream_overhead_median_ms"] = result["added_stream"]["median_ms"]
        return result


def concurrency(streams: int, words: int, chunk_delay: float, data_dir: Path) -> dict:
    expected = " ".join(f"word{i}" for i in range(words))
    args = ["--reply-words", str(words), "--chunk-delay", str(chunk_delay)]
    with protocol_server(*args) as backend_url, app(backend_url, data_dir / "concurrency") as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)

        def one(prompt: str) -> tuple[float, float | None, str | None]:
            t = time.perf_counter()
            first, text = None, []
            try:
                for chunk in client.chat.completions.create(model="router", stream=True,
                                                            messages=[{"role": "user", "content": prompt}]):
                    if chunk.choices and chunk.choices[0].delta.content:
                        first = first or time.perf_counter() - t
                        text.append(chunk.choices[0].delta.content)
            except Exception as exc:  # noqa: BLE001 - counted, not raised
                return time.perf_counter() - t, first, f"{type(exc).__name__}: {exc}"
            if "".join(text) != expected:
                return time.perf_counter() - t, first, f"incomplete answer ({len(''.join(text))} characters)"
            return time.perf_counter() - t, first, None

        alone = one("warm-up: " + PROMPTS[0])
        if alone[2]:
            raise RuntimeError(f"a single stream failed: {alone[2]}")
        alone = one(PROMPTS[0])
        results: list[tuple[float, float | None, str | None]] = [None] * streams  # type: ignore[list-item]
        barrier = threading.Barrier(streams)

        def worker(i: int) -> None:
            barrier.wait()
            results[i] = one(PROMPTS[i % len(PROMPTS)] + f" (stream {i})")

        t = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t
        errors = [r[2] for r in results if r[2]]
        return {"streams": streams, "words": words, "chunk_delay_s": chunk_delay,
                "one_stream_alone_s": round(alone[0], 3), "wall_s": round(wall, 3),
                "per_stream_median_s": round(statistics.median(r[0] for r in results), 3),
                "per_stream_max_s": round(max(r[0] for r in results), 3),
                "first_token_median_s": round(statistics.median(r[1] or r[0] for r in results), 3),
                "first_token_max_s": round(max(r[1] or r[0] for r in results), 3),
                "errors": len(errors), "error_examples": errors[:3]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=0.05)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gateway_overhead.json"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        data = Path(tmp)
        for sub in ("overhead", "concurrency", "selector"):
            (data / sub).mkdir()
        report = {"command": "python benchmarks/gateway_overhead.py " + " ".join(argv or sys.argv[1:]),
                  "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
                  "overhead": overhead(args.requests, data),
                  "concurrency": concurrency(args.streams, args.words, args.chunk_delay, data)}
    o, c = report["overhead"], report["concurrency"]
    print(f"selector ({o['selector_name']}) alone: median {o['selector']['median_ms']:.1f} ms here, "
          f"{o['route_in_app']['median_ms']:.1f} ms inside the app")
    print(f"backend alone (openai SDK -> protocol server): median {o['backend']['median_ms']:.1f} ms")
    print(f"through the gateway: median {o['gateway']['median_ms']:.1f} ms (p90 {o['gateway']['p90_ms']:.1f}); "
          f"streamed: first token {o['stream_first']['median_ms']:.1f} ms, end {o['stream_total']['median_ms']:.1f} ms")
    print(f"gateway overhead (median per request, beyond backend + routing): {o['gateway_overhead_median_ms']:.1f} ms "
          f"non-streamed (p90 {o['added']['p90_ms']:.1f}), {o['stream_overhead_median_ms']:.1f} ms streamed")
    print(f"{c['streams']} concurrent streams ({c['words']} words, {c['chunk_delay_s']} s apart; one alone "
          f"{c['one_stream_alone_s']:.2f} s): wall {c['wall_s']:.2f} s, per stream median {c['per_stream_median_s']:.2f} s "
          f"/ max {c['per_stream_max_s']:.2f} s, first token median {c['first_token_median_s']:.2f} s / max "
          f"{c['first_token_max_s']:.2f} s, errors {c['errors']}")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.out}")
    return 0 if c["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
