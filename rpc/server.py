"""Server assembly: servicers + health + reflection behind the gatekeeper (authentication
and admission by lanes) and the error interceptor."""

from __future__ import annotations

import dataclasses
import weakref
from concurrent import futures
from dataclasses import dataclass

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
from rpc.admission import Admission, Limits
from rpc.auth import Authenticator
from rpc.executor_service import ExecutorServicer
from rpc.gatekeeper import Gatekeeper, Pools
from rpc.identity_service import IdentityServicer
from rpc.interceptor import ErrorInterceptor
from rpc.pipeline_service import PipelineServicer
from rpc.receive_deadline import Watchdog
from runtime_config import ListenFailed

MAX_RECEIVE_BYTES = 4 * 1024 * 1024
MAX_SEND_BYTES = 16 * 1024 * 1024  # a build with many jobs and steps is still one message

PIPELINE_SERVICE = pipeline_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name
EXECUTOR_SERVICE = executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@dataclass(frozen=True)
class _Parts:
    health: health.HealthServicer
    admission: Admission
    pools: Pools
    watchdog: Watchdog


# What stop_server() and saturation() need of the servers built here.
_PARTS: weakref.WeakKeyDictionary[grpc.Server, _Parts] = weakref.WeakKeyDictionary()


def build_server(
    *,
    address: str,
    pipeline: PipelineServicer | None,
    executor: ExecutorServicer | None,
    admin: AdminServicer | None,
    auth: Authenticator,
    max_workers: int = 32,
    limits: Limits | None = None,
) -> tuple[grpc.Server, int]:
    """A server bound to ``address`` (call ``start()``), and the port it got.

    ``address`` is ``host:port``; port 0 picks a free one. Each given servicer is
    registered, with health (SERVING per service and overall) and reflection; with the
    pipeline service comes IdentityService. Every call is authenticated by ``auth``
    (``rpc.auth``: health and reflection stay open) when it arrives, then admitted to its
    lane (``rpc.admission``) or refused with RESOURCE_EXHAUSTED: ``limits`` (default:
    ``max_workers`` users' unary calls, the pipeline servicer's streams per user).
    """
    if limits is None:
        limits = Limits(calls=max_workers, calls_per_user=max(1, max_workers // 2))
        if pipeline is not None:
            limits = dataclasses.replace(limits, streams_per_user=pipeline.max_streams_per_user)
    admission = Admission(limits)
    pools = Pools(admission)
    watchdog = Watchdog()
    server = grpc.server(
        # Unused: every admitted call runs on its lane's pool, every refusal on its own.
        futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="grpc-server"),
        # The first is the outermost: it admits; the error interceptor maps what
        # servicers raise.
        interceptors=[Gatekeeper(auth, admission, pools, watchdog), ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            # Without this a second server could bind the same port and share traffic.
            ("grpc.so_reuseport", 0),
        ],
    )
    names: list[str] = []
    if pipeline is not None:
        pipeline_pb2_grpc.add_PipelineServiceServicer_to_server(pipeline, server)
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(
            IdentityServicer(on_revoked=admission.cancel), server)
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

    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        pools.shutdown()
        raise ListenFailed(f"cannot listen on {address} (CONVEYOR_LISTEN): {exc}") from exc
    if port == 0:
        pools.shutdown()
        raise ListenFailed(f"cannot listen on {address} (CONVEYOR_LISTEN)")
    _PARTS[server] = _Parts(checker, admission, pools, watchdog)
    return server, port


def _parts(server: object) -> _Parts | None:
    try:
        return _PARTS.get(server)
    except TypeError:  # not a server at all (cannot be weakly referenced)
        return None


def admission_of(server: grpc.Server) -> Admission | None:
    parts = _parts(server)
    return parts.admission if parts else None


def saturation(server: object) -> str | None:
    """Why ``server`` takes no more users' calls now (a full lane), or None."""
    parts = _parts(server)
    return parts.admission.saturation() if parts else None


def set_not_serving(server: grpc.Server) -> None:
    """Report NOT_SERVING for every service (load balancers stop sending new calls)."""
    parts = _parts(server)
    if parts is not None:
        parts.health.enter_graceful_shutdown()


def stop_server(server: grpc.Server, grace: float = 5.0) -> None:
    """Flip health to NOT_SERVING, then stop: running calls get ``grace`` seconds."""
    set_not_serving(server)
    server.stop(grace).wait()
    parts = _parts(server)
    if parts is not None:
        parts.watchdog.close()
        parts.pools.shutdown()
