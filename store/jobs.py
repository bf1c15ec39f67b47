"""Jobs of a build (one row per job key and attempt) and the steps inside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from peewee import EXCLUDED, chunked, fn

from store.convert import dump_json, job_record, step_record
from store.db import store_call, transaction, utcnow
from store.errors import Conflict, NotFound
from store.models import Build, Job, Step
from store.records import JobInit, JobRecord, StepRecord, StepUpdate
from workflow.states import JobStatus, StepStatus, job_can_move

_UPDATE_ATTEMPTS = 10
_STEP_TERMINAL = [s.value for s in StepStatus if s.terminal]


def _check_init(build_id: int, jobs: Sequence[JobInit]) -> None:
    seen: set[tuple[str, int]] = set()
    for position, job in enumerate(jobs):
        where = f"build {build_id}, jobs[{position}] (key {job.key!r})"
        if not job.key:
            raise ValueError(f"{where}: key must not be empty")
        if job.attempt < 1:
            raise ValueError(f"{where}: attempt must be >= 1, got {job.attempt}")
        if (job.key, job.attempt) in seen:
            raise ValueError(f"{where}: (key, attempt {job.attempt}) appears twice")
        seen.add((job.key, job.attempt))


@store_call
def create_jobs(build_id: int, jobs: Sequence[JobInit]) -> list[JobRecord]:
    """Create PENDING job rows, in the order given; rows that already exist for the same
    (build, key, attempt) are returned as they are (a re-run after a takeover)."""
    _check_init(build_id, jobs)
    if not jobs:
        return []
    rows = [
        {
            Job.build: build_id,
            Job.key: job.key,
            Job.job_id: job.job_id,
            Job.name: job.name,
            Job.status: JobStatus.PENDING.value,
            Job.attempt: job.attempt,
            Job.matrix: dump_json(dict(job.matrix), f"jobs[{job.key!r}].matrix"),
            Job.needs: dump_json(list(job.needs), f"jobs[{job.key!r}].needs"),
        }
        for job in jobs
    ]
    keys = sorted({job.key for job in jobs})
    with transaction():
        if Build.get_or_none(Build.id == build_id) is None:
            raise NotFound(f"no build with id {build_id}")
        for batch in chunked(rows, 200):
            Job.insert_many(batch).on_conflict_ignore().execute()
        stored: dict[tuple[str, int], Job] = {}
        for key_batch in chunked(keys, 500):
            for row in Job.select().where((Job.build == build_id) & Job.key.in_(key_batch)):
                stored[(row.key, row.attempt)] = row
    return [job_record(stored[(job.key, job.attempt)]) for job in jobs]


@store_call
def list_jobs(build_id: int, attempt: int | None = None) -> list[JobRecord]:
    """The build's job rows in creation order, optionally of one attempt only."""
    query = Job.select().where(Job.build == build_id)
    if attempt is not None:
        query = query.where(Job.attempt == attempt)
    return [job_record(row) for row in query.order_by(Job.id)]


