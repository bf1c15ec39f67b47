"""The Job manifest builder: names, labels, the §7 conventions, offline schema validation,
and the manifest actually running (escaping included) in the emulator."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from k8s.manifests import (
    CONTAINER_NAME,
    build_job_manifest,
    build_selector,
    job_labels,
    job_name,
)
from tests.k8s.helpers import NS, condition, follow_log, job_events, pod_events, terminal

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def manifest(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "namespace": NS, "build_id": 42, "job_key": "test (ubuntu, 3.12)", "attempt": 1,
        "image": "python:3.12", "script": "echo hi", "env": {"CI": "true"},
        "timeout_s": 600, "cpu": "500m", "memory": "1Gi",
    }
    args.update(overrides)
    return build_job_manifest(**args)


@pytest.mark.parametrize("key", [
    "build", "Test (Ubuntu, 3.12)", "x" * 300, "ünïcödé/jöb", "---", "a.b_c", "j" * 40 + "-",
])
@pytest.mark.parametrize(("build_id", "attempt"), [(0, 1), (7, 3), (10**12, 99)])
def test_job_names_are_deterministic_dns_labels(key: str, build_id: int, attempt: int) -> None:
    name = job_name(build_id, key, attempt)
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert name == job_name(build_id, key, attempt)
    assert name.startswith(f"cv-{build_id}-") and name.endswith(f"-a{attempt}")
    assert hashlib.sha256(key.encode()).hexdigest()[:8] in name


def test_similar_keys_get_different_names() -> None:
    assert job_name(1, "test (a)", 1) != job_name(1, "test [a]", 1)
    assert job_name(1, "x" * 100 + "1", 1) != job_name(1, "x" * 100 + "2", 1)
    assert job_name(1, "k", 1) != job_name(1, "k", 2) != job_name(2, "k", 2)


@pytest.mark.parametrize(("args", "needle"), [
    ((-1, "k", 1), "build_id"), ((1, "", 1), "job_key"), ((1, "k", 0), "attempt"),
    ((True, "k", 1), "build_id"),
])
def test_bad_name_arguments_are_named(args: tuple[Any, str, int], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        job_name(*args)


def test_labels() -> None:
    assert job_labels(42, "lint", 2) == {
        "app.kubernetes.io/managed-by": "conveyor",
        "conveyor.dev/build-id": "42",
        "conveyor.dev/job-hash": hashlib.sha256(b"lint").hexdigest()[:16],
        "conveyor.dev/attempt": "2",
    }
    assert build_selector(42) == "app.kubernetes.io/managed-by=conveyor,conveyor.dev/build-id=42"


def test_manifest_follows_the_conventions_and_validates_offline() -> None:
    job = manifest(node_selector={"pool": "ci"}, annotations={"team": "core"}, timeout_s=90.5)
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) \
        == (0, 91, 3600)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"pool": "ci"}
    [container] = pod["containers"]
    assert container["name"] == CONTAINER_NAME
    assert container["command"] == ["sh", "-c", "echo hi"]
    assert container["workingDir"] == "/workspace"
    assert container["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace"}]
    assert pod["volumes"] == [{"name": "workspace", "emptyDir": {}}]
    sec = container["securityContext"]
    assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"] == {"drop": ["ALL"]}
    assert sec["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                      "limits": {"cpu": "500m", "memory": "1Gi"}}
    meta = job["metadata"]
    assert meta["name"] == job_name(42, "test (ubuntu, 3.12)", 1) and meta["namespace"] == NS
    assert meta["labels"] == spec["template"]["metadata"]["labels"] == job_labels(
        42, "test (ubuntu, 3.12)", 1)
    assert meta["annotations"] == {"team": "core", "conveyor.dev/job-key": "test (ubuntu, 3.12)"}


def test_manifest_without_resources_has_none() -> None:
    job = manifest(cpu=None, memory=None, env={})
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    assert "resources" not in job["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"cpu": "lots"}, "cpu"), ({"memory": "1 GB"}, "memory"), ({"timeout_s": 0}, "timeout_s"),
    ({"timeout_s": float("inf")}, "timeout_s"), ({"image": ""}, "image"),
    ({"env": {"A=B": "x"}}, "env"), ({"ttl_s": -1}, "ttl_s"),
    ({"node_selector": {"pool": "not valid!"}}, "node_selector"),
])
def test_bad_manifest_arguments_are_named(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        manifest(**overrides)


def test_manifest_runs_in_the_emulator_with_dollars_intact(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    script = (
        'echo "$GREETING from $(basename "$PWD")"; '
        "echo '$(NOT_EXPANDED) $$'; "
        'echo "$HOME" | grep -q /root && echo home-ok; exit 0'
    )
    job = manifest(script=script, env={"GREETING": "cost $5", "NOT_EXPANDED": "bad"},
                   image="busybox:1.36")
    created = batch.create_namespaced_job(NS, job)
    pod = pod_events(core, build_selector(42), terminal)[-1][1]
    assert pod.metadata.labels["conveyor.dev/attempt"] == "1"
    assert pod.metadata.annotations["conveyor.dev/job-key"] == "test (ubuntu, 3.12)"
    lines = follow_log(core, pod.metadata.name).splitlines()
    assert lines[0] == "cost $5 from workspace"
    # Unescaped, Kubernetes would have made this "bad $".
    assert lines[1] == "$(NOT_EXPANDED) $$"
    assert lines[2] == "home-ok"
    done = job_events(batch, created.metadata.name, lambda j: condition(j, "Complete"))
    assert done.spec.active_deadline_seconds == 600
