"""Recovery figures: kill -9 of an executor under a long queue, with duplicate messages.

    .venv/bin/python -m bench.chaos [--runs 3] [--builds 100] [--max-builds 3]
                                    [--lease 2] [--reconcile 0.5] [--dup-every 4]

Each run starts one ``serve --role pipeline`` and two ``serve --role executor``
processes (the end-to-end harness, ``tests/integration/cluster.py``) on a scratch
database and scratch queues, removed afterwards. ``--builds`` builds of one job are
submitted at once: ten log lines over ~0.6 s, then it waits for a gate opened right
after the kill (so that no job can have completed but not been recorded when its
executor dies: a window no executor can close), then it appends its build id to a
shared file. The message of every ``--dup-every``-th build is published a second time
straight after it (a duplicate that reaches an executor while the build waits or
starts). As soon as executor a runs a job it is killed with SIGKILL. Prints, asserts
nothing:

- takeover delay: from the kill until every build the victim held has a new owner
  (target: at most lease + 2 x reconcile interval), and the queue left at that moment;
- restart delay: from the kill until the last of the victim's interrupted jobs started
  again (a new attempt) on the survivor;
- jobs completed twice (target 0) and builds that did not succeed, per run and in all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from conveyor.v1 import executor_pb2
from support.cluster import Cluster
from support.services import AMQP_URL, POSTGRES_URL


def workflow(gate: Path, shared: Path) -> str:
    return (
        "jobs:\n"
        "  one:\n"
        "    steps:\n"
        "      - run: for i in 1 2 3 4 5 6 7 8 9 10; do echo \"line $i\"; sleep 0.06; done\n"
        f"      - run: while [ ! -e {gate} ]; do sleep 0.02; done\n"
        f"      - run: echo \"${{{{ github.run_id }}}}\" >> {shared}\n"
    )


def victim_running(cluster: Cluster, victim: str) -> bool | None:
    rows = cluster.query("SELECT 1 FROM jobs j JOIN builds b ON b.id = j.build_id "
                         "WHERE b.owner = %s AND j.status = 'RUNNING' LIMIT 1", [victim])
    return True if rows else None


def one_run(args: argparse.Namespace, root: Path, number: int) -> dict[str, float]:
    env = {
        "CONVEYOR_MAX_BUILDS": str(args.max_builds),
        "CONVEYOR_LEASE_S": str(args.lease),
        "CONVEYOR_RECONCILE_S": str(args.reconcile),
        "CONVEYOR_MAX_QUEUED_PER_PIPELINE": str(args.builds + 10),
    }
    shared, gate = root / f"completed-{number}.txt", root / f"gate-{number}"
    with Cluster(root / f"run-{number}", POSTGRES_URL, AMQP_URL, executors=2,
                 env=env) as cluster:
        cluster.create_pipeline("chaos", workflow(gate, shared))
        ids = cluster.submit("chaos", args.builds)
        for build_id in ids[::args.dup_every]:
            cluster.publish_raw(executor_pb2.BuildJob(build_id=build_id,
                                                      attempt=1).SerializeToString())
        victim = cluster.executors[0]
        victim_id = victim.executor_id
        cluster.wait_for(f"{victim_id} to run a job", lambda: victim_running(cluster, victim_id),
                         timeout=60, every=0.02)
        cluster.kill_executor(victim.name)
        killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
        gate.touch()
        queued = cluster.ready()
        held = [row[0] for row in cluster.query(
            "SELECT id FROM builds WHERE owner = %s AND status = 'RUNNING'", [victim_id])]

        def taken_over() -> float | None:
            rows = cluster.query("SELECT count(*) FROM builds WHERE id = ANY(%s) "
                                 "AND owner = %s AND status = 'RUNNING'", [held, victim_id])
            return None if rows[0][0] else time.monotonic() - killed_at

        takeover = cluster.wait_for("the takeover", taken_over, timeout=600, every=0.02)
        statuses = cluster.wait_terminal(ids, timeout=1200)
        restarted = cluster.query("SELECT max(started_at) FROM jobs WHERE build_id = ANY(%s) "
                                  "AND attempt > 1", [held])[0][0]
        restart = ((restarted.replace(tzinfo=UTC) - killed_wall).total_seconds()
                   if restarted is not None else float("nan"))
    completed = Counter(shared.read_text().split()) if shared.exists() else Counter()
    twice = sum(1 for n in completed.values() if n > 1)
    failed = sum(1 for s in statuses.values() if s != "SUCCEEDED")
    print(f"  run {number}: {len(held)} builds held by the killed executor, {queued} messages "
          f"queued; taken over after {takeover:.2f}s, jobs restarted after {restart:.2f}s; "
          f"jobs completed twice {twice}, builds not succeeded {failed}")
    return {"takeover": takeover, "restart": restart, "twice": twice, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--builds", type=int, default=100)
    parser.add_argument("--max-builds", type=int, default=3, help="CONVEYOR_MAX_BUILDS")
    parser.add_argument("--lease", type=float, default=2.0, help="CONVEYOR_LEASE_S")
    parser.add_argument("--reconcile", type=float, default=0.5, help="CONVEYOR_RECONCILE_S")
    parser.add_argument("--dup-every", type=int, default=4,
                        help="publish a duplicate of every Nth build's message")
    args = parser.parse_args()
    target = args.lease + 2 * args.reconcile
    print(f"{os.cpu_count()} cores; {args.runs} runs of {args.builds} builds, 2 executors of "
          f"{args.max_builds} builds each, lease {args.lease:g}s, reconcile every "
          f"{args.reconcile:g}s, a duplicate of every {args.dup_every}th build's message")
    results = []
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-chaos-") as tmp:
        for number in range(1, args.runs + 1):
            results.append(one_run(args, Path(tmp), number))
    delays = [r["takeover"] for r in results]
    restarts = [r["restart"] for r in results]
    print(f"takeover delay after kill -9 under a {args.builds}-build queue: min "
          f"{min(delays):.2f}s, median {statistics.median(delays):.2f}s, max "
          f"{max(delays):.2f}s (target <= lease + 2 x reconcile = {target:g}s)")
    print(f"  interrupted jobs restarted: median {statistics.median(restarts):.2f}s, max "
          f"{max(restarts):.2f}s after the kill")
    print(f"jobs completed twice over {args.runs} runs: "
          f"{sum(int(r['twice']) for r in results)} (target 0); builds not succeeded: "
          f"{sum(int(r['failed']) for r in results)}")


if __name__ == "__main__":
    main()
