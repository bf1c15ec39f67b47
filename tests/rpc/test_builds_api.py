"""Build RPCs: start (idempotent, publishes one BuildJob), get, list, cancel."""

from __future__ import annotations

import grpc
import pytest

import store
from broker.base import BrokerError
from conveyor.v1 import common_pb2, executor_pb2
from conveyor.v1 import pipeline_pb2 as pb
from store.records import JobInit
from tests.rpc.conftest import WORKFLOW, Stack
from tests.rpc.helpers import call_error, control_messages, field_violations, take_builds
from workflow.states import JobStatus, StepStatus


def _pipeline(stack: Stack, name: str = "web") -> None:
    stack.client.pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name=name, workflow_yaml=WORKFLOW)
    )


def _start(stack: Stack, pipeline: str = "web", **kw: object) -> common_pb2.Build:
    request = pb.StartPipelineBuildRequest(pipeline=pipeline, ref="refs/heads/main", **kw)
    return stack.client.pipelines.StartPipelineBuild(request).build


def test_start_creates_a_snapshot_build_and_publishes_one_build_job(stack: Stack) -> None:
    _pipeline(stack)
    build = _start(stack, inputs={"target": "prod"}, sha="abc123")
    assert build.id > 0 and build.number == 1 and build.pipeline_name == "web"
    assert build.status == common_pb2.BUILD_STATUS_QUEUED
    assert build.inputs == {"target": "prod"} and build.sha == "abc123"
    assert list(build.jobs) == []

    (body,) = take_builds(stack.queue, 1)
    assert stack.queue.depth() == 0
    message = executor_pb2.BuildJob.FromString(body)
    assert (message.build_id, message.attempt) == (build.id, 1)
    assert store.get_build(build.id).published

    # Later edits of the pipeline never change the build's workflow.
    stack.client.pipelines.UpdatePipeline(
        pb.UpdatePipelineRequest(name="web", workflow_yaml=WORKFLOW.replace("echo", "printf"))
    )
    assert store.get_snapshot(build.id) == WORKFLOW


def test_request_id_makes_start_idempotent(stack: Stack) -> None:
    _pipeline(stack)
    first = _start(stack, request_id="r-1")
    again = _start(stack, request_id="r-1")
    assert again.id == first.id and again.number == 1
    other = _start(stack, request_id="r-2")
    assert other.id != first.id and other.number == 2
    bodies = take_builds(stack.queue, 2)
    assert sorted(executor_pb2.BuildJob.FromString(b).build_id for b in bodies) == sorted(
        [first.id, other.id]
    )
    assert stack.queue.depth() == 0


