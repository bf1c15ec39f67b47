"""What a Conveyor pod's (or Job's) status means for the job attempt: pure, on plain dicts.

The backend keeps pods as the JSON the API server sends, so these functions read the
raw dicts (camelCase keys) and work the same for every client generation. Every failure
carries the cluster's own words in its reason (``image pull failed: …``).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

# Waiting reasons that mean the container will not start without a change from outside.
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                "ErrImageNeverPull", "RegistryUnavailable"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError",
                            "RunContainerError"})
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


@dataclass(frozen=True)
class Outcome:
    """How a pod attempt ended.

    ``infrastructure``: the system failed (eviction, lost node), not the user's code; such
    an attempt may be run again. ``check_job``: the pod was deleted by someone (the Job
    controller at its deadline, the node lifecycle, a person): only the Job's own status
    tells which, so the caller reads it and calls :func:`classify_deleted`.
    """

    exit_code: int | None
    reason: str
    infrastructure: bool = False
    check_job: bool = False


@dataclass(frozen=True)
class PendingProblem:
    """Why a Pending pod is not starting; it fails the job if it lasts too long."""

    kind: str  # "image" | "unschedulable" | "config"
    reason: str  # the human reason the job fails with


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """The part of a pod the backend reads: metadata (without managedFields) and status.

    The pod watch keeps every live pod until it is deleted (an hour after its Job ends),
    and a pod's spec carries the job's whole script: dropping it divides what the
    process holds, and what the garbage collector walks, several times.
    """
    meta = pod.get("metadata") or {}
    return {"metadata": {k: v for k, v in meta.items() if k != "managedFields"},
            "status": pod.get("status") or {}}


def describe_exit(code: int) -> str:
    """``exit code 3``; ``exit code 137 (killed by SIGKILL)`` for 128+signal."""
    if 128 < code <= 128 + 64:
        try:
            return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


def format_duration(seconds: float) -> str:
    """``10m`` / ``1.5m`` for a minute or more, else ``36s`` (as ``timeout-minutes`` reads)."""
    minutes = seconds / 60
    return f"{minutes:g}m" if minutes >= 1 else f"{seconds:g}s"


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def job_name_of(pod: Obj) -> str | None:
    """The name of the Job that owns the pod (labels, else the controller reference)."""
    labels = _meta(pod).get("labels") or {}
    for label in JOB_NAME_LABELS:
        if isinstance(labels.get(label), str):
            return str(labels[label])
    for ref in _meta(pod).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("kind") == "Job" and ref.get("controller"):
            return str(ref.get("name"))
    return None


def pod_uid(pod: Obj) -> str:
    return str(_meta(pod).get("uid") or "")


def phase(pod: Obj) -> str:
    return str(_status(pod).get("phase") or "Pending")


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def _container_statuses(pod: Obj) -> list[Obj]:
    return [s for s in _status(pod).get("containerStatuses") or [] if isinstance(s, Mapping)]


def _condition(obj: Obj, type_: str) -> Obj | None:
    for cond in _status(obj).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return None


def container_started(pod: Obj) -> bool:
    """Whether a container of the pod ran (so it has a log worth reading)."""
    for cs in _container_statuses(pod):
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def _terminated(pod: Obj) -> Obj | None:
    """The terminated state of the pod's (first) container that ran, if any."""
    for cs in _container_statuses(pod):
        term = (cs.get("state") or {}).get("terminated")
        if isinstance(term, Mapping):
            return term
    return None


def _with_message(prefix: str, message: object) -> str:
    text = str(message or "").strip()
    return f"{prefix}: {text}" if text else prefix


