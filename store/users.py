"""Users and their API tokens. Only a token's hash is stored; see ``rpc.tokens``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee

from store import db as _db
from store.db import database, store_call, transaction, utcnow
from store.errors import Conflict, InvalidState, NotFound, StoreError
from store.models import ApiToken, User

MAX_USER_NAME = 200


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    is_admin: bool = False
    created_at: datetime | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_id: int
    user_name: str
    name: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    parent_id: int | None = None


def _user(row: User) -> UserRecord:
    return UserRecord(id=row.id, name=row.name, is_admin=bool(row.is_admin),
                      created_at=row.created_at, disabled_at=row.disabled_at)


def _token(row: ApiToken, user_name: str) -> TokenRecord:
    return TokenRecord(
        id=row.id, user_id=row.user_id, user_name=user_name, name=row.name,
        created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
        last_used_at=row.last_used_at, parent_id=row.parent_id,
    )


def _check_user_name(name: str) -> None:
    if not name or not name.strip():
        raise ValueError("user name must not be empty")
    if len(name) > MAX_USER_NAME:
        raise ValueError(f"user name is {len(name)} characters long; the limit is {MAX_USER_NAME}")


def _user_row(name_or_id: str | int) -> User:
    if isinstance(name_or_id, int):
        row = User.get_or_none(User.id == name_or_id)
    else:
        row = User.get_or_none(User.name == name_or_id)
    if row is None:
        raise NotFound(f"no user {name_or_id!r}")
    return row


@store_call
def create_user(name: str, *, is_admin: bool = False) -> UserRecord:
    """A new user; `Conflict` when the name is taken."""
    _check_user_name(name)
    try:
        with transaction():
            row = User.create(name=name, is_admin=is_admin)
    except peewee.IntegrityError:
        raise Conflict(f"a user named {name!r} already exists") from None
    return _user(row)


@store_call
def get_user(name_or_id: str | int) -> UserRecord:
    """A user by name (str) or id (int); `NotFound` when there is none."""
    return _user(_user_row(name_or_id))


@store_call
def admin_exists() -> bool:
    """Whether any instance admin exists."""
    return User.select().where(User.is_admin == True).exists()  # noqa: E712


@store_call
def create_token(
    user_id: int, name: str, token_hash: str, *, expires_at: datetime | None = None,
    parent_id: int | None = None,
) -> TokenRecord:
    """Store a new token's hash for ``user_id``.

    ``parent_id``: the token that asks for this one. The new token then expires no later
    than its parent (a shorter ``expires_at`` stays), and `InvalidState` refuses it when
    the parent was revoked or has expired meanwhile; `revoke_token` revokes it with its
    parent.
    """
    if not name:
        raise ValueError("token name must not be empty")
    with transaction():
        user = _user_row(user_id)
        if parent_id is not None:
            expires_at = _capped_by_parent(parent_id, expires_at)
        row = ApiToken.create(user=user.id, name=name, token_hash=token_hash,
                              expires_at=expires_at, parent_id=parent_id)
    return _token(row, user.name)


def _capped_by_parent(parent_id: int, expires_at: datetime | None) -> datetime | None:
    # Locked, so a revocation of the parent running now either comes first (and this
    # refuses) or waits for this token and revokes it too.
    parent = (ApiToken.select().where(ApiToken.id == parent_id).for_update()
              if _db.backend() == "postgresql"
              else ApiToken.select().where(ApiToken.id == parent_id)).first()
    if parent is None:
        raise NotFound(f"no token with id {parent_id}")
    if parent.revoked_at is not None:
        raise InvalidState(f"token {parent.name!r} was revoked: it cannot create tokens")
    if parent.expires_at is not None and parent.expires_at <= utcnow():
        raise InvalidState(f"token {parent.name!r} has expired: it cannot create tokens")
    limit: datetime | None = parent.expires_at
    if limit is None:
        return expires_at
    return limit if expires_at is None else min(expires_at, limit)


@store_call
def bootstrap_admin(
    name: str,
    token_hash: str,
    *,
    token_name: str = "bootstrap",
    force: bool = False,
    expires_at: datetime | None = None,
) -> tuple[UserRecord, TokenRecord]:
    """Create the first instance admin (or make ``name`` one) with a token, atomically.

    Refuses with `InvalidState` when an instance admin exists already, unless ``force``
    (the way back in for an operator who lost every admin token).
    """
    _check_user_name(name)
    with transaction():
        if not force and User.select().where(User.is_admin == True).exists():  # noqa: E712
            raise InvalidState(
                "an instance admin exists already; use their token, or --force to add "
                f"{name!r} as another admin"
            )
        row = User.get_or_none(User.name == name)
        if row is None:
            row = User.create(name=name, is_admin=True)
        elif not row.is_admin or row.disabled_at is not None:
            # --force is the way back in: it also enables a disabled admin.
            User.update(is_admin=True, disabled_at=None).where(User.id == row.id).execute()
        token = ApiToken.create(user=row.id, name=token_name, token_hash=token_hash,
                                expires_at=expires_at)
        user = _user(User.get_by_id(row.id))
    return user, _token(token, user.name)


_FIND_TOKEN = (
    "SELECT t.id, t.user_id, t.name, t.created_at, t.expires_at, t.revoked_at, "
    "t.last_used_at, t.parent_id, u.name, u.is_admin, u.created_at, u.disabled_at "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = {param}"
)


def find_token(token_hash: str) -> tuple[TokenRecord, UserRecord] | None:
    """The token with this hash and its user, or None.

    One attempt, no retries: the server looks tokens up on the thread that accepts every
    call, which must never wait out a database outage (the client retries instead). In
    plain SQL: building the query with peewee cost twenty times the query itself, on
    that one thread. Raises `StoreUnavailable` / `StoreError` like the other calls.
    """
    _db._require_open()
    db = database.obj
    try:
        with db.connection_context():
            row = db.execute_sql(_FIND_TOKEN.format(param=db.param), (token_hash,)).fetchone()
    except Exception as exc:
        if _db._is_library_error(exc):
            raise _db._translate(exc, "find_token", _db._is_transient(exc)) from exc
        raise
    if row is None:
        return None
    (token_id, user_id, name, created, expires, revoked, used, parent, user_name, is_admin,
     user_created, disabled) = row

    def when(value: object) -> datetime | None:
        converted: datetime | None = ApiToken.created_at.python_value(value)
        return converted

    token = TokenRecord(
        id=token_id, user_id=user_id, user_name=user_name, name=name,
        created_at=when(created), expires_at=when(expires), revoked_at=when(revoked),
        last_used_at=when(used), parent_id=parent,
    )
    user = UserRecord(id=user_id, name=user_name, is_admin=bool(is_admin),
                      created_at=when(user_created), disabled_at=when(disabled))
    return token, user


@store_call
def touch_token(token_id: int, *, at: datetime | None = None, every_s: float = 60.0) -> bool:
    """Record a use of the token, unless one was recorded less than ``every_s`` ago.

    Conditional in SQL, so many replicas together still write at most once a period.
    """
    now = at or utcnow()
    with transaction():
        changed = (
            ApiToken.update(last_used_at=now)
            .where(
                (ApiToken.id == token_id)
                & (
                    ApiToken.last_used_at.is_null()
                    | (ApiToken.last_used_at < now - timedelta(seconds=every_s))
                )
            )
            .execute()
        )
    return bool(changed)


@store_call
def list_tokens(user_id: int) -> list[TokenRecord]:
    """The user's tokens (revoked ones too), oldest first."""
    user = _user_row(user_id)
    rows = ApiToken.select().where(ApiToken.user == user.id).order_by(ApiToken.id)
    return [_token(row, user.name) for row in rows]


