"""The Kubernetes API calls of a K8sActor, run on its worker pool with retries.

Each call's result goes back to the actor as a message, so a throttled or slow API
server never blocks the actor's mailbox. Per job: one create (plus a read when the Job
exists already: adoption), and a read or a delete only when its pod was deleted or the
job is cancelled.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from actors.backends.kubernetes.messages import Created, CreateFailed, Deleted, JobChecked
from actors.backends.kubernetes.tracker import NONCE_ANNOTATION, RETRY_ANNOTATION
from actors.messages import RunJob
from k8s import classify
from k8s.client import KubeApi, KubeError, retrying
from k8s.manifests import build_job_manifest
from observability import trace
from runtime_config import DEFAULT_IMAGE, K8S_PENDING_TIMEOUT_S

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 360 * 60.0  # GitHub's default job timeout


@dataclass(frozen=True)
class K8sSettings:
    """How the backend reaches and uses the cluster (from ``runtime.Config``)."""

    configuration: Any  # kubernetes.client.Configuration
    namespace: str
    default_image: str = DEFAULT_IMAGE
    runs_on_images: Mapping[str, str] = field(default_factory=dict)
    pending_timeout_s: float = K8S_PENDING_TIMEOUT_S
    infra_retries: int = 2
    watch_timeout_s: int = 300
    ttl_s: int = 3600
    api_workers: int = 16  # a wide DAG layer releases ~20 creates at once


def job_timeout(run: RunJob) -> float:
    """The job's deadline in seconds (GitHub's default when it has none)."""
    ok = run.timeout_s > 0 and math.isfinite(run.timeout_s)
    return run.timeout_s if ok else DEFAULT_TIMEOUT_S


class JobCalls:
    """Creates, reads and deletes Jobs on a pool; ``tell`` posts results to the actor."""

    def __init__(self, api: KubeApi, settings: K8sSettings, tell: Callable[[Any], None],
                 on_error: Callable[[KubeError | None], None]) -> None:
        self.api, self.settings, self.tell, self.on_error = api, settings, tell, on_error
        self.stopping = threading.Event()  # ends retries at shutdown
        self.pool = ThreadPoolExecutor(settings.api_workers, thread_name_prefix="k8s-api")

    def shutdown(self) -> None:
        self.stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _retrying(self) -> Any:
        return retrying(on_retry=self.on_error, cancel=self.stopping)

    def image(self, run: RunJob) -> str:
        """The job's ``container`` image, else its ``runs-on`` label's, else the default."""
        if run.image:
            return run.image
        runs_on = run.runs_on
        labels = [runs_on] if isinstance(runs_on, str) else list(runs_on or [])
        for label in labels:
            if str(label) in self.settings.runs_on_images:
                return self.settings.runs_on_images[str(label)]
        return self.settings.default_image

    def manifest(self, run: RunJob, name: str, retry: int) -> dict[str, Any]:
        notes = {NONCE_ANNOTATION: run.nonce}
        if retry:
            notes[RETRY_ANNOTATION] = str(retry)
        manifest = build_job_manifest(
            namespace=self.settings.namespace, build_id=run.build_id, job_key=run.job_key,
            attempt=run.attempt, image=self.image(run), script=run.script, env=dict(run.env),
            timeout_s=job_timeout(run), cpu=run.cpu, memory=run.memory,
            ttl_s=self.settings.ttl_s, annotations=notes, container_env=dict(run.container_env),
        )
        meta = manifest["metadata"]
        assert isinstance(meta, dict)
        meta["name"] = name
        return manifest

    # -- submitted from the actor ---------------------------------------------------------
    def create(self, run: RunJob, name: str, retry: int) -> None:
        self.pool.submit(self._create, run, name, retry)

    def read_adopted(self, handle: str, name: str) -> None:
        self.pool.submit(self._read, handle, "", name)

    def check(self, handle: str, pod_uid: str, name: str) -> None:
        self.pool.submit(self._read, handle, pod_uid, name)

    def delete(self, handle: str, name: str) -> None:
        self.pool.submit(self._delete, handle, name)

    # -- on pool threads -------------------------------------------------------------------
    def _create(self, run: RunJob, name: str, retry: int) -> None:
        """Create the Job, or adopt the one that exists (409) with its nonce."""
        try:
            manifest = self.manifest(run, name, retry)
        except ValueError as exc:
            self.tell(CreateFailed(run.name, name, f"invalid job for Kubernetes: {exc}", False))
            return
        call = self._retrying()
        try:
            for _ in range(3):
                try:
                    trace.mark(name, "create")
                    call(self.api.create_job, manifest)
                    self.tell(Created(run.name, name, run.nonce, False, None))
                    return
                except KubeError as exc:
                    if not exc.conflict:
                        raise
                job = call(self.api.get_job, name)
                if job is not None:  # ours from before: its pod prints with its nonce
                    nonce = classify.annotation(job, NONCE_ANNOTATION) or run.nonce
                    self.tell(Created(run.name, name, nonce, True, job))
                    return
            raise KubeError(409, "Conflict", "the Job kept vanishing while being adopted",
                            operation="create job")
        except KubeError as exc:
            self.on_error(exc)
            infra = exc.transient or exc.status in (401, 403)
            self.tell(CreateFailed(run.name, name, f"could not create the Kubernetes Job "
                                                   f"{name}: {exc}", infra))

    def _read(self, handle: str, pod_uid: str, name: str) -> None:
        try:
            job = self._retrying()(self.api.get_job, name)
        except KubeError as exc:
            log.warning("could not read Kubernetes Job %s: %s", name, exc)
            if not pod_uid:
                return
            job = {}  # unknown: the pod counts as lost
        self.tell(JobChecked(handle, pod_uid, job))

    def _delete(self, handle: str, name: str) -> None:
        try:
            self._retrying()(self.api.delete_job, name)
            self.tell(Deleted(handle, name, ""))
        except KubeError as exc:
            self.tell(Deleted(handle, name, str(exc)))
