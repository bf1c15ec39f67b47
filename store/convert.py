"""Peewee rows to `store.records` values, and the JSON columns' encoding."""

from __future__ import annotations

import json
from typing import Any

from store.models import Build, Job, Pipeline, Step
from store.records import BuildRecord, JobRecord, PipelineRecord, StepRecord
from workflow.states import BuildStatus, JobStatus, StepStatus


def dump_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None


def load_json(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def pipeline_record(row: Pipeline) -> PipelineRecord:
    return PipelineRecord(
        id=row.id,
        name=row.name,
        workflow_yaml=row.workflow_yaml,
        description=row.description,
        archived=bool(row.archived),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def build_record(row: Build, pipeline_name: str) -> BuildRecord:
    return BuildRecord(
        id=row.id,
        pipeline_id=row.pipeline_id,
        pipeline_name=pipeline_name,
        number=row.number,
        status=BuildStatus(row.status),
        reason=row.reason,
        ref=row.ref,
        sha=row.sha,
        inputs=load_json(row.inputs, {}),
        request_id=row.request_id,
        triggered_by=row.triggered_by,
        attempt=row.attempt,
        owner=row.owner,
        lease_until=row.lease_until,
        published=bool(row.published),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=bool(row.cancel_requested),
    )


def job_record(row: Job) -> JobRecord:
    return JobRecord(
        id=row.id,
        build_id=row.build_id,
        key=row.key,
        job_id=row.job_id,
        name=row.name,
        status=JobStatus(row.status),
        reason=row.reason,
        attempt=row.attempt,
        exit_code=row.exit_code,
        outputs=load_json(row.outputs, {}),
        matrix=load_json(row.matrix, {}),
        needs=tuple(load_json(row.needs, [])),
        created_at=row.created_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def step_record(row: Step) -> StepRecord:
    return StepRecord(
        id=row.id,
        job_id=row.job_id,
        index=row.idx,
        name=row.name,
        status=StepStatus(row.status),
        reason=row.reason,
        exit_code=row.exit_code,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