@store_call
def get_token(token_id: int) -> TokenRecord:
    row = ApiToken.select(ApiToken, User).join(User).where(ApiToken.id == token_id).first()
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    return _token(row, row.user.name)


@store_call
def revoke_token(token_id: int) -> TokenRecord:
    """Revoke a token and every token it created, transitively (idempotent: a revoked
    token keeps its first revocation time)."""
    return revoke_token_tree(token_id)[0]


@store_call
def revoke_token_tree(token_id: int) -> list[TokenRecord]:
    """Like `revoke_token`; returns the token, then its descendants."""
    now = utcnow()
    with transaction():
        if ApiToken.get_or_none(ApiToken.id == token_id) is None:
            raise NotFound(f"no token with id {token_id}")
        descendants: list[int] = []
        frontier = [token_id]
        seen = {token_id}
        while frontier:
            ApiToken.update(revoked_at=now).where(
                ApiToken.id.in_(frontier) & ApiToken.revoked_at.is_null()
            ).execute()
            children = [
                row.id for row in ApiToken.select(ApiToken.id).where(
                    ApiToken.parent_id.in_(frontier))
                if row.id not in seen
            ]
            seen.update(children)
            descendants.extend(children)
            frontier = children
        return [get_token(token_id), *(get_token(child) for child in descendants)]


@store_call
def set_user_disabled(name: str, disabled: bool) -> UserRecord:
    """Disable a user (every token of theirs stops working at once) or enable them again.

    Idempotent: a disabled user keeps their first disabling time.
    """
    with transaction():
        row = _user_row(name)
        if disabled and row.disabled_at is None:
            User.update(disabled_at=utcnow()).where(User.id == row.id).execute()
        elif not disabled and row.disabled_at is not None:
            User.update(disabled_at=None).where(User.id == row.id).execute()
        return _user(User.get_by_id(row.id))


@store_call
def user_count() -> int:
    """How many users may sign in (an unsandboxed local backend runs jobs for one only):
    disabled users run nothing."""
    return int(User.select().where(User.disabled_at.is_null()).count())


def user_names_except(name: str, limit: int) -> list[str]:
    """Up to ``limit`` user names other than ``name``, oldest first; none while the
    database has no schema. One plain read without retries, for a quick look at a
    database the caller may not own: its failures are `StoreError`."""
    db = database.obj
    try:
        with db.connection_context():
            if not db.table_exists(User._meta.table_name):
                return []
            return [row.name for row in User.select(User.name)
                    .where(User.name != name).order_by(User.id).limit(limit)]
    except peewee.DatabaseError as exc:
        raise StoreError(str(exc)) from exc
