"""Builds: numbering, request ids, snapshots, the outbox, sticky terminal states."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import peewee
import pytest

import store
from store import BuildRecord, JobInit, PipelineRecord
from workflow.states import BuildStatus, JobStatus


def _build(pipeline: PipelineRecord, **kwargs: object) -> BuildRecord:
    build, created = store.create_build(pipeline.id, workflow_yaml="snap", **kwargs)  # type: ignore[arg-type]
    assert created
    return build


def test_builds_are_numbered_per_pipeline(pipeline: PipelineRecord) -> None:
    other = store.create_pipeline("other", "y")
    assert [_build(pipeline).number for _ in range(3)] == [1, 2, 3]
    assert _build(other).number == 1
    build = _build(pipeline, ref="refs/heads/main", sha="abc", inputs={"n": 1}, triggered_by="al")
    assert (build.number, build.status, build.pipeline_name) == (4, BuildStatus.QUEUED, "demo")
    assert (build.ref, build.sha, dict(build.inputs), build.triggered_by) == (
        "refs/heads/main",
        "abc",
        {"n": 1},
        "al",
    )
    assert store.get_build(build.id) == build


def test_concurrent_creates_get_distinct_consecutive_numbers(pipeline: PipelineRecord) -> None:
    def create(_: int) -> int:
        return _build(pipeline).number

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(create, range(30)))
    assert sorted(numbers) == list(range(1, 31))


def test_request_id_returns_the_first_build(pipeline: PipelineRecord) -> None:
    first, created = store.create_build(pipeline.id, workflow_yaml="a", request_id="req-1")
    again, created_again = store.create_build(pipeline.id, workflow_yaml="b", request_id="req-1")
    assert created and not created_again
    assert again == first
    assert store.get_snapshot(first.id) == "a"
    other = store.create_pipeline("other", "y")
    elsewhere, created_elsewhere = store.create_build(
        other.id, workflow_yaml="c", request_id="req-1"
    )
    assert created_elsewhere and elsewhere.id != first.id


def test_concurrent_retries_with_one_request_id_make_one_build(pipeline: PipelineRecord) -> None:
    def create(_: int) -> tuple[int, bool]:
        build, created = store.create_build(pipeline.id, workflow_yaml="s", request_id="same")
        return build.id, created

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(create, range(8)))
    assert len({build_id for build_id, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1


def test_snapshot_survives_pipeline_edits(pipeline: PipelineRecord) -> None:
    build, _ = store.create_build(pipeline.id, workflow_yaml=pipeline.workflow_yaml)
    store.update_pipeline(pipeline.name, workflow_yaml="changed")
    assert store.get_snapshot(build.id) == pipeline.workflow_yaml
    with pytest.raises(store.NotFound):
        store.get_snapshot(build.id + 100)


def test_unknown_pipeline_or_build_is_not_found(db: peewee.Database) -> None:
    with pytest.raises(store.NotFound, match="no pipeline with id 99"):
        store.create_build(99, workflow_yaml="x")
    with pytest.raises(store.NotFound, match="no build with id 99"):
        store.get_build(99)


def test_list_builds_filters_and_pages_newest_first(pipeline: PipelineRecord) -> None:
    other = store.create_pipeline("other", "y")
    mine = [_build(pipeline, triggered_by="al") for _ in range(3)]
    theirs = _build(other, triggered_by="bo")
    store.request_cancel(mine[0].id)
    assert [b.id for b in store.list_builds()] == [theirs.id, *[b.id for b in reversed(mine)]]
    assert [b.id for b in store.list_builds(pipeline_id=pipeline.id, limit=2)] == [
        mine[2].id,
        mine[1].id,
    ]
    assert [b.id for b in store.list_builds(pipeline_id=pipeline.id, before_id=mine[1].id)] == [
        mine[0].id
    ]
    assert [b.id for b in store.list_builds(status=BuildStatus.CANCELLED)] == [mine[0].id]
    assert [b.id for b in store.list_builds(triggered_by="bo")] == [theirs.id]


def test_outbox_claims_unpublished_queued_builds(pipeline: PipelineRecord) -> None:
    waiting, published, cancelled = (_build(pipeline) for _ in range(3))
    store.mark_published(published.id)
    store.request_cancel(cancelled.id)
    assert store.claim_unpublished(older_than_s=3600, claim_s=60) == []
    assert store.claim_unpublished(older_than_s=0, claim_s=60) == [(waiting.id, 1)]
    assert store.claim_unpublished(older_than_s=0, claim_s=60) == []  # claimed: not again
    assert store.get_build(published.id).published
    with pytest.raises(store.NotFound):
        store.mark_published(published.id + 100)
    with pytest.raises(ValueError, match="claim_s"):
        store.claim_unpublished(older_than_s=0, claim_s=0)


def test_a_claim_on_the_outbox_runs_out(pipeline: PipelineRecord) -> None:
    # A reconciler that claimed and died before publishing leaves the build to the next.
    build = _build(pipeline)
    assert store.claim_unpublished(older_than_s=0, claim_s=5) == [(build.id, 1)]
    later = store.utcnow() + timedelta(seconds=6)
    assert store.claim_unpublished(older_than_s=0, claim_s=5, now=later) == [(build.id, 1)]
    store.mark_published(build.id)
    much_later = later + timedelta(seconds=60)
    assert store.claim_unpublished(older_than_s=0, claim_s=5, now=much_later) == []


def test_two_reconcilers_claim_disjoint_outbox_rows(pipeline: PipelineRecord) -> None:
    ids = {_build(pipeline).id for _ in range(30)}
    claimed: list[list[tuple[int, int]]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        claimed = list(pool.map(
            lambda _: store.claim_unpublished(older_than_s=0, claim_s=60, limit=10), range(6)))
    flat = [build_id for rows in claimed for build_id, _ in rows]
    assert len(flat) == len(set(flat)) == len(ids), claimed
    assert set(flat) == ids


def test_a_build_is_final_only_when_no_attempt_of_its_jobs_runs(
        pipeline: PipelineRecord) -> None:
    build = _build(pipeline)
    assert store.claim_build(build.id, "ex-1", 30) is not None
    first, = store.create_jobs(build.id, [JobInit("a", "a", "a", (), {}, 1)])
    store.update_job(first.id, status=JobStatus.FAILED, reason="executor lost", finished=True)
    second, = store.create_jobs(build.id, [JobInit("a", "a", "a", (), {}, 2)])
    assert store.start_job(second.id, [])
    with pytest.raises(store.JobsStillRunning, match="'a' attempt 2 still running"):
        store.finish_build(build.id, BuildStatus.SUCCEEDED, "all jobs succeeded", settled=True)
    assert store.get_build(build.id).status == BuildStatus.RUNNING
    store.finish_job(second.id, status=JobStatus.SUCCEEDED, reason="succeeded")
    done = store.finish_build(build.id, BuildStatus.SUCCEEDED, "all jobs succeeded",
                              settled=True)
    assert done.status == BuildStatus.SUCCEEDED
    # Without `settled` (an error, a crash) the build ends whatever its jobs do.
    other = _build(pipeline)
    assert store.claim_build(other.id, "ex-1", 30) is not None
    (row,) = store.create_jobs(other.id, [JobInit("a", "a", "a", (), {}, 1)])
    assert store.start_job(row.id, [])
    assert store.finish_build(other.id, BuildStatus.ERROR, "internal").status == \
        BuildStatus.ERROR


def test_terminal_states_are_sticky(pipeline: PipelineRecord) -> None:
    build = _build(pipeline)
    claimed = store.claim_build(build.id, "ex-1", 30)
    assert claimed is not None
    done = store.finish_build(build.id, BuildStatus.FAILED, "needs 'lint' failed")
    assert (done.status, done.reason) == (BuildStatus.FAILED, "needs 'lint' failed")
    assert done.finished_at is not None
    again = store.finish_build(build.id, BuildStatus.SUCCEEDED, "late")
    assert again == done
    assert store.request_cancel(build.id) == done
    assert store.claim_build(build.id, "ex-1", 30) is None
    assert store.get_build(build.id) == done


def test_finish_rejects_illegal_moves(pipeline: PipelineRecord) -> None:
    build = _build(pipeline)
    with pytest.raises(store.Conflict, match="cannot move from QUEUED to SUCCEEDED"):
        store.finish_build(build.id, BuildStatus.SUCCEEDED, "x")
    with pytest.raises(ValueError, match="terminal status"):
        store.finish_build(build.id, BuildStatus.RUNNING, "x")
    errored = store.finish_build(build.id, BuildStatus.ERROR, "snapshot unreadable")
    assert errored.status == BuildStatus.ERROR


def test_cancel_queued_is_immediate_running_is_flagged(pipeline: PipelineRecord) -> None:
    queued, running = _build(pipeline), _build(pipeline)
    cancelled = store.request_cancel(queued.id)
    assert cancelled.status == BuildStatus.CANCELLED
    assert cancelled.reason == "cancelled before it started"
    assert cancelled.cancel_requested and cancelled.finished_at is not None
    assert store.claim_build(queued.id, "ex-1", 30) is None

    assert store.claim_build(running.id, "ex-1", 30) is not None
    flagged = store.request_cancel(running.id)
    assert flagged.status == BuildStatus.RUNNING and flagged.cancel_requested
