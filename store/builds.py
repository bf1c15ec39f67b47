"""Builds: creation with their workflow snapshot, queries, the outbox flag, the end."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import peewee

from store import fast
from store.convert import build_record, dump_json
from store.db import single_statement, store_call, transaction, utcnow
from store.errors import Conflict, JobsStillRunning, LimitReached, NotFound
from store.models import Build, Pipeline, PipelineMember
from store.records import BuildRecord
from workflow.states import BuildStatus, JobStatus, build_can_move

_CREATE_ATTEMPTS = 5
CANCELLED_BEFORE_START = "cancelled before it started"


def builds_query() -> Any:
    """Builds joined with their pipeline's name (records need it)."""
    return Build.select(Build, Pipeline.id, Pipeline.name).join(Pipeline)


def build_row(build_id: int) -> Build:
    """The build row with its pipeline's name joined; `NotFound` when missing."""
    row = builds_query().where(Build.id == build_id).first()
    if row is None:
        raise NotFound(f"no build with id {build_id}")
    return cast(Build, row)


def record_of(row: Build) -> BuildRecord:
    return build_record(row, row.pipeline.name)


_GET_BUILD = (
    f"SELECT {fast.BUILD_COLUMNS}, pipelines.name FROM builds "
    "JOIN pipelines ON pipelines.id = builds.pipeline_id WHERE builds.id = ?"
)


def fetch_build(build_id: int) -> BuildRecord:
    """The build's record, read with precompiled SQL; `NotFound` when missing."""
    row = fast.execute(_GET_BUILD, (build_id,)).fetchone()
    if row is None:
        raise NotFound(f"no build with id {build_id}")
    return fast.build_from_row(row)


@store_call
def create_build(
    pipeline_id: int,
    *,
    ref: str = "",
    sha: str = "",
    inputs: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    triggered_by: str = "",
    workflow_yaml: str,
    max_queued: int | None = None,
) -> tuple[BuildRecord, bool]:
    """Insert a QUEUED build with the next number of its pipeline and its snapshot.

    With a ``request_id`` already used on this pipeline, returns that build and False
    (a client retry); otherwise the new build and True. With ``max_queued``, a pipeline
    that already has that many QUEUED builds gets `LimitReached` instead.
    """
    inputs_json = dump_json(dict(inputs or {}), "build inputs")
    if request_id is not None and not request_id:
        raise ValueError("request_id must be None or a non-empty string")
    # FOR UPDATE serialises numbering per pipeline; SQLite's BEGIN IMMEDIATE already
    # serialises every writer.
    lock = "" if fast.sqlite() else " FOR UPDATE"
    for _ in range(_CREATE_ATTEMPTS):
        try:
            now = utcnow()
            with transaction():
                pipe = fast.execute(_PIPELINE + lock, (pipeline_id,)).fetchone()
                if pipe is None:
                    raise NotFound(f"no pipeline with id {pipeline_id}")
                if request_id is not None:
                    existing = fast.execute(_BY_REQUEST, (pipeline_id, request_id)).fetchone()
                    if existing is not None:
                        return fast.build_from_row(existing), False
                if max_queued is not None:
                    check_queued(pipeline_id, str(pipe[1]), max_queued)
                last = fast.execute(_LAST_NUMBER, (pipeline_id,)).fetchone()[0]
                number = (last or 0) + 1
                params = (pipeline_id, number, BuildStatus.QUEUED.value, ref, sha, inputs_json,
                          request_id, triggered_by, False, False, fast.naive(now))
                if fast.sqlite():
                    build_id = int(fast.execute(_INSERT_BUILD, params).lastrowid)
                else:
                    build_id = int(fast.execute(_INSERT_BUILD + " RETURNING id", params)
                                   .fetchone()[0])
                fast.execute(_INSERT_SNAPSHOT, (build_id, workflow_yaml))
            # What the row holds, without reading it back.
            record = BuildRecord(
                id=build_id, pipeline_id=pipeline_id, pipeline_name=pipe[1], number=number,
                status=BuildStatus.QUEUED, ref=ref, sha=sha, inputs=json.loads(inputs_json),
                request_id=request_id, triggered_by=triggered_by, created_at=now,
            )
            return record, True
        except peewee.IntegrityError:
            continue  # a concurrent insert took the number or the request id: look again
    raise Conflict(
        f"could not create a build of pipeline {pipeline_id}: "
        f"{_CREATE_ATTEMPTS} attempts collided with concurrent builds"
    )


