"""StreamBuildLogs and WatchBuild through a real channel, the store written directly."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

import store
from conveyor.v1 import common_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc.build_streams import LOG_BATCH
from store.records import JobInit, JobRecord, LogChunkInit
from tests.rpc.conftest import WORKFLOW, Stack
from tests.rpc.helpers import call_error
from workflow.states import BuildStatus, JobStatus


@pytest.fixture
def running(stack: Stack) -> tuple[int, list[JobRecord]]:
    """A RUNNING build of the demo workflow with its two job rows."""
    stack.client.pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name="web", workflow_yaml=WORKFLOW)
    )
    build = stack.client.pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline="web")
    ).build
    assert store.claim_build(build.id, "exec-1", 60.0) is not None
    jobs = store.create_jobs(
        build.id,
        [JobInit(key="build", job_id="build", name="build"),
         JobInit(key="test", job_id="test", name="test", needs=("build",))],
    )
    return build.id, jobs


def _write(stack: Stack, build_id: int, job: JobRecord, first: int, last: int) -> None:
    lines = tuple(f"{job.key} line {n}" for n in range(first, last + 1))
    store.append_log_chunks([LogChunkInit(job.id, first, lines)])
    stack.feed.publish(build_id)


def _finish(stack: Stack, build_id: int, jobs: list[JobRecord]) -> None:
    for job in jobs:
        store.update_job(job.id, status=JobStatus.RUNNING)
        store.update_job(job.id, status=JobStatus.SUCCEEDED, exit_code=0)
    store.finish_build(build_id, BuildStatus.SUCCEEDED, "all jobs succeeded")
    stack.feed.publish(build_id)


def _numbers(responses: Iterator[pb.StreamBuildLogsResponse]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for response in responses:
        assert 0 < len(response.lines) <= LOG_BATCH
        for line in response.lines:
            assert line.text == f"{line.job_key} line {line.number}"
            seen.setdefault(line.job_key, []).append(line.number)
    return seen


def test_logs_of_every_job_in_batches_and_from_a_line(
    stack: Stack, running: tuple[int, list[JobRecord]]
) -> None:
    build_id, (build_job, test_job) = running
    for first in range(1, 2501, 700):
        _write(stack, build_id, build_job, first, min(first + 699, 2500))
    _write(stack, build_id, test_job, 1, 3)

    everything = _numbers(stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id)
    ))
    assert everything == {"build": list(range(1, 2501)), "test": [1, 2, 3]}

    resumed = _numbers(stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id, from_line=1200)
    ))
    assert resumed == {"build": list(range(1200, 2501))}

    one = _numbers(stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id, job_key="test", from_line=2)
    ))
    assert one == {"test": [2, 3]}


def test_follow_streams_new_lines_and_ends_when_the_build_finishes(
    stack: Stack, running: tuple[int, list[JobRecord]]
) -> None:
    build_id, jobs = running
    build_job = jobs[0]
    _write(stack, build_id, build_job, 1, 3)
    stream = stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id, follow=True), timeout=30
    )
    received: list[int] = []
    first = next(stream)
    received.extend(line.number for line in first.lines)
    assert received == [1, 2, 3]

    _write(stack, build_id, build_job, 4, 6)
    received.extend(line.number for line in next(stream).lines)
    assert received == [1, 2, 3, 4, 5, 6]

    _write(stack, build_id, build_job, 7, 8)
    _finish(stack, build_id, jobs)
    for response in stream:  # ends by itself: the build is finished and drained
        received.extend(line.number for line in response.lines)
    assert received == list(range(1, 9))
    assert stream.code() == grpc.StatusCode.OK

    resumed = _numbers(stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id, from_line=5, follow=True), timeout=30
    ))
    assert resumed == {"build": [5, 6, 7, 8]}


def test_follow_ends_when_the_client_cancels(
    stack: Stack, running: tuple[int, list[JobRecord]]
) -> None:
    build_id, jobs = running
    _write(stack, build_id, jobs[0], 1, 1)
    stream = stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id, follow=True), timeout=30
    )
    assert [line.number for line in next(stream).lines] == [1]
    stream.cancel()
    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert caught.value.code() == grpc.StatusCode.CANCELLED


def test_unknown_job_key_or_build_is_not_found(
    stack: Stack, running: tuple[int, list[JobRecord]]
) -> None:
    build_id, _ = running
    for request in (
        pb.StreamBuildLogsRequest(build_id=build_id, job_key="tset", follow=True),
        pb.StreamBuildLogsRequest(build_id=build_id + 10),
    ):
        error = call_error(
            lambda r=request: list(stack.client.pipelines.StreamBuildLogs(r, timeout=30))
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
    error = call_error(
        lambda: list(stack.client.pipelines.StreamBuildLogs(
            pb.StreamBuildLogsRequest(build_id=build_id, job_key="tset")
        ))
    )
    assert "'build', 'test'" in (error.details() or "")


def test_watch_build_sends_each_change_and_ends_after_the_terminal_one(
    stack: Stack, running: tuple[int, list[JobRecord]]
) -> None:
    build_id, jobs = running
    stream = stack.client.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build_id), timeout=30)
    first = next(stream).build
    assert first.status == common_pb2.BUILD_STATUS_RUNNING
    assert [j.status for j in first.jobs] == [common_pb2.JOB_STATUS_PENDING] * 2

    store.update_job(jobs[0].id, status=JobStatus.RUNNING)
    stack.feed.publish(build_id)
    second = next(stream).build
    assert second.jobs[0].status == common_pb2.JOB_STATUS_RUNNING

    _finish(stack, build_id, jobs)
    rest = [r.build for r in stream]
    assert rest, "the terminal state must be sent"
    assert rest[-1].status == common_pb2.BUILD_STATUS_SUCCEEDED
    assert all(j.status == common_pb2.JOB_STATUS_SUCCEEDED for j in rest[-1].jobs)
    assert stream.code() == grpc.StatusCode.OK


def test_watch_works_without_feed_notifications(
    stack: Stack, running: tuple[int, list[JobRecord]]
) -> None:
    """Another process writes the database: only polling can see it."""
    build_id, _ = running
    stream = stack.client.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build_id), timeout=30)
    assert next(stream).build.status == common_pb2.BUILD_STATUS_RUNNING
    store.finish_build(build_id, BuildStatus.FAILED, "job 'build' failed")
    (last,) = [r.build for r in stream]
    assert last.status == common_pb2.BUILD_STATUS_FAILED and last.reason == "job 'build' failed"


def test_watch_unknown_build_is_not_found(stack: Stack) -> None:
    error = call_error(
        lambda: list(stack.client.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=999)))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_follow_stops_reading_jobs_that_finished_and_were_drained(
    stack: Stack, running: tuple[int, list[JobRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    build_id, (build_job, test_job) = running
    _write(stack, build_id, build_job, 1, 2)
    store.update_job(build_job.id, status=JobStatus.RUNNING)
    store.update_job(build_job.id, status=JobStatus.SUCCEEDED, exit_code=0)
    reads: list[tuple[int, ...]] = []
    real_read = store.read_logs

    def counting_read(job_row_ids: list[int], from_line: int = 1, limit: int = 10_000,
                      max_bytes: int | None = None) -> object:
        reads.append(tuple(job_row_ids))
        return real_read(job_row_ids, from_line=from_line, limit=limit, max_bytes=max_bytes)

    monkeypatch.setattr(store, "read_logs", counting_read)
    stream = stack.client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build_id, follow=True), timeout=30
    )
    assert [(x.job_key, x.number) for x in next(stream).lines] == [("build", 1), ("build", 2)]
    for first in (1, 2):
        _write(stack, build_id, test_job, first, first)
        assert [(x.job_key, x.number) for x in next(stream).lines] == [("test", first)]
    _finish(stack, build_id, [test_job])
    assert list(stream) == []
    assert reads.count((build_job.id,)) == 1
    assert reads.count((test_job.id,)) >= 2
