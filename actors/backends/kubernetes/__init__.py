"""The Kubernetes backend: each job a Kubernetes Job (``actor.py``), created and deleted
off the actor's thread (``calls.py``), its pod seen through one watch (``watch.py``), its
log followed by a thread of its own (``logs.py``), its progress in a ``Tracker``
(``tracker.py``). The runtime imports this package only when it runs this backend."""

from __future__ import annotations

from typing import Any

import pykka

from actors.backends.kubernetes.actor import K8sActor
from actors.backends.kubernetes.calls import K8sSettings
from actors.base import FailureHook
from actors.services import Services
from k8s.manifests import WORKSPACE

__all__ = ["K8sSettings", "KubernetesBackend"]


class KubernetesBackend:
    name = "kubernetes"
    adopts = True  # a Job outlives the executor that created it

    def __init__(self, settings: K8sSettings) -> None:
        self.settings = settings

    def workspace(self, handle: str) -> str:
        return WORKSPACE  # the pod's own path (its emptyDir mount), the same for every job

    def start(self, services: Services, on_crash: FailureHook) -> pykka.ActorRef[Any]:
        return K8sActor.start(services, self.settings, on_crash=on_crash)
