"""Server assembly: servicers + health + reflection behind the one error interceptor."""

from __future__ import annotations

import weakref
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from conveyor.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    executor_pb2,
    executor_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    pipeline_pb2,
    pipeline_pb2_grpc,
)
from rpc.admin_service import AdminServicer
from rpc.auth import Authenticator, AuthInterceptor
from rpc.executor_service import ExecutorServicer
from rpc.identity_service import IdentityServicer
from rpc.interceptor import ErrorInterceptor
from rpc.pipeline_service import PipelineServicer
from runtime_config import ListenFailed

MAX_RECEIVE_BYTES = 4 * 1024 * 1024
MAX_SEND_BYTES = 16 * 1024 * 1024  # a build with many jobs and steps is still one message

PIPELINE_SERVICE = pipeline_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name
EXECUTOR_SERVICE = executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

# Health servicers of the servers built here, so stop_server() can flip them.
_HEALTH: weakref.WeakKeyDictionary[grpc.Server, health.HealthServicer] = (
    weakref.WeakKeyDictionary()
)


def build_server(
    *,
    address: str,
    pipeline: PipelineServicer | None,
    executor: ExecutorServicer | None,
    admin: AdminServicer | None,
    auth: Authenticator,
    max_workers: int = 32,
) -> tuple[grpc.Server, int]:
    """A server bound to ``address`` (call ``start()``), and the port it got.

    ``address`` is ``host:port``; port 0 picks a free one. Each given servicer is
    registered, with health (SERVING per service and overall) and reflection; with the
    pipeline service comes IdentityService. Every call is authenticated by ``auth``
    (``rpc.auth``: health and reflection stay open). Every
    stream holds a worker thread, so calls beyond ``max_workers`` are refused with
    RESOURCE_EXHAUSTED instead of queueing behind never-ending follows.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-server"),
        # The first is the outermost: refusals raised by auth become statuses too.
        interceptors=[ErrorInterceptor(), AuthInterceptor(auth)],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            # Without this a second server could bind the same port and share traffic.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_workers,
    )
    names: list[str] = []
    if pipeline is not None:
        pipeline_pb2_grpc.add_PipelineServiceServicer_to_server(pipeline, server)
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(), server)
        names.extend([PIPELINE_SERVICE, IDENTITY_SERVICE])
    if executor is not None:
        executor_pb2_grpc.add_ExecutorServiceServicer_to_server(executor, server)
        names.append(EXECUTOR_SERVICE)
    if admin is not None:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        names.append(ADMIN_SERVICE)
    if not names:
        raise ValueError("build_server needs at least one of pipeline, executor, admin")

    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    for name in ["", *names]:
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, HEALTH_SERVICE, reflection.SERVICE_NAME], server
    )
    _HEALTH[server] = checker

    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ListenFailed(f"cannot listen on {address} (CONVEYOR_LISTEN): {exc}") from exc
    if port == 0:
        raise ListenFailed(f"cannot listen on {address} (CONVEYOR_LISTEN)")
    return server, port


def set_not_serving(server: grpc.Server) -> None:
    """Report NOT_SERVING for every service (load balancers stop sending new calls)."""
    checker = _HEALTH.get(server)
    if checker is not None:
        checker.enter_graceful_shutdown()


def stop_server(server: grpc.Server, grace: float = 5.0) -> None:
    """Flip health to NOT_SERVING, then stop: running calls get ``grace`` seconds."""
    set_not_serving(server)
    server.stop(grace).wait()
