"""The job controller and the garbage collector's part in deleting Jobs.

A Job gets pods from its template until enough succeed (``Complete``) or more fail than
``backoffLimit`` allows (``BackoffLimitExceeded``) or ``activeDeadlineSeconds`` passes
(``DeadlineExceeded``, its pods deleted). A pod that vanishes before finishing counts as
failed, as with the real controller's pod-tracking finalizers.
``ttlSecondsAfterFinished`` is ignored: finished Jobs stay until deleted."""

from __future__ import annotations

import asyncio
from typing import Any

from support.k8s_emulator.kubelet import Kubelet
from support.k8s_emulator.objects import (
    JsonObj,
    default_pod_spec,
    qos_class,
    random_suffix,
    rfc3339,
    set_condition,
    status_body,
)
from support.k8s_emulator.store import Conflict, Event, Store

BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"
_TERMINAL = ("Succeeded", "Failed")


def job_owner(pod: JsonObj) -> JsonObj | None:
    """The controlling Job ownerReference of a pod, if any."""
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("controller"):
            return dict(ref)
    return None


def _has(job: JsonObj, type_: str) -> bool:
    return any(
        c["type"] == type_ and c["status"] == "True" for c in job["status"].get("conditions") or []
    )


def _finished(job: JsonObj) -> bool:
    return _has(job, "Complete") or _has(job, "Failed")


