"""Pod and Job statuses → job outcomes (k8s.classify), on plain dicts as the API sends."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.classify import (
    Outcome,
    classify_deleted,
    classify_finished_job,
    classify_pod,
    container_started,
    describe_exit,
    format_duration,
    job_name_of,
    pending_problem,
    slim_pod,
)


def pod(phase: str = "Running", *, state: dict[str, Any] | None = None,
        reason: str | None = None, message: str | None = None,
        conditions: list[dict[str, Any]] | None = None, deleting: bool = False,
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "cv-1-a-12345678-a1-xyz", "uid": "u1",
                            "labels": labels or {"batch.kubernetes.io/job-name": "cv-1-a"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if state is not None:
        status["containerStatuses"] = [{"name": "job", "image": "busybox", "state": state}]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return {"metadata": meta, "status": status}


def terminated(code: int, reason: str = "Error", message: str | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": code, "reason": reason}
    if message:
        term["message"] = message
    return {"terminated": term}


def test_running_and_pending_pods_have_no_outcome_yet() -> None:
    assert classify_pod(pod("Running", state={"running": {}})) is None
    assert classify_pod(pod("Pending")) is None


def test_success_and_exit_codes() -> None:
    assert classify_pod(pod("Succeeded", state=terminated(0, "Completed"))) == Outcome(0, "")
    assert classify_pod(pod("Failed", state=terminated(3))) == Outcome(3, "exit code 3")
    killed = classify_pod(pod("Failed", state=terminated(143)))
    assert killed == Outcome(143, "exit code 143 (killed by SIGTERM)")


def test_oom_killed_keeps_exit_137() -> None:
    out = classify_pod(pod("Failed", state=terminated(137, "OOMKilled")))
    assert out is not None and out.exit_code == 137 and out.reason.startswith("OOMKilled")
    assert not out.infrastructure


def test_eviction_is_an_infrastructure_failure_with_the_kubelet_message() -> None:
    out = classify_pod(pod("Failed", state=terminated(137), reason="Evicted",
                           message="The node was low on resource: memory. "))
    assert out == Outcome(None, "evicted: The node was low on resource: memory.",
                          infrastructure=True)


def test_other_disruptions_are_infrastructure_failures() -> None:
    cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": "preempted by a higher priority pod"}
    out = classify_pod(pod("Failed", state=terminated(137), conditions=[cond]))
    assert out is not None and out.infrastructure
    assert out.reason == "pod disrupted (PreemptionByScheduler): preempted by a higher priority pod"


def test_a_killed_pod_that_was_being_deleted_needs_the_job_to_explain() -> None:
    out = classify_pod(pod("Failed", state=terminated(143), deleting=True))
    assert out is not None and out.check_job and out.exit_code == 143
    vanished = classify_pod(pod("Running", state={"running": {}}), deleted=True)
    assert vanished is not None and vanished.check_job and vanished.exit_code is None


def test_deleted_pod_resolved_by_the_job_status() -> None:
    killed = Outcome(143, "exit code 143", check_job=True)
    deadline = {"status": {"conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"},
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}}
    assert classify_deleted(deadline, killed, 600) == Outcome(143, "timed out after 10m")
    assert classify_deleted(deadline, killed, 36) == Outcome(143, "timed out after 36s")
    lost = classify_deleted({"status": {}}, killed, 600)
    assert lost.infrastructure and "lost" in lost.reason and lost.exit_code is None
    gone = classify_deleted(None, killed, 600)
    assert not gone.infrastructure and "deleted outside Conveyor" in gone.reason


def test_container_that_could_not_start_carries_the_runtime_message() -> None:
    out = classify_pod(pod("Failed", state=terminated(128, "StartError", "exec: no such file")))
    assert out == Outcome(128, "the container could not start: exec: no such file")


@pytest.mark.parametrize("waiting", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull_problems_carry_the_cluster_message(waiting: str) -> None:
    msg = 'Back-off pulling image "ghcr.io/nope:1"'
    problem = pending_problem(pod("Pending", state={"waiting": {"reason": waiting,
                                                                 "message": msg}}))
    assert problem is not None and problem.kind == "image"
    assert problem.reason == f"image pull failed: {msg}"


def test_unschedulable_carries_the_scheduler_message() -> None:
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}
    problem = pending_problem(pod("Pending", conditions=[cond]))
    assert problem is not None and problem.kind == "unschedulable"
    assert problem.reason.endswith("0/3 nodes are available: 3 Insufficient memory.")


def test_creating_containers_is_not_a_problem() -> None:
    assert pending_problem(pod("Pending", state={"waiting": {"reason": "ContainerCreating"}})) \
        is None
    assert pending_problem(pod("Running", state={"running": {}})) is None


def test_finished_job_without_its_pod() -> None:
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert classify_finished_job(done, 60) == Outcome(0, "")
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True",
                                         "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the backoff limit"}]}}
    out = classify_finished_job(failed, 60)
    assert out is not None and "BackoffLimitExceeded" in out.reason and out.exit_code is None
    assert classify_finished_job({"status": {}}, 60) is None


def test_job_name_from_labels_or_owner() -> None:
    assert job_name_of(pod()) == "cv-1-a"
    owned = {"metadata": {"ownerReferences": [{"kind": "Job", "controller": True,
                                               "name": "cv-2-b"}]}}
    assert job_name_of(owned) == "cv-2-b"
    assert job_name_of({"metadata": {}}) is None


def test_container_started() -> None:
    assert not container_started(pod("Pending", state={"waiting": {"reason": "X"}}))
    assert container_started(pod("Running", state={"running": {}}))
    assert container_started(pod("Failed", state=terminated(1)))


def test_helpers() -> None:
    assert describe_exit(2) == "exit code 2"
    assert describe_exit(137) == "exit code 137 (killed by SIGKILL)"
    assert format_duration(90) == "1.5m" and format_duration(0.6) == "0.6s"


def test_a_slim_pod_keeps_what_classification_reads() -> None:
    full = {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "uid": "u1", "labels": {"a": "b"},
                     "managedFields": [{"manager": "kubelet"}]},
        "spec": {"containers": [{"name": "job", "command": ["sh", "-c", "x" * 10_000]}]},
        "status": {"phase": "Failed", "containerStatuses": [
            {"name": "job", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]},
    }
    slim = slim_pod(full)
    assert slim == {"metadata": {"name": "p", "uid": "u1", "labels": {"a": "b"}},
                    "status": full["status"]}
    assert classify_pod(slim, deleted=False) == classify_pod(full, deleted=False)
