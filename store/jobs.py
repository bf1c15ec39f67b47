"""Jobs of a build (one row per job key and attempt) and the steps inside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from peewee import EXCLUDED, chunked, fn

from store import fast
from store.convert import dump_json, step_record
from store.db import single_statement, store_call, transaction, utcnow
from store.errors import Conflict, NotFound
from store.models import Job, Step
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
    now = fast.naive(utcnow())
    rows = [
        (
            build_id,
            job.key,
            job.job_id,
            job.name,
            JobStatus.PENDING.value,
            "",
            job.attempt,
            "{}",
            dump_json(dict(job.matrix), f"jobs[{job.key!r}].matrix"),
            dump_json(list(job.needs), f"jobs[{job.key!r}].needs"),
            now,
        )
        for job in jobs
    ]
    keys = sorted({job.key for job in jobs})
    stored: dict[tuple[str, int], JobRecord] = {}
    with transaction():
        if fast.execute(_BUILD_EXISTS, (build_id,)).fetchone() is None:
            raise NotFound(f"no build with id {build_id}")
        for batch in chunked(rows, 200):
            fast.execute(_insert_jobs(len(batch)), [value for row in batch for value in row])
        for key_batch in chunked(keys, 500):
            cursor = fast.execute(_jobs_with_keys(len(key_batch)), (build_id, *key_batch))
            for found in cursor.fetchall():
                record = fast.job_from_row(found)
                stored[(record.key, record.attempt)] = record
    return [stored[(job.key, job.attempt)] for job in jobs]


_BUILD_EXISTS = "SELECT 1 FROM builds WHERE id = ?"


def _insert_jobs(count: int) -> str:
    verb = "INSERT OR IGNORE INTO" if fast.sqlite() else "INSERT INTO"
    tail = "" if fast.sqlite() else " ON CONFLICT DO NOTHING"
    return (
        f'{verb} jobs (build_id, "key", job_id, name, status, reason, attempt, outputs, '
        f"matrix, needs, created_at) VALUES {fast.value_rows(count, 11)}{tail}"
    )


def _jobs_with_keys(count: int) -> str:
    return (
        f"SELECT {fast.JOB_COLUMNS} FROM jobs "
        f'WHERE build_id = ? AND "key" IN ({fast.marks(count)})'
    )


@store_call
def list_jobs(build_id: int, attempt: int | None = None) -> list[JobRecord]:
    """The build's job rows in creation order, optionally of one attempt only."""
    if attempt is None:
        cursor = fast.execute(_LIST_JOBS, (build_id,))
    else:
        cursor = fast.execute(_LIST_JOBS_OF_ATTEMPT, (build_id, attempt))
    return [fast.job_from_row(row) for row in cursor.fetchall()]


_LIST_JOBS = f"SELECT {fast.JOB_COLUMNS} FROM jobs WHERE build_id = ? ORDER BY jobs.id"
_LIST_JOBS_OF_ATTEMPT = (
    f"SELECT {fast.JOB_COLUMNS} FROM jobs WHERE build_id = ? AND attempt = ? ORDER BY jobs.id"
)


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
            found = fast.execute(_GET_JOB, (job_row_id,)).fetchone()
            if found is None:
                raise NotFound(f"no job row with id {job_row_id}")
            row = fast.job_from_row(found)
            current = row.status
            if current.terminal:
                return row
            if target != current and not job_can_move(current, target):
                raise Conflict(
                    f"job {row.key!r} (row {job_row_id}) of build {row.build_id} cannot "
                    f"move from {current.value} to {target.value}"
                )
            now = fast.naive(at or utcnow())
            changes: dict[str, Any] = {"status": target.value}
            if reason is not None:
                changes["reason"] = reason
            if exit_code is not None:
                changes["exit_code"] = exit_code
            if outputs_json is not None:
                changes["outputs"] = outputs_json
            if target == JobStatus.QUEUED and row.queued_at is None:
                changes["queued_at"] = now
            if (started or target == JobStatus.RUNNING) and row.started_at is None:
                changes["started_at"] = now
            if finished or target.terminal:
                changes["finished_at"] = now
            # Guarded by the status read above: a concurrent writer makes this a no-op
            # and the loop re-reads (PostgreSQL's READ COMMITTED does not serialise us).
            moved = fast.update_returning(
                _update_job_sql(tuple(changes)),
                fast.JOB_COLUMNS,
                (*changes.values(), job_row_id, current.value),
                _GET_JOB,
                (job_row_id,),
            )
            if moved:
                return fast.job_from_row(moved[0])
    raise Conflict(f"job row {job_row_id} kept changing under {_UPDATE_ATTEMPTS} updates")


_GET_JOB = f"SELECT {fast.JOB_COLUMNS} FROM jobs WHERE id = ?"


