"""PipelineService pipeline RPCs through a real channel."""

from __future__ import annotations

import grpc

from conveyor.v1 import pipeline_pb2 as pb
from tests.rpc.conftest import WORKFLOW, Stack
from tests.rpc.helpers import call_error, field_violations

BROKEN = WORKFLOW.replace("needs: build", "needs: biuld").replace(
    "runs-on: ubuntu-latest\n    steps:\n      - run: echo build",
    "runs-on: ubuntu-latest\n    timeout-minutes: soon\n    steps:\n      - run: echo build",
)


def _create(stack: Stack, name: str, text: str = WORKFLOW) -> pb.CreatePipelineResponse:
    return stack.client.pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name=name, workflow_yaml=text, description="d")
    )


def test_create_get_update(stack: Stack) -> None:
    created = _create(stack, "web").pipeline
    assert created.id > 0 and created.name == "web" and created.workflow_yaml == WORKFLOW
    assert created.create_time.seconds > 0

    got = stack.client.pipelines.GetPipeline(pb.GetPipelineRequest(name="web")).pipeline
    assert got == created

    changed = WORKFLOW.replace("echo test", "echo changed")
    updated = stack.client.pipelines.UpdatePipeline(
        pb.UpdatePipelineRequest(name="web", workflow_yaml=changed)
    ).pipeline
    assert updated.workflow_yaml == changed
    assert updated.description == "d"  # empty fields leave values unchanged


def test_duplicate_name_is_already_exists(stack: Stack) -> None:
    _create(stack, "web")
    error = call_error(lambda: _create(stack, "web"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "web" in (error.details() or "")


def test_bad_workflow_is_invalid_argument_with_every_error(stack: Stack) -> None:
    error = call_error(lambda: _create(stack, "web", BROKEN))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(field_violations(error))
    assert set(violations) >= {"jobs.test.needs", "jobs.build.timeout-minutes"}, violations
    line, column, message = violations["jobs.test.needs"].split(":", 2)
    assert (int(line), int(column)) == (16, 12)
    assert "did you mean 'build'" in message
    # Nothing was stored.
    missing = call_error(
        lambda: stack.client.pipelines.GetPipeline(pb.GetPipelineRequest(name="web"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND

    _create(stack, "web")
    error = call_error(
        lambda: stack.client.pipelines.UpdatePipeline(
            pb.UpdatePipelineRequest(name="web", workflow_yaml=BROKEN)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "jobs.test.needs" in dict(field_violations(error))


def test_bad_name_is_invalid_argument(stack: Stack) -> None:
    for name in ["", "-dash", "x" * 201, "has space"]:
        error = call_error(lambda name=name: _create(stack, name))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert [f for f, _ in field_violations(error)] == ["name"]


def test_unknown_pipeline_is_not_found(stack: Stack) -> None:
    for call in (
        lambda: stack.client.pipelines.GetPipeline(pb.GetPipelineRequest(name="nope")),
        lambda: stack.client.pipelines.UpdatePipeline(
            pb.UpdatePipelineRequest(name="nope", description="x")
        ),
    ):
        error = call_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "nope" in (error.details() or "")


def test_list_pipelines_pages_through_everything_once(stack: Stack) -> None:
    names = [f"p{i}" for i in range(5)]
    for name in names:
        _create(stack, name)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = stack.client.pipelines.ListPipelines(
            pb.ListPipelinesRequest(page_size=2, page_token=token)
        )
        pages += 1
        assert len(page.pipelines) <= 2
        seen.extend(p.name for p in page.pipelines)
        token = page.next_page_token
        if not token:
            break
    assert seen == names
    assert pages == 3
    everything = stack.client.pipelines.ListPipelines(pb.ListPipelinesRequest())
    assert [p.name for p in everything.pipelines] == names
    assert everything.next_page_token == ""


def test_list_pipelines_rejects_bad_page_arguments(stack: Stack) -> None:
    for request in (
        pb.ListPipelinesRequest(page_token="garbage!"),
        pb.ListPipelinesRequest(page_size=-3),
    ):
        error = call_error(lambda r=request: stack.client.pipelines.ListPipelines(r))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(error)


def test_validate_workflow(stack: Stack) -> None:
    ok = stack.client.pipelines.ValidateWorkflow(pb.ValidateWorkflowRequest(workflow_yaml=WORKFLOW))
    assert ok.valid and list(ok.job_keys) == ["build", "test"] and not ok.errors
    bad = stack.client.pipelines.ValidateWorkflow(pb.ValidateWorkflowRequest(workflow_yaml=BROKEN))
    assert not bad.valid and not bad.job_keys
    paths = {e.path for e in bad.errors}
    assert {"jobs.test.needs", "jobs.build.timeout-minutes"} <= paths
    assert all(e.line > 0 for e in bad.errors)
