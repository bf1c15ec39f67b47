"""Job rows and steps."""

from __future__ import annotations

import pytest

import store
from store import BuildRecord, JobInit, PipelineRecord
from workflow.states import JobStatus, StepStatus


@pytest.fixture
def build(pipeline: PipelineRecord) -> BuildRecord:
    created, _ = store.create_build(pipeline.id, workflow_yaml="s")
    return created


def test_create_jobs_is_idempotent(build: BuildRecord) -> None:
    inits = [
        JobInit("lint", "lint", "Lint"),
        JobInit("test (3.12)", "test", "test (3.12)", needs=("lint",), matrix={"py": "3.12"}),
    ]
    first = store.create_jobs(build.id, inits)
    assert [j.key for j in first] == ["lint", "test (3.12)"]
    assert all(j.status == JobStatus.PENDING for j in first)
    assert first[1].needs == ("lint",) and dict(first[1].matrix) == {"py": "3.12"}
    store.update_job(first[0].id, status=JobStatus.RUNNING)

    again = store.create_jobs(
        build.id, [*reversed(inits), JobInit("lint", "lint", "Lint", attempt=2)]
    )
    assert [j.id for j in again[:2]] == [first[1].id, first[0].id]
    assert again[1].status == JobStatus.RUNNING  # existing rows come back as stored
    assert again[2].attempt == 2 and again[2].id not in {j.id for j in first}
    assert [j.id for j in store.list_jobs(build.id)] == [first[0].id, first[1].id, again[2].id]
    assert [j.id for j in store.list_jobs(build.id, attempt=2)] == [again[2].id]


def test_create_jobs_rejects_bad_input(build: BuildRecord) -> None:
    with pytest.raises(ValueError, match=r"jobs\[1\] \(key 'a'\).*appears twice"):
        store.create_jobs(build.id, [JobInit("a", "a", "A"), JobInit("a", "a", "A")])
    with pytest.raises(store.NotFound):
        store.create_jobs(build.id + 1, [JobInit("a", "a", "A")])


def test_update_job_records_times_and_results(build: BuildRecord) -> None:
    (job,) = store.create_jobs(build.id, [JobInit("a", "a", "A")])
    queued = store.update_job(job.id, status=JobStatus.QUEUED)
    assert queued.queued_at is not None and queued.started_at is None
    running = store.update_job(job.id, status=JobStatus.RUNNING)
    assert running.started_at is not None and running.finished_at is None
    done = store.update_job(
        job.id, status=JobStatus.FAILED, reason="exit code 2", exit_code=2, outputs={"k": "v"}
    )
    assert (done.status, done.reason, done.exit_code, dict(done.outputs)) == (
        JobStatus.FAILED,
        "exit code 2",
        2,
        {"k": "v"},
    )
    assert done.finished_at is not None and done.started_at == running.started_at


def test_terminal_jobs_are_sticky_and_illegal_moves_conflict(build: BuildRecord) -> None:
    a, b = store.create_jobs(build.id, [JobInit("a", "a", "A"), JobInit("b", "b", "B")])
    with pytest.raises(store.Conflict, match=r"'a'.*from PENDING to SUCCEEDED"):
        store.update_job(a.id, status=JobStatus.SUCCEEDED)
    skipped = store.update_job(a.id, status=JobStatus.SKIPPED, reason="needs 'x' failed")
    assert store.update_job(a.id, status=JobStatus.RUNNING) == skipped
    store.update_job(b.id, status=JobStatus.RUNNING)
    done = store.update_job(b.id, status=JobStatus.SUCCEEDED, exit_code=0)
    assert store.update_job(b.id, status=JobStatus.CANCELLED, reason="late") == done
    with pytest.raises(store.NotFound):
        store.update_job(b.id + 10, status=JobStatus.RUNNING)


def test_steps_upsert_and_stay_terminal(build: BuildRecord) -> None:
    a, b = store.create_jobs(build.id, [JobInit("a", "a", "A"), JobInit("b", "b", "B")])
    running = store.upsert_step(a.id, 0, name="checkout", status=StepStatus.RUNNING)
    assert running.started_at is not None and running.finished_at is None
    done = store.upsert_step(a.id, 0, name="checkout", status=StepStatus.SUCCEEDED, exit_code=0)
    assert done.id == running.id and done.started_at == running.started_at
    assert done.finished_at is not None and done.exit_code == 0
    replayed = store.upsert_step(a.id, 0, name="checkout", status=StepStatus.RUNNING)
    assert replayed == done
    store.upsert_step(
        a.id, 1, name="test", status=StepStatus.FAILED, exit_code=1, reason="exit code 1"
    )
    steps = store.list_steps([a.id, b.id])
    assert [s.index for s in steps[a.id]] == [0, 1] and steps[b.id] == []
    assert steps[a.id][1].status == StepStatus.FAILED
    with pytest.raises(store.NotFound):
        store.upsert_step(b.id + 10, 0, name="x", status=StepStatus.RUNNING)
