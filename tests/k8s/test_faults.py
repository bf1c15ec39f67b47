"""Fault injection and statistics, through the Python API and the HTTP admin endpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from support.k8s_emulator import Emulator, RemoteEmulator, spawn_emulator
from tests.k8s.helpers import (
    NS,
    alive,
    condition,
    job_events,
    job_manifest,
    pod_events,
    running,
    terminal,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("status", "reason"), [(500, "InternalError"), (410, "Expired"),
                                                 (503, "ServiceUnavailable")])
def test_next_requests_fail_with_the_injected_status(
    emulator: Emulator, batch: client.BatchV1Api, status: int, reason: str
) -> None:
    batch.create_namespaced_job(NS, job_manifest("target", "exit 0"))
    emulator.fail_requests(2, status, method="GET", path=r"/jobs/target$", retry_after_s=7)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            batch.read_namespaced_job("target", NS)
        assert err.value.status == status
        assert json.loads(err.value.body)["reason"] == reason
    batch.list_namespaced_job(NS)  # another path is untouched
    assert batch.read_namespaced_job("target", NS).metadata.name == "target"


def test_429_is_retried_by_urllib3_three_times_then_raised(
    emulator: Emulator, core: client.CoreV1Api
) -> None:
    # Measured: the client's urllib3 honours Retry-After on 429 and retries 3 times by
    # itself, so a backend only ever sees the 4th consecutive 429.
    emulator.fail_requests(3, 429, path="/pods$", retry_after_s=0)
    core.list_namespaced_pod(NS)
    assert emulator.stats()["by_verb"]["list pods"] == 4
    emulator.fail_requests(4, 429, path="/pods$", retry_after_s=0)
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS)
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "0"
    assert json.loads(err.value.body)["reason"] == "TooManyRequests"


def test_dropped_watch_is_resumed_by_the_client_from_its_last_version(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("one", "exit 0", labels={"app": "drop"}))
    pod_events(core, "job-name=one", terminal)
    emulator.reset_stats()
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    # No timeout_seconds: the client reconnects by itself when a stream ends.
    for ev in w.stream(core.list_namespaced_pod, NS, label_selector="app=drop"):
        job_name = ev["object"].metadata.labels["job-name"]
        seen.append((ev["type"], job_name))
        if len(seen) == 1:
            assert emulator.drop_watches() == 1
            batch.create_namespaced_job(NS, job_manifest("two", "exit 0", labels={"app": "drop"}))
        elif job_name == "two" and ev["object"].status.phase == "Succeeded":
            w.stop()
    # "one" is not listed again: the client resumed from its resourceVersion.
    assert seen[0] == ("ADDED", "one")
    assert [name for _, name in seen[1:]] == ["two"] * (len(seen) - 1)
    assert seen[1] == ("ADDED", "two")
    assert emulator.stats()["by_verb"]["watch pods"] == 2


def test_abruptly_dropped_watch_breaks_the_connection(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("cut", "exit 0"))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for _ in watch.Watch().stream(core.list_namespaced_pod, NS, timeout_seconds=10):
            emulator.drop_watches(abrupt=True)


def test_eviction_fails_the_pod_and_the_job(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("evicted", "exec sleep 60"))
    pod = pod_events(core, "job-name=evicted", running)[-1][1]
    [pid] = emulator.live_pids()
    assert emulator.evict_pod(NS, pod.metadata.name)
    final = pod_events(core, "job-name=evicted", terminal)[-1][1]
    assert final.status.phase == "Failed"
    assert (final.status.reason, final.status.message) == (
        "Evicted", "The node was low on resource: memory. ")
    assert condition(final, "DisruptionTarget").reason == "TerminationByKubelet"
    assert final.status.container_statuses[0].state.terminated.exit_code == 137
    assert not alive(pid)
    job = job_events(batch, "evicted", lambda j: condition(j, "Failed") is not None)
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert not emulator.evict_pod(NS, "no-such-pod")


def test_oom_kill_reports_137_oomkilled(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("oom", "exec sleep 60"))
    pod = pod_events(core, "job-name=oom", running)[-1][1]
    assert emulator.oom_kill(NS, pod.metadata.name)
    final = pod_events(core, "job-name=oom", terminal)[-1][1]
    term = final.status.container_statuses[0].state.terminated
    assert (final.status.phase, term.exit_code, term.reason) == ("Failed", 137, "OOMKilled")


def test_unpullable_image_keeps_the_pod_pending_until_pullable(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    emulator.set_image_unpullable("ghcr.io/nope/missing:1")
    batch.create_namespaced_job(NS, job_manifest("pull", "echo pulled",
                                                 image="ghcr.io/nope/missing:1"))

    def backoff(_t: str, pod: client.V1Pod) -> bool:
        statuses = pod.status.container_statuses or []
        return bool(statuses) and statuses[0].state.waiting is not None and (
            statuses[0].state.waiting.reason == "ImagePullBackOff")

    events = pod_events(core, "job-name=pull", backoff)
    reasons = [s.state.waiting.reason for _, p in events
               for s in p.status.container_statuses or [] if s.state.waiting]
    assert reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff")
    pod = events[-1][1]
    assert pod.status.phase == "Pending"
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.message == 'Back-off pulling image "ghcr.io/nope/missing:1"'
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert "trying and failing to pull image" in json.loads(err.value.body)["message"]
    emulator.set_image_unpullable("ghcr.io/nope/missing:1", False)
    assert pod_events(core, "job-name=pull", terminal)[-1][1].status.phase == "Succeeded"


def test_unschedulable_pod_has_the_scheduler_condition(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    emulator.set_unschedulable("job-name=big")
    batch.create_namespaced_job(NS, job_manifest("big", "exit 0"))
    pod = pod_events(core, "job-name=big", lambda _t, p: bool(p.status.conditions))[-1][1]
    cond = pod.status.conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("PodScheduled", "False", "Unschedulable")
    assert cond.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    emulator.clear_unschedulable()
    assert pod_events(core, "job-name=big", terminal)[-1][1].spec.node_name == "emulator-node"


def test_stats_count_requests_by_verb_and_route(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    emulator.reset_stats()
    batch.create_namespaced_job(NS, job_manifest("counted", "echo hi"))
    events = pod_events(core, "job-name=counted", terminal)
    core.list_namespaced_pod(NS)
    core.list_namespaced_pod(NS)
    stats = emulator.stats()
    assert stats["by_verb"] == {"create jobs": 1, "watch pods": 1, "list pods": 2}
    assert stats["by_route"]["GET /api/v1/namespaces/{namespace}/pods"] == 3
    assert stats["total"] == 4 and stats["watch_events_sent"] == len(events)


def test_http_admin_endpoints_drive_the_same_faults(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    remote = RemoteEmulator(emulator.url)
    remote.fail_requests(1, 500, path="/pods$")
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS)
    assert err.value.status == 500
    remote.set_unschedulable("job-name=remote")
    batch.create_namespaced_job(NS, job_manifest("remote", "exec sleep 60"))
    pod_events(core, "job-name=remote", lambda _t, p: bool(p.status.conditions))
    remote.clear_unschedulable()
    pod = pod_events(core, "job-name=remote", running)[-1][1]
    assert remote.live_pids() == emulator.live_pids() != []
    assert remote.oom_kill(NS, pod.metadata.name)
    pod_events(core, "job-name=remote", terminal)
    with pytest.raises(RuntimeError, match="404"):
        remote.evict_pod(NS, "missing")
    assert remote.stats()["by_verb"]["create jobs"] == 1
    remote.clear_faults()


@pytest.mark.slow
def test_emulator_as_a_process(tmp_path: Path) -> None:
    remote = spawn_emulator(tmp_path / "work", "--grace-cap", "0.5", python=sys.executable,
                            cwd=REPO)
    try:
        with ApiClient(Configuration(host=remote.url)) as api:
            batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
            batch.create_namespaced_job(NS, job_manifest("proc", "echo up; exec sleep 60"))
            pod_events(core, "job-name=proc", running)
            [pid] = remote.live_pids()
    finally:
        remote.stop()
    assert remote.process is not None and remote.process.returncode == 0
    assert not alive(pid)
