"""What the bubblewrap sandbox costs per scored answer.

Runs a small correct solution through ``run_python`` with no tests (one sandbox) and with three
prompt tests (two sandboxes talking over pipes), and a plain ``python -I`` subprocess for scale,
``--runs`` times each, and prints medians. Writes ``benchmarks/results/sandbox_timing.json``.

    python benchmarks/sandbox_timing.py --runs 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.evaluation.sandbox import run_python, sandbox_status  # noqa: E402

SOURCE = "def triple(n):\n    return 3 * n\n\nprint(triple(2))  # Output: 6\n"
TESTS = ["assert triple(7) == 21", "assert triple(0) == 0", "assert [triple(i) for i in range(50)][-1] == 147"]
OUT = Path(__file__).resolve().parent / "results" / "sandbox_timing.json"


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    status = sandbox_status()
    if not status.available:
        print(f"no sandbox here: {status.reason}")
        return 1

    def no_tests() -> None:
        assert run_python(SOURCE).ran_to_end

    def with_tests() -> None:
        assert run_python(SOURCE, TESTS).tests == [True, True, True]

    def bare() -> None:
        subprocess.run([sys.executable, "-I", "-c", SOURCE], check=True, capture_output=True)

    report = {
        "command": "python benchmarks/sandbox_timing.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "mode": status.mode,
        "runs": args.runs,
        "bare_python_subprocess_ms": _median_ms(bare, args.runs),
        "sandbox_no_tests_ms": _median_ms(no_tests, args.runs),
        "sandbox_with_3_tests_ms": _median_ms(with_tests, args.runs),
    }
    report["ratio_with_tests_to_bare"] = round(report["sandbox_with_3_tests_ms"] / report["bare_python_subprocess_ms"], 2)
    for key, value in report.items():
        print(f"{key:32} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
