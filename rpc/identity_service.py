"""IdentityService: who am I, users (instance admins create and disable them), API tokens.

A token created through the API is the child of the token that asked for it: it expires
no later than its parent and is revoked with it, so a stolen token cannot leave a
longer-lived or unrevocable one behind (no fresh login is needed: there are no
passwords). Disabling a user stops all their tokens at once, running calls included.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Protocol

import store
from conveyor.v1 import identity_pb2, identity_pb2_grpc
from rpc import convert, tokens
from rpc import validation as check
from rpc.auth import Caller, caller_of
from rpc.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from rpc.ports import IdentityStoreApi
from store.errors import InvalidState, NotFound
from store.users import TokenRecord, UserRecord

MAX_TOKEN_NAME = 200
MAX_TTL_S = 10 * 366 * 24 * 3600  # ten years: longer is a typo, not a plan


class RevokedHook(Protocol):
    """Ends the running calls of a disabled user or of revoked tokens, but ``spare``."""

    def __call__(self, *, user_id: int | None = ..., token_ids: Collection[int] = ...,
                 spare: object = ...) -> int: ...


def _no_running_calls(*, user_id: int | None = None, token_ids: Collection[int] = (),
                      spare: object = None) -> int:
    return 0


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, store_api: IdentityStoreApi = store, *,
                 on_revoked: RevokedHook = _no_running_calls) -> None:
        self._store = store_api
        self._on_revoked: Callable[..., int] = on_revoked

    def WhoAmI(
        self, request: identity_pb2.WhoAmIRequest, context: object
    ) -> identity_pb2.WhoAmIResponse:
        caller = caller_of(context)
        return identity_pb2.WhoAmIResponse(user=_user(self._store.get_user(caller.user_id)))

    def CreateUser(
        self, request: identity_pb2.CreateUserRequest, context: object
    ) -> identity_pb2.CreateUserResponse:
        caller = caller_of(context)
        _instance_admin(caller, "create users")
        check.check_user_name(request.name, "name")
        user = self._store.create_user(request.name, is_admin=request.admin)
        return identity_pb2.CreateUserResponse(user=_user(user))

    def CreateToken(
        self, request: identity_pb2.CreateTokenRequest, context: object
    ) -> identity_pb2.CreateTokenResponse:
        caller = caller_of(context)
        check.require("name", request.name)
        if len(request.name) > MAX_TOKEN_NAME:
            raise InvalidArgument("name", f"is longer than {MAX_TOKEN_NAME} characters")
        if not 0 <= request.ttl_seconds <= MAX_TTL_S:
            raise InvalidArgument(
                "ttl_seconds", f"must be between 0 (never expires) and {MAX_TTL_S}, "
                f"got {request.ttl_seconds}")
        user_id = self._target_user(caller, request.user, "create tokens for")
        expires = (
            store.utcnow() + timedelta(seconds=request.ttl_seconds)
            if request.ttl_seconds else None
        )
        secret = tokens.new_token()
        try:
            record = self._store.create_token(
                user_id, request.name, tokens.token_hash(secret), expires_at=expires,
                parent_id=caller.token_id,
            )
        except InvalidState as exc:
            # The calling token was revoked (or expired) while this call ran.
            raise Unauthenticated(str(exc)) from exc
        return identity_pb2.CreateTokenResponse(token=_token(record), secret=secret)

    def ListTokens(
        self, request: identity_pb2.ListTokensRequest, context: object
    ) -> identity_pb2.ListTokensResponse:
        caller = caller_of(context)
        user_id = self._target_user(caller, request.user, "list the tokens of")
        return identity_pb2.ListTokensResponse(
            tokens=[_token(t) for t in self._store.list_tokens(user_id)]
        )

    def RevokeToken(
        self, request: identity_pb2.RevokeTokenRequest, context: object
    ) -> identity_pb2.RevokeTokenResponse:
        caller = caller_of(context)
        check.require_id("token_id", request.token_id)
        record = self._store.get_token(request.token_id)
        if record.user_id != caller.user_id and not caller.is_admin:
            # Another user's token: as if it did not exist (ids do not leak owners).
            raise NotFound(f"no token with id {request.token_id}")
        revoked = self._store.revoke_token_tree(request.token_id)
        # Not this call itself: it answers even when it revoked its own token.
        self._on_revoked(token_ids={t.id for t in revoked},
                         spare=getattr(context, "ticket", None))
        return identity_pb2.RevokeTokenResponse(
            token=_token(revoked[0]), also_revoked=len(revoked) - 1)

    def DisableUser(
        self, request: identity_pb2.DisableUserRequest, context: object
    ) -> identity_pb2.DisableUserResponse:
        caller = caller_of(context)
        _instance_admin(caller, "disable users")
        check.require("name", request.name)
        if request.name == caller.name:
            raise FailedPrecondition(
                "you cannot disable yourself (you would lock yourself out); ask another "
                "instance admin")
        user = self._store.set_user_disabled(request.name, True)
        ended = self._on_revoked(user_id=user.id)
        return identity_pb2.DisableUserResponse(user=_user(user), calls_ended=ended)

    def EnableUser(
        self, request: identity_pb2.EnableUserRequest, context: object
    ) -> identity_pb2.EnableUserResponse:
        _instance_admin(caller_of(context), "enable users")
        check.require("name", request.name)
        return identity_pb2.EnableUserResponse(
            user=_user(self._store.set_user_disabled(request.name, False)))

    def _target_user(self, caller: Caller, name: str, what: str) -> int:
        if not name or name == caller.name:
            return caller.user_id
        _instance_admin(caller, f"{what} other users")
        return self._store.get_user(name).id


def _instance_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise PermissionDenied(f"only instance admins may {what}; {caller.name!r} is not one")


def _user(record: UserRecord) -> identity_pb2.User:
    return identity_pb2.User(
        id=record.id, name=record.name, admin=record.is_admin,
        create_time=convert.timestamp(record.created_at),
        disable_time=convert.timestamp(record.disabled_at),
    )


def _token(record: TokenRecord) -> identity_pb2.Token:
    return identity_pb2.Token(
        id=record.id, user=record.user_name, name=record.name,
        create_time=convert.timestamp(record.created_at),
        expire_time=convert.timestamp(record.expires_at),
        revoke_time=convert.timestamp(record.revoked_at),
        last_use_time=convert.timestamp(record.last_used_at),
        parent_id=record.parent_id or 0,
    )
