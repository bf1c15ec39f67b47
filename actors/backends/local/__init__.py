"""The local backend: each job a process on this host (``actor.py``), in a sandbox
(``sandbox.py``) unless the operator trusts the jobs (``policy.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pykka

from actors.backends.local.actor import LocalActor, workspace_path
from actors.backends.local.policy import local_isolation
from actors.base import FailureHook
from actors.services import Services

__all__ = ["LocalBackend"]


class LocalBackend:
    name = "local"
    adopts = False  # the jobs' processes die with the executor

    def __init__(self, workdir: Path, trusted: bool) -> None:
        self.workdir = workdir
        # Probed once, here: restarts of the actor reuse it.
        self.isolation, self.admit = local_isolation(workdir, trusted)

    def workspace(self, handle: str) -> str:
        return workspace_path(self.workdir, handle)

    def start(self, services: Services, on_crash: FailureHook) -> pykka.ActorRef[Any]:
        return LocalActor.start(services, self.workdir, on_crash=on_crash,
                                isolation=self.isolation, admit=self.admit)
