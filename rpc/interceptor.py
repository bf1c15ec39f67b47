"""The one server interceptor: domain exceptions become gRPC statuses with details.

Servicers raise (``store.NotFound``, ``WorkflowInvalid``, ``rpc.errors.*``...); this maps
each to its status code with a message a person can act on and, for bad input,
``google.rpc.BadRequest`` field violations. Anything unexpected becomes INTERNAL with a
generic message while the traceback is logged with the method name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from broker.base import BrokerError
from rpc import errors
from rpc.convert import workflow_error
from store.errors import Conflict, InvalidState, LimitReached, NotFound, StoreUnavailable
from workflow.errors import WorkflowInvalid

log = logging.getLogger(__name__)

# Statuses from a downstream call (the executor service) that describe the caller's
# request, so they are passed on unchanged.
_PASS_THROUGH = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
_DOWNSTREAM_UNAVAILABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)

_SIMPLE: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidState, grpc.StatusCode.FAILED_PRECONDITION),
    (LimitReached, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
    (BrokerError, grpc.StatusCode.UNAVAILABLE),
)

INTERNAL_MESSAGE = "internal error; the server logged the details"


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _bad_request(violations: list[tuple[str, str]]) -> any_pb2.Any:
    return _packed(error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in violations
        ]
    ))


def status_for(exc: BaseException, method: str) -> status_pb2.Status:
    """The status a handler's exception becomes (logs the unexpected ones)."""
    if isinstance(exc, WorkflowInvalid):
        return status_pb2.Status(
            code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
            message=f"workflow is invalid: {exc}",
            details=[
                _bad_request(
                    [(e.path, f"{e.line}:{e.column}: {e.message}") for e in exc.errors]
                ),
                # The same errors with their positions as fields, for clients that show
                # them as file:line:col (the CLI).
                *(_packed(workflow_error(e)) for e in exc.errors),
            ],
        )
    if isinstance(exc, errors.InvalidArgument):
        return status_pb2.Status(
            code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
            message=exc.message,
            details=[_bad_request([(v.field, v.description) for v in exc.violations])],
        )
    for kind, code in _SIMPLE:
        if isinstance(exc, kind):
            return status_pb2.Status(code=code.value[0], message=str(exc) or kind.__name__)
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):
        return _downstream_status(exc, method)
    log.error("unexpected error in %s", method, exc_info=exc)
    return status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=INTERNAL_MESSAGE)


def _downstream_status(call: grpc.Call, method: str) -> status_pb2.Status:
    code = call.code()
    if code in _PASS_THROUGH:
        rich = rpc_status.from_call(call)
        if rich is not None:
            return rich
        return status_pb2.Status(code=code.value[0], message=call.details() or "")
    if code in _DOWNSTREAM_UNAVAILABLE:
        return status_pb2.Status(
            code=grpc.StatusCode.UNAVAILABLE.value[0],
            message=f"a service this call needs is unavailable: {call.details()}",
        )
    log.error("downstream call failed in %s: %s %s", method, code, call.details())
    return status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=INTERNAL_MESSAGE)


def _abort(exc: Exception, context: grpc.ServicerContext, method: str) -> None:
    """Turn ``exc`` into the RPC's status; re-raises when the handler aborted already."""
    if context.code() not in (None, grpc.StatusCode.OK):
        raise exc  # the handler called context.abort() itself: keep its status
    status = status_for(exc, method)
    context.abort_with_status(rpc_status.to_status(status))


def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any], method: str) -> Any:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(request, context)
        except Exception as exc:
            _abort(exc, context, method)
            raise  # unreachable: abort raises

    return handle


def _streaming(
    behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str
) -> Any:
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(request, context)
        except Exception as exc:
            _abort(exc, context, method)
            raise

    return handle


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler so exceptions leave as the status codes DESIGN.md §9 names."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        io = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, method), **io)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(handler.unary_stream, method), **io
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, method), **io)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _streaming(handler.stream_stream, method), **io
            )
        return handler
