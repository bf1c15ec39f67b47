"""The interceptor's mapping from exceptions to statuses, without a server."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2

from broker.base import BrokerError
from rpc import errors
from rpc.interceptor import INTERNAL_MESSAGE, status_for
from store.errors import Conflict, NotFound, StoreUnavailable
from workflow.errors import WorkflowError, WorkflowInvalid


def _code(exc: Exception) -> grpc.StatusCode:
    status = status_for(exc, "/conveyor.v1.PipelineService/GetBuild")
    return next(c for c in grpc.StatusCode if c.value[0] == status.code)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("build 3 not found"), grpc.StatusCode.NOT_FOUND),
        (Conflict("pipeline 'a' exists"), grpc.StatusCode.ALREADY_EXISTS),
        (StoreUnavailable("db down"), grpc.StatusCode.UNAVAILABLE),
        (BrokerError("broker down"), grpc.StatusCode.UNAVAILABLE),
        (errors.FailedPrecondition("finished"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.ResourceExhausted("too many"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.PermissionDenied("no trigger right"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.InvalidArgument("name", "is required"), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_domain_errors_map_to_their_codes(exc: Exception, code: grpc.StatusCode) -> None:
    assert _code(exc) == code
    assert status_for(exc, "m").message == str(exc)


def _violations(exc: Exception) -> list[tuple[str, str]]:
    status = status_for(exc, "m")
    bad = error_details_pb2.BadRequest()
    assert [detail for detail in status.details if detail.Unpack(bad)] != []
    return [(v.field, v.description) for v in bad.field_violations]


def test_workflow_invalid_lists_every_error_as_a_field_violation() -> None:
    exc = WorkflowInvalid(
        [
            WorkflowError(7, 5, "jobs.test.needs[0]", "unknown job 'biuld'"),
            WorkflowError(2, 1, "name", "must be a string"),
        ]
    )
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(exc) == [
        ("name", "2:1: must be a string"),
        ("jobs.test.needs[0]", "7:5: unknown job 'biuld'"),
    ]


def test_invalid_argument_with_several_fields() -> None:
    exc = errors.InvalidArgument.of(
        [errors.FieldViolation("inputs.a", "is required"), errors.FieldViolation("x", "bad")],
        "bad inputs",
    )
    assert status_for(exc, "m").message == "bad inputs"
    assert _violations(exc) == [("inputs.a", "is required"), ("x", "bad")]


def test_invalid_argument_needs_a_violation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        errors.InvalidArgument.of([], "nothing")


def test_unexpected_errors_are_internal_with_a_generic_message_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="rpc.interceptor"):
        status = status_for(KeyError("secret detail"), "/conveyor.v1.PipelineService/GetBuild")
    assert status.code == grpc.StatusCode.INTERNAL.value[0]
    assert status.message == INTERNAL_MESSAGE
    assert "secret" not in status.message
    (record,) = caplog.records
    assert "/conveyor.v1.PipelineService/GetBuild" in record.getMessage()
    assert record.exc_info is not None
