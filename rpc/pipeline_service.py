"""PipelineService: the user-facing API (pipelines, members, builds, logs).

Thin: protobuf → checks → domain → protobuf. The caller was authenticated by
``rpc.auth``; each method checks the caller's role on the pipeline it touches
(``rpc.access``). Every error is raised as a domain exception and mapped to its status
code by ``rpc.interceptor``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc

import store
from broker.base import BrokerError, BuildQueue
from conveyor.v1 import (
    executor_pb2,
    executor_pb2_grpc,
    pipeline_pb2,
    pipeline_pb2_grpc,
)
from rpc import build_streams, convert, paging
from rpc import validation as check
from rpc.access import Access
from rpc.auth import caller_of
from rpc.build_view import build_message
from rpc.errors import FailedPrecondition, InvalidArgument
from rpc.permissions import Action
from rpc.plans import Plans
from rpc.ports import ChangeFeedApi, StoreApi
from runtime_config import MAX_QUEUED_PER_PIPELINE, MAX_STREAMS_PER_USER
from store.members import MemberRecord
from store.records import PipelineRecord
from workflow.errors import WorkflowInvalid

log = logging.getLogger(__name__)

# How long StartPipelineBuild waits for the executor service to create the build.
CREATE_BUILD_TIMEOUT = 30.0
# What a build without a ref builds; set here, in the one place every client's trigger
# passes, so `conveyor trigger`, `conveyor run` and API callers agree (pipelines have no
# default-ref setting yet).
DEFAULT_REF = "refs/heads/main"


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
        max_queued_per_pipeline: int = MAX_QUEUED_PER_PIPELINE,
        max_streams_per_user: int = MAX_STREAMS_PER_USER,
        plans: Plans | None = None,
    ) -> None:
        self._executor = executor
        self._queue = queue
        self._feed = feed
        self._store = store_api
        self._poll = poll_seconds
        self._access = Access(store_api)
        self._max_queued = max_queued_per_pipeline
        self.plans = plans or Plans()
        if max_streams_per_user < 1:
            raise ValueError(f"max_streams_per_user must be >= 1, got {max_streams_per_user}")
        # Enforced when a stream is admitted (rpc.admission), before it takes a thread.
        self.max_streams_per_user = max_streams_per_user

    # -- pipelines -------------------------------------------------------------------

    def CreatePipeline(
        self, request: pipeline_pb2.CreatePipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.CreatePipelineResponse:
        caller = caller_of(context)
        check.check_name(request.name)
        check.check_description(request.description)
        check.check_workflow(request.workflow_yaml, self.plans)
        record = self._store.create_pipeline(
            request.name, request.workflow_yaml, description=request.description,
            admin_id=caller.user_id,
        )
        return pipeline_pb2.CreatePipelineResponse(pipeline=convert.pipeline(record))

    def UpdatePipeline(
        self, request: pipeline_pb2.UpdatePipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.UpdatePipelineResponse:
        check.require("name", request.name)
        pipeline = self._access.pipeline(caller_of(context), request.name, Action.MANAGE)
        _not_archived(pipeline, "update")
        check.check_description(request.description)
        # proto3 strings cannot say "absent": empty means "leave unchanged".
        if request.workflow_yaml:
            check.check_workflow(request.workflow_yaml, self.plans)
        record = self._store.update_pipeline(
            request.name,
            workflow_yaml=request.workflow_yaml or None,
            description=request.description or None,
        )
        return pipeline_pb2.UpdatePipelineResponse(pipeline=convert.pipeline(record))

    def GetPipeline(
        self, request: pipeline_pb2.GetPipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.GetPipelineResponse:
        check.require("name", request.name)
        record = self._access.pipeline(caller_of(context), request.name, Action.READ)
        return pipeline_pb2.GetPipelineResponse(pipeline=convert.pipeline(record))

    def ListPipelines(
        self, request: pipeline_pb2.ListPipelinesRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ListPipelinesResponse:
        caller = caller_of(context)
        size = paging.page_size(request.page_size)
        after = paging.decode("pipelines", request.page_token) or 0
        # One extra row tells whether another page exists without a count query.
        records = self._store.list_pipelines(
            size + 1, after_id=after, member_id=None if caller.is_admin else caller.user_id,
            include_archived=request.show_archived,
        )
        page, token = paging.fill("pipelines", records, size, convert.pipeline)
        return pipeline_pb2.ListPipelinesResponse(pipelines=page, next_page_token=token)

    def ArchivePipeline(
        self, request: pipeline_pb2.ArchivePipelineRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ArchivePipelineResponse:
        check.require("name", request.name)
        self._access.pipeline(caller_of(context), request.name, Action.MANAGE)
        record = self._store.archive_pipeline(request.name)
        return pipeline_pb2.ArchivePipelineResponse(pipeline=convert.pipeline(record))

    def ValidateWorkflow(
        self, request: pipeline_pb2.ValidateWorkflowRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ValidateWorkflowResponse:
        caller_of(context)
        try:
            plan = self.plans.load(request.workflow_yaml)
        except WorkflowInvalid as exc:
            return pipeline_pb2.ValidateWorkflowResponse(
                valid=False, errors=[convert.workflow_error(e) for e in exc.errors]
            )
        return pipeline_pb2.ValidateWorkflowResponse(
            valid=True, job_keys=[j.key for j in plan.jobs]
        )

    # -- members ---------------------------------------------------------------------

    def AddMember(
        self, request: pipeline_pb2.AddMemberRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.AddMemberResponse:
        check.require("pipeline", request.pipeline)
        check.require("user", request.user)
        role = check.role(request.role)
        pipeline = self._access.pipeline(caller_of(context), request.pipeline, Action.MANAGE)
        user = self._store.get_user(request.user)
        member = self._store.set_member(pipeline.id, user.id, role)
        return pipeline_pb2.AddMemberResponse(member=_member(member))

    def RemoveMember(
        self, request: pipeline_pb2.RemoveMemberRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.RemoveMemberResponse:
        check.require("pipeline", request.pipeline)
        check.require("user", request.user)
        pipeline = self._access.pipeline(caller_of(context), request.pipeline, Action.MANAGE)
        user = self._store.get_user(request.user)
        if not self._store.remove_member(pipeline.id, user.id):
            raise store.NotFound(f"{request.user!r} is not a member of {pipeline.name!r}")
        return pipeline_pb2.RemoveMemberResponse()

    def ListMembers(
        self, request: pipeline_pb2.ListMembersRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ListMembersResponse:
        check.require("pipeline", request.pipeline)
        pipeline = self._access.pipeline(caller_of(context), request.pipeline, Action.READ)
        members = self._store.list_members(pipeline.id)
        return pipeline_pb2.ListMembersResponse(members=[_member(m) for m in members])

    # -- builds ----------------------------------------------------------------------

    def StartPipelineBuild(
        self, request: pipeline_pb2.StartPipelineBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.StartPipelineBuildResponse:
        caller = caller_of(context)
        check.require("pipeline", request.pipeline)
        check.check_build_request(request)
        pipeline = self._access.pipeline(caller, request.pipeline, Action.OPERATE)
        _not_archived(pipeline, "trigger")
        check.check_inputs(pipeline, dict(request.inputs), self.plans)
        # Through the real channel even in one process: the executor may be elsewhere.
        created = self._executor.CreateBuild(
            executor_pb2.CreateBuildRequest(
                pipeline_id=pipeline.id,
                ref=request.ref or DEFAULT_REF,
                sha=request.sha,
                inputs=dict(request.inputs),
                request_id=request.request_id,
                triggered_by=caller.name,
            ),
            timeout=CREATE_BUILD_TIMEOUT,
        )
        build = created.build
        if created.created or not created.published:
            self._publish(build.id, build.attempt)
        return pipeline_pb2.StartPipelineBuildResponse(build=build)

    def _publish(self, build_id: int, attempt: int) -> None:
        message = executor_pb2.BuildJob(build_id=build_id, attempt=attempt)
        try:
            self._queue.publish_build(message.SerializeToString())
        except BrokerError:
            # The row stays unpublished; the executor's outbox reconciler publishes it.
            log.warning("build %d: publishing failed; left to the reconciler", build_id,
                        exc_info=True)
            return
        self._store.mark_published(build_id)

    def GetBuild(
        self, request: pipeline_pb2.GetBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.GetBuildResponse:
        check.require_id("build_id", request.build_id)
        record = self._access.build(caller_of(context), request.build_id, Action.READ)
        return pipeline_pb2.GetBuildResponse(build=build_message(self._store, record))

    def ListBuilds(
        self, request: pipeline_pb2.ListBuildsRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.ListBuildsResponse:
        caller = caller_of(context)
        size = paging.page_size(request.page_size)
        before = paging.decode("builds", request.page_token)
        try:
            status = convert.build_status_from_proto(request.status)
        except KeyError:
            raise InvalidArgument("status", f"unknown build status {request.status}") from None
        pipeline_id = None
        if request.pipeline:
            pipeline_id = self._access.pipeline(caller, request.pipeline, Action.READ).id
        records = self._store.list_builds(
            pipeline_id=pipeline_id, status=status,
            triggered_by=request.triggered_by or None, limit=size + 1, before_id=before,
            member_id=None if caller.is_admin or pipeline_id else caller.user_id,
        )
        # Jobs are left out of lists: GetBuild has them.
        page, token = paging.fill("builds", records, size, convert.build)
        return pipeline_pb2.ListBuildsResponse(builds=page, next_page_token=token)

    def CancelBuild(
        self, request: pipeline_pb2.CancelBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.CancelBuildResponse:
        check.require_id("build_id", request.build_id)
        self._access.build(caller_of(context), request.build_id, Action.OPERATE)
        record = self._store.request_cancel(request.build_id)
        control = executor_pb2.Control(
            cancel_build=executor_pb2.CancelBuild(build_id=request.build_id)
        )
        # A failed broadcast surfaces as UNAVAILABLE: the request is recorded, and a
        # retry (idempotent) broadcasts again.
        self._queue.broadcast_control(control.SerializeToString())
        self._feed.publish(request.build_id)
        return pipeline_pb2.CancelBuildResponse(build=build_message(self._store, record))

    def RetryBuild(
        self, request: pipeline_pb2.RetryBuildRequest, context: grpc.ServicerContext
    ) -> pipeline_pb2.RetryBuildResponse:
        check.require_id("build_id", request.build_id)
        build = self._access.build(caller_of(context), request.build_id, Action.OPERATE)
        pipeline = self._store.get_pipeline(build.pipeline_id)
        _not_archived(pipeline, "retry builds of")
        record, _keys = self._store.rerun_build(request.build_id, max_queued=self._max_queued)
        self._publish(record.id, record.attempt)
        self._feed.publish(record.id)
        return pipeline_pb2.RetryBuildResponse(
            build=build_message(self._store, self._store.get_build(record.id))
        )

    def StreamBuildLogs(
        self, request: pipeline_pb2.StreamBuildLogsRequest, context: grpc.ServicerContext
    ) -> Iterator[pipeline_pb2.StreamBuildLogsResponse]:
        caller = caller_of(context)
        check.require_id("build_id", request.build_id)
        if request.from_line < 0:
            raise InvalidArgument("from_line", f"must not be negative, got {request.from_line}")
        self._access.build(caller, request.build_id, Action.READ)
        yield from build_streams.stream_logs(
            self._store, self._feed, request, context.is_active, self._poll
        )

    def WatchBuild(
        self, request: pipeline_pb2.WatchBuildRequest, context: grpc.ServicerContext
    ) -> Iterator[pipeline_pb2.WatchBuildResponse]:
        caller = caller_of(context)
        check.require_id("build_id", request.build_id)
        self._access.build(caller, request.build_id, Action.READ)
        yield from build_streams.watch_build(
            self._store, self._feed, request.build_id, context.is_active, self._poll
        )


def _not_archived(pipeline: PipelineRecord, what: str) -> None:
    if pipeline.archived:
        raise FailedPrecondition(f"pipeline {pipeline.name!r} is archived: cannot {what} it")


def _member(record: MemberRecord) -> pipeline_pb2.Member:
    return pipeline_pb2.Member(user=record.user_name, role=check.ROLE_VALUES[record.role])