@store_call
def update_job(
    job_row_id: int,
    *,
    status: JobStatus,
    reason: str | None = None,
    exit_code: int | None = None,
    outputs: Mapping[str, str] | None = None,
    started: bool = False,
    finished: bool = False,
    at: datetime | None = None,
) -> JobRecord:
    """Move a job row to ``status`` and record what is given.

    ``at`` is when the change happened, if earlier than now (the engine records a job's
    end when its process exits, but writes it after the job's logs are flushed).

    Timestamps: queued_at on QUEUED, started_at on RUNNING or ``started``, finished_at on
    a terminal status or ``finished``. A terminal job is returned unchanged (late events
    after a takeover must not rewrite results); a move the state machine forbids
    otherwise (PENDING → SUCCEEDED) is a `Conflict`.
    """
    target = JobStatus(status)
    outputs_json = None if outputs is None else dump_json(dict(outputs), "job outputs")
    for _ in range(_UPDATE_ATTEMPTS):
        with transaction():
            row = Job.get_or_none(Job.id == job_row_id)
            if row is None:
                raise NotFound(f"no job row with id {job_row_id}")
            current = JobStatus(row.status)
            if current.terminal:
                return job_record(row)
            if target != current and not job_can_move(current, target):
                raise Conflict(
                    f"job {row.key!r} (row {job_row_id}) of build {row.build_id} cannot "
                    f"move from {current.value} to {target.value}"
                )
            now = at or utcnow()
            changes: dict[Any, Any] = {Job.status: target.value}
            if reason is not None:
                changes[Job.reason] = reason
            if exit_code is not None:
                changes[Job.exit_code] = exit_code
            if outputs_json is not None:
                changes[Job.outputs] = outputs_json
            if target == JobStatus.QUEUED and row.queued_at is None:
                changes[Job.queued_at] = now
            if (started or target == JobStatus.RUNNING) and row.started_at is None:
                changes[Job.started_at] = now
            if finished or target.terminal:
                changes[Job.finished_at] = now
            # Guarded by the status read above: a concurrent writer makes this a no-op
            # and the loop re-reads (PostgreSQL's READ COMMITTED does not serialise us).
            moved = (
                Job.update(changes)
                .where((Job.id == job_row_id) & (Job.status == current.value))
                .execute()
            )
            if moved:
                return job_record(Job.get_by_id(job_row_id))
    raise Conflict(f"job row {job_row_id} kept changing under {_UPDATE_ATTEMPTS} updates")


@store_call
def upsert_step(
    job_row_id: int,
    index: int,
    *,
    name: str,
    status: StepStatus,
    reason: str = "",
    exit_code: int | None = None,
    started: bool = False,
    finished: bool = False,
) -> StepRecord:
    """Create or update step ``index`` of a job row. started_at is set once (on RUNNING
    or ``started``), finished_at on a terminal status or ``finished``; a terminal step
    is left unchanged (markers replayed after a re-attach must not regress it)."""
    target = StepStatus(status)
    if index < 0:
        raise ValueError(f"step index must be >= 0, got {index}")
    now = utcnow()
    with transaction():
        if Job.get_or_none(Job.id == job_row_id) is None:
            raise NotFound(f"no job row with id {job_row_id}")
        (
            Step.insert(
                job=job_row_id,
                idx=index,
                name=name,
                status=target.value,
                reason=reason,
                exit_code=exit_code,
                started_at=now if started or target == StepStatus.RUNNING else None,
                finished_at=now if finished or target.terminal else None,
            )
            .on_conflict(
                conflict_target=[Step.job, Step.idx],
                update={
                    Step.name: EXCLUDED.name,
                    Step.status: EXCLUDED.status,
                    Step.reason: EXCLUDED.reason,
                    Step.exit_code: EXCLUDED.exit_code,
                    Step.started_at: fn.COALESCE(Step.started_at, EXCLUDED.started_at),
                    Step.finished_at: fn.COALESCE(EXCLUDED.finished_at, Step.finished_at),
                },
                where=Step.status.not_in(_STEP_TERMINAL),
            )
            .execute()
        )
        return step_record(Step.get((Step.job == job_row_id) & (Step.idx == index)))


@store_call
def list_steps(job_row_ids: Sequence[int]) -> dict[int, list[StepRecord]]:
    """Steps of each job row by index; every requested id is a key (maybe empty)."""
    found: dict[int, list[StepRecord]] = {job_id: [] for job_id in job_row_ids}
    for batch in chunked(sorted(found), 500):
        for row in Step.select().where(Step.job.in_(batch)).order_by(Step.job, Step.idx):
            found[row.job_id].append(step_record(row))
    return found


# -- hot paths of the engine: one transaction, no read-back ---------------------------------

_STARTABLE = [JobStatus.PENDING.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value]


