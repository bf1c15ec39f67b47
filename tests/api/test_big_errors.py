"""Errors too big for gRPC's metadata limits still arrive as what they are (issue 11):
C-core clients (the CLI included) refuse trailers over 16 KiB ("metadata exceeds hard
limit"), so the status message and the rich details are capped, saying how many were
left out."""

from __future__ import annotations

import grpc
import pytest

import workflow
from conveyor.v1 import pipeline_pb2 as pb
from rpc.errors import FieldViolation, InvalidArgument
from rpc.interceptor import MAX_MESSAGE_BYTES, MAX_STATUS_BYTES, status_for
from store.errors import NotFound
from tests.api.conftest import Api, pipeline
from tests.rpc.helpers import call_error, field_violations
from workflow.errors import WorkflowInvalid

BROKEN_JOBS = "jobs:\n" + "".join(f"  j{i}: {{runs-on: x, stepz: 1}}\n" for i in range(300))


def test_a_ten_thousand_character_name_is_invalid_argument(api: Api) -> None:
    error = call_error(lambda: api.client("alice").pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name="n" * 10_000, workflow_yaml="jobs: {}")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details().startswith("name: 'nnnnnnnnnn")
    assert "… (10,000 characters) is not a valid pipeline name" in error.details()


def test_a_thousand_undeclared_inputs_are_invalid_argument(api: Api) -> None:
    pipeline("web", "alice")
    inputs = {f"undeclared_input_number_{i}": "v" * 20 for i in range(1000)}
    error = call_error(lambda: api.client("alice").pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline="web", inputs=inputs)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    violations = field_violations(error)
    assert 10 < len(violations) < 1000
    assert violations[-1][0] == ""
    assert violations[-1][1].endswith(f"{1000 - len(violations) + 1} more not shown")


def test_three_hundred_workflow_errors_are_invalid_argument(api: Api) -> None:
    error = call_error(lambda: api.client("alice").pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name="broken", workflow_yaml=BROKEN_JOBS)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    # The first real error, and how many more: not "100 more errors not shown (and …)".
    assert error.details().startswith("workflow is invalid: ")
    assert "more errors not shown" not in error.details()
    # (each broken job has two errors: an unknown key, and no steps)
    assert error.details().endswith("add at least one step (and 599 more)")
    violations = field_violations(error)
    assert violations[0][0].startswith("jobs.j")
    assert violations[-1][1].endswith("more not shown")


def test_the_errors_left_out_are_counted_not_listed_first() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        workflow.load(BROKEN_JOBS)
    # Was "400 more errors not shown (and 200 more)": the note sorted first.
    assert str(info.value) == "the job has no `steps:`; add at least one step (and 599 more)"
    assert info.value.dropped == 400
    assert info.value.errors[-1].message == "400 more errors not shown"
    assert len(info.value.errors) == 201


@pytest.mark.parametrize("text", ["é" * 5000, "x" * 50_000, "%" * 3000])
def test_every_status_fits_the_metadata_limits(text: str) -> None:
    for exc in (InvalidArgument.of([FieldViolation(text, text)] * 50, text),
                InvalidArgument("name", text), NotFound(text)):
        status = status_for(exc, "/m")
        assert status.ByteSize() <= MAX_STATUS_BYTES
        encoded = sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3
                      for b in status.message.encode())
        assert 0 < encoded <= MAX_MESSAGE_BYTES
