"""Builds through a real channel: start, list (filters, pages), cancel, retry, logs, watch."""

from __future__ import annotations

import threading

import grpc

import store
from conveyor.v1 import common_pb2, executor_pb2
from conveyor.v1 import pipeline_pb2 as pb
from store.records import LogChunkInit
from tests.api.conftest import MAX_QUEUED, MAX_STREAMS, WORKFLOW, Api, finished_build, pipeline
from tests.rpc.helpers import call_error, field_violations, take_builds
from workflow.states import BuildStatus, JobStatus


def test_start_checks_inputs_records_the_caller_and_dedupes_request_ids(api: Api) -> None:
    pipeline("web", "alice", {"dev": "developer"})
    dev = api.client("dev")
    build = dev.pipelines.StartPipelineBuild(pb.StartPipelineBuildRequest(
        pipeline="web", ref="refs/heads/main", sha="abc", inputs={"target": "prod"},
        request_id="r1")).build
    assert (build.triggered_by, build.ref, build.sha, dict(build.inputs)) == (
        "dev", "refs/heads/main", "abc", {"target": "prod"})
    again = dev.pipelines.StartPipelineBuild(pb.StartPipelineBuildRequest(
        pipeline="web", request_id="r1")).build
    assert again.id == build.id
    (body,) = take_builds(api.queue, 1)
    assert executor_pb2.BuildJob.FromString(body) == executor_pb2.BuildJob(build_id=build.id,
                                                                          attempt=1)
    error = call_error(lambda: dev.pipelines.StartPipelineBuild(pb.StartPipelineBuildRequest(
        pipeline="web", inputs={"target": "moon", "extra": "1"})))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in field_violations(error)}
    assert {"inputs.target", "inputs.extra"} <= fields


