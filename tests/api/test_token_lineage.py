"""Tokens made by a token live no longer than it and die with it; instance admins can
disable a user, which stops all their tokens and running calls at once (issue 11)."""

from __future__ import annotations

from datetime import UTC, timedelta

import grpc
import pytest

import store
from conveyor.v1 import common_pb2, identity_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc import tokens
from tests.api.conftest import WORKFLOW, Api, pipeline
from tests.rpc.helpers import call_error

HOUR = 3600


def _mint(api: Api, parent: str, name: str, ttl: int = 0) -> identity_pb2.CreateTokenResponse:
    made = api.client(parent).identity.CreateToken(
        identity_pb2.CreateTokenRequest(name=name, ttl_seconds=ttl))
    api.tokens[name] = made.secret
    return made


def _whoami(api: Api, who: str) -> str:
    return api.client(who).identity.WhoAmI(identity_pb2.WhoAmIRequest()).user.name


def test_a_token_made_by_a_token_expires_no_later_than_it(api: Api) -> None:
    short = _mint(api, "alice", "short", ttl=HOUR)
    # Asked to never expire, or to outlive its parent: capped at the parent's expiry.
    forever = _mint(api, "short", "forever")
    longer = _mint(api, "short", "longer", ttl=30 * 24 * HOUR)
    shorter = _mint(api, "short", "shorter", ttl=60)
    parent_expiry = short.token.expire_time.ToDatetime(tzinfo=UTC)
    assert forever.token.expire_time.ToDatetime(tzinfo=UTC) == parent_expiry
    assert longer.token.expire_time.ToDatetime(tzinfo=UTC) == parent_expiry
    assert shorter.token.expire_time.ToDatetime(tzinfo=UTC) < parent_expiry
    assert forever.token.parent_id == short.token.id
    # A token without expiry (the fixture's) passes on no limit.
    assert not _mint(api, "alice", "free").token.HasField("expire_time")


def test_revoking_a_token_revokes_every_token_it_made(api: Api) -> None:
    child = _mint(api, "alice", "child")
    grandchild = _mint(api, "child", "grandchild")
    sibling = _mint(api, "alice", "sibling")
    assert _whoami(api, "grandchild") == "alice"
    parent_id = child.token.parent_id
    revoked = api.client("alice").identity.RevokeToken(
        identity_pb2.RevokeTokenRequest(token_id=parent_id))
    assert revoked.also_revoked == 3 and revoked.token.HasField("revoke_time")
    for who in ("alice", "child", "grandchild", "sibling"):
        error = call_error(lambda who=who: _whoami(api, who))  # type: ignore[misc]
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, who
    assert store.get_token(grandchild.token.id).revoked_at is not None
    assert store.get_token(sibling.token.id).revoked_at is not None


def test_a_revoked_parent_cannot_make_tokens(api: Api) -> None:
    child = _mint(api, "alice", "child")
    store.revoke_token(child.token.parent_id)
    error = call_error(lambda: _mint(api, "child", "late"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    # Made directly in the store while the parent was being revoked: refused too.
    with pytest.raises(store.InvalidState, match="was revoked"):
        store.create_token(store.get_user("alice").id, "raced",
                           tokens.token_hash(tokens.new_token()),
                           parent_id=child.token.parent_id)


def test_an_expired_parent_cannot_make_tokens(api: Api) -> None:
    # Through the store: an expired token cannot even call the API.
    alice = store.get_user("alice")
    old = store.create_token(alice.id, "old", tokens.token_hash(tokens.new_token()),
                             expires_at=store.utcnow() - timedelta(seconds=1))
    with pytest.raises(store.InvalidState, match="has expired"):
        store.create_token(alice.id, "x", tokens.token_hash(tokens.new_token()),
                           parent_id=old.id)


def test_instance_admins_disable_a_user_and_everything_of_theirs_stops(api: Api) -> None:
    web = pipeline("web", "alice", {"viewer": "viewer"})
    build, _ = store.create_build(web, workflow_yaml=WORKFLOW)
    _mint(api, "viewer", "viewer-ci")
    watch = api.client("viewer").pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build.id))
    assert next(watch).build.status == common_pb2.BUILD_STATUS_QUEUED

    root = api.client("root").identity
    disabled = root.DisableUser(identity_pb2.DisableUserRequest(name="viewer"))
    assert disabled.user.HasField("disable_time") and disabled.calls_ended == 1
    # The running stream ends, and every token of theirs is refused.
    error = call_error(lambda: list(watch))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    for who in ("viewer", "viewer-ci"):
        error = call_error(lambda who=who: _whoami(api, who))  # type: ignore[misc]
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "user 'viewer' was disabled" in error.details()
    # Others are not affected; enabling gives the tokens back.
    assert _whoami(api, "alice") == "alice"
    enabled = root.EnableUser(identity_pb2.EnableUserRequest(name="viewer"))
    assert not enabled.user.HasField("disable_time")
    assert _whoami(api, "viewer-ci") == "viewer"


def test_who_may_disable_whom(api: Api) -> None:
    error = call_error(lambda: api.client("alice").identity.DisableUser(
        identity_pb2.DisableUserRequest(name="dev")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    root = api.client("root").identity
    error = call_error(lambda: root.DisableUser(identity_pb2.DisableUserRequest(name="root")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot disable yourself" in error.details()
    error = call_error(lambda: root.DisableUser(identity_pb2.DisableUserRequest(name="nobody")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Twice is fine and keeps the first time.
    first = root.DisableUser(identity_pb2.DisableUserRequest(name="dev")).user.disable_time
    again = root.DisableUser(identity_pb2.DisableUserRequest(name="dev")).user.disable_time
    assert first == again


def test_bootstrap_force_enables_a_disabled_admin(api: Api) -> None:
    store.create_user("other", is_admin=True)
    store.set_user_disabled("other", True)
    secret = tokens.new_token()
    user, _ = store.bootstrap_admin("other", tokens.token_hash(secret), force=True,
                                   expires_at=store.utcnow() + timedelta(hours=1))
    assert user.disabled_at is None and user.is_admin


def test_the_cli_disables_and_enables_a_user(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.identity_cmd import user_main

    common = ["--addr", api.address, "--token", api.tokens["root"]]
    assert user_main(["disable", "dev", *common]) == 0
    assert capsys.readouterr().out == "user dev is disabled; 0 running calls ended\n"
    assert call_error(lambda: _whoami(api, "dev")).code() == grpc.StatusCode.UNAUTHENTICATED
    assert user_main(["enable", "dev", *common, "--json"]) == 0
    assert '"name": "dev"' in capsys.readouterr().out
    assert _whoami(api, "dev") == "dev"
    assert user_main(["disable", "dev", "--addr", api.address,
                      "--token", api.tokens["alice"]]) == 1
    assert "conveyor user: only instance admins may disable users" in capsys.readouterr().err