@store_call
def start_job(job_row_id: int, steps: Sequence[tuple[int, str]]) -> bool:
    """Mark a job RUNNING and create its steps PENDING, in one transaction.

    ``steps`` are (index, name). Existing step rows are left alone (a job re-attached
    after a takeover keeps what it recorded). Returns False when the job had already
    finished (nothing is changed then).
    """
    now = utcnow()
    with transaction():
        moved = (
            Job.update(
                status=JobStatus.RUNNING.value,
                reason="",
                started_at=fn.COALESCE(Job.started_at, now),
            )
            .where((Job.id == job_row_id) & Job.status.in_(_STARTABLE))
            .execute()
        )
        if not moved:
            return False
        rows = [
            {"job": job_row_id, "idx": index, "name": name, "status": StepStatus.PENDING.value,
             "reason": ""}
            for index, name in steps
        ]
        for batch in chunked(rows, 200):
            Step.insert_many(batch).on_conflict_ignore().execute()
    return True


@store_call
def record_step(
    job_row_id: int,
    index: int,
    *,
    name: str,
    status: StepStatus,
    reason: str = "",
    exit_code: int | None = None,
) -> None:
    """`upsert_step` without the read-back: what the engine calls for a step event.

    started_at is set on RUNNING, finished_at on a terminal status; a terminal step is
    left unchanged.
    """
    record_steps(job_row_id, [StepUpdate(index, name, StepStatus(status), reason, exit_code)])


@store_call
def record_steps(job_row_id: int, updates: Sequence[StepUpdate]) -> None:
    """Several step events of one job in one transaction (see `record_step`)."""
    now = utcnow()
    with transaction():
        for update in updates:
            _record_step(job_row_id, update, now)


def _record_step(job_row_id: int, update: StepUpdate, now: datetime) -> None:
    target = StepStatus(update.status)
    (
        Step.insert(
            job=job_row_id,
            idx=update.index,
            name=update.name,
            status=target.value,
            reason=update.reason,
            exit_code=update.exit_code,
            started_at=now if target != StepStatus.PENDING else None,
            finished_at=now if target.terminal else None,
        )
        .on_conflict(
            conflict_target=[Step.job, Step.idx],
            update={
                Step.name: EXCLUDED.name,
                Step.status: EXCLUDED.status,
                Step.reason: EXCLUDED.reason,
                Step.exit_code: EXCLUDED.exit_code,
                Step.started_at: fn.COALESCE(Step.started_at, EXCLUDED.started_at),
                Step.finished_at: fn.COALESCE(EXCLUDED.finished_at, Step.finished_at),
            },
            where=Step.status.not_in(_STEP_TERMINAL),
        )
        .execute()
    )


_UNFINISHED = [s.value for s in JobStatus if not s.terminal]


@store_call
def finish_job(
    job_row_id: int,
    *,
    status: JobStatus,
    reason: str,
    exit_code: int | None = None,
    outputs: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> bool:
    """Record a job's end in one statement (`update_job` reads the row twice more).

    Only an unfinished job moves (late events after a takeover never rewrite a result);
    returns whether it did.
    """
    target = JobStatus(status)
    if not target.terminal:
        raise ValueError(f"finish_job needs a terminal status, got {target.value}")
    changes: dict[Any, Any] = {
        Job.status: target.value,
        Job.reason: reason,
        Job.finished_at: at or utcnow(),
    }
    if exit_code is not None:
        changes[Job.exit_code] = exit_code
    if outputs is not None:
        changes[Job.outputs] = dump_json(dict(outputs), "job outputs")
    with transaction():
        moved = (
            Job.update(changes)
            .where((Job.id == job_row_id) & Job.status.in_(_UNFINISHED))
            .execute()
        )
    return bool(moved)


@store_call
def queue_jobs(job_row_ids: Sequence[int], reason: str) -> int:
    """Mark ready jobs QUEUED (held by the concurrency cap) in one statement."""
    if not job_row_ids:
        return 0
    now = utcnow()
    with transaction():
        return int(
            Job.update(
                status=JobStatus.QUEUED.value,
                reason=reason,
                queued_at=fn.COALESCE(Job.queued_at, now),
            )
            .where(Job.id.in_(list(job_row_ids)) & (Job.status == JobStatus.PENDING.value))
            .execute()
        )
