"""The outermost server interceptor: authenticate a call when it arrives, then admit it
to its lane (``rpc.admission``) or refuse it at once.

gRPC calls ``intercept_service`` on the thread that accepts calls, with the call's
headers, before any worker thread is involved. Deciding there means:

- a call without a valid token is refused without waiting for its request message and
  without taking a slot (the refusal runs on a small pool of its own and ends at once);
- every admitted call runs on its lane's own threads (gRPC's per-handler
  ``experimental_thread_pool``), so a full lane never blocks another: health checks and
  instance admins are served while users' lanes are full;
- every admitted call must send its request within the lane's receive timeout (a
  ``receive_deadline.Watchdog`` ends it otherwise), so idle clients give slots back.

Unary handlers are therefore served as request-streaming ones: the request is read here,
with a deadline, instead of by gRPC, which would wait for it without one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_status import rpc_status

from rpc.admission import Admission, Choice, Lane, Owner, Ticket
from rpc.auth import Authenticator, Caller, CallerContext, Policy, policy_for
from rpc.errors import PermissionDenied
from rpc.interceptor import status_for
from rpc.receive_deadline import Watchdog

log = logging.getLogger(__name__)

_REFUSAL_THREADS = 2  # refusals never wait for anything: two threads keep up
_SLACK_THREADS = 2  # a released slot's thread may still be finishing its last lines


class Pools:
    """One thread pool per lane, sized to the lane, and one for refusals."""

    def __init__(self, admission: Admission) -> None:
        limits = admission.limits
        self.lanes = {
            lane: futures.ThreadPoolExecutor(
                max_workers=limits.size(lane) + _SLACK_THREADS,
                thread_name_prefix=f"grpc-{lane.name.lower().replace('_', '-')}",
            )
            for lane in Lane
        }
        self.refusals = futures.ThreadPoolExecutor(
            max_workers=_REFUSAL_THREADS, thread_name_prefix="grpc-refusals")

    def shutdown(self) -> None:
        for pool in (*self.lanes.values(), self.refusals):
            pool.shutdown(wait=False, cancel_futures=True)


def _choices(policy: Policy, caller: Caller | None, streaming: bool) -> list[Choice]:
    if policy is Policy.OPEN:
        return [(Lane.OPEN_STREAMS if streaming else Lane.HEALTH, None)]
    if policy is Policy.INTERNAL:
        return [(Lane.INTERNAL, None)]
    assert caller is not None
    users = Lane.STREAMS if streaming else Lane.CALLS
    if caller.is_admin:
        # The admins' own lane first; past it, the users' lane without a per-user bound.
        return [(Lane.ADMIN_STREAMS if streaming else Lane.ADMIN_CALLS, None), (users, None)]
    return [(users, caller.name)]


def _end_call(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """End a call from another thread with a status the client can read."""
    call = getattr(getattr(context, "_rpc_event", None), "call", None)
    if call is not None and hasattr(call, "cancel"):
        # grpc's own call object: cancel with a status (the public cancel() says
        # CANCELLED without a reason).
        call.cancel(code.value[0], details)
    else:
        context.cancel()


class Gatekeeper(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authenticates and admits every call; install it first (outermost)."""

    def __init__(self, authenticator: Authenticator, admission: Admission, pools: Pools,
                 watchdog: Watchdog) -> None:
        self._auth = authenticator
        self._admission = admission
        self._pools = pools
        self._watchdog = watchdog

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        streaming = bool(handler.response_streaming or handler.request_streaming)
        try:
            policy = policy_for(method)
            caller = self._authenticate(method, policy, handler_call_details.invocation_metadata)
            assert policy is not None
            owner = Owner(caller.user_id, caller.token_id) if caller else None
            ticket = self._admission.admit(_choices(policy, caller, streaming), owner)
        except Exception as exc:
            return self._refusal(handler, exc, method)
        timeout = (self._admission.limits.open_receive_timeout_s if policy is Policy.OPEN
                   else self._admission.limits.receive_timeout_s)
        return _Admitted(self, handler, method, caller, ticket, timeout).handler()

    def _authenticate(self, method: str, policy: Policy | None, metadata: Any) -> Caller | None:
        if policy is None:
            raise PermissionDenied(f"{method} is not open to clients")
        if policy is Policy.OPEN:
            return None
        if policy is Policy.INTERNAL:
            self._auth.internal(metadata)
            return None
        caller = self._auth.identify(metadata)
        if policy is Policy.INSTANCE_ADMIN and not caller.is_admin:
            raise PermissionDenied(f"{method} is for instance admins; {caller.name!r} is not one")
        return caller

    def _refusal(self, handler: grpc.RpcMethodHandler, exc: Exception,
                 method: str) -> grpc.RpcMethodHandler:
        status = rpc_status.to_status(status_for(exc, method))

        def refuse(_requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            # Never reads the request: a client that sends none is answered all the same.
            context.abort_with_status(status)

        refuse.experimental_thread_pool = self._pools.refusals  # type: ignore[attr-defined]
        io = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
        if handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse, **io)
        return grpc.stream_unary_rpc_method_handler(refuse, **io)


