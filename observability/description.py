"""How an actor and a runtime describe themselves for the console: plain data, no pykka,
so the engine (actors/) and the API (rpc/) share it without rpc/ importing the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ActorDescription:
    kind: str  # Supervisor, QueueActor, BuildActor, JobActor, LocalActor, K8sActor, LogActor
    key: str  # "build/12", "build/12/test (3.11)", "queue"...
    state: str  # free text: "running", "waiting on needs", "RUNNING"...
    age_seconds: float
    mailbox: int = 0
    counters: Mapping[str, int] = field(default_factory=dict)
    build_id: int = 0
    job_key: str = ""


@dataclass(frozen=True)
class RuntimeInfo:
    role: str
    version: str
    uptime_seconds: float
    builds_running: int
    jobs_running: int
    queue_depth: int
    executor_id: str = ""
    database: str = ""
    queue: str = ""
    backend: str = ""
