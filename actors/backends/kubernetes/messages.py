"""The K8sActor's messages: the backend protocol's (actors/backends/__init__.py), and
what its own threads tell it: the pod watch, the log followers and the API call pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from actors.messages import BackendMessage, Tick

# -- the pod watch and the log followers ----------------------------------------------------


@dataclass(frozen=True)
class PodSeen:
    kind: str
    pod: Any


@dataclass(frozen=True)
class Synced:
    pass


@dataclass(frozen=True)
class LogDrained:
    handle: str
    pod_uid: str
    lines: int


# -- the API call pool (calls.py) -----------------------------------------------------------


@dataclass(frozen=True)
class Created:
    handle: str
    k8s_name: str
    nonce: str
    adopted: bool
    job: Any  # the existing Job's dict when adopted


@dataclass(frozen=True)
class CreateFailed:
    handle: str
    k8s_name: str
    reason: str
    infrastructure: bool


@dataclass(frozen=True)
class JobChecked:
    handle: str
    pod_uid: str  # "" for the re-read of an adopted Job after the watch's list
    job: Any  # None: the Job is gone


@dataclass(frozen=True)
class Deleted:
    handle: str
    k8s_name: str
    error: str


K8sMessage: TypeAlias = (
    BackendMessage | PodSeen | Synced | LogDrained | Created | CreateFailed | JobChecked
    | Deleted | Tick
)
