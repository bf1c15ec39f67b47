"""ExecutorService: creates builds (row + workflow snapshot) for the pipeline service."""

from __future__ import annotations

from conveyor.v1 import executor_pb2, executor_pb2_grpc
from rpc.build_view import build_message
from rpc.errors import InvalidArgument
from rpc.ports import StoreApi


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    """Thin: protobuf → store → protobuf. Errors are mapped by ``rpc.interceptor``."""

    def __init__(self, store_api: StoreApi, *, max_queued_per_pipeline: int | None = None) -> None:
        self._store = store_api
        self._max_queued = max_queued_per_pipeline

    def CreateBuild(
        self, request: executor_pb2.CreateBuildRequest, context: object
    ) -> executor_pb2.CreateBuildResponse:
        if request.pipeline_id <= 0:
            raise InvalidArgument(
                "pipeline_id", f"must be a positive id, got {request.pipeline_id}"
            )
        # The snapshot is what the pipeline holds now: later edits never change this build.
        pipeline = self._store.get_pipeline(request.pipeline_id)
        record, created = self._store.create_build(
            pipeline.id,
            ref=request.ref,
            sha=request.sha,
            inputs=dict(request.inputs),
            request_id=request.request_id or None,
            triggered_by=request.triggered_by,
            workflow_yaml=pipeline.workflow_yaml,
            max_queued=self._max_queued,
        )
        return executor_pb2.CreateBuildResponse(
            build=build_message(self._store, record),
            created=created,
            published=record.published,
        )
