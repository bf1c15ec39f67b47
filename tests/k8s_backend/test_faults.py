"""Faults injected into the emulator while the engine runs builds on the Kubernetes backend:
each ends with the right outcome, no log line lost or duplicated, no Job duplicated."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.backends.kubernetes.actor import K8sActor
from actors.backends.kubernetes.tracker import attempt_job_name
from conveyor.v1 import pipeline_pb2
from support.harness import Engine
from support.k8s_emulator import Emulator, Settings
from tests.k8s_backend.conftest import (
    NS,
    backend,
    jobs_per_key,
    k8s_jobs,
    k8s_pods,
    kube_engine,
)

EVICTED = "evicted: The node was low on resource: memory."


def gated(gate: Path, before: str = "started", after: str = "done") -> str:
    """A step that prints ``before``, waits for the test to create ``gate``, prints ``after``."""
    return (f"echo {before}; while [ ! -e {gate} ]; do sleep 0.02; done; echo {after}")


def on_lines(eng: Engine, build_id: int, act: Callable[[str, int], bool]) -> None:
    """Follow the build's log; ``act(text, n)`` on each line until it returns True."""
    call = eng.client.pipelines.StreamBuildLogs(
        pipeline_pb2.StreamBuildLogsRequest(build_id=build_id, follow=True), timeout=60)
    n = 0
    try:
        for message in call:
            for line in message.lines:
                n += 1
                if act(line.text, n):
                    return
    finally:
        call.cancel()
    raise AssertionError("the log ended before the expected line")


def pod_of(emulator: Emulator, job: str) -> str:
    [pod] = [p for p in k8s_pods(emulator) if p["metadata"]["labels"].get("job-name") == job]
    name: str = pod["metadata"]["name"]
    return name


def gated_build(eng: Engine, gate: Path) -> int:
    build = eng.start(f"""
        jobs:
          wait:
            steps: [{{run: "{gated(gate)}"}}]
          after:
            needs: wait
            steps: [{{run: "echo after"}}]
        """)
    on_lines(eng, build.id, lambda text, _n: text == "started")
    return build.id


def finish_gated(eng: Engine, emulator: Emulator, build_id: int, gate: Path) -> None:
    gate.touch()
    result = eng.watch(build_id, timeout=30)
    assert result.status == "SUCCEEDED", result.build
    assert eng.log_text(build_id, "wait") == ["started", "done"]
    assert eng.log_text(build_id, "after") == ["after"]
    assert jobs_per_key(emulator) == {"wait": 1, "after": 1}


@pytest.mark.parametrize("abrupt", [False, True])
def test_dropped_watch_stream_is_resumed(k8s_eng: Engine, emulator: Emulator, tmp_path: Path,
                                         abrupt: bool) -> None:
    gate = tmp_path / "gate"
    build_id = gated_build(k8s_eng, gate)
    before = backend().counters
    assert emulator.drop_watches(abrupt=abrupt) == 1
    finish_gated(k8s_eng, emulator, build_id, gate)
    after = backend().counters
    assert after["watch_streams"] > before["watch_streams"]
    assert after["relists"] == before["relists"] == 1  # resumed from its version


def test_410_on_the_watch_lists_again(k8s_eng: Engine, emulator: Emulator,
                                      tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    build_id = gated_build(k8s_eng, gate)
    emulator.fail_requests(1, 410, method="GET", path=f"/namespaces/{NS}/pods$")
    assert emulator.drop_watches() == 1
    finish_gated(k8s_eng, emulator, build_id, gate)
    assert backend().counters["relists"] == 2


def test_expired_version_in_the_watch_stream_lists_again(tmp_path: Path) -> None:
    # Bookmarks off (in effect) and a short history: the watch's version falls out of the
    # history while other objects change, and its reconnect gets the in-stream ERROR 410.
    settings = Settings(history_limit=20, bookmark_interval_s=600, grace_cap_s=1.0)
    with Emulator(tmp_path / "emu", settings=settings) as emulator, \
            kube_engine(tmp_path, emulator) as eng:
        gate = tmp_path / "gate"
        build_id = gated_build(eng, gate)
        [ref] = pykka.ActorRegistry.get_by_class(K8sActor)
        watch = ref.proxy().watch.get(timeout=5)
        n = 0
        while emulator.stats()["store"]["compacted_resource_version"] <= \
                int(watch.resource_version):
            n += 1
            body = json.dumps({"metadata": {"name": f"other-{n}"}, "spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "x",
                                                          "command": ["true"]}]}}).encode()
            urllib.request.urlopen(urllib.request.Request(
                f"{emulator.url}/api/v1/namespaces/other/pods", data=body, method="POST"),
                timeout=10).close()
        assert emulator.drop_watches() == 1
        finish_gated(eng, emulator, build_id, gate)
        assert backend().counters["relists"] == 2


def test_api_error_bursts_are_retried(k8s_eng: Engine, emulator: Emulator) -> None:
    emulator.fail_requests(3, 500, method="POST", path="/jobs$")
    emulator.fail_requests(2, 429, method="POST", path="/jobs$", retry_after_s=0)
    emulator.fail_requests(2, 503, method="GET", path="/log$")
    result = k8s_eng.run("""
        jobs:
          one: {steps: [{run: "seq 1 5"}]}
          two: {needs: one, steps: [{run: "seq 6 9"}]}
        """, timeout=30)
    assert result.status == "SUCCEEDED", result.build
    assert k8s_eng.log_text(result.build.id, "one") == ["1", "2", "3", "4", "5"]
    assert k8s_eng.log_text(result.build.id, "two") == ["6", "7", "8", "9"]
    assert jobs_per_key(emulator) == {"one": 1, "two": 1}
    by_verb = emulator.stats()["by_verb"]
    assert by_verb["create jobs"] == 2 + 5 and by_verb["get pods/log"] == 2 + 2
    counters = backend().counters
    assert counters["api_errors"] >= 5 and counters["log_reconnects"] == 2


