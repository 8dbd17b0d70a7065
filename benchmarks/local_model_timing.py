"""Timing of the local Gemma 3 270M answerer on this machine's CPU.

Measures, per dtype of the cached model:

* first load: GGUF -> dequantise -> write the safetensors cache (a fresh cache folder);
* cached load: a new provider reading that cache (median of ``--cached-loads`` loads);
* the first answer after a load (cold), then time to first token and full answer time for
  three prompts, ``--runs`` times each (medians), greedy, ``--max-tokens`` new tokens at most;
* CPU milliseconds per generated token (process CPU time, all threads), which a busy shared
  machine barely changes, unlike wall time: use it (with ``--threads 1``) to compare dtypes.

The machine is shared, so the 1-minute load average is recorded with the figures.
Prints the figures and writes a JSON report.

    python benchmarks/local_model_timing.py [--dtypes bfloat16 float32] [--runs 3]
        [--max-tokens 64] [--threads N] [--out benchmarks/results/local_model_timing.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from routing.providers.local_model import (  # noqa: E402
    LOCAL_MODEL_ID, SUPPORTED_DTYPES, LocalModelProvider,
)

PROMPTS = ("What is the capital of France?",
           "Write a haiku about the sea",
           "Explain in two sentences why the sky is blue.")
LOAD_TIMEOUT_S = 1800


def _load(cache_dir: Path, dtype: str, threads: int | None, max_tokens: int) -> LocalModelProvider:
    provider = LocalModelProvider(cache_dir=cache_dir, dtype=dtype, threads=threads,
                                  max_new_tokens=max_tokens)
    if not provider.wait_ready(LOAD_TIMEOUT_S):
        raise SystemExit(f"the local model did not load: {provider.status()}")
    return provider


def _answer(provider: LocalModelProvider, prompt: str, max_tokens: int) -> dict[str, Any]:
    """One streamed answer: seconds to the first visible text and to the end."""
    start, cpu_start = time.perf_counter(), time.process_time()
    first: float | None = None
    result = None
    for chunk in provider.stream_chat(LOCAL_MODEL_ID, [{"role": "user", "content": prompt}],
                                      max_tokens=max_tokens):
        if chunk.delta and first is None:
            first = time.perf_counter() - start
        if chunk.done:
            result = chunk.result
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    assert result is not None
    tokens = result.usage["completion_tokens"]
    return {"prompt": prompt, "first_token_s": round(first if first is not None else total, 3),
            "total_s": round(total, 3), "completion_tokens": tokens,
            "prompt_tokens": result.usage["prompt_tokens"],
            "tokens_per_s": round(tokens / total, 2) if total else None,
            "cpu_s": round(cpu, 3), "cpu_ms_per_token": round(1000 * cpu / tokens, 1) if tokens else None,
            "finish_reason": result.finish_reason, "text": result.text}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def measure_dtype(dtype: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """All figures for one dtype, starting from an empty cache folder."""
    cache_dir = workdir / f"cache-{dtype}"
    load_avg = [round(os.getloadavg()[0], 2)]

    start = time.perf_counter()
    provider = _load(cache_dir, dtype, args.threads, args.max_tokens)
    first_load = time.perf_counter() - start
    assert provider.status()["source"] == "gguf", provider.status()
    cache_bytes = sum(p.stat().st_size for p in provider.cache_path.iterdir())
    del provider
    gc.collect()

    cached_loads = []
    provider = None
    for _ in range(args.cached_loads):
        provider = None
        gc.collect()
        start = time.perf_counter()
        provider = _load(cache_dir, dtype, args.threads, args.max_tokens)
        cached_loads.append(time.perf_counter() - start)
        assert provider.status()["source"] == "cache", provider.status()
    assert provider is not None
    load_avg.append(round(os.getloadavg()[0], 2))

    cold = _answer(provider, PROMPTS[0], args.max_tokens)
    runs = [_answer(provider, prompt, args.max_tokens)
            for _ in range(args.runs) for prompt in PROMPTS]
    load_avg.append(round(os.getloadavg()[0], 2))
    per_prompt = {}
    for prompt in PROMPTS:
        mine = [r for r in runs if r["prompt"] == prompt]
        per_prompt[prompt] = {
            "first_token_s_median": _median([r["first_token_s"] for r in mine]),
            "total_s_median": _median([r["total_s"] for r in mine]),
            "completion_tokens": [r["completion_tokens"] for r in mine],
            "answer": mine[-1]["text"],
        }
    return {
        "dtype": dtype,
        "first_load_gguf_s": round(first_load, 2),
        "cached_load_s_median": _median(cached_loads),
        "cached_load_s": [round(x, 2) for x in cached_loads],
        "cache_size_mb": round(cache_bytes / 1e6, 1),
        "first_answer_after_load": cold,
        "first_token_s_median": _median([r["first_token_s"] for r in runs]),
        "total_s_median": _median([r["total_s"] for r in runs]),
        "tokens_per_s_median": _median([r["tokens_per_s"] for r in runs]),
        # CPU time barely depends on how busy the shared machine is; compare dtypes with it.
        "cpu_ms_per_token_median": _median([r["cpu_ms_per_token"] for r in runs]),
        "per_prompt": per_prompt,
        "load_average_1min": load_avg,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", choices=SUPPORTED_DTYPES, default=["bfloat16"])
    parser.add_argument("--runs", type=int, default=3, help="answers per prompt (after a cold one)")
    parser.add_argument("--cached-loads", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "local_model_timing.json")
    args = parser.parse_args(argv)

    import torch

    results = []
    with tempfile.TemporaryDirectory(prefix="local_model_timing-") as tmp:
        for dtype in args.dtypes:
            print(f"== {dtype}: loading from the GGUF into an empty cache ...", flush=True)
            results.append(measure_dtype(dtype, args, Path(tmp)))
            gc.collect()

    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "settings": {"runs": args.runs, "cached_loads": args.cached_loads,
                     "max_tokens": args.max_tokens, "prompts": list(PROMPTS), "greedy": True},
        "results": results,
    }
    print(f"\n{'dtype':<10}{'GGUF load':>11}{'cached load':>13}{'1st answer':>12}"
          f"{'TTFT med':>10}{'answer med':>12}{'tok/s med':>11}{'CPU ms/tok':>12}{'loadavg':>20}")
    for r in results:
        print(f"{r['dtype']:<10}{r['first_load_gguf_s']:>10.1f}s{r['cached_load_s_median']:>12.1f}s"
              f"{r['first_answer_after_load']['total_s']:>11.1f}s{r['first_token_s_median']:>9.2f}s"
              f"{r['total_s_median']:>11.2f}s{r['tokens_per_s_median']:>11.1f}"
              f"{r['cpu_ms_per_token_median']:>12.0f}  {r['load_average_1min']}")
    for r in results:
        for prompt, figures in r["per_prompt"].items():
            print(f"  [{r['dtype']}] {prompt!r}: TTFT {figures['first_token_s_median']:.2f}s, "
                  f"answer {figures['total_s_median']:.2f}s -> {figures['answer'][:70]!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