class JobController:
    """Creates pods for Jobs and keeps Job status in step with them."""

    def __init__(self, store: Store, kubelet: Kubelet) -> None:
        self.store = store
        self.kubelet = kubelet
        self._created: dict[str, set[str]] = {}  # job uid -> uids of pods it created
        self._counted: dict[str, dict[str, str]] = {}  # job uid -> pod uid -> final phase
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        store.listeners.append(self.on_event)

    def on_event(self, ev: Event) -> None:
        meta = ev.obj["metadata"]
        if ev.resource == "jobs":
            if ev.type == "ADDED":
                self._start(meta["namespace"], meta["name"], meta["uid"])
            elif ev.type == "DELETED":
                self._forget(meta["uid"])
            return
        owner = job_owner(ev.obj)
        if owner is not None:
            self.reconcile(meta["namespace"], owner["name"], owner["uid"])

    def _forget(self, uid: str) -> None:
        timer = self._deadlines.pop(uid, None)
        if timer is not None:
            timer.cancel()
        self._created.pop(uid, None)
        self._counted.pop(uid, None)

    def _start(self, namespace: str, name: str, uid: str) -> None:
        job = self.store.get("jobs", namespace, name)
        if job is None or job["metadata"]["uid"] != uid:
            return
        self.store.mutate(
            "jobs", namespace, name, lambda j: j["status"].setdefault("startTime", rfc3339())
        )
        deadline = job["spec"].get("activeDeadlineSeconds")
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._deadlines[uid] = loop.call_later(
                float(deadline), self._deadline_passed, namespace, name, uid
            )
        self.reconcile(namespace, name, uid)

    def _deadline_passed(self, namespace: str, name: str, uid: str) -> None:
        self._deadlines.pop(uid, None)
        job = self.store.get("jobs", namespace, name)
        if job is None or job["metadata"]["uid"] != uid or _finished(job):
            return
        self.store.mutate(
            "jobs",
            namespace,
            name,
            lambda j: set_condition(
                j["status"], "FailureTarget", "True", "DeadlineExceeded", DEADLINE_MESSAGE
            ),
        )
        self.reconcile(namespace, name, uid)

    def _owned(self, namespace: str, uid: str) -> list[JsonObj]:
        return [
            p for p in self.store.owned_by("pods", uid)
            if p["metadata"]["namespace"] == namespace and (job_owner(p) or {}).get("uid") == uid
        ]

    def reconcile(self, namespace: str, name: str, uid: str) -> None:
        """Bring the Job's pods and status in line with its spec."""
        job = self.store.get("jobs", namespace, name)
        if job is None or job["metadata"]["uid"] != uid:
            return
        pods = self._owned(namespace, uid)
        if job["metadata"].get("deletionTimestamp"):
            if not pods:  # foreground deletion: the last dependent is gone
                self.store.delete("jobs", namespace, name)
            return
        counted = self._counted.setdefault(uid, {})
        present = {p["metadata"]["uid"] for p in pods}
        for pod in pods:
            phase = pod["status"].get("phase")
            if phase in _TERMINAL:
                counted.setdefault(pod["metadata"]["uid"], phase)
        for vanished in self._created.get(uid, set()) - present:
            counted.setdefault(vanished, "Failed")
        live = [p for p in pods if p["status"].get("phase") not in _TERMINAL]
        active = [p for p in live if not p["metadata"].get("deletionTimestamp")]
        terminating = len(live) - len(active)
        succeeded = sum(1 for v in counted.values() if v == "Succeeded")
        failed = len(counted) - succeeded
        spec = job["spec"]
        completions = int(spec.get("completions", 1))
        finished = _finished(job)

        conditions: list[tuple[str, str, str]] = []
        if not finished:
            target = next(
                (
                    c
                    for c in job["status"].get("conditions") or []
                    if c["type"] == "FailureTarget" and c["status"] == "True"
                ),
                None,
            )
            if target is None and failed > int(spec.get("backoffLimit", 6)):
                target = {"reason": "BackoffLimitExceeded", "message": BACKOFF_MESSAGE}
                conditions.append(("FailureTarget", target["reason"], target["message"]))
            if target is not None:
                for pod in active:
                    self.kubelet.request_delete(namespace, pod["metadata"]["name"], None)
                    terminating += 1
                active = []
                if terminating == 0:
                    conditions.append(("Failed", target["reason"], target["message"]))
            elif succeeded >= completions:
                conditions.append(("SuccessCriteriaMet", "CompletionsReached", COMPLETE_MESSAGE))
                conditions.append(("Complete", "CompletionsReached", COMPLETE_MESSAGE))
            else:
                parallelism = int(spec.get("parallelism", 1))
                for _ in range(min(parallelism, completions - succeeded) - len(active)):
                    active.append(self._create_pod(job))
        ready = sum(
            1
            for p in active
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or []
            )
        )

        def update(j: JsonObj) -> None:
            st: dict[str, Any] = j["status"]
            # Zero counters are omitted on the wire, as the apiserver does (omitempty).
            for key, value in (
                ("active", len(active)),
                ("succeeded", succeeded),
                ("failed", failed),
            ):
                if value:
                    st[key] = value
                else:
                    st.pop(key, None)
            st["ready"], st["terminating"] = ready, terminating
            st["uncountedTerminatedPods"] = {}
            for type_, reason, message in conditions:
                set_condition(st, type_, "True", reason, message)
                if type_ == "Complete":
                    st["completionTime"] = rfc3339()
            if conditions and conditions[-1][0] in ("Complete", "Failed"):
                self._forget_deadline(uid)

        self.store.mutate("jobs", namespace, name, update)

    def _forget_deadline(self, uid: str) -> None:
        timer = self._deadlines.pop(uid, None)
        if timer is not None:
            timer.cancel()

    def _create_pod(self, job: JsonObj) -> JsonObj:
        meta = job["metadata"]
        template = job["spec"]["template"]
        tmeta = template.get("metadata") or {}
        spec = default_pod_spec(template["spec"])
        prefix = f"{meta['name'][:58]}-"
        pod: JsonObj = {
            "metadata": {
                "generateName": prefix,
                "namespace": meta["namespace"],
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": qos_class(spec)},
        }
        while True:
            pod["metadata"]["name"] = prefix + random_suffix()
            try:
                created = self.store.create("pods", pod)
            except Conflict:
                continue
            self._created.setdefault(meta["uid"], set()).add(created["metadata"]["uid"])
            return created

    # -- deletion (the garbage collector's part) ---------------------------------------
    def delete_job(self, namespace: str, name: str, policy: str | None) -> JsonObj | None:
        """Delete a Job with a propagation policy; returns the response body or None (404).

        Without a policy the batch/v1 API orphans the pods, which keep running."""
        job = self.store.get("jobs", namespace, name)
        if job is None:
            return None
        uid = job["metadata"]["uid"]
        pods = self._owned(namespace, uid)
        success = status_body(
            200, "", "", {"name": name, "group": "batch", "kind": "jobs", "uid": uid}
        )
        success.pop("reason")
        success.pop("message")
        if policy == "Foreground" and pods:

            def mark(j: JsonObj) -> None:
                j["metadata"]["deletionTimestamp"] = rfc3339()
                j["metadata"]["deletionGracePeriodSeconds"] = 0
                j["metadata"]["finalizers"] = ["foregroundDeletion"]

            marked = self.store.mutate("jobs", namespace, name, mark)
            for pod in pods:
                self.kubelet.request_delete(namespace, pod["metadata"]["name"], None)
            return marked
        self.store.delete("jobs", namespace, name)
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            if policy in ("Background", "Foreground"):
                self.kubelet.request_delete(namespace, pod_name, None)
            else:
                self.store.mutate(
                    "pods",
                    namespace,
                    pod_name,
                    lambda p: p["metadata"].update(
                        ownerReferences=[
                            r for r in p["metadata"]["ownerReferences"] if r.get("uid") != uid
                        ]
                    ),
                )
        return success

    def close(self) -> None:
        """Cancel deadline timers (emulator shutdown)."""
        for timer in self._deadlines.values():
            timer.cancel()
        self._deadlines.clear()
