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
from conveyor.v1 import common_pb2
from rpc import errors
from rpc.convert import workflow_error
from store.errors import Conflict, InvalidState, LimitReached, NotFound, StoreUnavailable
from workflow.errors import WorkflowInvalid, dropped_count

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

# A status travels in trailers, which C-core clients (the CLI too) refuse past 16 KiB and
# may refuse past 8 KiB: grpc-message (percent-encoded) plus grpc-status-details-bin
# (base64 of the whole Status, message included) must stay well under that.
MAX_MESSAGE_BYTES = 1024  # encoded, as sent in grpc-message
MAX_STATUS_BYTES = 4096  # the serialized Status: about 5.5 KiB in base64
MAX_FIELD_CHARS = 200
MAX_DESCRIPTION_CHARS = 500

def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _violation(field: str, description: str) -> error_details_pb2.BadRequest.FieldViolation:
    return error_details_pb2.BadRequest.FieldViolation(
        field=_clip(field, MAX_FIELD_CHARS), description=_clip(description,
                                                               MAX_DESCRIPTION_CHARS))


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def _encoded_size(text: str) -> int:
    """The length of ``text`` percent-encoded as grpc-message is."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in text.encode("utf-8"))


def _short_message(text: str) -> str:
    if _encoded_size(text) <= MAX_MESSAGE_BYTES:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with its marker
        middle = (low + high + 1) // 2
        if _encoded_size(f"{text[:middle]}… (cut)") <= MAX_MESSAGE_BYTES:
            low = middle
        else:
            high = middle - 1
    return f"{text[:low]}… (cut)"


def _bad_request(code: grpc.StatusCode, message: str, violations: list[tuple[str, str]],
                 *, also_dropped: int = 0, budget: int = MAX_STATUS_BYTES) -> status_pb2.Status:
    """An INVALID_ARGUMENT-like status with as many violations as fit in the trailers; a
    last violation says how many more were left out."""
    status = status_pb2.Status(code=code.value[0], message=_short_message(message))
    detail = error_details_pb2.BadRequest()
    kept = 0
    for field, description in violations:
        detail.field_violations.append(_violation(field, description))
        # Room kept for the note of how many more there were.
        if status.ByteSize() + detail.ByteSize() + 64 > budget:
            del detail.field_violations[-1]
            break
        kept += 1
    left_out = len(violations) - kept + also_dropped
    if left_out:
        detail.field_violations.append(error_details_pb2.BadRequest.FieldViolation(
            field="", description=f"{left_out} more not shown"))
    packed = any_pb2.Any()
    packed.Pack(detail)
    status.details.append(packed)
    return status


def _fit(status: status_pb2.Status) -> status_pb2.Status:
    """A status from elsewhere, cut to fit: the message shortened, details dropped when
    they are too big (the message still says what is wrong)."""
    fitted = status_pb2.Status(code=status.code, message=_short_message(status.message))
    fitted.details.extend(status.details)
    if fitted.ByteSize() > MAX_STATUS_BYTES:
        del fitted.details[:]
    return fitted


def status_for(exc: BaseException, method: str) -> status_pb2.Status:
    """The status a handler's exception becomes (logs the unexpected ones); small enough
    for every client's metadata limits."""
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, WorkflowInvalid):
        real = [e for e in exc.errors if not dropped_count(e)]
        status = _bad_request(
            invalid, f"workflow is invalid: {exc}",
            [(e.path, f"{e.line}:{e.column}: {e.message}") for e in real],
            also_dropped=exc.dropped, budget=MAX_STATUS_BYTES // 2,
        )
        # The same errors with their positions as fields, for clients that show them as
        # file:line:col (the CLI): as many as fit in the other half of the budget.
        shown = 0
        for error in real:
            packed = _packed(workflow_error(error))
            if status.ByteSize() + packed.ByteSize() + 64 > MAX_STATUS_BYTES:
                break
            status.details.append(packed)
            shown += 1
        if shown < len(real) or exc.dropped:
            status.details.append(_packed(common_pb2.WorkflowError(
                message=f"{len(real) - shown + exc.dropped} more errors not shown")))
        return status
    if isinstance(exc, errors.InvalidArgument):
        return _bad_request(invalid, exc.message,
                            [(v.field, v.description) for v in exc.violations])
    for kind, code in _SIMPLE:
        if isinstance(exc, kind):
            return status_pb2.Status(code=code.value[0],
                                     message=_short_message(str(exc) or kind.__name__))
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):
        return _fit(_downstream_status(exc, method))
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
    """Wraps every handler so exceptions leave as gRPC status codes a client can act on
    (INVALID_ARGUMENT with details, NOT_FOUND, PERMISSION_DENIED, …)."""

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
