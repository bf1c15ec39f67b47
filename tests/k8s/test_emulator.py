"""The emulator driven by the official client 37: jobs, pods, watches, logs, deletion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from support.k8s_emulator import Emulator, Settings
from tests.k8s.helpers import (
    NS,
    alive,
    condition,
    follow_log,
    job_events,
    job_manifest,
    pod_events,
    running,
    terminal,
)


def _phases(events: list[tuple[str, object]]) -> list[str]:
    phases: list[str] = []
    for _, pod in events:
        phase = pod.status.phase  # type: ignore[attr-defined]
        if not phases or phases[-1] != phase:
            phases.append(phase)
    return phases


def test_successful_job_goes_through_the_phases_and_keeps_every_log_line(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    script = 'for i in $(seq 1 300); do echo "line $i"; done; echo "err" >&2'
    # $ is doubled because Kubernetes expands $(...) in container commands.
    job = batch.create_namespaced_job(NS, job_manifest("ok", script.replace("$", "$$")))
    assert job.metadata.uid and job.metadata.resource_version
    events = pod_events(core, "job-name=ok", terminal, since=job.metadata.resource_version)
    assert events[0][0] == "ADDED"
    assert _phases(events) == ["Pending", "Running", "Succeeded"]
    pod = events[-1][1]
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed")
    assert term.started_at is not None and term.finished_at >= term.started_at
    ref = pod.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Job", "ok", job.metadata.uid, True)
    assert pod.metadata.labels["controller-uid"] == job.metadata.uid
    assert pod.metadata.labels["batch.kubernetes.io/job-name"] == "ok"
    assert pod.metadata.name.startswith("ok-") and len(pod.metadata.name) == len("ok-") + 5

    log = follow_log(core, pod.metadata.name)
    assert log.splitlines() == [f"line {i}" for i in range(1, 301)] + ["err"]

    done = batch.read_namespaced_job("ok", NS)
    assert condition(done, "Complete").reason == "CompletionsReached"
    assert (done.status.succeeded, done.status.active, done.status.failed) == (1, None, None)
    assert done.status.completion_time is not None


def test_log_follow_streams_while_the_container_runs(
    batch: client.BatchV1Api, core: client.CoreV1Api, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = 'echo first; while [ ! -e "$$GATE" ]; do sleep 0.02; done; echo second; echo third'
    batch.create_namespaced_job(NS, job_manifest("stream", script, env={"GATE": str(gate)}))
    pod = pod_events(core, "job-name=stream", running)[-1][1]
    name = pod.metadata.name
    resp = core.read_namespaced_pod_log(name, NS, follow=True, _preload_content=False)
    try:
        chunks = resp.stream(1)
        head = b""
        while not head.endswith(b"\n"):
            head += next(chunks)
        assert head == b"first\n"
        assert core.read_namespaced_pod(name, NS).status.phase == "Running"
        gate.touch()
        rest = b"".join(chunks)
    finally:
        resp.release_conn()
    assert rest == b"second\nthird\n"
    stamped = core.read_namespaced_pod_log(name, NS, timestamps=True, tail_lines=1)
    stamp, text = stamped.rstrip("\n").split(" ", 1)
    assert text == "third" and stamp.endswith("Z") and "T" in stamp
    assert core.read_namespaced_pod_log(name, NS, limit_bytes=8) == "first\nse"
    assert core.read_namespaced_pod_log(name, NS, since_seconds=3600) == "first\nsecond\nthird\n"


def test_failing_job_reports_exit_code_and_backoff_limit(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("bad", "echo about to fail; exit 3"))
    pod = pod_events(core, "job-name=bad", terminal)[-1][1]
    assert pod.status.phase == "Failed"
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (3, "Error")
    job = job_events(batch, "bad", lambda j: condition(j, "Failed") is not None)
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert condition(job, "Failed").message == "Job has reached the specified backoff limit"
    assert job.status.failed == 1 and job.status.active is None


def test_selectors_on_list_and_watch_from_a_resource_version(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    listed = core.list_namespaced_pod(NS, label_selector="team in (a,b)")
    assert listed.items == []
    batch.create_namespaced_job(NS, job_manifest("ja", "exit 0", labels={"team": "a"}))
    batch.create_namespaced_job(NS, job_manifest("jc", "exit 0", labels={"team": "c"}))
    events = pod_events(core, "team in (a,b),!missing", terminal,
                        since=listed.metadata.resource_version)
    assert {pod.metadata.labels["job-name"] for _, pod in events} == {"ja"}
    pod_events(core, "team!=a,team", terminal)  # jc's pod, selected by != and exists
    done = core.list_namespaced_pod(NS, field_selector="status.phase=Succeeded")
    assert sorted(p.metadata.labels["team"] for p in done.items) == ["a", "c"]
    named = batch.list_namespaced_job(NS, field_selector="metadata.name=jc")
    assert [j.metadata.name for j in named.items] == ["jc"]
    everywhere = core.list_pod_for_all_namespaces(label_selector="team=c")
    assert [p.metadata.namespace for p in everywhere.items] == [NS]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert err.value.status == 400 and "field label not supported" in err.value.body


def test_watch_reports_objects_leaving_the_selector_as_deleted(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    start = core.list_namespaced_pod(NS).metadata.resource_version
    batch.create_namespaced_job(NS, job_manifest("phase", "exit 0"))
    seen = []
    for ev in watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=start,
                                   field_selector="status.phase=Pending", timeout_seconds=10):
        seen.append(ev["type"])
        if ev["type"] == "DELETED":
            break
    assert seen[0] == "ADDED" and seen[-1] == "DELETED"


def test_background_delete_kills_the_pod_process(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("long", "echo started; exec sleep 60"))
    pod = pod_events(core, "job-name=long", running)[-1][1]
    [pid] = emulator.live_pids()
    assert alive(pid)
    status = batch.delete_namespaced_job("long", NS, propagation_policy="Background")
    assert status["status"] == "Success" and status["details"]["name"] == "long"
    events = pod_events(core, "job-name=long", lambda t, _: t == "DELETED",
                        since=pod.metadata.resource_version)
    final = events[-1][1]
    assert final.metadata.deletion_timestamp is not None
    assert final.status.container_statuses[0].state.terminated.exit_code == 143  # SIGTERM
    assert not alive(pid) and emulator.live_pids() == []
    with pytest.raises(ApiException) as err:
        batch.read_namespaced_job("long", NS)
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'jobs.batch "long" not found'


def test_delete_without_policy_orphans_the_pods_which_keep_running(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("orphan", "exec sleep 60"))
    pod = pod_events(core, "job-name=orphan", running)[-1][1]
    batch.delete_namespaced_job("orphan", NS)
    kept = core.read_namespaced_pod(pod.metadata.name, NS)
    assert kept.status.phase == "Running" and not kept.metadata.owner_references
    assert len(emulator.live_pids()) == 1
    deleted = core.delete_namespaced_pod(pod.metadata.name, NS, grace_period_seconds=0)
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.deletion_timestamp
    pod_events(core, "job-name=orphan", lambda t, _: t == "DELETED",
               since=deleted.metadata.resource_version)
    assert emulator.live_pids() == []


def test_foreground_delete_removes_the_job_after_its_pods(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("fg", "exec sleep 60"))
    pod_events(core, "job-name=fg", running)
    marked = batch.delete_namespaced_job("fg", NS, body=client.V1DeleteOptions(
        propagation_policy="Foreground"))
    assert marked["metadata"]["deletionTimestamp"]
    w = watch.Watch()
    for ev in w.stream(batch.list_namespaced_job, NS, timeout_seconds=10,
                       resource_version=marked["metadata"]["resourceVersion"]):
        if ev["type"] == "DELETED":
            w.stop()
    assert core.list_namespaced_pod(NS, label_selector="job-name=fg").items == []


def test_duplicate_job_is_409_already_exists(batch: client.BatchV1Api) -> None:
    batch.create_namespaced_job(NS, job_manifest("dup", "exit 0"))
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job(NS, job_manifest("dup", "exit 0"))
    body = json.loads(err.value.body)
    assert err.value.status == 409
    assert (body["kind"], body["reason"]) == ("Status", "AlreadyExists")
    assert body["details"] == {"name": "dup", "group": "batch", "kind": "jobs"}


def test_invalid_job_is_422_naming_the_field(batch: client.BatchV1Api) -> None:
    manifest = job_manifest("always", "exit 0")
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job(NS, manifest)
    assert err.value.status == 422
    assert "spec.template.spec.restartPolicy" in json.loads(err.value.body)["message"]


@pytest.mark.parametrize("settings", [Settings(history_limit=5)])
def test_watch_from_a_compacted_resource_version_raises_410(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    old = core.list_namespaced_pod(NS).metadata.resource_version
    for i in range(3):
        batch.create_namespaced_job(NS, job_manifest(f"fill{i}", "exit 0"))
    pod_events(core, "job-name=fill2", terminal)
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=old,
                                      timeout_seconds=5):
            pass
    assert err.value.status == 410
    # A relist gives a version the watch accepts again (quiet now: no events, no error).
    fresh = core.list_namespaced_pod(NS).metadata.resource_version
    events = list(watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=fresh,
                                       timeout_seconds=1))
    assert events == []


def test_bookmarks_carry_the_current_resource_version(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("bm", "exit 0"))
    current = int(pod_events(core, "job-name=bm", terminal)[-1][1].metadata.resource_version)
    w = watch.Watch()
    kinds = []
    for ev in w.stream(core.list_namespaced_pod, NS, label_selector="job-name=none",
                       allow_watch_bookmarks=True, timeout_seconds=10):
        kinds.append(ev["type"])
        if ev["type"] == "BOOKMARK":
            w.stop()
            assert int(ev["object"]["metadata"]["resourceVersion"]) >= current
    assert kinds == ["BOOKMARK"]


def test_deadline_exceeded_kills_the_pod(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job_manifest("slow", "exec sleep 60", deadline_s=1))
    pod = pod_events(core, "job-name=slow", running)[-1][1]
    [pid] = emulator.live_pids()
    job = job_events(batch, "slow", lambda j: condition(j, "Failed") is not None)
    assert condition(job, "Failed").reason == "DeadlineExceeded"
    assert condition(job, "FailureTarget").reason == "DeadlineExceeded"
    assert job.status.failed == 1
    pod_events(core, "job-name=slow", lambda t, _: t == "DELETED",
               since=pod.metadata.resource_version)
    assert not alive(pid)


def test_env_working_dir_home_and_expansion(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    manifest = job_manifest(
        "env", "echo \"$$GREETING|$(GREETING)\"; echo '$$$$'; pwd; echo \"$$HOME\"; echo $$DIR",
        env={"GREETING": "hi", "DIR": "/workspace/out"},
    )
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["workingDir"] = "/workspace"
    batch.create_namespaced_job(NS, manifest)
    pod = pod_events(core, "job-name=env", terminal)[-1][1]
    first, dollars, cwd, home, out = follow_log(core, pod.metadata.name).splitlines()
    assert (first, dollars) == ("hi|hi", "$$")
    assert out == cwd + "/out"  # env values under a mounted path are moved with it
    assert cwd.endswith("/root/workspace") and "/pods/ci/" in cwd
    assert home.endswith("/root/root") and home != cwd


def test_pending_pod_log_is_400_waiting_to_start(
    emulator: Emulator, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    emulator.set_unschedulable("job-name=wait")
    batch.create_namespaced_job(NS, job_manifest("wait", "exit 0"))
    pod = pod_events(core, "job-name=wait", lambda t, p: bool(p.status.conditions))[-1][1]
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert err.value.status == 400
    assert "is waiting to start: ContainerCreating" in json.loads(err.value.body)["message"]
    emulator.clear_unschedulable()
    pod_events(core, "job-name=wait", terminal)
