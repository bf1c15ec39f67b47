"""Build, job and step states and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class BuildStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"  # the system, not the user's code, failed

    @property
    def terminal(self) -> bool:
        return self not in (BuildStatus.QUEUED, BuildStatus.RUNNING)


class JobStatus(StrEnum):
    PENDING = "PENDING"  # waiting on needs
    QUEUED = "QUEUED"  # ready, held by a concurrency cap
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        return self in _JOB_TERMINAL


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


_JOB_TERMINAL = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED}
)

_BUILD_MOVES: dict[BuildStatus, frozenset[BuildStatus]] = {
    BuildStatus.QUEUED: frozenset(
        {BuildStatus.RUNNING, BuildStatus.CANCELLED, BuildStatus.ERROR}
    ),
    BuildStatus.RUNNING: frozenset(
        {
            BuildStatus.SUCCEEDED,
            BuildStatus.FAILED,
            BuildStatus.CANCELLED,
            BuildStatus.ERROR,
        }
    ),
}

_JOB_MOVES: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset(
        {
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            JobStatus.SKIPPED,
            JobStatus.CANCELLED,
            JobStatus.FAILED,  # it could not even start (bad template, crash)
        }
    ),
    JobStatus.QUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.SKIPPED, JobStatus.FAILED}
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
}


def build_can_move(old: BuildStatus, new: BuildStatus) -> bool:
    return new in _BUILD_MOVES.get(old, frozenset())


def job_can_move(old: JobStatus, new: JobStatus) -> bool:
    return new in _JOB_MOVES.get(old, frozenset())
