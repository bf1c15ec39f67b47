"""Precompiled SQL for the engine's hot store calls, and rows to records without peewee.

Building a peewee query costs far more Python than running it (a joined SELECT ~1 ms,
an UPDATE ~0.3 ms); the engine makes several such calls per job. These statements are
written once with ``?`` placeholders, rendered once per backend (``%s`` on PostgreSQL)
and executed with ``database.execute_sql``. Only hot calls use them: the rest of the
store stays on peewee, which is easier to read and change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from store.convert import load_json
from store.db import backend, database, transaction
from store.records import BuildRecord, JobRecord, StepRecord
from workflow.states import BuildStatus, JobStatus, StepStatus

BUILD_COLUMNS = (
    "builds.id, builds.pipeline_id, builds.number, builds.status, builds.reason, builds.ref, "
    "builds.sha, builds.inputs, builds.request_id, builds.triggered_by, builds.attempt, "
    "builds.owner, builds.lease_until, builds.published, builds.created_at, "
    "builds.started_at, builds.finished_at, builds.cancel_requested"
)
"""The columns `build_from_row` reads, in its order; the pipeline's name follows them."""

PIPELINE_NAME = "(SELECT pipelines.name FROM pipelines WHERE pipelines.id = builds.pipeline_id)"
"""The build's pipeline name as a scalar subquery: usable in SQLite's RETURNING, where a
joined table is not."""

JOB_COLUMNS = (
    'jobs.id, jobs.build_id, jobs."key", jobs.job_id, jobs.name, jobs.status, jobs.reason, '
    "jobs.attempt, jobs.exit_code, jobs.outputs, jobs.matrix, jobs.needs, jobs.created_at, "
    "jobs.queued_at, jobs.started_at, jobs.finished_at"
)

STEP_COLUMNS = (
    'steps.id, steps.job_id, steps."index", steps.name, steps.status, steps.reason, '
    "steps.exit_code, steps.started_at, steps.finished_at"
)


@lru_cache(maxsize=512)
def _render(template: str, param: str) -> str:
    return template if param == "?" else template.replace("?", param)


def sql(template: str) -> str:
    """``template`` (``?`` placeholders, no ``?`` or ``%`` elsewhere) for the open backend."""
    return _render(template, database.param)


def execute(template: str, params: Sequence[Any] = ()) -> Any:
    """Run ``template`` (see `sql`) on the current connection; returns the DB-API cursor."""
    return database.execute_sql(_render(template, database.param), params)


@lru_cache(maxsize=256)
def value_rows(count: int, width: int) -> str:
    """``(?, ?), (?, ?)`` for a VALUES list of ``count`` rows of ``width`` values."""
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


@lru_cache(maxsize=256)
def marks(count: int) -> str:
    """``?, ?, ?`` for an IN list of ``count`` values."""
    return ", ".join("?" * count)


def naive(moment: datetime) -> datetime:
    """A datetime as stored: naive UTC (what `UtcDateTimeField` writes)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def utc(value: Any) -> datetime | None:
    """A stored time (a naive datetime from PostgreSQL, ISO text from SQLite) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), f"not a stored time: {value!r}"
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite() -> bool:
    """Whether the open database is SQLite."""
    return backend() == "sqlite"


def build_from_row(row: Sequence[Any]) -> BuildRecord:
    """A `BuildRecord` from `BUILD_COLUMNS` followed by the pipeline's name."""
    return BuildRecord(
        id=row[0],
        pipeline_id=row[1],
        pipeline_name=row[18],
        number=row[2],
        status=BuildStatus(row[3]),
        reason=row[4],
        ref=row[5],
        sha=row[6],
        inputs=load_json(row[7], {}),
        request_id=row[8],
        triggered_by=row[9],
        attempt=row[10],
        owner=row[11],
        lease_until=utc(row[12]),
        published=bool(row[13]),
        created_at=utc(row[14]),
        started_at=utc(row[15]),
        finished_at=utc(row[16]),
        cancel_requested=bool(row[17]),
    )


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """A `JobRecord` from `JOB_COLUMNS`."""
    return JobRecord(
        id=row[0],
        build_id=row[1],
        key=row[2],
        job_id=row[3],
        name=row[4],
        status=JobStatus(row[5]),
        reason=row[6],
        attempt=row[7],
        exit_code=row[8],
        outputs=load_json(row[9], {}),
        matrix=load_json(row[10], {}),
        needs=tuple(load_json(row[11], [])),
        created_at=utc(row[12]),
        queued_at=utc(row[13]),
        started_at=utc(row[14]),
        finished_at=utc(row[15]),
    )


def step_from_row(row: Sequence[Any]) -> StepRecord:
    """A `StepRecord` from `STEP_COLUMNS`."""
    return StepRecord(
        id=row[0],
        job_id=row[1],
        index=row[2],
        name=row[3],
        status=StepStatus(row[4]),
        reason=row[5],
        exit_code=row[6],
        started_at=utc(row[7]),
        finished_at=utc(row[8]),
    )


RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
"""Whether this SQLite understands ``RETURNING`` (PostgreSQL always does)."""


def update_returning(
    update: str, returning: str, params: Sequence[Any], reread: str, reread_params: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """``update`` ... RETURNING ``returning``: the changed rows in one round trip.

    An SQLite older than 3.35 runs ``update`` and then ``reread`` in one transaction
    instead; ``reread`` selects the same columns of the rows the update changed.
    """
    if RETURNING or not sqlite():
        return list(execute(f"{update} RETURNING {returning}", params).fetchall())
    with transaction():
        if not execute(update, params).rowcount:
            return []
        return list(execute(reread, reread_params).fetchall())


def insert_ignoring(table: str, columns: str, rows: int, width: int) -> str:
    """A multi-row INSERT of ``rows`` rows that skips rows already stored (the same
    semantics as peewee's ``on_conflict_ignore`` on each backend)."""
    return _insert_ignoring(table, columns, rows, width, sqlite())


@lru_cache(maxsize=256)
def _insert_ignoring(table: str, columns: str, rows: int, width: int, lite: bool) -> str:
    values = value_rows(rows, width)
    if lite:
        return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES {values}"
    return f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT DO NOTHING"
