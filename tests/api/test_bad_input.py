"""Bad requests get the right code, a message naming the field, and change nothing."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from conveyor.v1 import identity_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc.client import Client
from rpc.server import MAX_RECEIVE_BYTES
from tests.api.conftest import WORKFLOW, Api, finished_build, pipeline, row_counts
from tests.rpc.helpers import call_error, field_violations

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION

P = pb
BAD_YAML = "jobs:\n  a:\n    steps: [{run: x}]\n  b:\n    needs: [a, c]\n    steps: []\n"

# (case id, call, expected code, expected violated fields or None)
CASES: list[tuple[str, Callable[[Client], object], grpc.StatusCode, list[str] | None]] = [
    ("empty name", lambda c: c.pipelines.CreatePipeline(P.CreatePipelineRequest(
        name="", workflow_yaml=WORKFLOW)), INVALID, ["name"]),
    ("bad name", lambda c: c.pipelines.CreatePipeline(P.CreatePipelineRequest(
        name="has space", workflow_yaml=WORKFLOW)), INVALID, ["name"]),
    ("taken name", lambda c: c.pipelines.CreatePipeline(P.CreatePipelineRequest(
        name="web", workflow_yaml=WORKFLOW)), grpc.StatusCode.ALREADY_EXISTS, None),
    ("invalid workflow", lambda c: c.pipelines.CreatePipeline(P.CreatePipelineRequest(
        name="new", workflow_yaml=BAD_YAML)), INVALID, ["jobs.b.needs[1]", "jobs.b.steps"]),
    ("oversized request", lambda c: c.pipelines.CreatePipeline(P.CreatePipelineRequest(
        name="big", workflow_yaml="#" * (MAX_RECEIVE_BYTES + 1))), EXHAUSTED, None),
    ("unknown pipeline", lambda c: c.pipelines.StartPipelineBuild(P.StartPipelineBuildRequest(
        pipeline="nope")), NOT_FOUND, None),
    ("bad inputs", lambda c: c.pipelines.StartPipelineBuild(P.StartPipelineBuildRequest(
        pipeline="web", inputs={"target": "moon"})), INVALID, ["inputs.target"]),
    ("long ref and sha", lambda c: c.pipelines.StartPipelineBuild(P.StartPipelineBuildRequest(
        pipeline="web", ref="r" * 501, sha="s" * 65)), INVALID, ["ref", "sha"]),
    ("unknown build", lambda c: c.pipelines.GetBuild(P.GetBuildRequest(build_id=424242)),
     NOT_FOUND, None),
    ("zero build id", lambda c: c.pipelines.CancelBuild(P.CancelBuildRequest(build_id=0)),
     INVALID, ["build_id"]),
    ("retry unknown", lambda c: c.pipelines.RetryBuild(P.RetryBuildRequest(build_id=424242)),
     NOT_FOUND, None),
    ("retry queued", lambda c: c.pipelines.RetryBuild(P.RetryBuildRequest(build_id=QUEUED[0])),
     PRECONDITION, None),
    ("garbled page token", lambda c: c.pipelines.ListBuilds(P.ListBuildsRequest(
        page_token="%%%")), INVALID, ["page_token"]),
    ("unknown status", lambda c: c.pipelines.ListBuilds(P.ListBuildsRequest(
        status=99)), INVALID, ["status"]),  # type: ignore[arg-type]
    ("negative from_line", lambda c: list(c.pipelines.StreamBuildLogs(
        P.StreamBuildLogsRequest(build_id=QUEUED[0], from_line=-1))), INVALID, ["from_line"]),
    ("member without role", lambda c: c.pipelines.AddMember(P.AddMemberRequest(
        pipeline="web", user="dev")), INVALID, ["role"]),
    ("member unknown user", lambda c: c.pipelines.AddMember(P.AddMemberRequest(
        pipeline="web", user="ghost", role=P.ROLE_VIEWER)), NOT_FOUND, None),
    ("bad user name", lambda c: c.identity.CreateUser(identity_pb2.CreateUserRequest(
        name="a b")), INVALID, ["name"]),
    ("revoke unknown token", lambda c: c.identity.RevokeToken(
        identity_pb2.RevokeTokenRequest(token_id=424242)), NOT_FOUND, None),
]
QUEUED: list[int] = []


@pytest.mark.parametrize(("case", "call", "code", "fields"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_the_right_code_and_changes_nothing(
    api: Api, case: str, call: Callable[[Client], object], code: grpc.StatusCode,
    fields: list[str] | None,
) -> None:
    pipeline("web", "root")
    finished_build(pipeline("other", "root"))
    import store

    QUEUED[:] = [store.create_build(store.get_pipeline("web").id, workflow_yaml=WORKFLOW)[0].id]
    before = row_counts()
    error = call_error(lambda: call(api.client("root")))
    assert error.code() == code, error.details()
    assert error.details()
    if fields is not None:
        assert sorted({f for f, _ in field_violations(error)}) == sorted(fields)
    assert row_counts() == before, case
