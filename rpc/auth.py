"""Authentication: bearer tokens checked by a server interceptor, before any servicer.

Which calls need what is one table (`policy_for`), and what is not in it is refused:
- health checking and reflection are open (load balancers, `buf curl` discovery);
- ExecutorService is internal: only the shared internal token (``CONVEYOR_INTERNAL_TOKEN``)
  the pipeline service sends; user tokens are refused there;
- AdminService needs an instance admin;
- PipelineService and IdentityService need a user token; the servicers then check the
  caller's role on the pipeline concerned (``rpc.access``).

``rpc.gatekeeper`` authenticates each call when it arrives, before it is admitted (an
unauthenticated call is refused without ever waiting for its request); the caller
reaches the servicer on the context: ``caller_of(context)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import grpc

from rpc import tokens
from rpc.errors import Unauthenticated
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
        """The caller of a user call (its use recorded); `Unauthenticated` for a missing or
        bad token."""
        caller = self.identify(metadata)
        self.touch(caller)
        return caller

    def identify(self, metadata: Any) -> Caller:
        """The caller of a user call, without recording the use (one indexed read);
        `Unauthenticated` for a missing, unknown, revoked or expired token or a disabled
        user."""
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
        if user.disabled_at is not None:
            raise Unauthenticated(
                f"user {user.name!r} was disabled at {user.disabled_at:%Y-%m-%d %H:%M:%S} "
                "UTC: every token of theirs is refused; an instance admin can enable them"
            )
        return Caller(user.id, user.name, user.is_admin, record.id)

    def touch(self, caller: Caller) -> None:
        """Record a use of the caller's token, at most once a minute (a write: keep it off
        the thread that accepts calls)."""
        self._touch(caller.token_id)

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

    def __init__(self, inner: grpc.ServicerContext, caller: Caller | None,
                 ticket: object = None) -> None:
        self._inner = inner
        self.caller = caller
        self.ticket = ticket  # this call's admission (rpc.admission.Ticket)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def caller_of(context: object) -> Caller:
    """The authenticated caller of a call (fails closed without the auth interceptor)."""
    caller = getattr(context, "caller", None)
    if not isinstance(caller, Caller):
        raise Unauthenticated(f"this call needs a token: {HOW_TO}")
    return caller
