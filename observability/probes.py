"""What ``/healthz`` and ``/readyz`` answer for a runtime.

Liveness says the process works (restart it otherwise): the actor system's supervisor
answers a ping within a second, where this process runs an executor. Readiness says it
can take traffic now: the database answers a cheap query and its schema is the one this
code needs (not missing, not behind), the queue answers, the gRPC server is up and not
saturated (its users' calls or streams all taken: new ones would be refused), and the
process is not shutting down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

import store

PING_TIMEOUT_S = 1.0
_REASON_MAX = 300

Check = Callable[[], str | None]
"""A check returns None when fine, else a short reason."""


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reasons: Mapping[str, str] = field(default_factory=dict)  # failed check -> why


class Probes(Protocol):
    def live(self) -> ProbeResult: ...

    def ready(self) -> ProbeResult: ...


def run_checks(checks: Mapping[str, Check]) -> ProbeResult:
    """Run every check (a raising check fails with its exception as the reason)."""
    reasons: dict[str, str] = {}
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            reasons[name] = _short(reason)
    return ProbeResult(not reasons, reasons)


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "failed"
    return line if len(line) <= _REASON_MAX else line[: _REASON_MAX - 1] + "…"


def database_check() -> str | None:
    """The schema's version on a pooled connection, once: no retry, so an outage shows
    at once; a schema that is missing or behind fails too (every query would)."""
    try:
        store.backend()
    except store.StoreError as exc:
        return str(exc)
    db = store.database.obj
    try:
        with db.connection_context():
            db.execute_sql("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {exc}"
    return store.schema_problem(db)


class _Config(Protocol):
    @property
    def runs_executor(self) -> bool: ...


class _Queue(Protocol):
    def depth(self) -> int: ...


class ProbedRuntime(Protocol):
    """What the probes read of a runtime (``runtime.Runtime`` is one). A protocol, so
    this layer never imports the composition root that imports it."""

    @property
    def config(self) -> _Config: ...
    @property
    def fatal(self) -> threading.Event: ...
    @property
    def fatal_reason(self) -> str: ...
    @property
    def stopping(self) -> threading.Event: ...
    @property
    def supervisor(self) -> pykka.ActorRef[Any] | None: ...
    @property
    def server(self) -> object | None: ...
    @property
    def port(self) -> int: ...
    @property
    def queue(self) -> _Queue | None: ...

    def saturation(self) -> str | None:
        """Why the gRPC server takes no more users' calls now (a full lane), or None."""


class RuntimeProbes:
    """The probes of one runtime."""

    def __init__(self, runtime: ProbedRuntime) -> None:
        self.runtime = runtime

    def live(self) -> ProbeResult:
        return run_checks({"fatal": self._not_fatal, "supervisor": self._supervisor})

    def ready(self) -> ProbeResult:
        return run_checks({
            "shutdown": self._not_stopping,
            "fatal": self._not_fatal,
            "grpc": self._grpc,
            "load": self._not_saturated,
            "queue": self._queue,
            "database": database_check,
        })

    def _not_fatal(self) -> str | None:
        return (self.runtime.fatal_reason or "fatal") if self.runtime.fatal.is_set() else None

    def _not_stopping(self) -> str | None:
        return "shutting down" if self.runtime.stopping.is_set() else None

    def _supervisor(self) -> str | None:
        runtime = self.runtime
        if not runtime.config.runs_executor:
            return None  # the pipeline role has no actor system
        ref = runtime.supervisor
        if ref is None:
            return "the supervisor has not started"
        try:
            ref.proxy().ping().get(timeout=PING_TIMEOUT_S)
        except pykka.Timeout:
            return f"the supervisor did not answer a ping within {PING_TIMEOUT_S:g}s"
        except pykka.ActorDeadError:
            return "the supervisor is dead"
        return None

    def _grpc(self) -> str | None:
        if self.runtime.server is None or not self.runtime.port:
            return "the gRPC server has not started"
        return None

    def _not_saturated(self) -> str | None:
        """Saturated: a lane users depend on is full, so new calls are refused."""
        return self.runtime.saturation()

    def _queue(self) -> str | None:
        queue = self.runtime.queue
        if queue is None:
            return "the queue is not open"
        if queue.depth() < 0:
            return "the queue broker does not answer"
        return None
