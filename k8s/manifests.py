"""Kubernetes Job manifests for Conveyor job attempts, as plain dicts.

Pure: no client import. Names are deterministic in (build, job key, attempt) so creating
a Job that already exists means adopting it, never running it twice."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "conveyor"
BUILD_ID_LABEL = "conveyor.dev/build-id"
JOB_HASH_LABEL = "conveyor.dev/job-hash"
ATTEMPT_LABEL = "conveyor.dev/attempt"
JOB_KEY_ANNOTATION = "conveyor.dev/job-key"
# Every pod and Job Conveyor creates carries this: the one watch selects on it.
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
CONTAINER_NAME = "job"
WORKSPACE = "/workspace"

_MAX_NAME = 63
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def job_hash(job_key: str) -> str:
    """16 hex digits of the key's sha256: a label value that identifies the job key."""
    return hashlib.sha256(job_key.encode()).hexdigest()[:16]


def _check(build_id: int, job_key: str, attempt: int) -> None:
    if isinstance(build_id, bool) or not isinstance(build_id, int) or build_id < 0:
        raise ValueError(f"build_id must be a non-negative integer, got {build_id!r}")
    if not isinstance(job_key, str) or not job_key:
        raise ValueError(f"job_key must be a non-empty string, got {job_key!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")


def job_name(build_id: int, job_key: str, attempt: int) -> str:
    """``cv-<build>-<slug>-<hash8>-a<attempt>``: deterministic, a valid DNS-1123 label.

    The slug (the key lowercased, other characters as ``-``) is only for people and is
    shortened to fit 63 characters; the hash keeps names of similar keys apart."""
    _check(build_id, job_key, attempt)
    digest = job_hash(job_key)[:8]
    head, tail = f"cv-{build_id}-", f"-{digest}-a{attempt}"
    room = _MAX_NAME - len(head) - len(tail) - 1
    if room < 0:
        raise ValueError(f"build_id {build_id} and attempt {attempt} leave no room for a job name")
    slug = re.sub(r"[^a-z0-9]+", "-", job_key.lower()).strip("-")[:room].strip("-")
    return f"{head}{slug}{tail}" if slug else f"cv-{build_id}{tail}"


def job_labels(build_id: int, job_key: str, attempt: int) -> dict[str, str]:
    """Labels on the Job and its pod: who manages it, which build, job and attempt."""
    _check(build_id, job_key, attempt)
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        BUILD_ID_LABEL: str(build_id),
        JOB_HASH_LABEL: job_hash(job_key),
        ATTEMPT_LABEL: str(attempt),
    }


def build_selector(build_id: int) -> str:
    """Label selector for every Conveyor pod or Job of one build."""
    return f"{MANAGED_SELECTOR},{BUILD_ID_LABEL}={build_id}"


def escape_for_kubernetes(text: str) -> str:
    """Protect text from Kubernetes' ``$(VAR)`` expansion of command, args and env:
    the kubelet turns ``$$`` into ``$``, so doubling every ``$`` leaves the text intact."""
    return text.replace("$", "$$")


def _quantity(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _QUANTITY.match(value.strip()):
        raise ValueError(f"{name} must be a Kubernetes quantity such as '500m' or '2Gi', "
                         f"got {value!r}")
    return value.strip()


def _labels(name: str, values: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"{name}: keys and values must be strings, got {key!r}: {value!r}")
        if name == "node_selector" and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            raise ValueError(f"node_selector[{key!r}]: {value!r} is not a valid label value")
        out[key] = value
    return out


def build_job_manifest(
    *,
    namespace: str,
    build_id: int,
    job_key: str,
    attempt: int,
    image: str,
    script: str,
    env: Mapping[str, str],
    timeout_s: float,
    cpu: str | None,
    memory: str | None,
    ttl_s: int = 3600,
    node_selector: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    container_env: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The batch/v1 Job for one attempt of one Conveyor job.

    One pod, never restarted (``backoffLimit: 0``, ``restartPolicy: Never``: Conveyor
    retries with a new attempt, so each keeps its own logs), killed after ``timeout_s``
    (``activeDeadlineSeconds``), least-privileged, the script run by ``sh -c`` in an
    emptyDir ``/workspace``. Requests equal limits: a build gets exactly what it asked for
    and a memory overrun is a clear ``OOMKilled``. ``runAsNonRoot`` is not forced: most CI
    images (node, python, ubuntu) run as root and would never start."""
    _check(build_id, job_key, attempt)
    if not namespace:
        raise ValueError("namespace must be a non-empty string")
    if not image or not isinstance(image, str):
        raise ValueError(f"image must be a non-empty string, got {image!r}")
    if not isinstance(timeout_s, int | float) or not timeout_s > 0 or math.isinf(timeout_s):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 0:
        raise ValueError(f"ttl_s must be a non-negative integer, got {ttl_s!r}")
    for where, values in (("container_env", container_env or {}), ("env", env)):
        for key in values:
            if not isinstance(key, str) or not key or "=" in key:
                raise ValueError(f"{where}: invalid variable name {key!r}")
            if not isinstance(values[key], str):
                raise ValueError(f"{where}[{key!r}]: value must be a string, "
                                 f"got {values[key]!r}")
    # The container's own env first, the workflow's over it: on GitHub `container.env`
    # is the container's and the job env is passed to every step (`docker exec -e`).
    merged = {**(container_env or {}), **env}
    resources: dict[str, str] = {}
    for res, value in (("cpu", _quantity("cpu", cpu)), ("memory", _quantity("memory", memory))):
        if value is not None:
            resources[res] = value
    name = job_name(build_id, job_key, attempt)
    labels = job_labels(build_id, job_key, attempt)
    notes = {**_labels("annotations", annotations or {}), JOB_KEY_ANNOTATION: job_key}
    container: dict[str, object] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": ["sh", "-c", escape_for_kubernetes(script)],
        "workingDir": WORKSPACE,
        # The script is the container's PID 1: when it exits every process of the job is
        # killed with the container, so it need not search /proc for leftovers.
        "env": [{"name": k, "value": escape_for_kubernetes(v)} for k, v in merged.items()]
        + [{"name": "CONVEYOR_NO_REAP", "value": "1"}],
        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if resources:
        container["resources"] = {"requests": dict(resources), "limits": dict(resources)}
    pod_spec: dict[str, object] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        # Spelled out though they are the defaults: a job shares nothing with the node.
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        # Service discovery variables would leak cluster details into every build's env.
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "workspace", "emptyDir": {}}],
    }
    if node_selector:
        pod_spec["nodeSelector"] = _labels("node_selector", node_selector)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(notes),
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, math.ceil(timeout_s)),
            "ttlSecondsAfterFinished": ttl_s,
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(notes)},
                "spec": pod_spec,
            },
        },
    }
