"""PipelineService: the user-facing API (pipelines, builds, logs).

Thin: protobuf → domain → protobuf. Every error is raised as a domain exception and
mapped to its status code by ``rpc.interceptor``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import grpc

import store
import workflow
from broker.base import BrokerError, BuildQueue
from conveyor.v1 import (
    common_pb2,
    executor_pb2,
    executor_pb2_grpc,
    pipeline_pb2,
    pipeline_pb2_grpc,
)
from rpc import build_streams, convert, paging
from rpc.build_view import build_message, load_build
from rpc.errors import FailedPrecondition, FieldViolation, InvalidArgument
from rpc.ports import ChangeFeedApi, StoreApi
from store.records import PipelineRecord
from workflow.errors import WorkflowInvalid

log = logging.getLogger(__name__)

MAX_NAME = 200
PIPELINE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._/-]{{0,{MAX_NAME - 1}}}")

# How long StartPipelineBuild waits for the executor service to create the build.
CREATE_BUILD_TIMEOUT = 30.0


class PipelineServicer(pipeline_pb2_grpc.PipelineServiceServicer):
    """The pipeline service; ``store_api`` defaults to the ``store`` module."""

    def __init__(
        self,
        executor: executor_pb2_grpc.ExecutorServiceStub,
        queue: BuildQueue,
        feed: ChangeFeedApi,
        *,
        store_api: StoreApi = store,
        poll_seconds: float = build_streams.POLL_SECONDS,
    ) -> None:
        self._executor = executor
        self._queue = queue
        self._feed = feed
        self._store = store_api
        self._poll = poll_seconds

    # -- pipelines -------------------------------------------------------------------

    def CreatePipeline(
        self, request: pipeline_pb2.CreatePipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.CreatePipelineResponse:
        _check_name(request.name)
        _check_workflow(request.workflow_yaml)
        record = self._store.create_pipeline(
            request.name, request.workflow_yaml, description=request.description
        )
        return pipeline_pb2.CreatePipelineResponse(pipeline=convert.pipeline(record))

    def UpdatePipeline(
        self, request: pipeline_pb2.UpdatePipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.UpdatePipelineResponse:
        _require("name", request.name)
        # proto3 strings cannot say "absent": empty means "leave unchanged".
        if request.workflow_yaml:
            _check_workflow(request.workflow_yaml)
        record = self._store.update_pipeline(
            request.name,
            workflow_yaml=request.workflow_yaml or None,
            description=request.description or None,
        )
        return pipeline_pb2.UpdatePipelineResponse(pipeline=convert.pipeline(record))

    def GetPipeline(
        self, request: pipeline_pb2.GetPipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.GetPipelineResponse:
        _require("name", request.name)
        record = self._store.get_pipeline(request.name)
        return pipeline_pb2.GetPipelineResponse(pipeline=convert.pipeline(record))

    def ListPipelines(
        self, request: pipeline_pb2.ListPipelinesRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ListPipelinesResponse:
        size = paging.page_size(request.page_size)
        after = paging.decode("pipelines", request.page_token) or 0
        # One extra row tells whether another page exists without a count query.
        records = self._store.list_pipelines(size + 1, after_id=after)
        page = records[:size]
        token = paging.encode("pipelines", page[-1].id) if len(records) > size else ""
        return pipeline_pb2.ListPipelinesResponse(
            pipelines=[convert.pipeline(r) for r in page], next_page_token=token
        )

    def ValidateWorkflow(
        self, request: pipeline_pb2.ValidateWorkflowRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ValidateWorkflowResponse:
        try:
            plan = workflow.load(request.workflow_yaml)
        except WorkflowInvalid as exc:
            return pipeline_pb2.ValidateWorkflowResponse(
                valid=False, errors=[convert.workflow_error(e) for e in exc.errors]
            )
        return pipeline_pb2.ValidateWorkflowResponse(
            valid=True, job_keys=[j.key for j in plan.jobs]
        )

    # -- builds ----------------------------------------------------------------------

    def StartPipelineBuild(
        self, request: pipeline_pb2.StartPipelineBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.StartPipelineBuildResponse:
        _require("pipeline", request.pipeline)
        pipeline = self._store.get_pipeline(request.pipeline)
        if pipeline.archived:
            raise FailedPrecondition(f"pipeline {pipeline.name!r} is archived")
        _check_inputs(pipeline, dict(request.inputs))
        # Through the real channel even in one process: the executor may be elsewhere.
        created = self._executor.CreateBuild(
            executor_pb2.CreateBuildRequest(
                pipeline_id=pipeline.id,
                ref=request.ref,
                sha=request.sha,
                inputs=dict(request.inputs),
                request_id=request.request_id,
                triggered_by="",  # set from the caller's identity once auth exists
            ),
            timeout=CREATE_BUILD_TIMEOUT,
        )
        build = created.build
        if created.created or not created.published:
            self._publish(build)
        return pipeline_pb2.StartPipelineBuildResponse(build=build)

    def _publish(self, build: common_pb2.Build) -> None:
        message = executor_pb2.BuildJob(build_id=build.id, attempt=build.attempt)
        try:
            self._queue.publish_build(message.SerializeToString())
        except BrokerError:
            # The row stays unpublished; the executor's outbox reconciler publishes it.
            log.warning("build %d: publishing failed; left to the reconciler", build.id,
                        exc_info=True)
            return
        self._store.mark_published(build.id)

    def GetBuild(
        self, request: pipeline_pb2.GetBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.GetBuildResponse:
        _require_id("build_id", request.build_id)
        return pipeline_pb2.GetBuildResponse(build=load_build(self._store, request.build_id))

    def ListBuilds(
        self, request: pipeline_pb2.ListBuildsRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ListBuildsResponse:
        size = paging.page_size(request.page_size)
        before = paging.decode("builds", request.page_token)
        pipeline_id = self._store.get_pipeline(request.pipeline).id if request.pipeline else None
        try:
            status = convert.build_status_from_proto(request.status)
        except KeyError:
            raise InvalidArgument("status", f"unknown build status {request.status}") from None
        records = self._store.list_builds(
            pipeline_id=pipeline_id, status=status, limit=size + 1, before_id=before
        )
        page = records[:size]
        token = paging.encode("builds", page[-1].id) if len(records) > size else ""
        # Jobs are left out of lists: GetBuild has them.
        return pipeline_pb2.ListBuildsResponse(
            builds=[convert.build(r) for r in page], next_page_token=token
        )

    def CancelBuild(
        self, request: pipeline_pb2.CancelBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.CancelBuildResponse:
        _require_id("build_id", request.build_id)
        record = self._store.request_cancel(request.build_id)
        control = executor_pb2.Control(
            cancel_build=executor_pb2.CancelBuild(build_id=request.build_id)
        )
        # A failed broadcast surfaces as UNAVAILABLE: the request is recorded, and a
        # retry (idempotent) broadcasts again.
        self._queue.broadcast_control(control.SerializeToString())
        self._feed.publish(request.build_id)
        return pipeline_pb2.CancelBuildResponse(build=build_message(self._store, record))

    def StreamBuildLogs(
        self, request: pipeline_pb2.StreamBuildLogsRequest, context: grpc.ServicerContext
    ) -> Iterator[pipeline_pb2.StreamBuildLogsResponse]:
        _require_id("build_id", request.build_id)
        if request.from_line < 0:
            raise InvalidArgument("from_line", f"must not be negative, got {request.from_line}")
        yield from build_streams.stream_logs(
            self._store, self._feed, request, context.is_active, self._poll
        )

    def WatchBuild(
        self, request: pipeline_pb2.WatchBuildRequest, context: grpc.ServicerContext
    ) -> Iterator[pipeline_pb2.WatchBuildResponse]:
        _require_id("build_id", request.build_id)
        yield from build_streams.watch_build(
            self._store, self._feed, request.build_id, context.is_active, self._poll
        )


def _require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument(field, "is required")


def _check_name(name: str) -> None:
    if not PIPELINE_NAME.fullmatch(name):
        raise InvalidArgument(
            "name",
            f"{name!r} is not a valid pipeline name: use 1 to {MAX_NAME} letters, digits, "
            "'.', '_', '-' or '/', starting with a letter or digit",
        )


def _require_id(field: str, value: int) -> None:
    if value <= 0:
        raise InvalidArgument(field, f"must be a positive id, got {value}")


def _check_workflow(text: str) -> None:
    if not text.strip():
        raise InvalidArgument("workflow_yaml", "is required")
    found = workflow.validate(text)
    if found:
        raise WorkflowInvalid(found)


def _check_inputs(pipeline: PipelineRecord, given: dict[str, str]) -> None:
    try:
        plan = workflow.load(pipeline.workflow_yaml)
    except WorkflowInvalid as exc:
        # A stored workflow that no longer validates (the rules got stricter).
        raise FailedPrecondition(
            f"pipeline {pipeline.name!r} holds a workflow that is no longer valid ({exc}); "
            "update the pipeline first"
        ) from exc
    try:
        workflow.resolve_inputs(plan, given)
    except WorkflowInvalid as exc:
        raise InvalidArgument.of(
            [FieldViolation(e.path, e.message) for e in exc.errors],
            f"bad inputs for pipeline {pipeline.name!r}: {exc}",
        ) from exc

