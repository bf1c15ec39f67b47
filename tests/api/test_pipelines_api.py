"""Pipelines, members, identity: each RPC's behaviour through a real channel."""

from __future__ import annotations

import grpc
import pytest

import store
from conveyor.v1 import identity_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc import tokens
from tests.api.conftest import WORKFLOW, Api, pipeline
from tests.rpc.helpers import call_error, field_violations


def test_creator_becomes_admin_and_list_shows_only_what_the_caller_can_see(api: Api) -> None:
    alice, dev, root = api.client("alice"), api.client("dev"), api.client("root")
    for index in range(5):
        alice.pipelines.CreatePipeline(pb.CreatePipelineRequest(
            name=f"a{index}", workflow_yaml=WORKFLOW))
    dev.pipelines.CreatePipeline(pb.CreatePipelineRequest(name="d0", workflow_yaml=WORKFLOW))
    members = alice.pipelines.ListMembers(pb.ListMembersRequest(pipeline="a0")).members
    assert [(m.user, m.role) for m in members] == [("alice", pb.ROLE_ADMIN)]

    def names(client: object, size: int) -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            page = client.pipelines.ListPipelines(  # type: ignore[attr-defined]
                pb.ListPipelinesRequest(page_size=size, page_token=token))
            assert len(page.pipelines) <= size
            seen.extend(p.name for p in page.pipelines)
            token = page.next_page_token
            if not token:
                return seen

    assert names(alice, 2) == ["a0", "a1", "a2", "a3", "a4"]
    assert names(dev, 2) == ["d0"]
    assert names(root, 4) == ["a0", "a1", "a2", "a3", "a4", "d0"]
    assert names(api.client("outsider"), 10) == []