def classify_pod(pod: Obj, *, deleted: bool = False) -> Outcome | None:
    """The outcome of a terminal (or ``deleted``) pod; ``None`` while it is still going.

    A deleted pod that had not finished, or one that finished because it was being
    deleted, needs the Job's status to tell a timeout from a lost pod (``check_job``).
    """
    status = _status(pod)
    reason = str(status.get("reason") or "")
    if reason == "Evicted":
        return Outcome(None, _with_message("evicted", status.get("message")),
                       infrastructure=True)
    disruption = _condition(pod, "DisruptionTarget")
    if disruption is not None and disruption.get("status") == "True" and phase(pod) == "Failed":
        why = str(disruption.get("reason") or "disrupted")
        message = disruption.get("message") or status.get("message")
        return Outcome(None, _with_message(f"pod disrupted ({why})", message),
                       infrastructure=True)
    if not is_terminal(pod):
        if deleted:
            return Outcome(None, "the pod was deleted before it finished", check_job=True)
        return None
    term = _terminated(pod)
    if phase(pod) == "Succeeded":
        code = int(term.get("exitCode", 0)) if term is not None else 0
        return Outcome(code, "")
    if term is None:
        return Outcome(None, _with_message("the pod failed", status.get("message")),
                       check_job=bool(_meta(pod).get("deletionTimestamp")) or deleted)
    code = int(term.get("exitCode", 1))
    term_reason = str(term.get("reason") or "")
    if term_reason == "OOMKilled":
        return Outcome(code, "OOMKilled (the container exceeded its memory limit)")
    if term_reason in ("ContainerCannotRun", "StartError"):
        return Outcome(code, _with_message("the container could not start",
                                           term.get("message")))
    # Killed while being deleted: the Job's deadline, or someone deleting the pod.
    if _meta(pod).get("deletionTimestamp") or deleted:
        return Outcome(code, describe_exit(code), check_job=True)
    return Outcome(code, describe_exit(code))


def classify_deleted(job: Obj | None, pod_outcome: Outcome, timeout_s: float) -> Outcome:
    """Resolve a ``check_job`` outcome with the Job as it is now (``None``: it is gone)."""
    if job is None:
        return Outcome(pod_outcome.exit_code,
                       "the Kubernetes Job was deleted outside Conveyor")
    for type_ in ("Failed", "FailureTarget"):
        cond = _condition(job, type_)
        if cond is not None and cond.get("status") == "True" and \
                cond.get("reason") == "DeadlineExceeded":
            return Outcome(pod_outcome.exit_code, f"timed out after {format_duration(timeout_s)}")
    return Outcome(None, f"the pod was lost ({pod_outcome.reason})", infrastructure=True)


def classify_finished_job(job: Obj, timeout_s: float) -> Outcome | None:
    """The outcome of a finished Job whose pod no longer exists (found on adoption)."""
    complete = _condition(job, "Complete")
    if complete is not None and complete.get("status") == "True":
        return Outcome(0, "")
    failed = _condition(job, "Failed")
    if failed is None or failed.get("status") != "True":
        return None
    if failed.get("reason") == "DeadlineExceeded":
        return Outcome(None, f"timed out after {format_duration(timeout_s)}")
    return Outcome(None, _with_message(f"the Kubernetes Job failed ({failed.get('reason')})",
                                       failed.get("message")))


def pending_problem(pod: Obj) -> PendingProblem | None:
    """Why a Pending pod cannot start (image pull, scheduling, container config), if so."""
    if phase(pod) != "Pending":
        return None
    for cs in _container_statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting")
        if not isinstance(waiting, Mapping):
            continue
        why = str(waiting.get("reason") or "")
        if why in IMAGE_PULL_REASONS:
            detail = waiting.get("message") or f"{why} for image {cs.get('image')!r}"
            return PendingProblem("image", _with_message("image pull failed", detail))
        if why in CONFIG_REASONS:
            return PendingProblem("config", _with_message(
                "the container could not be created", waiting.get("message") or why))
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False" and \
            scheduled.get("reason") == "Unschedulable":
        return PendingProblem("unschedulable", _with_message(
            "the pod could not be scheduled", scheduled.get("message")))
    return None


def annotation(obj: Obj, key: str) -> str | None:
    value = (_meta(obj).get("annotations") or {}).get(key)
    return str(value) if value is not None else None