@lru_cache(maxsize=64)
def _update_job_sql(columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{column} = ?" for column in columns)
    return f"UPDATE jobs SET {sets} WHERE id = ? AND status = ?"


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
        cursor = fast.execute(_steps_of(len(batch)), batch)
        for row in cursor.fetchall():
            found[row[1]].append(fast.step_from_row(row))
    return found


def _steps_of(count: int) -> str:
    return (
        f"SELECT {fast.STEP_COLUMNS} FROM steps WHERE job_id IN ({fast.marks(count)}) "
        'ORDER BY job_id, "index"'
    )


# -- hot paths of the engine: one transaction, no read-back ---------------------------------

_STARTABLE = [JobStatus.PENDING.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value]


@store_call
def start_job(job_row_id: int, steps: Sequence[tuple[int, str]]) -> bool:
    """Mark a job RUNNING and create its steps PENDING, in one transaction.

    ``steps`` are (index, name). Existing step rows are left alone (a job re-attached
    after a takeover keeps what it recorded). Returns False when the job had already
    finished (nothing is changed then).
    """
    now = fast.naive(utcnow())
    with transaction():
        moved = fast.execute(_START_JOB, (JobStatus.RUNNING.value, now, job_row_id)).rowcount
        if not moved:
            return False
        for batch in chunked(list(steps), 200):
            params: list[Any] = []
            for index, name in batch:
                params += (job_row_id, index, name, StepStatus.PENDING.value)
            fast.execute(_insert_pending_steps(len(batch)), params)
    return True


_START_JOB = (
    "UPDATE jobs SET status = ?, reason = '', started_at = COALESCE(started_at, ?) "
    f"WHERE id = ? AND status IN ({', '.join(repr(s) for s in _STARTABLE)})"
)


def _insert_pending_steps(count: int) -> str:
    verb = "INSERT OR IGNORE INTO" if fast.sqlite() else "INSERT INTO"
    tail = "" if fast.sqlite() else " ON CONFLICT DO NOTHING"
    values = ", ".join(["(?, ?, ?, ?, '')"] * count)
    return f'{verb} steps (job_id, "index", name, status, reason) VALUES {values}{tail}'


@store_call
def record_steps(job_row_id: int, updates: Sequence[StepUpdate]) -> None:
    """Step events of one job in one transaction, without read-back (what the engine
    calls). started_at is set on RUNNING, finished_at on a terminal status; a terminal
    step is left unchanged."""
    now = fast.naive(utcnow())
    with transaction():
        for update in updates:
            target = StepStatus(update.status)
            # One statement per update, in order: the same step may appear twice (RUNNING
            # then SUCCEEDED), and one multi-row upsert cannot touch a row twice.
            fast.execute(
                _RECORD_STEP,
                (
                    job_row_id,
                    update.index,
                    update.name,
                    target.value,
                    update.reason,
                    update.exit_code,
                    now if target != StepStatus.PENDING else None,
                    now if target.terminal else None,
                ),
            )


_RECORD_STEP = (
    'INSERT INTO steps (job_id, "index", name, status, reason, exit_code, started_at, '
    'finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, "index") DO UPDATE SET '
    "name = excluded.name, status = excluded.status, reason = excluded.reason, "
    "exit_code = excluded.exit_code, "
    "started_at = COALESCE(steps.started_at, excluded.started_at), "
    "finished_at = COALESCE(excluded.finished_at, steps.finished_at) "
    f"WHERE steps.status NOT IN ({', '.join(repr(s) for s in _STEP_TERMINAL)})"
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
    params: list[Any] = [target.value, reason, fast.naive(at or utcnow())]
    if exit_code is not None:
        params.append(exit_code)
    if outputs is not None:
        params.append(dump_json(dict(outputs), "job outputs"))
    params.append(job_row_id)
    statement = _FINISH_JOB[(exit_code is not None, outputs is not None)]
    with single_statement():
        moved = fast.execute(statement, params).rowcount
    return bool(moved)


def _finish_job_sql(with_exit_code: bool, with_outputs: bool) -> str:
    sets = "status = ?, reason = ?, finished_at = ?"
    if with_exit_code:
        sets += ", exit_code = ?"
    if with_outputs:
        sets += ", outputs = ?"
    unfinished = ", ".join(repr(s) for s in _UNFINISHED)
    return f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({unfinished})"


_FINISH_JOB = {(e, o): _finish_job_sql(e, o) for e in (False, True) for o in (False, True)}


@store_call
def queue_jobs(job_row_ids: Sequence[int], reason: str) -> int:
    """Mark ready jobs QUEUED (held by the concurrency cap) in one statement."""
    if not job_row_ids:
        return 0
    now = fast.naive(utcnow())
    batches = list(chunked(list(job_row_ids), 500))
    queued = 0
    with transaction() if len(batches) > 1 else single_statement():
        for batch in batches:
            params = (JobStatus.QUEUED.value, reason, now, *batch, JobStatus.PENDING.value)
            queued += fast.execute(_queue_jobs(len(batch)), params).rowcount
    return queued


def _queue_jobs(count: int) -> str:
    return (
        "UPDATE jobs SET status = ?, reason = ?, queued_at = COALESCE(queued_at, ?) "
        f"WHERE id IN ({fast.marks(count)}) AND status = ?"
    )