def test_failed_publish_leaves_the_build_unpublished_and_a_retry_publishes(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pipeline(stack)

    def broker_down(body: bytes) -> None:
        raise BrokerError("broker unreachable")

    monkeypatch.setattr(stack.queue, "publish_build", broker_down)
    build = _start(stack, request_id="r-1")
    assert build.status == common_pb2.BUILD_STATUS_QUEUED
    assert not store.get_build(build.id).published
    assert stack.queue.depth() == 0

    monkeypatch.undo()
    retried = _start(stack, request_id="r-1")
    assert retried.id == build.id
    assert store.get_build(build.id).published
    take_builds(stack.queue, 1)


def test_bad_inputs_are_invalid_argument_per_input(stack: Stack) -> None:
    _pipeline(stack)
    error = call_error(lambda: _start(stack, inputs={"target": "dev", "colour": "red"}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(field_violations(error))
    assert set(violations) == {"inputs.target", "inputs.colour"}
    assert "staging, prod" in violations["inputs.target"]
    assert store.list_builds() == []
    assert stack.queue.depth() == 0


def test_start_on_unknown_or_missing_pipeline(stack: Stack) -> None:
    error = call_error(lambda: _start(stack, pipeline="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in (error.details() or "")
    error = call_error(lambda: _start(stack, pipeline=""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["pipeline"]


def test_get_build_with_jobs_and_steps(stack: Stack) -> None:
    _pipeline(stack)
    build = _start(stack)
    jobs = store.create_jobs(
        build.id,
        [JobInit(key="build", job_id="build", name="build"),
         JobInit(key="test", job_id="test", name="test", needs=("build",))],
    )
    store.update_job(jobs[0].id, status=JobStatus.RUNNING)
    store.upsert_step(jobs[0].id, 0, name="Run echo build", status=StepStatus.RUNNING)
    got = stack.client.pipelines.GetBuild(pb.GetBuildRequest(build_id=build.id)).build
    assert [j.key for j in got.jobs] == ["build", "test"]
    assert got.jobs[0].status == common_pb2.JOB_STATUS_RUNNING
    assert [s.name for s in got.jobs[0].steps] == ["Run echo build"]
    assert got.jobs[0].steps[0].status == common_pb2.STEP_STATUS_RUNNING
    assert list(got.jobs[1].needs) == ["build"]

    for build_id in (build.id + 100, 0):
        error = call_error(
            lambda b=build_id: stack.client.pipelines.GetBuild(pb.GetBuildRequest(build_id=b))
        )
        expected = grpc.StatusCode.NOT_FOUND if build_id else grpc.StatusCode.INVALID_ARGUMENT
        assert error.code() == expected


def test_list_builds_filters_and_pages_newest_first(stack: Stack) -> None:
    _pipeline(stack, "web")
    _pipeline(stack, "api")
    web = [_start(stack, "web").id for _ in range(3)]
    api = _start(stack, "api").id
    stack.client.pipelines.CancelBuild(pb.CancelBuildRequest(build_id=web[1]))

    seen: list[int] = []
    token = ""
    while True:
        page = stack.client.pipelines.ListBuilds(
            pb.ListBuildsRequest(pipeline="web", page_size=2, page_token=token)
        )
        seen.extend(b.id for b in page.builds)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(web, reverse=True)

    everything = stack.client.pipelines.ListBuilds(pb.ListBuildsRequest())
    assert [b.id for b in everything.builds] == sorted([*web, api], reverse=True)
    cancelled = stack.client.pipelines.ListBuilds(
        pb.ListBuildsRequest(status=common_pb2.BUILD_STATUS_CANCELLED)
    )
    assert [b.id for b in cancelled.builds] == [web[1]]

    error = call_error(
        lambda: stack.client.pipelines.ListBuilds(pb.ListBuildsRequest(pipeline="nope"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = call_error(
        lambda: stack.client.pipelines.ListBuilds(
            pb.ListBuildsRequest(page_token=everything.next_page_token or "eA==")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cancel_build_records_and_broadcasts(stack: Stack) -> None:
    _pipeline(stack)
    build = _start(stack)
    with control_messages(stack.queue) as (received, got):
        cancelled = stack.client.pipelines.CancelBuild(pb.CancelBuildRequest(build_id=build.id))
        assert got.wait(5.0)
    assert cancelled.build.status == common_pb2.BUILD_STATUS_CANCELLED
    (body,) = received
    control = executor_pb2.Control.FromString(body)
    assert control.WhichOneof("action") == "cancel_build"
    assert control.cancel_build.build_id == build.id

    error = call_error(
        lambda: stack.client.pipelines.CancelBuild(pb.CancelBuildRequest(build_id=build.id + 9))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_executor_create_build_directly(stack: Stack) -> None:
    from rpc.client import connect
    from tests.rpc.conftest import INTERNAL_TOKEN

    _pipeline(stack)
    pipeline_id = store.get_pipeline("web").id
    with connect(f"127.0.0.1:{stack.executor_port}", INTERNAL_TOKEN) as executor:
        made = executor.executor.CreateBuild(
            executor_pb2.CreateBuildRequest(pipeline_id=pipeline_id, request_id="x")
        )
        assert made.created and not made.published
        again = executor.executor.CreateBuild(
            executor_pb2.CreateBuildRequest(pipeline_id=pipeline_id, request_id="x")
        )
        assert not again.created and again.build.id == made.build.id
        error = call_error(
            lambda: executor.executor.CreateBuild(
                executor_pb2.CreateBuildRequest(pipeline_id=pipeline_id + 50)
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
    assert stack.queue.depth() == 0  # the executor never publishes: the caller does


def test_start_while_the_executor_service_is_down_is_unavailable(stack: Stack) -> None:
    _pipeline(stack)
    stack.executor_server.stop(0).wait()
    error = call_error(lambda: _start(stack))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "unavailable" in (error.details() or "")
    assert stack.queue.depth() == 0