def test_list_builds_filters_and_pages(api: Api) -> None:
    web = pipeline("web", "alice", {"dev": "developer"})
    api_id = pipeline("api", "dev")
    for _ in range(3):
        finished_build(web, triggered_by="alice")
    for _ in range(2):
        store.create_build(web, workflow_yaml=WORKFLOW, triggered_by="dev")
    store.create_build(api_id, workflow_yaml=WORKFLOW, triggered_by="dev")
    alice = api.client("alice")

    def ids(client: object, **filters: object) -> list[int]:
        seen: list[int] = []
        token = ""
        while True:
            page = client.pipelines.ListBuilds(  # type: ignore[attr-defined]
                pb.ListBuildsRequest(page_size=2, page_token=token, **filters))
            seen.extend(b.id for b in page.builds)
            token = page.next_page_token
            if not token:
                return seen

    everything = ids(api.client("root"))
    assert everything == sorted(everything, reverse=True) and len(everything) == 6
    assert len(ids(alice)) == 5  # not the pipeline she cannot see
    assert len(ids(alice, pipeline="web", status=common_pb2.BUILD_STATUS_FAILED)) == 3
    assert len(ids(alice, triggered_by="dev")) == 2
    assert len(ids(api.client("dev"), triggered_by="dev")) == 3
    assert len(ids(alice, status=common_pb2.BUILD_STATUS_QUEUED, triggered_by="alice")) == 0
    error = call_error(lambda: alice.pipelines.ListBuilds(pb.ListBuildsRequest(pipeline="api")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_retry_requeues_a_new_attempt_of_only_the_failed_jobs(api: Api) -> None:
    web = pipeline("web", "alice", {"dev": "developer"})
    build_id = finished_build(web)
    dev = api.client("dev")
    retried = dev.pipelines.RetryBuild(pb.RetryBuildRequest(build_id=build_id)).build
    assert (retried.status, retried.attempt, retried.reason) == (
        common_pb2.BUILD_STATUS_QUEUED, 2, "")
    assert {j.key: (j.status, j.attempt) for j in retried.jobs} == {
        "build": (common_pb2.JOB_STATUS_PENDING, 2), "test": (common_pb2.JOB_STATUS_PENDING, 2)}
    (body,) = take_builds(api.queue, 1)
    assert executor_pb2.BuildJob.FromString(body).attempt == 2
    record = store.get_build(build_id)
    assert record.published and record.finished_at is None and record.owner is None
    assert len(store.list_jobs(build_id)) == 4  # the first attempt's rows are kept
    error = call_error(lambda: dev.pipelines.RetryBuild(pb.RetryBuildRequest(
        build_id=build_id)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "QUEUED" in error.details()


def test_retry_keeps_successful_jobs_and_refuses_builds_with_nothing_to_rerun(api: Api) -> None:
    web = pipeline("web", "alice")
    alice = api.client("alice")
    ok = finished_build(web, BuildStatus.SUCCEEDED)
    error = call_error(lambda: alice.pipelines.RetryBuild(pb.RetryBuildRequest(build_id=ok)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no failed or cancelled jobs" in error.details()
    # build succeeded, test failed: only test runs again, build keeps its row and outputs.
    build, _ = store.create_build(web, workflow_yaml=WORKFLOW)
    store.claim_build(build.id, "x", 30)
    first, second = store.create_jobs(build.id, [
        store.JobInit(key="build", job_id="build", name="build"),
        store.JobInit(key="test", job_id="test", name="test", needs=("build",))])
    store.update_job(first.id, status=JobStatus.RUNNING)
    store.update_job(first.id, status=JobStatus.SUCCEEDED, outputs={"v": "1"})
    store.update_job(second.id, status=JobStatus.RUNNING)
    store.update_job(second.id, status=JobStatus.FAILED)
    store.finish_build(build.id, BuildStatus.FAILED, "x")
    retried = alice.pipelines.RetryBuild(pb.RetryBuildRequest(build_id=build.id)).build
    jobs = {j.key: j for j in retried.jobs}
    assert (jobs["build"].id, jobs["build"].attempt, dict(jobs["build"].outputs)) == (
        first.id, 1, {"v": "1"})
    assert (jobs["test"].status, jobs["test"].attempt) == (common_pb2.JOB_STATUS_PENDING, 2)


def test_retry_respects_the_queued_limit_and_start_too(api: Api) -> None:
    web = pipeline("web", "alice")
    failed = finished_build(web)
    for _ in range(MAX_QUEUED):
        store.create_build(web, workflow_yaml=WORKFLOW)
    alice = api.client("alice")
    before = store.get_build(failed)
    error = call_error(lambda: alice.pipelines.RetryBuild(pb.RetryBuildRequest(build_id=failed)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"the limit is {MAX_QUEUED}" in error.details()
    assert store.get_build(failed) == before and len(store.list_jobs(failed)) == 2
    error = call_error(lambda: alice.pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline="web")))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_cancel_a_queued_build(api: Api) -> None:
    web = pipeline("web", "alice")
    build, _ = store.create_build(web, workflow_yaml=WORKFLOW)
    cancelled = api.client("alice").pipelines.CancelBuild(
        pb.CancelBuildRequest(build_id=build.id)).build
    assert cancelled.status == common_pb2.BUILD_STATUS_CANCELLED


def _logs(api: Api, build_id: int) -> tuple[int, int]:
    first, second = store.list_jobs(build_id)
    store.append_log_chunks([
        LogChunkInit(first.id, 1, tuple(f"b{i}" for i in range(1, 6))),
        LogChunkInit(second.id, 1, ("t1", "t2")),
    ])
    return first.id, second.id


def test_stream_logs_resumes_from_a_line_without_gaps_or_duplicates(api: Api) -> None:
    web = pipeline("web", "alice", {"viewer": "viewer"})
    build_id = finished_build(web)
    _logs(api, build_id)
    viewer = api.client("viewer")

    def lines(**kwargs: object) -> list[tuple[str, int, str]]:
        call = viewer.pipelines.StreamBuildLogs(pb.StreamBuildLogsRequest(
            build_id=build_id, **kwargs))
        return [(line.job_key, line.number, line.text) for m in call for line in m.lines]

    everything = lines()
    assert [t for key, _, t in everything if key == "build"] == ["b1", "b2", "b3", "b4", "b5"]
    assert lines(job_key="build", from_line=4) == [("build", 4, "b4"), ("build", 5, "b5")]
    head = lines(job_key="build")[:2]
    rest = lines(job_key="build", from_line=head[-1][1] + 1)
    assert [n for _, n, _ in head + rest] == [1, 2, 3, 4, 5]
    assert lines(job_key="build", follow=True) == lines(job_key="build")  # finished: ends
    error = call_error(lambda: lines(job_key="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "'build'" in error.details()


def test_follow_and_watch_see_changes_and_streams_per_user_are_bounded(api: Api) -> None:
    web = pipeline("web", "alice")
    build, _ = store.create_build(web, workflow_yaml=WORKFLOW)
    alice = api.client("alice")
    watch = alice.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build.id))
    first = next(watch)
    assert first.build.status == common_pb2.BUILD_STATUS_QUEUED
    held = [alice.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build.id))
            for _ in range(MAX_STREAMS - 1)]
    for call in held:
        next(call)  # each is open on the server now
    error = call_error(lambda: next(alice.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build.id, follow=True))))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"the limit is {MAX_STREAMS}" in error.details()
    for call in held:
        call.cancel()
    # Another user is not affected by alice's streams.
    assert next(api.client("root").pipelines.WatchBuild(
        pb.WatchBuildRequest(build_id=build.id))).build.id == build.id

    statuses: list[int] = []
    done = threading.Event()

    def follow() -> None:
        statuses.extend(m.build.status for m in watch)
        done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    store.claim_build(build.id, "x", 30)
    api.feed.publish(build.id)
    store.finish_build(build.id, BuildStatus.ERROR, "boom")
    api.feed.publish(build.id)
    assert done.wait(10)
    thread.join()
    assert statuses[-1] == common_pb2.BUILD_STATUS_ERROR
    assert statuses == sorted(set(statuses), key=statuses.index)  # no repeats
