"""A job backend that runs nothing, for engine tests that need no real process (as
mopidy's dummy backend): each job ends as the test's ``script`` says, at once or when
the test lets it (``hold``), and every ``RunJob``/``StopJob`` it got is kept in order.

It speaks the backend protocol of actors/backends/__init__.py: ``JobLaunched``, the
output as ``AppendLines`` to the log actor, then ``JobExited``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.base import ConveyorActor, FailureHook, tell_safely
from actors.logbatch import line_cost
from actors.messages import AppendLines, JobExited, JobLaunched, RunJob, StopJob
from actors.services import Services


@dataclass(frozen=True)
class FakeRun:
    """How a job ends: its output lines and exit code; ``hold``: not before ``StopJob``
    or ``FakeBackend.release(key)``."""

    exit_code: int = 0
    lines: tuple[str, ...] = ()
    hold: bool = False


def succeed(_run: RunJob) -> FakeRun:
    return FakeRun()


@dataclass
class FakeBackend:
    script: Callable[[RunJob], FakeRun] = succeed
    name: str = "fake"
    adopts: bool = False
    runs: list[RunJob] = field(default_factory=list)
    stops: list[StopJob] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    _ref: pykka.ActorRef[Any] | None = None

    def workspace(self, handle: str) -> str:
        return f"/fake/{handle}"

    def start(self, services: Services, on_crash: FailureHook) -> pykka.ActorRef[Any]:
        self._ref = FakeBackendActor.start(self, services, on_crash=on_crash)
        return self._ref

    def job_keys(self) -> list[str]:
        """The job keys run so far, in the order their RunJob arrived."""
        with self.changed:
            return [run.job_key for run in self.runs]

    def wait_for(self, test: Callable[[FakeBackend], bool], timeout: float = 30) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: test(self), timeout):
                raise AssertionError(f"fake backend: still waiting; runs {self.job_keys()}")

    def release(self, job_key: str, exit_code: int = 0) -> None:
        """End the held job ``job_key`` with ``exit_code``."""
        assert self._ref is not None, "the fake backend is not started"
        self._ref.tell(_Release(job_key, exit_code))

    def _record(self, message: RunJob | StopJob) -> None:
        with self.changed:
            if isinstance(message, RunJob):
                self.runs.append(message)
            else:
                self.stops.append(message)
            self.changed.notify_all()


@dataclass(frozen=True)
class _Release:
    job_key: str
    exit_code: int


class FakeBackendActor(ConveyorActor):
    kind = "FakeBackend"

    def __init__(self, backend: FakeBackend, services: Services, *,
                 on_crash: FailureHook | None = None) -> None:
        super().__init__("backend/fake", on_crash=on_crash)
        self.backend = backend
        self.services = services
        self.held: dict[str, RunJob] = {}  # RunJob.name -> the job waiting for its end

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RunJob):
            self._run(message)
        elif isinstance(message, StopJob):
            self.backend._record(message)
            run = self.held.pop(message.name, None)
            if run is not None:
                tell_safely(run.reply_to, JobExited(143, message.reason, cancelled=True))
        elif isinstance(message, _Release):
            for name, run in list(self.held.items()):
                if run.job_key == message.job_key:
                    del self.held[name]
                    code = message.exit_code
                    tell_safely(run.reply_to, JobExited(code, _reason(code)))
        else:
            return super().on_receive(message)
        return None

    def running_jobs(self) -> int:
        return len(self.held)

    def _run(self, run: RunJob) -> None:
        self.backend._record(run)
        if run.name in self.held:  # a repeated request re-attaches
            return
        outcome = self.backend.script(run)
        tell_safely(run.reply_to, JobLaunched(run.name))
        if outcome.lines:
            cost = line_cost(list(outcome.lines))
            self.services.gate.acquire(cost)
            self.services.log.tell(AppendLines(run.build_id, run.job_row_id, outcome.lines,
                                               fresh=True))
        if outcome.hold:
            self.held[run.name] = run
            return
        tell_safely(run.reply_to, JobExited(outcome.exit_code, _reason(outcome.exit_code)))


def _reason(exit_code: int) -> str:
    return "" if exit_code == 0 else f"exited with code {exit_code}"
