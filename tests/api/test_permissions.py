"""Every RPC × every kind of caller gives the expected status code (through a real channel).

Each case builds its own fresh target (pipeline, build, token), so a call that changes
state (archive, retry, cancel) cannot influence the next caller's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

import grpc
import pytest

import store
from conveyor.v1 import (
    admin_pb2,
    executor_pb2,
    identity_pb2,
)
from conveyor.v1 import (
    pipeline_pb2 as pb,
)
from rpc import server as rpc_server
from rpc import tokens
from rpc.client import Client
from tests.api.conftest import WORKFLOW, Api, finished_build, pipeline

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND

CALLERS = ["none", "bad", "expired", "revoked", "viewer", "dev", "alice", "root", "outsider"]
ANONYMOUS = {"none", "bad", "expired", "revoked"}
_names = count()

Call = Callable[[Client], object]
Setup = Callable[[Api, str], Call]


def _fresh() -> str:
    return f"p{next(_names)}"


def _members(api: Api) -> int:
    return pipeline(_fresh(), "alice", {"dev": "developer", "viewer": "viewer"})


def _on_pipeline(make: Callable[[str], Call]) -> Setup:
    def setup(api: Api, caller: str) -> Call:
        return make(store.get_pipeline(_members(api)).name)
    return setup


def _on_build(make: Callable[[int], Call], *, queued: bool = False) -> Setup:
    def setup(api: Api, caller: str) -> Call:
        pipeline_id = _members(api)
        if queued:
            build, _ = store.create_build(pipeline_id, workflow_yaml=WORKFLOW)
            return make(build.id)
        return make(finished_build(pipeline_id))
    return setup


def _stream(call: Callable[[Client], object]) -> Call:
    return lambda client: list(call(client))  # type: ignore[call-overload]


def _own_token(api: Api, caller: str) -> Call:
    user = caller if caller not in ANONYMOUS else "alice"
    if caller in ("expired", "revoked"):
        user = caller
    made = store.create_token(store.get_user(user).id, "extra",
                              tokens.token_hash(tokens.new_token()))
    return lambda c: c.identity.RevokeToken(identity_pb2.RevokeTokenRequest(token_id=made.id))


def _on_user(make: Callable[[str], Call]) -> Call:
    return make(store.create_user(f"u{next(_names)}").name)


# method -> (setup, who may: "user" | "read" | "operate" | "manage" | "instance" | "internal")
CASES: dict[str, tuple[Setup, str]] = {
    "PipelineService/CreatePipeline": (lambda api, who: lambda c: c.pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name=_fresh(), workflow_yaml=WORKFLOW)), "user"),
    "PipelineService/UpdatePipeline": (_on_pipeline(lambda name: lambda c: c.pipelines
        .UpdatePipeline(pb.UpdatePipelineRequest(name=name, description="new"))), "manage"),
    "PipelineService/GetPipeline": (_on_pipeline(lambda name: lambda c: c.pipelines
        .GetPipeline(pb.GetPipelineRequest(name=name))), "read"),
    "PipelineService/ListPipelines": (lambda api, who: lambda c: c.pipelines.ListPipelines(
        pb.ListPipelinesRequest()), "user"),
    "PipelineService/ArchivePipeline": (_on_pipeline(lambda name: lambda c: c.pipelines
        .ArchivePipeline(pb.ArchivePipelineRequest(name=name))), "manage"),
    "PipelineService/AddMember": (_on_pipeline(lambda name: lambda c: c.pipelines.AddMember(
        pb.AddMemberRequest(pipeline=name, user="outsider", role=pb.ROLE_VIEWER))), "manage"),
    "PipelineService/RemoveMember": (_on_pipeline(lambda name: lambda c: c.pipelines
        .RemoveMember(pb.RemoveMemberRequest(pipeline=name, user="dev"))), "manage"),
    "PipelineService/ListMembers": (_on_pipeline(lambda name: lambda c: c.pipelines
        .ListMembers(pb.ListMembersRequest(pipeline=name))), "read"),
    "PipelineService/ValidateWorkflow": (lambda api, who: lambda c: c.pipelines
        .ValidateWorkflow(pb.ValidateWorkflowRequest(workflow_yaml=WORKFLOW)), "user"),
    "PipelineService/StartPipelineBuild": (_on_pipeline(lambda name: lambda c: c.pipelines
        .StartPipelineBuild(pb.StartPipelineBuildRequest(pipeline=name))), "operate"),
    "PipelineService/GetBuild": (_on_build(lambda b: lambda c: c.pipelines.GetBuild(
        pb.GetBuildRequest(build_id=b))), "read"),
    "PipelineService/ListBuilds": (_on_pipeline(lambda name: lambda c: c.pipelines
        .ListBuilds(pb.ListBuildsRequest(pipeline=name))), "read"),
    "PipelineService/CancelBuild": (_on_build(lambda b: lambda c: c.pipelines.CancelBuild(
        pb.CancelBuildRequest(build_id=b)), queued=True), "operate"),
    "PipelineService/RetryBuild": (_on_build(lambda b: lambda c: c.pipelines.RetryBuild(
        pb.RetryBuildRequest(build_id=b))), "operate"),
    "PipelineService/StreamBuildLogs": (_on_build(lambda b: _stream(lambda c: c.pipelines
        .StreamBuildLogs(pb.StreamBuildLogsRequest(build_id=b)))), "read"),
    "PipelineService/WatchBuild": (_on_build(lambda b: _stream(lambda c: c.pipelines
        .WatchBuild(pb.WatchBuildRequest(build_id=b)))), "read"),
    "IdentityService/WhoAmI": (lambda api, who: lambda c: c.identity.WhoAmI(
        identity_pb2.WhoAmIRequest()), "user"),
    "IdentityService/CreateUser": (lambda api, who: lambda c: c.identity.CreateUser(
        identity_pb2.CreateUserRequest(name=f"u{next(_names)}")), "instance"),
    "IdentityService/CreateToken": (lambda api, who: lambda c: c.identity.CreateToken(
        identity_pb2.CreateTokenRequest(name="t")), "user"),
    "IdentityService/ListTokens": (lambda api, who: lambda c: c.identity.ListTokens(
        identity_pb2.ListTokensRequest()), "user"),
    "IdentityService/RevokeToken": (_own_token, "user"),
    "IdentityService/DisableUser": (lambda api, who: _on_user(lambda name: lambda c: c.identity
        .DisableUser(identity_pb2.DisableUserRequest(name=name))), "instance"),
    "IdentityService/EnableUser": (lambda api, who: _on_user(lambda name: lambda c: c.identity
        .EnableUser(identity_pb2.EnableUserRequest(name=name))), "instance"),
    "AdminService/ListActors": (lambda api, who: lambda c: c.admin.ListActors(
        admin_pb2.ListActorsRequest()), "instance"),
    "AdminService/GetRuntimeInfo": (lambda api, who: lambda c: c.admin.GetRuntimeInfo(
        admin_pb2.GetRuntimeInfoRequest()), "instance"),
    "ExecutorService/CreateBuild": (lambda api, who: lambda c: c.executor.CreateBuild(
        executor_pb2.CreateBuildRequest(pipeline_id=_members(api))), "internal"),
}


def expected(rule: str, caller: str) -> grpc.StatusCode:
    if caller in ANONYMOUS or rule == "internal":
        return UNAUTHENTICATED
    if rule == "user":
        return OK
    if rule == "instance":
        return OK if caller == "root" else DENIED
    if caller == "root":
        return OK
    if caller == "outsider":
        return NOT_FOUND
    least = {"read": "viewer", "operate": "dev", "manage": "alice"}[rule]
    order = ["viewer", "dev", "alice"]
    return OK if order.index(caller) >= order.index(least) else DENIED


def test_every_rpc_has_a_case() -> None:
    from conveyor.v1 import admin_pb2 as a
    from conveyor.v1 import executor_pb2 as e
    from conveyor.v1 import identity_pb2 as i
    from conveyor.v1 import pipeline_pb2 as p

    methods = {
        f"{service.name}/{method.name}"
        for module in (a, e, i, p)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == set(CASES)
    assert rpc_server.IDENTITY_SERVICE == "conveyor.v1.IdentityService"


@pytest.mark.parametrize("method", sorted(CASES))
def test_permission_matrix(api: Api, method: str) -> None:
    setup, rule = CASES[method]
    got: dict[str, str] = {}
    want: dict[str, str] = {}
    for caller in CALLERS:
        call = setup(api, caller)
        client = api.client(None if caller == "none" else caller)
        try:
            call(client)
            code = OK
        except grpc.RpcError as exc:
            code = exc.code()
            assert exc.details(), f"{method} as {caller}: no message"
        got[caller] = code.name
        want[caller] = expected(rule, caller).name
    assert got == want


def test_invisible_pipelines_look_like_missing_ones(api: Api) -> None:
    name = store.get_pipeline(_members(api)).name
    outsider = api.client("outsider")
    hidden = _error(lambda: outsider.pipelines.GetPipeline(pb.GetPipelineRequest(name=name)))
    missing = _error(lambda: outsider.pipelines.GetPipeline(pb.GetPipelineRequest(
        name="nope")))
    assert hidden.code() == missing.code() == NOT_FOUND
    assert hidden.details() == f"no pipeline {name!r}"
    build = finished_build(store.get_pipeline(name).id)
    hidden = _error(lambda: outsider.pipelines.GetBuild(pb.GetBuildRequest(build_id=build)))
    missing = _error(lambda: outsider.pipelines.GetBuild(pb.GetBuildRequest(build_id=10**6)))
    assert (hidden.details(), missing.details()) == (f"no build with id {build}",
                                                     f"no build with id {10**6}")


def test_denials_say_what_role_is_needed(api: Api) -> None:
    name = store.get_pipeline(_members(api)).name
    viewer = api.client("viewer")
    error = _error(lambda: viewer.pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline=name)))
    assert error.code() == DENIED
    assert "viewer" in error.details() and "developer role" in error.details()
    error = _error(lambda: api.client("expired").pipelines.ListPipelines(
        pb.ListPipelinesRequest()))
    assert "expired" in error.details()
    error = _error(lambda: api.client("revoked").pipelines.ListPipelines(
        pb.ListPipelinesRequest()))
    assert "revoked" in error.details()


def test_health_and_reflection_stay_open(api: Api) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(api.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        assert rpc_server.PIPELINE_SERVICE in ProtoReflectionDescriptorDatabase(
            channel).get_services()


def test_a_malformed_authorization_header_is_unauthenticated(api: Api) -> None:
    with grpc.insecure_channel(api.address) as channel:
        stub = pipeline_grpc_stub(channel)
        error = _error(lambda: stub.ListPipelines(
            pb.ListPipelinesRequest(), metadata=[("authorization", "Basic dTpw")]))
    assert error.code() == UNAUTHENTICATED and "Bearer" in error.details()


def pipeline_grpc_stub(channel: grpc.Channel) -> object:
    from conveyor.v1 import pipeline_pb2_grpc

    return pipeline_pb2_grpc.PipelineServiceStub(channel)


def _error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value
