"""AdminService: what the operator console shows (live actors, runtime facts)."""

from __future__ import annotations

from collections.abc import Callable

from conveyor.v1 import admin_pb2, admin_pb2_grpc
from observability.description import ActorDescription, RuntimeInfo
from rpc import convert


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        describe_actors: Callable[[], list[ActorDescription]],
        runtime_info: Callable[[], RuntimeInfo],
    ) -> None:
        self._describe_actors = describe_actors
        self._runtime_info = runtime_info

    def ListActors(
        self, request: admin_pb2.ListActorsRequest, context: object
    ) -> admin_pb2.ListActorsResponse:
        actors = sorted(self._describe_actors(), key=lambda a: (a.kind, a.key))
        return admin_pb2.ListActorsResponse(actors=[convert.actor_info(a) for a in actors])

    def GetRuntimeInfo(
        self, request: admin_pb2.GetRuntimeInfoRequest, context: object
    ) -> admin_pb2.GetRuntimeInfoResponse:
        return convert.runtime_info(self._runtime_info())
