"""Messages between actors: frozen dataclasses, never mutated after sending.

Direction follows the actor tree (README, Architecture): asks go down (supervisor →
build → job), tells go up (job → build → supervisor); backends and the log actor tell
the job actor what they see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import pykka

from broker.base import Delivery
from workflow.markers import Event as StepEvent

if TYPE_CHECKING:  # for the refs' types only: the actors import these messages
    from actors.build_actor import BuildActor
    from actors.job_actor import JobActor

# -- queue → supervisor ------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRequested:
    build_id: int
    attempt: int
    delivery: Delivery | None  # acked by the BuildActor once it claimed the build


@dataclass(frozen=True)
class CancelRequested:
    build_id: int
    reason: str = "cancelled by request"


# -- supervisor / build / job ------------------------------------------------------------


@dataclass(frozen=True)
class StartBuild:
    delivery: Delivery | None


@dataclass(frozen=True)
class BuildFinished:
    build_id: int
    status: str
    reason: str
    run: int = 0  # which BuildActor of the build ended (the supervisor numbers them)


@dataclass(frozen=True)
class ChildFailed:
    name: str
    error: str
    generation: int = 0  # which start of the child crashed


@dataclass(frozen=True)
class SlotGranted:
    key: str


@dataclass(frozen=True)
class JobFinished:
    """Fast path upward: the result as soon as it is known (unlocks dependents)."""

    key: str
    status: str  # JobStatus value
    reason: str
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobPersisted:
    """The job's final state and all its log lines are in the database."""

    key: str


@dataclass(frozen=True)
class CancelJob:
    reason: str


@dataclass(frozen=True)
class LeaseLost:
    """Another executor took the build over (our lease ran out, e.g. while the database
    was unreachable): stop working on it here and write nothing more about it; the new
    owner carries on from the database."""

    build_id: int


# -- build → job: the launch ----------------------------------------------------------------


@dataclass(frozen=True)
class LaunchJob:
    """The job's needs are done (or it has none): render its launch and run it."""

    needs: Mapping[str, Mapping[str, Any]]
    resume: bool = False  # re-attach to a job a dead executor started (same backend name)
    # The prepared launch the build has sent the backend itself: only record it.
    launched: RunJob | None = None


@dataclass(frozen=True)
class PrepareLaunch:
    """Render the launch now for these expected needs (the job waits for its needs)."""

    needs: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class LaunchPrepared:
    """A launch rendered ahead, told to the build; valid only for exactly these needs."""

    key: str
    needs: Mapping[str, Mapping[str, Any]]
    run: RunJob


@dataclass(frozen=True)
class WriteSteps:
    """Write the step events received so far (a JobActor's message to itself)."""


# -- launcher → build: job actors started ahead (actors/warm_jobs.py) ----------------------


@dataclass(frozen=True)
class Warmed:
    """An idle JobActor started ahead of its job's needs (from the launcher's thread)."""

    key: str
    ref: pykka.ActorRef[JobActor]


@dataclass(frozen=True)
class WarmFailed:
    """Starting the actor failed: the build starts it itself, if it needs it now."""

    key: str
    error: str


# -- backend protocol (actors/backends/__init__.py) -----------------------------------------


@dataclass(frozen=True)
class RunJob:
    build_id: int
    job_row_id: int
    job_key: str
    attempt: int
    name: str  # deterministic backend handle (Kubernetes Job name, workspace dir)
    script: str
    image: str | None
    env: Mapping[str, str]
    timeout_s: float
    nonce: str
    cpu: str | None = None
    memory: str | None = None
    reply_to: pykka.ActorRef[JobActor] | None = None
    resume: bool = False  # a takeover: the job may exist already (adopt it, skip logged lines)
    runs_on: str | tuple[str, ...] | None = None  # labels the backend maps to an image
    # The BuildActor to tell at once when the job succeeds, before its output is drained
    # (set only for jobs that declare no outputs: nothing a dependent reads can change).
    release_to: pykka.ActorRef[BuildActor] | None = None
    # The job's `container.env`: the container's own variables, under `env` (job env wins).
    container_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StopJob:
    name: str
    reason: str


@dataclass(frozen=True)
class JobLaunched:
    name: str


@dataclass(frozen=True)
class StepEventSeen:
    event: StepEvent


@dataclass(frozen=True)
class ExitKnown:
    """The job's process/pod ended with this code; its output is still being drained."""

    exit_code: int
    released: bool = False  # the backend told RunJob.release_to the job succeeded
    # When the backend saw the end: the job's finish time (its dependents may start, and
    # record their start, before the job's own actor hears of it).
    at: datetime | None = None


@dataclass(frozen=True)
class JobExited:
    """The job's process/pod ended and its output was drained to the log actor."""

    exit_code: int | None
    reason: str
    cancelled: bool = False
    infrastructure: bool = False  # the system failed (eviction, spawn error), not the user


# -- log actor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppendLines:
    build_id: int
    job_row_id: int
    lines: tuple[str, ...]
    # The job's first lines in a fresh run: none are stored yet, so the log actor need
    # not ask the database where numbering continues.
    fresh: bool = False


@dataclass(frozen=True)
class FlushJob:
    job_row_id: int
    reply_to: pykka.ActorRef[JobActor]  # told LogsFlushed afterwards


@dataclass(frozen=True)
class LogsFlushed:
    job_row_id: int
    note: str = ""  # what the job's reason should add: "log truncated at 64 MiB"


@dataclass(frozen=True)
class Tick:
    """Periodic wake-up from an actor's own timer thread."""


@dataclass(frozen=True)
class BackendRestarted:
    """The job backend was restarted after a crash: jobs it ran must be handed to it again."""


@dataclass(frozen=True)
class StopConsuming:
    """Graceful shutdown, first step: the queue actor takes no new builds."""


@dataclass(frozen=True)
class Describe:
    """Ask an actor for its ActorDescription."""


# -- what each actor handles: its on_receive matches every member (mypy checks it) --------

QueueMessage: TypeAlias = StopConsuming
SupervisorMessage: TypeAlias = (
    BuildRequested | BuildFinished | CancelRequested | ChildFailed | Tick
)
BuildMessage: TypeAlias = (
    StartBuild | JobFinished | JobPersisted | SlotGranted | Warmed | WarmFailed
    | LaunchPrepared | CancelRequested | LeaseLost
)
JobMessage: TypeAlias = (
    LaunchJob | PrepareLaunch | StepEventSeen | JobLaunched | WriteSteps | ExitKnown
    | JobExited | LogsFlushed | BackendRestarted | CancelJob | LeaseLost
)
LogMessage: TypeAlias = AppendLines | Tick | FlushJob
BackendMessage: TypeAlias = RunJob | StopJob
