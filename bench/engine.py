"""Engine benchmark (issue 3): prints figures, asserts nothing.

Runs an all-in-one runtime on the embedded defaults (SQLite, memory queue, local
backend) and measures, in the same run:
- the raw rate at which Python spawns `sh -c true` at the engine's concurrency;
- jobs/s for 500 independent `true` jobs, and the ratio to the raw rate;
- per-edge scheduling overhead for a 100-job chain: from one job's process exit to its
  dependent's process start (p50, p99);
- log ingest of one job printing 1,000,000 lines of 80 characters, and peak RSS.

Usage: .venv/bin/python -m bench.engine [--jobs 500] [--chain 100] [--lines 1000000]
       [--sandbox]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from actors.logbatch import LINE_OVERHEAD
from observability import trace
from runtime_config import MAX_JOB_LOG_BYTES
from support.harness import engine


def raw_spawn_rate(count: int, concurrency: int) -> float:
    def one(_: int) -> None:
        subprocess.run(["sh", "-c", "true"], check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=500)
    p.add_argument("--chain", type=int, default=100)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--sandbox", action="store_true",
                   help="run jobs in the sandbox, as `conveyor serve` does (default: trusted, "
                        "as `conveyor run`)")
    args = p.parse_args()

    raw = raw_spawn_rate(args.jobs, args.concurrency)
    print(f"raw spawn rate (sh -c true, {args.concurrency} threads): {raw:,.0f}/s")

    with tempfile.TemporaryDirectory() as tmp, \
            engine(Path(tmp), max_jobs=args.concurrency, max_builds=4,
                   local_trusted=not args.sandbox,
                   # The ingest run's log must not stop at the default cap (64 MiB is
                   # ~800,000 of its lines): it measures ingest, not truncation.
                   max_job_log_bytes=max(MAX_JOB_LOG_BYTES,
                                         args.lines * (81 + LINE_OVERHEAD))) as eng:
            wide = "jobs:\n" + "".join(
                f"  j{i}: {{steps: [{{run: 'true'}}]}}\n" for i in range(args.jobs))
            start = time.perf_counter()
            result = eng.run(wide, timeout=600)
            elapsed = time.perf_counter() - start
            assert result.status == "SUCCEEDED", result.build.reason
            rate = args.jobs / elapsed
            print(f"{args.jobs} independent jobs: {elapsed:.2f}s = {rate:,.0f} jobs/s "
                  f"({rate / raw:.0%} of the raw spawn rate)")

            chain = "jobs:\n  c0: {steps: [{run: 'true'}]}\n" + "".join(
                f"  c{i}: {{needs: c{i - 1}, steps: [{{run: 'true'}}]}}\n"
                for i in range(1, args.chain))
            with trace.recording() as marks:
                result = eng.run(chain, timeout=600)
            assert result.status == "SUCCEEDED", result.build.reason
            rows = {j.key: j.id for j in result.build.jobs}
            events = {(name, kind): t for name, kind, t in marks if kind in ("spawn", "exit")}
            by_row = {int(name.split("-j")[1].split("-")[0]): name for name, _ in events}
            edges = []
            for i in range(1, args.chain):
                prev, cur = by_row[rows[f"c{i - 1}"]], by_row[rows[f"c{i}"]]
                edges.append((events[(cur, "spawn")] - events[(prev, "exit")]) * 1000)
            print(f"{args.chain}-job chain, exit → dependent spawn: "
                  f"p50 {statistics.median(edges):.2f} ms, p99 {percentile(edges, 0.99):.2f} ms, "
                  f"max {max(edges):.2f} ms")

            line = "x" * 80
            noisy = f"""
jobs:
  noisy:
    steps:
      - run: yes '{line}' | head -n {args.lines}
"""
            start = time.perf_counter()
            result = eng.run(noisy, timeout=600)
            elapsed = time.perf_counter() - start
            assert result.status == "SUCCEEDED", result.build.reason
            count = eng.logs(result.build.id, "noisy", from_line=args.lines)[0].number
            assert count == args.lines, count
            rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"log ingest, {args.lines:,} lines of 80 chars: {elapsed:.2f}s = "
                  f"{args.lines / elapsed:,.0f} lines/s; peak RSS of the runtime "
                  f"{rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