class _Admitted:
    """The handler of one admitted call: reads its request with a deadline, runs the
    servicer as ``caller`` on the lane's threads, and gives the ticket back."""

    def __init__(self, gate: Gatekeeper, handler: grpc.RpcMethodHandler, method: str,
                 caller: Caller | None, ticket: Ticket, timeout: float) -> None:
        self._gate = gate
        self._handler = handler
        self._method = method
        self._caller = caller
        self._ticket = ticket
        self._timeout = timeout

    def handler(self) -> grpc.RpcMethodHandler:
        h = self._handler
        io = {"request_deserializer": h.request_deserializer,
              "response_serializer": h.response_serializer}
        if h.unary_unary is not None:
            made = grpc.stream_unary_rpc_method_handler(self._unary(h.unary_unary), **io)
        elif h.unary_stream is not None:
            made = grpc.stream_stream_rpc_method_handler(self._stream(h.unary_stream), **io)
        elif h.stream_unary is not None:
            made = grpc.stream_unary_rpc_method_handler(self._pass_unary(h.stream_unary), **io)
        else:
            made = grpc.stream_stream_rpc_method_handler(
                self._pass_stream(h.stream_stream), **io)
        behavior = made.stream_unary or made.stream_stream
        behavior.experimental_thread_pool = self._gate._pools.lanes[self._ticket.lane]
        return made

    def _start(self, context: grpc.ServicerContext) -> CallerContext:
        ticket = self._ticket
        # Also when the call ends before its body runs (a client gone meanwhile).
        if not context.add_callback(ticket.release):
            ticket.release()
        ticket.on_cancel(lambda: _end_call(
            context, grpc.StatusCode.UNAUTHENTICATED,
            "the token of this call was revoked or its user disabled"))
        if self._caller is not None:
            self._gate._auth.touch(self._caller)
        return CallerContext(context, self._caller, ticket)

    def _receive(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        timeout = self._timeout
        alarm = self._gate._watchdog.arm(timeout, lambda: _end_call(
            context, grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no request message came within {timeout:g}s of the call's start"))
        try:
            return next(requests)
        except StopIteration:
            # What gRPC itself answers a unary call without its message.
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          f"{self._method} takes exactly one request message; none came")
        except grpc.RpcError:
            # Ended by the client, or by the alarm: the status is on its way already.
            context.abort(grpc.StatusCode.CANCELLED, "the call ended before its request")
        finally:
            self._gate._watchdog.disarm(alarm)
        raise AssertionError("unreachable: abort raises")

    def _unary(self, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            try:
                wrapped = self._start(context)
                return behavior(self._receive(requests, context), wrapped)
            finally:
                self._ticket.release()

        return handle

    def _stream(
        self, behavior: Callable[[Any, Any], Iterator[Any]],
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            # Started here, not in the generator: its body may never run.
            return self._streaming(
                lambda wrapped: behavior(self._receive(requests, context), wrapped), context)

        return handle

    def _streaming(self, body: Callable[[CallerContext], Iterator[Any]],
                   context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            wrapped = self._start(context)
        except BaseException:
            self._ticket.release()
            raise
        return self._released_after(body, wrapped)

    def _released_after(self, body: Callable[[CallerContext], Iterator[Any]],
                        wrapped: CallerContext) -> Iterator[Any]:
        try:
            yield from body(wrapped)
        finally:
            self._ticket.release()

    def _pass_unary(self, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            try:
                return behavior(requests, self._start(context))
            finally:
                self._ticket.release()

        return handle

    def _pass_stream(
        self, behavior: Callable[[Any, Any], Iterator[Any]],
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            return self._streaming(lambda wrapped: behavior(requests, wrapped), context)

        return handle
