"""A smoke run of the official client against the emulator, runnable under any client
generation (it imports only the standard library and ``kubernetes``).

``python clients.py URL`` prints one JSON object with what it observed; the tests run it
in a venv with client 36 (Python-style booleans and Content-Type on the wire, ``V1Status``
from every delete) and in the project's venv with client 37."""

from __future__ import annotations

import json
import sys
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

NS = "smoke"


def job(name: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}],
        }}},
    }


def main(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"version": client.__version__ if hasattr(client, "__version__")
                           else None}
    with ApiClient(Configuration(host=url)) as api:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        start = core.list_namespaced_pod(NS).metadata.resource_version
        # The pod waits first: the watch below replays from `start`, and the emulator here
        # keeps only 8 events of history (to test 410 later), so a client slow to open
        # its watch on a loaded machine must not find the pod's whole life compacted.
        batch.create_namespaced_job(NS, job("smoke", "sleep 2; echo one; echo two; exit 3"))
        phases: list[str] = []
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_pod, NS, label_selector="job-name=smoke",
                           resource_version=start, timeout_seconds=20):
            pod = ev["object"]
            if not phases or phases[-1] != pod.status.phase:
                phases.append(pod.status.phase)
            if pod.status.phase in ("Succeeded", "Failed"):
                w.stop()
        out["phases"] = phases
        out["exit_code"] = pod.status.container_statuses[0].state.terminated.exit_code
        resp = core.read_namespaced_pod_log(pod.metadata.name, NS, follow=True,
                                            _preload_content=False)
        out["log"] = resp.data.decode()
        resp.release_conn()
        try:
            batch.create_namespaced_job(NS, job("smoke", "exit 0"))
        except ApiException as exc:
            out["duplicate_status"] = exc.status
        bookmarks = []
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_pod, NS, label_selector="job-name=none",
                           allow_watch_bookmarks=True, timeout_seconds=10):
            bookmarks.append(ev["type"])
            w.stop()
        out["bookmarks"] = bookmarks
        try:
            for _ in watch.Watch().stream(core.list_namespaced_pod, NS, resource_version="1",
                                          timeout_seconds=5):
                pass
        except ApiException as exc:
            out["expired_status"] = exc.status
        batch.create_namespaced_job(NS, job("sleeper", "exec sleep 60"))
        for ev in watch.Watch().stream(core.list_namespaced_pod, NS, timeout_seconds=20,
                                       label_selector="job-name=sleeper"):
            if ev["object"].status.phase == "Running":
                break
        before = core.list_namespaced_pod(NS).metadata.resource_version
        deleted = batch.delete_namespaced_job("sleeper", NS, propagation_policy="Background")
        out["delete_job_type"] = type(deleted).__name__
        gone = False
        for ev in watch.Watch().stream(core.list_namespaced_pod, NS, timeout_seconds=20,
                                       label_selector="job-name=sleeper",
                                       resource_version=before):
            if ev["type"] == "DELETED":
                gone = True
                break
        out["sleeper_pod_deleted"] = gone
        final = batch.read_namespaced_job("smoke", NS)
        out["job_conditions"] = [c.type for c in final.status.conditions or []]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
