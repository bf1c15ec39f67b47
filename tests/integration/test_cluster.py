"""Issue 4's "how we will know": pipeline and executors as separate OS processes on the
real PostgreSQL and RabbitMQ, with faults injected."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from conveyor.v1 import executor_pb2
from support import rabbit
from support.cluster import Cluster

pytestmark = pytest.mark.slow

QUICK = "jobs:\n  a: {steps: [{run: 'echo hi'}]}\n"


def test_fifty_builds_spread_across_two_executors(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(executors=2)
    cluster.create_pipeline("quick", QUICK)
    ids = cluster.submit("quick", 50)
    statuses = cluster.wait_terminal(ids, timeout=60)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    owners = cluster.owners(ids)
    by_owner: dict[str | None, int] = {}
    for owner in owners.values():
        by_owner[owner] = by_owner.get(owner, 0) + 1
    expected = {proc.executor_id for proc in cluster.executors}
    assert set(by_owner) == expected, by_owner


LINES = 40
OUTAGE_S = 4.0


def numbered_workflow(shared: Path, jobs: Sequence[str] = ("one", "two"), lines: int = LINES,
                      pause: str = "0.05") -> str:
    """Jobs that print ``line 1`` … ``line N`` slowly, then append ``<build> <job>`` to
    ``shared`` as their very last act (so a job that ran to completion twice shows)."""
    out = ["jobs:"]
    for key in jobs:
        out += [
            f"  {key}:",
            "    steps:",
            "      - run: |",
            "          i=1",
            f"          while [ $i -le {lines} ]; do echo \"line $i\"; i=$((i+1)); "
            f"sleep {pause}; done",
            # github.job is empty inside run scripts (see the report): name the job here.
            f"      - run: echo \"${{{{ github.run_id }}}} {key}\" >> {shared}",
        ]
    return "\n".join(out) + "\n"


def running_job_of(cluster: Cluster, executor_id: str | None, min_lines: int = 3) -> int | None:
    """A job row of ``executor_id``'s builds (None: anybody's) that is running and has
    logged a few lines."""
    rows = cluster.query(
        "SELECT j.id FROM jobs j JOIN builds b ON b.id = j.build_id "
        "WHERE b.owner = COALESCE(%s, b.owner) AND b.status = 'RUNNING' "
        "AND j.status = 'RUNNING' "
        "AND (SELECT COALESCE(SUM(line_count), 0) FROM log_chunks c WHERE c.job_id = j.id) >= %s "
        "LIMIT 1", [executor_id, min_lines])
    return rows[0][0] if rows else None


def assert_each_job_completed_once(cluster: Cluster, ids: Sequence[int], shared: Path,
                                   jobs: Sequence[str] = ("one", "two")) -> None:
    seen = Counter(shared.read_text().split("\n")[:-1]) if shared.exists() else Counter()
    expected = {f"{build} {key}" for build in ids for key in jobs}
    assert set(seen) == expected, (set(seen) ^ expected)
    twice = {entry: n for entry, n in seen.items() if n != 1}
    assert not twice, f"jobs that ran to completion more than once: {twice}"


def assert_final_logs_complete(cluster: Cluster, ids: Sequence[int],
                               lines: int = LINES) -> None:
    final: dict[tuple[int, str], dict[str, object]] = {}
    for job in cluster.jobs():
        if job["build_id"] in ids:
            final[(job["build_id"], job["key"])] = job  # ordered by attempt: the last wins
    expected = [(n, f"line {n}") for n in range(1, lines + 1)]
    for (build, key), job in final.items():
        assert job["status"] == "SUCCEEDED", job
        stored = cluster.log_lines(int(str(job["id"])))
        assert stored == expected, (build, key, job["attempt"], stored[:5], len(stored))


def test_kill_9_of_an_executor_mid_build(make_cluster: Callable[..., Cluster],
                                        tmp_path: Path) -> None:
    cluster = make_cluster(executors=2)
    shared = tmp_path / "completed.txt"
    cluster.create_pipeline("slow", numbered_workflow(shared))
    ids = cluster.submit("slow", 6)
    victim = cluster.executors[0]
    victim_id = victim.executor_id
    cluster.wait_for(f"{victim_id} to run a job", lambda: running_job_of(cluster, victim_id),
                     timeout=30)
    held = [b for b, owner in cluster.owners(ids).items() if owner == victim_id]
    assert cluster.kill_executor(victim.name) == -9

    statuses = cluster.wait_terminal(ids, timeout=60)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    survivor = cluster.executors[1].executor_id
    assert {cluster.owners(held)[b] for b in held} == {survivor}
    lost = [j for j in cluster.jobs() if j["build_id"] in held and j["status"] == "FAILED"]
    assert lost and all("its executor was lost" in str(j["reason"]) for j in lost), lost
    assert_each_job_completed_once(cluster, ids, shared)
    assert_final_logs_complete(cluster, ids)


def test_rabbitmq_restart_mid_run_loses_no_build(make_cluster: Callable[..., Cluster],
                                                tmp_path: Path) -> None:
    if shutil.which("rabbitmqctl") is None:
        message = "rabbitmqctl is not installed: cannot restart RabbitMQ"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(f"!!! SKIPPED: {message}")
    cluster = make_cluster(executors=2)
    shared = tmp_path / "completed.txt"
    cluster.create_pipeline("slow", numbered_workflow(shared, lines=20))
    before = cluster.submit("slow", 3)
    cluster.wait_for("builds to start", lambda: running_job_of(cluster, None), 30)
    with rabbit.broker_stopped():
        during = cluster.submit("slow", 3, timeout=60)
        unpublished = {b["id"] for b in cluster.builds() if not b["published"]}
        assert set(during) <= unpublished, "builds submitted with the broker down were " \
                                           "marked published"
    cluster.wait_for("every executor to consume again",
                     lambda: True if cluster.consumers() == len(cluster.executors) else None,
                     timeout=60)
    after = cluster.submit("slow", 3)
    ids = before + during + after
    statuses = cluster.wait_terminal(ids, timeout=60)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    assert all(b["published"] for b in cluster.builds()), cluster.builds()
    assert_each_job_completed_once(cluster, ids, shared)
    assert_final_logs_complete(cluster, ids, lines=20)


def test_postgresql_unavailable_for_a_while(make_cluster: Callable[..., Cluster],
                                           tmp_path: Path) -> None:
    cluster = make_cluster(executors=2)
    shared = tmp_path / "completed.txt"
    cluster.create_pipeline("slow", numbered_workflow(shared, lines=30))
    ids = cluster.submit("slow", 4)
    cluster.wait_for("builds to run", lambda: running_job_of(cluster, None), 30)
    with cluster.database_unavailable():
        # The outage lasts longer than a lease (2 s), and until the executors noticed: a
        # store call failed and is being retried.
        down_until = time.monotonic() + OUTAGE_S
        cluster.wait_for(
            "an executor to retry a store call",
            lambda: (time.monotonic() >= down_until
                     and cluster.logged(r"store\.\w+ failed \(attempt")) or None,
            timeout=30)
    statuses = cluster.wait_terminal(ids, timeout=60)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    assert all(p.alive for p in cluster.executors), cluster.tails()
    # The outage outlasts the leases, so builds may have been taken over and jobs whose
    # end could not be recorded run again (at least once). What must hold: every job
    # completed, each final attempt's log is whole, and no row is left unfinished.
    completed = set(shared.read_text().split("\n")[:-1])
    assert completed == {f"{b} {k}" for b in ids for k in ("one", "two")}
    assert_final_logs_complete(cluster, ids, lines=30)
    unfinished = [j for j in cluster.jobs() if j["status"] not in ("SUCCEEDED", "FAILED")]
    assert not unfinished, unfinished
    later = cluster.submit("slow", 1)
    assert set(cluster.wait_terminal(later).values()) == {"SUCCEEDED"}


def collect_dead_letters(cluster: Cluster, wanted: bytes, timeout: float = 30) -> list[bytes]:
    """Dead-lettered bodies, read until ``wanted`` is among them."""
    seen: list[bytes] = []

    def arrived() -> bool | None:
        seen.extend(cluster.dead_letters())
        return True if wanted in seen else None

    cluster.wait_for(f"{wanted!r} in the dead-letter queue", arrived, timeout)
    return seen


def test_poison_messages_are_dead_lettered_and_consumption_goes_on(
        make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(executors=2)
    cluster.create_pipeline("quick", QUICK)

    undecodable = b"not a protobuf \xff\xff"  # 'n' starts a field of wire type 6: invalid
    cluster.publish_raw(undecodable)
    assert collect_dead_letters(cluster, undecodable) == [undecodable]
    first = cluster.submit("quick", 1)
    assert cluster.wait_terminal(first) == {first[0]: "SUCCEEDED"}

    # Decodes, but every delivery fails before the build is claimed (there is no such
    # build): it goes back to the queue each time until the delivery limit dead-letters it.
    failing = executor_pb2.BuildJob(build_id=987_654_321, attempt=1).SerializeToString()
    cluster.publish_raw(failing)
    assert collect_dead_letters(cluster, failing) == [failing]
    assert cluster.logged("987654321")
    then = cluster.submit("quick", 3)
    assert set(cluster.wait_terminal(then).values()) == {"SUCCEEDED"}
    assert cluster.dead_letters() == []


def test_sigterm_hands_builds_over_and_exits_0(make_cluster: Callable[..., Cluster],
                                              tmp_path: Path) -> None:
    # CONVEYOR_DRAIN_S bounds the whole shutdown: half of it drains, half stops the
    # actors, which a loaded 2-core machine needs more than 0.5 s for. Jobs of 4 s
    # outlast the 1.5 s drain, so builds are handed over.
    cluster = make_cluster(executors=2, env={"CONVEYOR_DRAIN_S": "3"})
    shared = tmp_path / "completed.txt"
    cluster.create_pipeline("slow", numbered_workflow(shared, pause="0.1"))
    ids = cluster.submit("slow", 4)
    leaving, staying = cluster.executors
    leaving_id = leaving.executor_id
    cluster.wait_for(f"{leaving_id} to run a job", lambda: running_job_of(cluster, leaving_id),
                     timeout=30)
    held = [b for b, owner in cluster.owners(ids).items() if owner == leaving_id]
    assert cluster.terminate_executor(leaving.name) == 0

    statuses = cluster.wait_terminal(ids, timeout=60)
    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    assert set(cluster.owners(held).values()) == {staying.executor_id}
    assert_each_job_completed_once(cluster, ids, shared)
    assert_final_logs_complete(cluster, ids)

    cluster.start_executor(leaving.name)  # comes back on its address and takes work again
    later = cluster.submit("slow", 4)
    assert set(cluster.wait_terminal(later, timeout=60).values()) == {"SUCCEEDED"}
    assert_each_job_completed_once(cluster, ids + later, shared)
