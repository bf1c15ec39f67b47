"""Record ↔ protobuf conversions (timestamps in UTC; enums by name)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf import timestamp_pb2

from conveyor.v1 import admin_pb2, common_pb2
from observability.description import ActorDescription, RuntimeInfo
from store.records import BuildRecord, JobRecord, LogLine, PipelineRecord, StepRecord
from workflow.errors import WorkflowError
from workflow.states import BuildStatus, JobStatus, StepStatus


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf Timestamp; naive datetimes are taken as UTC (how the store writes them)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def _text(value: Any) -> str:
    """Map values as strings: strings unchanged, anything else JSON-encoded."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# Built at import: a domain state without a proto counterpart fails loudly right away.
_BUILD_STATUS = {
    s: cast(common_pb2.BuildStatus, common_pb2.BuildStatus.Value(f"BUILD_STATUS_{s.value}"))
    for s in BuildStatus
}
_JOB_STATUS = {
    s: cast(common_pb2.JobStatus, common_pb2.JobStatus.Value(f"JOB_STATUS_{s.value}"))
    for s in JobStatus
}
_STEP_STATUS = {
    s: cast(common_pb2.StepStatus, common_pb2.StepStatus.Value(f"STEP_STATUS_{s.value}"))
    for s in StepStatus
}
_BUILD_STATUS_BACK = {v: k for k, v in _BUILD_STATUS.items()}


def build_status(status: BuildStatus) -> common_pb2.BuildStatus:
    return _BUILD_STATUS[status]


def build_status_from_proto(value: int) -> BuildStatus | None:
    """The domain status for a filter; None for UNSPECIFIED. Raises KeyError if unknown."""
    if value == common_pb2.BUILD_STATUS_UNSPECIFIED:
        return None
    return _BUILD_STATUS_BACK[cast(common_pb2.BuildStatus, value)]


def job_status(status: JobStatus) -> common_pb2.JobStatus:
    return _JOB_STATUS[status]


def step_status(status: StepStatus) -> common_pb2.StepStatus:
    return _STEP_STATUS[status]


def pipeline(record: PipelineRecord) -> common_pb2.Pipeline:
    return common_pb2.Pipeline(
        id=record.id,
        name=record.name,
        description=record.description,
        workflow_yaml=record.workflow_yaml,
        archived=record.archived,
        create_time=timestamp(record.created_at),
        update_time=timestamp(record.updated_at),
    )


def step(record: StepRecord) -> common_pb2.Step:
    return common_pb2.Step(
        index=record.index,
        name=record.name,
        status=step_status(record.status),
        reason=record.reason,
        exit_code=record.exit_code,
        start_time=timestamp(record.started_at),
        finish_time=timestamp(record.finished_at),
    )


def job(record: JobRecord, steps: Iterable[StepRecord] = ()) -> common_pb2.Job:
    return common_pb2.Job(
        id=record.id,
        key=record.key,
        job_id=record.job_id,
        name=record.name,
        status=job_status(record.status),
        reason=record.reason,
        attempt=record.attempt,
        exit_code=record.exit_code,
        outputs={k: _text(v) for k, v in record.outputs.items()},
        matrix={k: json.dumps(v, sort_keys=True) for k, v in record.matrix.items()},
        needs=list(record.needs),
        steps=[step(s) for s in sorted(steps, key=lambda s: s.index)],
        create_time=timestamp(record.created_at),
        start_time=timestamp(record.started_at),
        finish_time=timestamp(record.finished_at),
    )


def build(
    record: BuildRecord,
    jobs: Iterable[JobRecord] = (),
    steps: Mapping[int, Iterable[StepRecord]] | None = None,
) -> common_pb2.Build:
    """The Build message; ``steps`` maps JobRecord.id to that job's steps."""
    by_job = steps or {}
    return common_pb2.Build(
        id=record.id,
        pipeline_id=record.pipeline_id,
        pipeline_name=record.pipeline_name,
        number=record.number,
        status=build_status(record.status),
        reason=record.reason,
        ref=record.ref,
        sha=record.sha,
        inputs={k: _text(v) for k, v in record.inputs.items()},
        request_id=record.request_id or "",
        triggered_by=record.triggered_by,
        attempt=record.attempt,
        jobs=[job(j, by_job.get(j.id, ())) for j in jobs],
        create_time=timestamp(record.created_at),
        start_time=timestamp(record.started_at),
        finish_time=timestamp(record.finished_at),
    )


def workflow_error(error: WorkflowError) -> common_pb2.WorkflowError:
    return common_pb2.WorkflowError(
        path=error.path, line=error.line, column=error.column, message=error.message
    )


def log_line(line: LogLine, job_key: str) -> common_pb2.LogLine:
    return common_pb2.LogLine(
        job_id=line.job_id, job_key=job_key, number=line.number, text=line.text,
        continued=line.continued,
    )


def actor_info(description: ActorDescription) -> admin_pb2.ActorInfo:
    return admin_pb2.ActorInfo(
        kind=description.kind,
        key=description.key,
        state=description.state,
        age_seconds=description.age_seconds,
        mailbox=description.mailbox,
        counters=dict(description.counters),
        build_id=description.build_id,
        job_key=description.job_key,
    )


def runtime_info(info: RuntimeInfo) -> admin_pb2.GetRuntimeInfoResponse:
    return admin_pb2.GetRuntimeInfoResponse(
        role=info.role,
        version=info.version,
        uptime_seconds=info.uptime_seconds,
        builds_running=info.builds_running,
        jobs_running=info.jobs_running,
        queue_depth=info.queue_depth,
        executor_id=info.executor_id,
        database=info.database,
        queue=info.queue,
        backend=info.backend,
    )
