"""Plain frozen records the store returns: actors and servicers never hold peewee rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflow.states import BuildStatus, JobStatus, StepStatus


@dataclass(frozen=True)
class PipelineRecord:
    id: int
    name: str
    workflow_yaml: str
    description: str = ""
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class BuildRecord:
    id: int
    pipeline_id: int
    pipeline_name: str
    number: int  # per pipeline, from 1
    status: BuildStatus
    reason: str = ""
    ref: str = ""
    sha: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    triggered_by: str = ""
    attempt: int = 1
    owner: str | None = None
    lease_until: datetime | None = None
    published: bool = False  # outbox: the BuildJob message was confirmed by the broker
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False  # CancelBuild reached the database; the owner stops it


@dataclass(frozen=True)
class JobRecord:
    id: int
    build_id: int
    key: str
    job_id: str
    name: str
    status: JobStatus
    reason: str = ""
    attempt: int = 1
    exit_code: int | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    matrix: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    created_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class StepRecord:
    id: int
    job_id: int  # JobRecord.id
    index: int
    name: str
    status: StepStatus
    reason: str = ""
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class LogLine:
    job_id: int  # JobRecord.id
    number: int  # 1-based, contiguous per job row
    text: str  # without the trailing newline
    # The output had no newline here: a longer line was cut, its text goes on in the next.
    continued: bool = False


@dataclass(frozen=True)
class JobInit:
    """A job row to create: one per (job key, attempt) of a build."""

    key: str  # unique within the build, e.g. "test (3.12, linux)"
    job_id: str  # the workflow's jobs.<id>
    name: str
    needs: tuple[str, ...] = ()
    matrix: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True)
class LogChunkInit:
    """Consecutive log lines of one job row, numbered first_line, first_line+1, ..."""

    job_row_id: int  # JobRecord.id
    first_line: int  # 1-based
    lines: tuple[str, ...]  # each without its newline; a continued piece ends with "\r"


@dataclass(frozen=True)
class StepUpdate:
    """A step event for `store.record_steps`."""

    index: int
    name: str
    status: StepStatus
    reason: str = ""
    exit_code: int | None = None