_PIPELINE = "SELECT id, name FROM pipelines WHERE id = ?"
_BY_REQUEST = (
    f"SELECT {fast.BUILD_COLUMNS}, pipelines.name FROM builds "
    "JOIN pipelines ON pipelines.id = builds.pipeline_id "
    "WHERE builds.pipeline_id = ? AND builds.request_id = ?"
)
_LAST_NUMBER = "SELECT MAX(number) FROM builds WHERE pipeline_id = ?"
_INSERT_BUILD = (
    "INSERT INTO builds (pipeline_id, number, status, reason, ref, sha, inputs, request_id, "
    "triggered_by, attempt, published, cancel_requested, created_at) "
    "VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, 1, ?, ?, ?)"
)
_INSERT_SNAPSHOT = "INSERT INTO build_snapshots (build_id, workflow_yaml) VALUES (?, ?)"


def check_queued(pipeline_id: int, pipeline_name: str, max_queued: int) -> None:
    """`LimitReached` when the pipeline has ``max_queued`` QUEUED builds (in a transaction)."""
    queued = (
        Build.select()
        .where((Build.pipeline == pipeline_id) & (Build.status == BuildStatus.QUEUED.value))
        .count()
    )
    if queued >= max_queued:
        raise LimitReached(
            f"pipeline {pipeline_name!r} has {queued} builds waiting to start, the limit is "
            f"{max_queued}: wait for some to start, or cancel some"
        )


@store_call
def get_build(build_id: int) -> BuildRecord:
    """A build by id; `NotFound` when there is none."""
    return fetch_build(build_id)


@store_call
def list_builds(
    *,
    pipeline_id: int | None = None,
    status: BuildStatus | None = None,
    triggered_by: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
    member_id: int | None = None,
) -> list[BuildRecord]:
    """Builds newest first, filtered; page on with ``before_id`` = the last id seen.

    ``member_id``: only builds of pipelines that user is a member of.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    query = builds_query()
    if member_id is not None:
        query = query.join(
            PipelineMember, on=(PipelineMember.pipeline == Pipeline.id)
        ).where(PipelineMember.user == member_id)
    if pipeline_id is not None:
        query = query.where(Build.pipeline == pipeline_id)
    if status is not None:
        query = query.where(Build.status == BuildStatus(status).value)
    if triggered_by is not None:
        query = query.where(Build.triggered_by == triggered_by)
    if before_id is not None:
        query = query.where(Build.id < before_id)
    return [record_of(row) for row in query.order_by(Build.id.desc()).limit(limit)]


@store_call
def get_snapshot(build_id: int) -> str:
    """The workflow YAML as it was when the build was created."""
    row = fast.execute(_GET_SNAPSHOT, (build_id,)).fetchone()
    if row is None:
        raise NotFound(f"no workflow snapshot for build {build_id}")
    return str(row[0])


_GET_SNAPSHOT = "SELECT workflow_yaml FROM build_snapshots WHERE build_id = ?"


@store_call
def mark_published(build_id: int) -> None:
    """Record that the broker confirmed the build's BuildJob message (the outbox)."""
    with single_statement():
        if not fast.execute(_MARK_PUBLISHED, (True, build_id)).rowcount:
            raise NotFound(f"no build with id {build_id}")


_MARK_PUBLISHED = "UPDATE builds SET published = ? WHERE id = ?"


@store_call
def claim_unpublished(
    older_than_s: float, claim_s: float, limit: int = 100, *, now: datetime | None = None
) -> list[tuple[int, int]]:
    """Claim the re-publishing of QUEUED builds whose message was never confirmed (created
    over ``older_than_s`` ago) for ``claim_s`` seconds: (build id, attempt) of each.

    Two reconcilers calling at once get disjoint sets, so a build is re-published once;
    a claimer that dies before `mark_published` leaves the build to the next claim after
    ``claim_s``. One statement: SKIP LOCKED on PostgreSQL (the outer conditions are
    re-checked on a row another claimer just changed), SQLite's single writer elsewhere.
    """
    if claim_s <= 0:
        raise ValueError(f"claim_s must be > 0, got {claim_s}")
    moment = fast.naive(now or utcnow())
    cutoff = moment - timedelta(seconds=older_than_s)
    until = moment + timedelta(seconds=claim_s)
    update, reread = _claim_unpublished_sql(fast.sqlite())
    params = (until, cutoff, moment, limit, moment)
    with single_statement():
        rows = fast.update_returning(update, "id, attempt", params, reread, (until,))
    return sorted((int(row[0]), int(row[1])) for row in rows)


