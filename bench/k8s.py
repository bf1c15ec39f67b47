"""Kubernetes backend benchmark (issue 5): prints figures, asserts nothing.

Runs the all-in-one runtime (SQLite, memory queue) with ``CONVEYOR_BACKEND=kubernetes``
against the API emulator and a build of ``--width`` × ``--depth`` jobs, where each job of
a layer needs two jobs of the layer before. The emulator runs in this process (sharing
its GIL) unless ``--separate`` puts it, and so the pods, in a process of its own, as a
real API server would be. The build runs ``--repeat`` times, one after the other, and
the figures pool every build (a p99 over one build's 180 edges is its third-worst
value: too noisy to compare). Prints:

- API requests per job, by verb (from the emulator's counters, reset after a warm-up
  build, so the one pod watch opened before it is not counted; a relist or a new watch
  during the run would be): must not grow with the number of jobs (no polling, no watch
  per job). "watch events sent": the pod events the emulator streamed (4 per job).
- dependency release latency, Conveyor side, per edge: an *edge* is one job that has
  needs, measured from the arrival in the K8sActor's pod watch of the Succeeded event of
  its last-finishing need, to the create request of its own Kubernetes Job (p50, p99,
  max over all edges). Printed last, after its four stages, each with its own p50/p99
  (stage percentiles do not add up to the total's):
  1. succeeded event → result told: the K8sActor classifies the pod and tells the build
     (a job that declares no outputs is released before its log is drained);
  2. result told → dependent sends RunJob: the BuildActor decides, then sends the launch
     the dependent's idle actor prepared ahead (or that actor renders it);
  3. RunJob sent → K8sActor takes it: the K8sActor's mailbox;
  4. RunJob → create request: a pool worker picks the create up and sends it.

Usage: .venv/bin/python -m bench.k8s [--width 20] [--depth 10] [--repeat 3] [--separate]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from k8s.manifests import job_name
from observability import trace
from support.harness import engine
from support.k8s_emulator import Emulator, Settings
from support.k8s_emulator.remote import RemoteEmulator, spawn_emulator


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def dag(width: int, depth: int) -> tuple[str, dict[str, list[str]]]:
    needs: dict[str, list[str]] = {}
    lines = ["jobs:"]
    for layer in range(depth):
        for i in range(width):
            key = f"l{layer}_{i}"
            deps = [] if layer == 0 else sorted({f"l{layer - 1}_{i}",
                                                 f"l{layer - 1}_{(i + 1) % width}"})
            needs[key] = deps
            need = f"needs: [{', '.join(deps)}], " if deps else ""
            lines.append(f"  {key}: {{{need}steps: [{{run: 'true'}}]}}")
    return "\n".join(lines) + "\n", needs


@contextmanager
def _emulator(tmp: Path, separate: bool) -> Iterator[Emulator | RemoteEmulator]:
    if not separate:
        with Emulator(tmp / "emu", settings=Settings(bookmark_interval_s=5.0)) as emu:
            yield emu
        return
    remote = spawn_emulator(tmp / "emu")
    try:
        yield remote
    finally:
        remote.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=20)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3, help="builds to run, edges pooled")
    p.add_argument("--separate", action="store_true",
                   help="run the emulator (and so the pods) in its own process, as a real "
                        "API server would be, instead of sharing this process's GIL")
    args = p.parse_args()
    text, needs = dag(args.width, args.depth)
    total_jobs = len(needs)

    with tempfile.TemporaryDirectory() as tmp, _emulator(Path(tmp), args.separate) as emu, \
            engine(Path(tmp), backend="kubernetes", k8s_url=emu.url, namespace="bench",
                   max_jobs=64) as eng:
        warm = eng.run("jobs:\n  warm: {steps: [{run: 'true'}]}\n", timeout=60)
        assert warm.status == "SUCCEEDED", warm.build.reason
        emu.reset_stats()
        build_ids = []
        start = time.perf_counter()
        with trace.recording() as marks:
            for _ in range(args.repeat):
                result = eng.run(text, timeout=900)
                assert result.status == "SUCCEEDED", result.build.reason
                build_ids.append(result.build.id)
        elapsed = time.perf_counter() - start
        stats = emu.stats()

    by_verb = stats["by_verb"]
    shared = by_verb.get("watch pods", 0) + by_verb.get("list pods", 0)
    ran = total_jobs * args.repeat
    per_job = {verb: n / ran for verb, n in sorted(by_verb.items())
               if verb not in ("watch pods", "list pods")}
    print(f"{args.repeat} builds of {total_jobs} jobs ({args.width} wide, {args.depth} deep, "
          f"2 needs each): {elapsed:.2f}s, {ran / elapsed:.1f} jobs/s")
    print(f"API requests: {stats['total']} in all; per job "
          f"{(stats['total'] - shared) / ran:.2f} "
          f"({', '.join(f'{v} {n:.2f}' for v, n in per_job.items())}); "
          f"shared watch/list requests: {shared}; watch events sent: "
          f"{stats['watch_events_sent']}")

    first: dict[tuple[str, str], float] = {}
    for name, kind, t in marks:
        first.setdefault((name, kind), t)
    first_success = {name: t for (name, kind), t in first.items() if kind == "succeeded"}
    launched = {name: t for name, kind, t in marks if kind == "launch"}
    sent_at = {job_name(b, key, 1): launched[trace.launch_subject(b, key)]
               for b in build_ids for key in needs}
    latencies: list[float] = []
    stages: dict[str, list[float]] = {"succeeded event → result told (K8sActor)": [],
                                      "result told → dependent sends RunJob (engine)": [],
                                      "RunJob sent → K8sActor takes it (its mailbox)": [],
                                      "RunJob → create request": []}
    for build_id in build_ids:
        for key, deps in needs.items():
            if not deps:
                continue
            last = max(deps, key=lambda d: first_success[job_name(build_id, d, 1)])
            dep, me = job_name(build_id, last, 1), job_name(build_id, key, 1)
            latencies.append((first[(me, "create")] - first_success[dep]) * 1000)
            # A job without outputs is released when its pod succeeds (ExitKnown), one
            # with outputs once its log is drained (JobExited).
            told = first.get((dep, "known"), first[(dep, "exited")])
            marks = [first_success[dep], told, sent_at[me], first[(me, "run")],
                     first[(me, "create")]]
            for stage, (a, b) in zip(stages, itertools.pairwise(marks), strict=True):
                stages[stage].append((b - a) * 1000)
    for stage, values in stages.items():
        print(f"  {stage}: p50 {statistics.median(values):.1f} ms, "
              f"p99 {percentile(values, 0.99):.1f} ms")
    print(f"dependency release, Succeeded event in the watch → dependent's Job create "
          f"request ({len(latencies)} edges): p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
