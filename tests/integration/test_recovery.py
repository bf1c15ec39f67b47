"""Issue 12: recovery under duplicate messages and a long queue, on real processes.

Duplicates are normal (redelivery after a connection drop, two reconcilers re-publishing
one build): each must leave every job completed exactly once. An executor killed while
the queue is long must have its builds taken over within a lease and a reconcile pass or
two, not once the queue has drained.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.v1 import executor_pb2
from support.cluster import Cluster
from tests.integration.test_cluster import (
    assert_each_job_completed_once,
    numbered_workflow,
    running_job_of,
)

pytestmark = pytest.mark.slow  # separate processes: seconds each (they run in CI all the same)

LEASE_S = 2.0  # the cluster's CONVEYOR_LEASE_S
RECONCILE_S = 0.5  # and CONVEYOR_RECONCILE_S
# What a loaded two-core CI machine may add to lease + 2 reconcile passes: process
# scheduling, a store call's retry. The defect this guards against took 30-142 s.
TAKEOVER_SLACK_S = 3.0


def gated_workflow(gate: Path, shared: Path) -> str:
    """One job that waits for ``gate`` to exist, then records that it completed."""
    return (
        "jobs:\n"
        "  hold:\n"
        "    steps:\n"
        f"      - run: while [ ! -e {gate} ]; do sleep 0.05; done\n"
        f"      - run: echo \"${{{{ github.run_id }}}} hold\" >> {shared}\n"
    )


def build_message(build_id: int, attempt: int = 1) -> bytes:
    return executor_pb2.BuildJob(build_id=build_id, attempt=attempt).SerializeToString()


def test_a_duplicate_of_a_build_waiting_in_the_backlog_runs_it_once(
        make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    # Two builds fill the executor; the next build and its duplicate are both delivered
    # (prefetch = CONVEYOR_MAX_BUILDS = 2 unacknowledged) and wait in its backlog. A slot
    # frees and the build starts; then the other slot frees while its job runs.
    cluster = make_cluster(executors=1, env={"CONVEYOR_MAX_BUILDS": "2"})
    shared = tmp_path / "completed.txt"
    gates = [tmp_path / "gate-1", tmp_path / "gate-2"]
    for n, gate in enumerate(gates):
        cluster.create_pipeline(f"gated-{n}", gated_workflow(gate, shared))
    cluster.create_pipeline("slow", numbered_workflow(shared, jobs=("one",), lines=40))
    holding = [cluster.submit(f"gated-{n}", 1)[0] for n in range(len(gates))]
    cluster.wait_for("both slots to be taken", lambda: True if all(
        s == "RUNNING" for s in cluster.build_statuses(holding).values()) else None, 30)
    (waiting,) = cluster.submit("slow", 1)
    cluster.publish_raw(build_message(waiting))
    cluster.wait_for("the build and its duplicate to reach the executor",
                     lambda: True if cluster.ready() == 0 else None, 30)
    assert cluster.build_statuses([waiting]) == {waiting: "QUEUED"}

    gates[0].touch()
    cluster.wait_for(f"build {waiting} to run its job", lambda: running_job_of(cluster, None),
                     timeout=30)
    gates[1].touch()
    ids = [*holding, waiting]
    statuses = cluster.wait_terminal(ids, timeout=60)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    seen = Counter(shared.read_text().split("\n")[:-1])
    assert seen == Counter([*(f"{b} hold" for b in holding), f"{waiting} one"]), seen
    attempts = cluster.jobs(waiting)
    assert [(j["key"], j["attempt"], j["status"]) for j in attempts] == \
        [("one", 1, "SUCCEEDED")], attempts


def test_duplicates_of_builds_as_they_start_run_each_job_once(
        make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    # Each build's message is followed at once by two copies: they reach an executor
    # while the build starts there (or the other executor, which races it for the claim),
    # runs, waits in a backlog (two builds at most per executor), or has finished.
    cluster = make_cluster(executors=2, env={"CONVEYOR_MAX_BUILDS": "2"})
    shared = tmp_path / "completed.txt"
    cluster.create_pipeline("slow", numbered_workflow(shared, lines=10, pause="0.02"))
    ids = []
    for _ in range(12):
        (build,) = cluster.submit("slow", 1)
        cluster.publish_raw(build_message(build))
        cluster.publish_raw(build_message(build))
        ids.append(build)
    statuses = cluster.wait_terminal(ids, timeout=90)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    assert_each_job_completed_once(cluster, ids, shared)
    retried = [j for j in cluster.jobs() if j["attempt"] != 1]
    assert not retried, retried
    assert cluster.ready() == 0  # every copy was consumed and settled


REPUBLISHED = re.compile(r"re-publishing build (\d+)")


def republished(cluster: Cluster) -> Counter[int]:
    counts: Counter[int] = Counter()
    for proc in cluster.executors:
        if proc.stderr.exists():
            counts.update(int(m) for m in REPUBLISHED.findall(proc.stderr.read_text()))
    return counts


def test_two_executors_reconciling_the_same_unpublished_builds_publish_each_once(
        make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    # The pipeline's messages go to a queue nobody consumes, and the builds are then made
    # to look never confirmed (and old). Their rows stay locked a while (a slow writer),
    # so both executors' reconcilers reach them at once: exactly one may re-publish each.
    cluster = make_cluster(executors=2, unconsumed=True)
    shared = tmp_path / "completed.txt"
    cluster.create_pipeline("slow", numbered_workflow(shared, lines=3, pause="0"))
    ids = cluster.submit("slow", 40)
    cluster.query("UPDATE builds SET published = false, "
                  "created_at = created_at - interval '1 hour' WHERE id = ANY(%s) "
                  "RETURNING id", [ids])
    with cluster.rows_locked("builds", ids):
        time.sleep(3 * RECONCILE_S)  # every reconciler runs meanwhile
    statuses = cluster.wait_terminal(ids, timeout=90)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    assert all(b["published"] for b in cluster.builds())
    counts = republished(cluster)
    assert set(counts) == set(ids), sorted(set(ids) ^ set(counts))
    twice = {build: n for build, n in counts.items() if n != 1}
    assert not twice, f"builds re-published more than once: {twice}"
    assert_each_job_completed_once(cluster, ids, shared)


def held_workflow(gate: Path, shared: Path) -> str:
    """Ten lines over ~0.6 s, then wait for ``gate``, then record the completion: no job
    can have completed unrecorded when an executor is killed before the gate opens (the
    job's work done, its end not yet written: a window no executor can close)."""
    return (
        "jobs:\n"
        "  one:\n"
        "    steps:\n"
        "      - run: for i in 1 2 3 4 5 6 7 8 9 10; do echo \"line $i\"; sleep 0.06; done\n"
        f"      - run: while [ ! -e {gate} ]; do sleep 0.02; done\n"
        f"      - run: echo \"${{{{ github.run_id }}}} one\" >> {shared}\n"
    )


def test_kill_9_under_a_long_queue_is_taken_over_within_a_lease(
        make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    cluster = make_cluster(executors=2, env={"CONVEYOR_MAX_BUILDS": "3"})
    shared, gate = tmp_path / "completed.txt", tmp_path / "gate"
    cluster.create_pipeline("slow", held_workflow(gate, shared))
    ids = cluster.submit("slow", 100)
    victim = cluster.executors[0]
    victim_id = victim.executor_id
    cluster.wait_for(f"{victim_id} to run a job", lambda: running_job_of(cluster, victim_id, 1),
                     timeout=30)
    assert cluster.kill_executor(victim.name) == -9
    killed_at = time.monotonic()
    gate.touch()
    held = [row[0] for row in cluster.query(
        "SELECT id FROM builds WHERE owner = %s AND status = 'RUNNING'", [victim_id])]
    assert held, "the victim held no build when it was killed"
    assert cluster.ready() > 0, "the queue drained before the kill: nothing to starve takeover"

    def taken_over() -> float | None:
        owners = cluster.owners(held)
        statuses = cluster.build_statuses(held)
        left = [b for b in held if owners[b] == victim_id and statuses[b] == "RUNNING"]
        return None if left else time.monotonic() - killed_at

    delay = cluster.wait_for("the victim's builds to be taken over", taken_over, 120, every=0.05)
    print(f"taken over {delay:.2f}s after kill -9")
    bound = LEASE_S + 2 * RECONCILE_S + TAKEOVER_SLACK_S
    assert delay <= bound, f"takeover took {delay:.1f}s after kill -9 (bound {bound:g}s)"
    cluster.start_executor(victim.name)  # back as a new incarnation: it helps drain the queue
    statuses = cluster.wait_terminal(ids, timeout=180)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    assert_each_job_completed_once(cluster, ids, shared, jobs=("one",))