def test_eviction_is_retried_as_a_new_job(k8s_eng: Engine, emulator: Emulator,
                                          tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    build = k8s_eng.start(f"""
        jobs:
          j:
            steps:
              - run: |
                  echo attempt
                  if [ -e {gate} ]; then echo ok; exit 0; fi
                  echo waiting; sleep 60
        """)
    on_lines(k8s_eng, build.id, lambda text, _n: text == "waiting")
    gate.touch()
    assert emulator.evict_pod(NS, pod_of(emulator, attempt_job_name(build.id, "j", 1, 0)))
    result = k8s_eng.watch(build.id, timeout=30)
    assert result.status == "SUCCEEDED", result.build
    assert k8s_eng.log_text(build.id, "j") == [
        "attempt", "waiting", f"[conveyor] {EVICTED}; running the job again (1 of 2)",
        "attempt", "ok"]
    assert jobs_per_key(emulator) == {"j": 2}
    assert backend().counters["infrastructure_retries"] == 1


def test_eviction_of_every_retry_fails_with_the_eviction_reason(
        k8s_eng: Engine, emulator: Emulator) -> None:
    build = k8s_eng.start("""
        jobs:
          j: {steps: [{run: "echo waiting; sleep 60"}]}
        """)
    evicted: list[int] = []

    def evict(text: str, _n: int) -> bool:
        if text == "waiting":
            name = attempt_job_name(build.id, "j", 1, len(evicted))
            assert emulator.evict_pod(NS, pod_of(emulator, name))
            evicted.append(1)
        return len(evicted) == 3

    on_lines(k8s_eng, build.id, evict)
    result = k8s_eng.watch(build.id, timeout=30)
    assert result.status == "FAILED"
    assert result.job("j").reason == EVICTED
    assert jobs_per_key(emulator) == {"j": 3}
    assert k8s_eng.log_text(build.id, "j").count("waiting") == 3


def test_unpullable_image_fails_after_the_bounded_wait(k8s_eng: Engine,
                                                       emulator: Emulator) -> None:
    emulator.set_image_unpullable("ghcr.io/nope/missing:1")
    result = k8s_eng.run("""
        jobs:
          j:
            container: ghcr.io/nope/missing:1
            steps: [{run: "echo never"}]
        """, timeout=30)
    assert result.status == "FAILED"
    reason = result.job("j").reason
    assert reason.startswith("image pull failed: ") and "ghcr.io/nope/missing:1" in reason
    assert k8s_jobs(emulator) == [] and k8s_pods(emulator) == []  # deleted, not left pending
    assert backend().counters["pending_timeouts"] == 1


def test_unschedulable_pod_fails_with_the_schedulers_message(k8s_eng: Engine,
                                                             emulator: Emulator) -> None:
    emulator.set_unschedulable("app.kubernetes.io/managed-by=conveyor")
    result = k8s_eng.run("jobs:\n  big: {steps: [{run: 'echo never'}]}\n", timeout=30)
    assert result.status == "FAILED"
    assert result.job("big").reason == (
        "the pod could not be scheduled: 0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")


def test_oom_killed_is_a_failure_with_exit_137(k8s_eng: Engine, emulator: Emulator) -> None:
    build = k8s_eng.start("jobs:\n  j: {steps: [{run: 'echo started; sleep 60'}]}\n")
    on_lines(k8s_eng, build.id, lambda text, _n: text == "started")
    assert emulator.oom_kill(NS, pod_of(emulator, attempt_job_name(build.id, "j", 1, 0)))
    result = k8s_eng.watch(build.id, timeout=30)
    assert result.job_status("j") == "FAILED"
    assert result.job("j").exit_code == 137
    assert result.job("j").reason.startswith("OOMKilled")
    assert jobs_per_key(emulator) == {"j": 1}  # the user's memory, not retried


def test_a_cut_log_stream_is_resumed_without_loss_or_duplicates(
        k8s_eng: Engine, emulator: Emulator, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    build = k8s_eng.start(f"""
        jobs:
          j:
            steps:
              - run: |
                  for i in $(seq 1 20); do echo "n $i"; done
                  while [ ! -e {gate} ]; do sleep 0.02; done
              - run: for i in $(seq 21 40); do echo "n $i"; done
        """)
    on_lines(k8s_eng, build.id, lambda text, _n: text == "n 20")
    [ref] = pykka.ActorRegistry.get_by_class(K8sActor)
    # White box: cut the follower's HTTP stream under it, as a network failure would.
    trackers: dict[str, Any] = ref.proxy().trackers.get(timeout=5)
    [tracker] = trackers.values()
    with tracker.follower._lock:
        tracker.follower._stream.close()
    gate.touch()
    result = k8s_eng.watch(build.id, timeout=30)
    assert result.status == "SUCCEEDED"
    assert k8s_eng.log_text(build.id, "j") == [f"n {i}" for i in range(1, 41)]
    assert [s.reason for s in result.job("j").steps] == ["succeeded", "succeeded"]
    assert emulator.stats()["by_verb"]["get pods/log"] == 2
