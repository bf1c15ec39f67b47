"""The precompiled hot paths (store/fast.py) against peewee's reading of the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee
import pytest

import store
from store import fast
from store.builds import build_row, record_of
from store.convert import job_record, step_record
from store.db import database, transaction
from store.models import Job, Step
from store.records import JobInit, StepUpdate
from workflow.states import BuildStatus, JobStatus, StepStatus

YAML = "jobs: {}\n"


def test_stored_times_read_back_as_aware_utc() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    assert fast.utc("2026-01-02 03:04:05.000600") == moment
    assert fast.utc("2026-01-02 03:04:05") == moment.replace(microsecond=0)
    assert fast.utc(datetime(2026, 1, 2, 3, 4, 5, 600)) == moment
    assert fast.utc(None) is None
    assert fast.naive(moment) == datetime(2026, 1, 2, 3, 4, 5, 600)


def test_placeholders_follow_the_backend(db: peewee.Database) -> None:
    assert fast.sql("id = ? AND x = ?") == f"id = {db.param} AND x = {db.param}"
    assert fast.value_rows(2, 3) == "(?, ?, ?), (?, ?, ?)"
    assert fast.marks(3) == "?, ?, ?"


def test_records_match_what_peewee_reads(db: peewee.Database) -> None:
    pipe = store.create_pipeline("p", YAML)
    build, _ = store.create_build(pipe.id, workflow_yaml=YAML, inputs={"a": 1}, ref="main",
                                  request_id="r1", triggered_by="me")
    assert store.get_build(build.id) == build
    assert store.create_build(pipe.id, workflow_yaml=YAML, request_id="r1") == (build, False)
    claimed = store.claim_build(build.id, "me", 30)
    assert claimed is not None
    jobs = store.create_jobs(
        build.id, [JobInit("a", "a", "A", matrix={"x": 1}), JobInit("b", "b", "B", needs=("a",))]
    )
    store.start_job(jobs[0].id, [(0, "one"), (1, "two")])
    store.record_steps(jobs[0].id, [StepUpdate(0, "one", StepStatus.SUCCEEDED, "", 0)])
    store.finish_job(jobs[0].id, status=JobStatus.SUCCEEDED, reason="", exit_code=0,
                     outputs={"o": "v"})
    store.queue_jobs([jobs[1].id], "cap")
    cancelled = store.update_job(jobs[1].id, status=JobStatus.CANCELLED, reason="stop")
    finished = store.finish_build(build.id, BuildStatus.FAILED, "b failed")

    with database.connection_context():
        assert finished == record_of(build_row(build.id))
        assert store.get_build(build.id) == finished
        assert claimed.started_at == finished.started_at
        peewee_jobs = [job_record(row) for row in Job.select().order_by(Job.id)]
        peewee_steps = [step_record(row) for row in Step.select().order_by(Step.idx)]
    assert store.list_jobs(build.id) == peewee_jobs
    assert cancelled == peewee_jobs[1] and cancelled.queued_at is not None
    assert jobs == [
        job.__class__(**{**job.__dict__, "status": JobStatus.PENDING, "queued_at": None,
                         "started_at": None, "finished_at": None, "outputs": {},
                         "exit_code": None, "reason": ""})
        for job in peewee_jobs
    ]
    assert store.list_steps([jobs[0].id]) == {jobs[0].id: peewee_steps}
    assert [s.status for s in peewee_steps] == [StepStatus.SUCCEEDED, StepStatus.PENDING]


@pytest.fixture
def old_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SQLite as if older than 3.35: no RETURNING."""
    monkeypatch.setattr(fast, "RETURNING", False)
    store.migrate(store.open_database(f"sqlite:///{tmp_path / 'old.db'}", retry_s=5.0))
    yield
    store.close_database()


@pytest.mark.usefixtures("old_sqlite")
def test_without_returning_the_update_is_reread() -> None:
    pipe = store.create_pipeline("p", YAML)
    build, _ = store.create_build(pipe.id, workflow_yaml=YAML)
    now = datetime.now(UTC)
    claimed = store.claim_build(build.id, "me", 30, now=now)
    assert claimed is not None and claimed.owner == "me"
    assert claimed.status == BuildStatus.RUNNING
    assert claimed.lease_until == now + timedelta(seconds=30)
    assert store.claim_build(build.id, "other", 30, now=now) is None
    assert store.renew_leases("me", [build.id, build.id + 1], 30) == [build.id]
    assert store.renew_leases("other", [build.id], 30) == []
    done = store.finish_build(build.id, BuildStatus.SUCCEEDED, "ok")
    assert done.status == BuildStatus.SUCCEEDED and done.reason == "ok"
    assert store.finish_build(build.id, BuildStatus.FAILED, "late") == done
    with pytest.raises(store.NotFound):
        store.claim_build(build.id + 1, "me", 30)
    (job,) = store.create_jobs(build.id, [JobInit("a", "a", "A")])
    running = store.update_job(job.id, status=JobStatus.RUNNING)
    assert running.status == JobStatus.RUNNING and running.started_at is not None
    assert store.list_jobs(build.id) == [running]


def test_a_single_statement_write_joins_the_callers_transaction(db: peewee.Database) -> None:
    pipe = store.create_pipeline("p", YAML)
    build, _ = store.create_build(pipe.id, workflow_yaml=YAML)
    (job,) = store.create_jobs(build.id, [JobInit("a", "a", "A")])
    with pytest.raises(RuntimeError), database.connection_context(), transaction():
        assert store.finish_job(job.id, status=JobStatus.FAILED, reason="boom")
        raise RuntimeError("rolled back")
    assert store.list_jobs(build.id) == [job]
    assert store.finish_job(job.id, status=JobStatus.FAILED, reason="boom")
    assert store.list_jobs(build.id)[0].status == JobStatus.FAILED
