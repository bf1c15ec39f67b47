"""Where actors find the service actors of this runtime.

The supervisor restarts a crashed service actor as a fresh instance with a new ref, so
other actors look the current ref up here at the moment they need it instead of keeping
one from the start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.logbatch import LineGate
from store.changes import ChangeFeed


@dataclass
class Services:
    feed: ChangeFeed
    gate: LineGate
    owner: str  # this executor's id, recorded on the builds it leases
    # Whether the job backend can re-attach to a job started by a dead executor
    # (Kubernetes: the Job outlives us) or must run it again (local processes die with us).
    backend_adopts: bool = False
    # The absolute workspace path a job's steps see, by the job's backend handle (the
    # runtime sets it for its backend): `github.workspace`, equal to $GITHUB_WORKSPACE.
    workspace: Callable[[str], str] = field(default=lambda _name: "")
    _refs: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._refs[name] = ref

    def get(self, name: str) -> pykka.ActorRef[Any]:
        with self._lock:
            ref = self._refs.get(name)
        if ref is None:
            raise pykka.ActorDeadError(f"service actor {name!r} is not running")
        return ref

    @property
    def log(self) -> pykka.ActorRef[Any]:
        return self.get("log")

    @property
    def backend(self) -> pykka.ActorRef[Any]:
        return self.get("backend")
