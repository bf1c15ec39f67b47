"""Event-driven waits and small manifests for the emulator tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, watch

NS = "ci"


def job_manifest(
    name: str,
    script: str,
    *,
    image: str = "busybox:1.36",
    labels: dict[str, str] | None = None,
    deadline_s: int | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal Job running ``sh -c script`` (``$`` in the script is NOT escaped)."""
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels or {}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main", "image": image, "command": ["sh", "-c", script],
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                }],
            },
        },
    }
    if deadline_s is not None:
        spec["activeDeadlineSeconds"] = deadline_s
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def pod_events(
    core: client.CoreV1Api,
    selector: str,
    until: Callable[[str, Any], bool],
    *,
    since: str | None = None,
    timeout_s: int = 20,
) -> list[tuple[str, Any]]:
    """Watch pods matching ``selector`` until ``until(type, pod)``; returns every event.

    Fails when the watch times out first (the emulator ends the stream)."""
    seen: list[tuple[str, Any]] = []
    w = watch.Watch()
    kwargs: dict[str, Any] = {"label_selector": selector, "timeout_seconds": timeout_s}
    if since is not None:
        kwargs["resource_version"] = since
    for ev in w.stream(core.list_namespaced_pod, NS, **kwargs):
        seen.append((ev["type"], ev["object"]))
        if until(ev["type"], ev["object"]):
            w.stop()
            return seen
    raise AssertionError(f"watch on {selector!r} ended before the condition; saw "
                         f"{[(t, o.status.phase) for t, o in seen]}")


def job_events(
    batch: client.BatchV1Api, name: str, until: Callable[[Any], bool], timeout_s: int = 20
) -> Any:
    """Watch one Job until ``until(job)``; returns that Job."""
    w = watch.Watch()
    for ev in w.stream(batch.list_namespaced_job, NS, field_selector=f"metadata.name={name}",
                       timeout_seconds=timeout_s):
        if until(ev["object"]):
            w.stop()
            return ev["object"]
    raise AssertionError(f"job {name} never reached the condition")


def terminal(_type: str, pod: Any) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def running(_type: str, pod: Any) -> bool:
    return pod.status.phase == "Running"


def condition(job: Any, type_: str) -> Any:
    for cond in job.status.conditions or []:
        if cond.type == type_ and cond.status == "True":
            return cond
    return None


def alive(pid: int) -> bool:
    """A process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def follow_log(core: client.CoreV1Api, pod: str) -> str:
    """The whole log, followed until the container ends."""
    resp = core.read_namespaced_pod_log(pod, NS, follow=True, _preload_content=False)
    try:
        return b"".join(resp.stream(1024)).decode()
    finally:
        resp.release_conn()