_UNPUBLISHED = (
    f"status = '{BuildStatus.QUEUED.value}' AND published = {{false}} "
    "AND (republish_after IS NULL OR republish_after < ?)"
)


def _claim_unpublished_sql(lite: bool) -> tuple[str, str]:
    false = "0" if lite else "false"
    unpublished = _UNPUBLISHED.format(false=false)
    lock = "" if lite else " FOR UPDATE SKIP LOCKED"
    update = (
        "UPDATE builds SET republish_after = ? WHERE id IN (SELECT id FROM builds WHERE "
        f"created_at < ? AND {unpublished} ORDER BY id LIMIT ?{lock}) AND {unpublished}"
    )
    # Without RETURNING (SQLite < 3.35): the rows just stamped with this claim's deadline.
    reread = "SELECT id, attempt FROM builds WHERE republish_after = ?"
    return update, reread


@store_call
def finish_build(
    build_id: int, status: BuildStatus, reason: str, *, settled: bool = False
) -> BuildRecord:
    """Move a build to a terminal ``status`` with a human ``reason``.

    A build that is already terminal is returned unchanged (terminal states are sticky:
    a late or repeated finish never rewrites the result). A move the state machine
    forbids (QUEUED → SUCCEEDED) is a `Conflict`. With ``settled``, the build is final
    only when no attempt of any of its jobs is QUEUED or RUNNING (in the same statement):
    `JobsStillRunning` otherwise — someone else runs part of the build.
    """
    target = BuildStatus(status)
    if not target.terminal:
        raise ValueError(f"finish_build needs a terminal status, got {target.value}")
    update, reread = _finish_build_sql(target, settled)
    params = (target.value, reason, fast.naive(utcnow()), build_id)
    with single_statement():
        moved = fast.update_returning(update, _RETURN_BUILD, params, reread, (build_id,))
    if moved:
        return fast.build_from_row(moved[0])
    record = fetch_build(build_id)
    if record.status.terminal:
        return record
    if settled:
        running = fast.execute(_RUNNING_ATTEMPTS, (build_id,)).fetchall()
        if running:
            attempts = ", ".join(f"'{key}' attempt {attempt}" for key, attempt in running[:5])
            raise JobsStillRunning(
                f"build {build_id} cannot be {target.value}: job {attempts} still running")
    raise Conflict(
        f"build {build_id} cannot move from {record.status.value} to {target.value}"
    )


_RETURN_BUILD = f"{fast.BUILD_COLUMNS}, {fast.PIPELINE_NAME}"
_UNSETTLED = f"{JobStatus.QUEUED.value!r}, {JobStatus.RUNNING.value!r}"
_RUNNING_ATTEMPTS = (
    f'SELECT "key", attempt FROM jobs WHERE build_id = ? AND status IN ({_UNSETTLED}) '
    'ORDER BY "key", attempt'
)


def _finish_build_sql(target: BuildStatus, settled: bool) -> tuple[str, str]:
    """(the guarded UPDATE, the re-read of what it changed) moving a build to ``target``."""
    sources = [s.value for s in BuildStatus if not s.terminal and build_can_move(s, target)]
    update = (
        "UPDATE builds SET status = ?, reason = ?, finished_at = ? "
        f"WHERE id = ? AND status IN ({', '.join(repr(s) for s in sources)})"
    )
    if settled:
        update += (" AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.build_id = builds.id "
                   f"AND jobs.status IN ({_UNSETTLED}))")
    return update, f"SELECT {_RETURN_BUILD} FROM builds WHERE id = ?"


@store_call
def request_cancel(build_id: int) -> BuildRecord:
    """Ask for a build to stop: a QUEUED build is CANCELLED at once, a RUNNING one is
    flagged for its owner; a finished build is returned unchanged."""
    with transaction():
        Build.update(
            status=BuildStatus.CANCELLED.value,
            reason=CANCELLED_BEFORE_START,
            finished_at=utcnow(),
            cancel_requested=True,
        ).where((Build.id == build_id) & (Build.status == BuildStatus.QUEUED.value)).execute()
        Build.update(cancel_requested=True).where(
            (Build.id == build_id) & (Build.status == BuildStatus.RUNNING.value)
        ).execute()
        return record_of(build_row(build_id))
