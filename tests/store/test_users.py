"""Users and tokens in the store, on SQLite and PostgreSQL: the accepting thread's token
lookup, token lineage, disabled users (issue 11)."""

from __future__ import annotations

from datetime import timedelta

import peewee
import pytest

import store
from rpc import tokens


def _token(user_id: int, **kwargs: object) -> tuple[str, store.TokenRecord]:
    secret = tokens.new_token()
    return secret, store.create_token(user_id, "t", tokens.token_hash(secret),
                                      **kwargs)  # type: ignore[arg-type]


def test_find_token_reads_what_the_models_read(db: peewee.Database) -> None:
    admin = store.create_user("root", is_admin=True)
    _, parent = _token(admin.id, expires_at=store.utcnow() + timedelta(hours=2))
    secret, child = _token(admin.id, parent_id=parent.id)
    store.touch_token(child.id)
    store.set_user_disabled("root", True)
    found = store.find_token(tokens.token_hash(secret))
    assert found is not None
    record, user = found
    assert record == store.get_token(child.id)
    assert record.parent_id == parent.id and record.expires_at == parent.expires_at
    assert record.last_used_at is not None and record.expires_at is not None
    assert record.expires_at.tzinfo is not None
    assert user == store.get_user("root") and user.is_admin is True
    assert user.disabled_at is not None
    assert store.find_token(tokens.token_hash(tokens.new_token())) is None


def test_revoking_revokes_the_whole_lineage_only(db: peewee.Database) -> None:
    user = store.create_user("alice")
    _, top = _token(user.id)
    _, child = _token(user.id, parent_id=top.id)
    _, grandchild = _token(user.id, parent_id=child.id)
    _, other = _token(user.id)
    revoked = store.revoke_token_tree(child.id)
    assert [t.id for t in revoked] == [child.id, grandchild.id]
    assert all(t.revoked_at is not None for t in revoked)
    assert store.get_token(top.id).revoked_at is None
    assert store.get_token(other.id).revoked_at is None
    first = store.get_token(child.id).revoked_at
    assert store.revoke_token(top.id).revoked_at is not None
    assert store.get_token(child.id).revoked_at == first  # kept its first revocation
    with pytest.raises(store.InvalidState, match="was revoked"):
        _token(user.id, parent_id=child.id)
    with pytest.raises(store.NotFound):
        store.revoke_token_tree(10_000)