def test_update_revalidates_and_archive_hides_and_blocks(api: Api) -> None:
    alice = api.client("alice")
    alice.pipelines.CreatePipeline(pb.CreatePipelineRequest(name="web", workflow_yaml=WORKFLOW))
    error = call_error(lambda: alice.pipelines.UpdatePipeline(pb.UpdatePipelineRequest(
        name="web", workflow_yaml="jobs:\n  a:\n    needs: b\n    steps: [{run: x}]\n")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("needs" in f for f, _ in field_violations(error))
    assert store.get_pipeline("web").workflow_yaml == WORKFLOW
    updated = alice.pipelines.UpdatePipeline(pb.UpdatePipelineRequest(
        name="web", description="the site")).pipeline
    assert (updated.description, updated.workflow_yaml) == ("the site", WORKFLOW)

    archived = alice.pipelines.ArchivePipeline(pb.ArchivePipelineRequest(name="web")).pipeline
    assert archived.archived
    assert alice.pipelines.ListPipelines(pb.ListPipelinesRequest()).pipelines == []
    shown = alice.pipelines.ListPipelines(pb.ListPipelinesRequest(show_archived=True))
    assert [p.name for p in shown.pipelines] == ["web"]
    for call in (
        lambda: alice.pipelines.StartPipelineBuild(pb.StartPipelineBuildRequest(pipeline="web")),
        lambda: alice.pipelines.UpdatePipeline(pb.UpdatePipelineRequest(name="web",
                                                                        description="x")),
    ):
        error = call_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "archived" in error.details()
    again = alice.pipelines.ArchivePipeline(pb.ArchivePipelineRequest(name="web")).pipeline
    assert again.archived  # idempotent
    assert alice.pipelines.GetPipeline(pb.GetPipelineRequest(name="web")).pipeline.archived


def test_members_roles_change_and_the_last_admin_stays(api: Api) -> None:
    pipeline("web", "alice")
    alice = api.client("alice")
    dev = api.client("dev")
    assert call_error(lambda: dev.pipelines.GetPipeline(
        pb.GetPipelineRequest(name="web"))).code() == grpc.StatusCode.NOT_FOUND
    alice.pipelines.AddMember(pb.AddMemberRequest(pipeline="web", user="dev",
                                                  role=pb.ROLE_VIEWER))
    assert dev.pipelines.GetPipeline(pb.GetPipelineRequest(name="web")).pipeline.name == "web"
    assert call_error(lambda: dev.pipelines.StartPipelineBuild(pb.StartPipelineBuildRequest(
        pipeline="web"))).code() == grpc.StatusCode.PERMISSION_DENIED
    changed = alice.pipelines.AddMember(pb.AddMemberRequest(
        pipeline="web", user="dev", role=pb.ROLE_DEVELOPER)).member
    assert (changed.user, changed.role) == ("dev", pb.ROLE_DEVELOPER)
    build = dev.pipelines.StartPipelineBuild(pb.StartPipelineBuildRequest(pipeline="web")).build
    assert build.triggered_by == "dev"

    error = call_error(lambda: alice.pipelines.RemoveMember(
        pb.RemoveMemberRequest(pipeline="web", user="alice")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only admin" in error.details()
    error = call_error(lambda: alice.pipelines.AddMember(pb.AddMemberRequest(
        pipeline="web", user="alice", role=pb.ROLE_VIEWER)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    alice.pipelines.RemoveMember(pb.RemoveMemberRequest(pipeline="web", user="dev"))
    members = alice.pipelines.ListMembers(pb.ListMembersRequest(pipeline="web")).members
    assert [m.user for m in members] == ["alice"]
    error = call_error(lambda: alice.pipelines.RemoveMember(
        pb.RemoveMemberRequest(pipeline="web", user="dev")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = call_error(lambda: alice.pipelines.AddMember(pb.AddMemberRequest(
        pipeline="web", user="ghost", role=pb.ROLE_VIEWER)))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "ghost" in error.details()
    error = call_error(lambda: alice.pipelines.AddMember(pb.AddMemberRequest(
        pipeline="web", user="dev")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["role"]


def test_validate_workflow_returns_every_error_with_its_position(api: Api) -> None:
    text = ("jobs:\n"
            "  build:\n"
            "    steps: [{run: make}]\n"
            "  test:\n"
            "    needs: [biuld]\n"
            "    steps: [{uses: actions/setup-node@v4}]\n")
    result = api.client("viewer").pipelines.ValidateWorkflow(
        pb.ValidateWorkflowRequest(workflow_yaml=text))
    assert not result.valid
    found = {(e.path, e.line) for e in result.errors}
    assert ("jobs.test.needs[0]", 5) in found
    assert any(path.startswith("jobs.test.steps[0]") and line == 6 for path, line in found)
    assert all(e.column > 0 and e.message for e in result.errors)
    ok = api.client("viewer").pipelines.ValidateWorkflow(
        pb.ValidateWorkflowRequest(workflow_yaml=WORKFLOW))
    assert ok.valid and list(ok.job_keys) == ["build", "test"]


def test_tokens_are_shown_once_stored_hashed_revocable_and_record_their_use(api: Api) -> None:
    alice = api.client("alice")
    made = alice.identity.CreateToken(identity_pb2.CreateTokenRequest(name="ci",
                                                                      ttl_seconds=3600))
    assert made.secret.startswith("cvy_") and made.token.HasField("expire_time")
    found = store.find_token(tokens.token_hash(made.secret))
    assert found is not None and found[1].name == "alice"
    from store.models import ApiToken

    with store.database.connection_context():
        stored = {row.token_hash for row in ApiToken.select()}
    assert made.secret not in stored and tokens.token_hash(made.secret) in stored

    api.tokens["ci"] = made.secret
    ci = api.client("ci")
    assert ci.identity.WhoAmI(identity_pb2.WhoAmIRequest()).user.name == "alice"
    listed = alice.identity.ListTokens(identity_pb2.ListTokensRequest()).tokens
    by_name = {t.name: t for t in listed}
    assert by_name["ci"].HasField("last_use_time")
    assert all(not t.HasField("revoke_time") for t in listed)
    alice.identity.RevokeToken(identity_pb2.RevokeTokenRequest(token_id=made.token.id))
    error = call_error(lambda: ci.identity.WhoAmI(identity_pb2.WhoAmIRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    # Another user's token id is not even found; an instance admin may revoke it.
    dev_token = store.list_tokens(store.get_user("dev").id)[0]
    error = call_error(lambda: alice.identity.RevokeToken(
        identity_pb2.RevokeTokenRequest(token_id=dev_token.id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    root = api.client("root")
    revoked = root.identity.RevokeToken(identity_pb2.RevokeTokenRequest(token_id=dev_token.id))
    assert revoked.token.HasField("revoke_time")
    for_bob = root.identity.CreateUser(identity_pb2.CreateUserRequest(name="bob")).user
    assert not for_bob.admin
    bobs = root.identity.CreateToken(identity_pb2.CreateTokenRequest(name="x", user="bob"))
    assert bobs.token.user == "bob"
    assert call_error(lambda: alice.identity.CreateToken(identity_pb2.CreateTokenRequest(
        name="x", user="bob"))).code() == grpc.StatusCode.PERMISSION_DENIED


def test_last_use_is_written_at_most_once_a_minute(api: Api) -> None:
    from rpc.auth import Authenticator

    writes: list[int] = []
    now = [1000.0]

    class Counting:
        def find_token(self, token_hash: str) -> object:
            return store.find_token(token_hash)

        def touch_token(self, token_id: int, **kwargs: object) -> bool:
            writes.append(token_id)
            return True

    auth = Authenticator(Counting(), "internal", clock=lambda: now[0])  # type: ignore[arg-type]
    metadata = [("authorization", f"Bearer {api.tokens['alice']}")]
    for _ in range(50):
        assert auth.user(metadata).name == "alice"
    now[0] += 59.0
    auth.user(metadata)
    assert len(writes) == 1
    now[0] += 2.0
    auth.user(metadata)
    assert len(writes) == 2


@pytest.mark.parametrize("ttl", [-1, 10 * 366 * 24 * 3600 + 1])
def test_token_lifetimes_are_bounded(api: Api, ttl: int) -> None:
    error = call_error(lambda: api.client("alice").identity.CreateToken(
        identity_pb2.CreateTokenRequest(name="x", ttl_seconds=ttl)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["ttl_seconds"]
