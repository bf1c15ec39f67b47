"""Authentication: bearer tokens checked by a server interceptor, before any servicer.

Which calls need what is one table (`policy_for`), and what is not in it is refused:
- health checking and reflection are open (load balancers, `buf curl` discovery);
- ExecutorService is internal: only the shared internal token (``CONVEYOR_INTERNAL_TOKEN``)
  the pipeline service sends; user tokens are refused there;
- AdminService needs an instance admin;
- PipelineService and IdentityService need a user token; the servicers then check the
  caller's role on the pipeline concerned (``rpc.access``).

The interceptor wraps the handler, so a refusal is raised inside it and the error
interceptor (outside this one) turns it into UNAUTHENTICATED / PERMISSION_DENIED.
The caller reaches the servicer on the context: ``caller_of(context)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import grpc

from rpc import tokens
from rpc.errors import PermissionDenied, Unauthenticated
from store.errors import StoreError
from store.users import TokenRecord, UserRecord

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 60.0
HOW_TO = ("send 'authorization: Bearer <token>' metadata: the CLI's --token or "
          "CONVEYOR_TOKEN (the first admin's token: `conveyor admin bootstrap`; others: "
          "`conveyor token create`)")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user behind the bearer token."""

    user_id: int
    name: str
    is_admin: bool
    token_id: int


class Policy(Enum):
    OPEN = "open"
    INTERNAL = "internal"
    USER = "user"
    INSTANCE_ADMIN = "instance admin"


_SERVICE_POLICY = {
    "grpc.health.v1.Health": Policy.OPEN,
    "grpc.reflection.v1alpha.ServerReflection": Policy.OPEN,
    "grpc.reflection.v1.ServerReflection": Policy.OPEN,
    "conveyor.v1.ExecutorService": Policy.INTERNAL,
    "conveyor.v1.AdminService": Policy.INSTANCE_ADMIN,
    "conveyor.v1.PipelineService": Policy.USER,
    "conveyor.v1.IdentityService": Policy.USER,
}


def policy_for(method: str) -> Policy | None:
    """The policy of ``/package.Service/Method``; None: not allowed at all."""
    service = method.lstrip("/").split("/", 1)[0]
    return _SERVICE_POLICY.get(service)


class TokenStore(Protocol):
    def find_token(self, token_hash: str) -> tuple[TokenRecord, UserRecord] | None: ...

    def touch_token(
        self, token_id: int, *, at: datetime | None = ..., every_s: float = ...
    ) -> bool: ...


class Authenticator:
    """Checks bearer tokens against the store; records their use at most once a minute."""

    def __init__(
        self,
        token_store: TokenStore,
        internal_token: str,
        *,
        touch_every_s: float = TOUCH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not internal_token:
            raise ValueError("the internal token must not be empty")
        self._store = token_store
        self._internal = internal_token
        self._touch_every = touch_every_s
        self._clock = clock
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()

    def user(self, metadata: Any) -> Caller:
        """The caller of a user call; `Unauthenticated` for a missing or bad token."""
        token = _token(metadata)
        if self._is_internal(token):
            raise Unauthenticated("the internal token is for ExecutorService only")
        found = self._store.find_token(tokens.token_hash(token))
        if found is None:
            raise Unauthenticated(f"unknown token: {HOW_TO}")
        record, user = found
        now = datetime.now(UTC)
        if record.revoked_at is not None:
            raise Unauthenticated(
                f"token {record.name!r} of {user.name!r} was revoked at "
                f"{record.revoked_at:%Y-%m-%d %H:%M:%S} UTC; create a new one"
            )
        if record.expires_at is not None and record.expires_at <= now:
            raise Unauthenticated(
                f"token {record.name!r} of {user.name!r} expired at "
                f"{record.expires_at:%Y-%m-%d %H:%M:%S} UTC; create a new one"
            )
        self._touch(record.id)
        return Caller(user.id, user.name, user.is_admin, record.id)

    def internal(self, metadata: Any) -> None:
        """`Unauthenticated` unless the call carries the internal token."""
        if not self._is_internal(_token(metadata)):
            raise Unauthenticated(
                "ExecutorService is internal: only the pipeline service may call it, with "
                "CONVEYOR_INTERNAL_TOKEN"
            )

    def _is_internal(self, token: str) -> bool:
        return tokens.same_secret(token, self._internal)

    def _touch(self, token_id: int) -> None:
        now = self._clock()
        with self._lock:
            last = self._touched.get(token_id)
            if last is not None and now - last < self._touch_every:
                return
            self._touched[token_id] = now
        try:
            self._store.touch_token(token_id, every_s=self._touch_every)
        except StoreError:
            # Bookkeeping only: a request is not refused because it could not be noted.
            log.warning("could not record the use of token %d", token_id, exc_info=True)


def _token(metadata: Any) -> str:
    try:
        token = tokens.bearer(metadata)
    except ValueError as exc:
        raise Unauthenticated(f"{exc}: {HOW_TO}") from None
    if token is None:
        raise Unauthenticated(f"this call needs a token: {HOW_TO}")
    return token


class CallerContext:
    """The servicer context with the authenticated ``caller`` attached."""

    def __init__(self, inner: grpc.ServicerContext, caller: Caller | None) -> None:
        self._inner = inner
        self.caller = caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def caller_of(context: object) -> Caller:
    """The authenticated caller of a call (fails closed without the auth interceptor)."""
    caller = getattr(context, "caller", None)
    if not isinstance(caller, Caller):
        raise Unauthenticated(f"this call needs a token: {HOW_TO}")
    return caller


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call by `policy_for` its method; install inside ErrorInterceptor."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def _check(self, method: str, policy: Policy | None, context: Any) -> CallerContext:
        metadata = context.invocation_metadata()
        if policy is None:
            raise PermissionDenied(f"{method} is not open to clients")
        if policy is Policy.OPEN:
            return CallerContext(context, None)
        if policy is Policy.INTERNAL:
            self._auth.internal(metadata)
            return CallerContext(context, None)
        caller = self._auth.user(metadata)
        if policy is Policy.INSTANCE_ADMIN and not caller.is_admin:
            raise PermissionDenied(f"{method} is for instance admins; {caller.name!r} is not one")
        return CallerContext(context, caller)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        policy = policy_for(method)
        check = self._check

        def unary(behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def handle(request: Any, context: Any) -> Any:
                return behavior(request, check(method, policy, context))

            return handle

        def streaming(
            behavior: Callable[[Any, Any], Iterator[Any]],
        ) -> Callable[[Any, Any], Iterator[Any]]:
            def handle(request: Any, context: Any) -> Iterator[Any]:
                yield from behavior(request, check(method, policy, context))

            return handle

        io = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **io)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **io)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **io)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **io)
        return handler
