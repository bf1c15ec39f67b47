"""Server assembly: health, reflection, admin, the interceptor on odd handlers, the client."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

import store
from conveyor.v1 import admin_pb2
from observability.description import ActorDescription, RuntimeInfo
from rpc import server as rpc_server
from rpc import tokens
from rpc.admin_service import AdminServicer
from rpc.auth import Authenticator
from rpc.client import connect
from rpc.interceptor import INTERNAL_MESSAGE
from tests.rpc.conftest import ACTORS, RUNTIME, Stack
from tests.rpc.helpers import call_error


def _health(port: int, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service)).status


def test_health_reports_each_registered_service_and_not_serving_on_shutdown(
    stack: Stack,
) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    assert _health(stack.pipeline_port, "") == serving
    assert _health(stack.pipeline_port, rpc_server.PIPELINE_SERVICE) == serving
    assert _health(stack.executor_port, rpc_server.EXECUTOR_SERVICE) == serving
    assert _health(stack.executor_port, rpc_server.ADMIN_SERVICE) == serving
    error = call_error(lambda: _health(stack.pipeline_port, rpc_server.EXECUTOR_SERVICE))
    assert error.code() == grpc.StatusCode.NOT_FOUND

    rpc_server.set_not_serving(stack.pipeline_server)
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert _health(stack.pipeline_port, "") == not_serving
    assert _health(stack.pipeline_port, rpc_server.PIPELINE_SERVICE) == not_serving


def test_reflection_lists_services_and_describes_methods(stack: Stack) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{stack.pipeline_port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert services == {
            rpc_server.PIPELINE_SERVICE,
            rpc_server.IDENTITY_SERVICE,
            rpc_server.HEALTH_SERVICE,
            "grpc.reflection.v1alpha.ServerReflection",
        }
        pool = DescriptorPool(database)
        service = pool.FindServiceByName(rpc_server.PIPELINE_SERVICE)
        method = service.methods_by_name["StreamBuildLogs"]
        assert method.output_type.full_name == "conveyor.v1.StreamBuildLogsResponse"
        assert method.server_streaming
    with grpc.insecure_channel(f"127.0.0.1:{stack.executor_port}") as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {rpc_server.EXECUTOR_SERVICE, rpc_server.ADMIN_SERVICE} <= services
        assert rpc_server.PIPELINE_SERVICE not in services


def test_admin_lists_actors_and_runtime_info(stack: Stack) -> None:
    with connect(f"127.0.0.1:{stack.executor_port}", stack.admin_token) as client:
        actors = client.admin.ListActors(admin_pb2.ListActorsRequest()).actors
        info = client.admin.GetRuntimeInfo(admin_pb2.GetRuntimeInfoRequest())
    assert [(a.kind, a.key) for a in actors] == sorted((a.kind, a.key) for a in ACTORS)
    build_actor = next(a for a in actors if a.kind == "BuildActor")
    assert dict(build_actor.counters) == {"jobs_started": 2} and build_actor.build_id == 7
    assert (info.role, info.executor_id, info.jobs_running) == ("all", "exec-1", 2)
    assert info.uptime_seconds == pytest.approx(RUNTIME.uptime_seconds)


class _RecordingAdmin(AdminServicer):
    """Records the metadata of each call; ListActors fails unexpectedly on demand."""

    def __init__(self) -> None:
        super().__init__(self._actors, self._runtime)
        self.metadata: list[dict[str, str]] = []
        self.explode = False

    def _actors(self) -> list[ActorDescription]:
        if self.explode:
            raise RuntimeError("secret internals")
        return []

    def _runtime(self) -> RuntimeInfo:
        return RUNTIME

    def GetRuntimeInfo(
        self, request: admin_pb2.GetRuntimeInfoRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetRuntimeInfoResponse:
        self.metadata.append(dict(context.invocation_metadata()))
        if self.explode:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted by the handler")
        return super().GetRuntimeInfo(request, context)


ADMIN_TOKEN = tokens.new_token()


@pytest.fixture
def admin_only(database: None) -> Iterator[tuple[_RecordingAdmin, int]]:
    store.bootstrap_admin("root", tokens.token_hash(ADMIN_TOKEN))
    admin = _RecordingAdmin()
    server, port = rpc_server.build_server(
        address="127.0.0.1:0", pipeline=None, executor=None, admin=admin, max_workers=2,
        auth=Authenticator(store, tokens.new_token()),
    )
    server.start()
    try:
        yield admin, port
    finally:
        rpc_server.stop_server(server, grace=0)


def test_client_sends_the_bearer_token(admin_only: tuple[_RecordingAdmin, int]) -> None:
    admin, port = admin_only
    with connect(f"127.0.0.1:{port}", token=ADMIN_TOKEN) as client:
        client.admin.GetRuntimeInfo(admin_pb2.GetRuntimeInfoRequest())
    with connect(f"127.0.0.1:{port}") as client:
        error = call_error(lambda: client.admin.GetRuntimeInfo(admin_pb2.GetRuntimeInfoRequest()))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    # The call without a token never reached the servicer.
    assert [m["authorization"] for m in admin.metadata] == [f"Bearer {ADMIN_TOKEN}"]


def test_unexpected_errors_are_internal_and_aborts_keep_their_status(
    admin_only: tuple[_RecordingAdmin, int],
) -> None:
    admin, port = admin_only
    admin.explode = True
    with connect(f"127.0.0.1:{port}", ADMIN_TOKEN) as client:
        error = call_error(lambda: client.admin.ListActors(admin_pb2.ListActorsRequest()))
        assert error.code() == grpc.StatusCode.INTERNAL
        assert error.details() == INTERNAL_MESSAGE
        error = call_error(
            lambda: client.admin.GetRuntimeInfo(admin_pb2.GetRuntimeInfoRequest())
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.details() == "aborted by the handler"


def test_build_server_needs_a_service_and_a_free_port(
    admin_only: tuple[_RecordingAdmin, int],
) -> None:
    auth = Authenticator(store, tokens.new_token())
    with pytest.raises(ValueError, match="at least one"):
        rpc_server.build_server(address="127.0.0.1:0", pipeline=None, executor=None, admin=None,
                                auth=auth)
    _, port = admin_only
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        rpc_server.build_server(
            address=f"127.0.0.1:{port}", pipeline=None, executor=None, admin=_RecordingAdmin(),
            auth=auth,
        )
