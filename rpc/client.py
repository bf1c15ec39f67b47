"""A typed client for the three Conveyor services over one channel."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import grpc

from conveyor.v1 import admin_pb2_grpc, executor_pb2_grpc, identity_pb2_grpc, pipeline_pb2_grpc

MAX_RECEIVE_BYTES = 16 * 1024 * 1024  # matches the server's send limit


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._header]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)


class Client:
    """Stubs ``pipelines``, ``identity``, ``executor``, ``admin`` on one channel; close()
    when done."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.pipelines = pipeline_pb2_grpc.PipelineServiceStub(channel)
        self.identity = identity_pb2_grpc.IdentityServiceStub(channel)
        self.executor = executor_pb2_grpc.ExecutorServiceStub(channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(address: str, token: str | None = None) -> Client:
    """A client for ``host:port`` (insecure channel); sends ``token`` as a bearer token."""
    channel = grpc.insecure_channel(
        address, options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
    )
    if token:
        channel = grpc.intercept_channel(channel, BearerToken(token))  # close() passes through
    return Client(channel)

