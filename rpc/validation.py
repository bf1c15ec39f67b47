"""Request checks shared by the servicers: each failure names the field and the fix."""

from __future__ import annotations

import re

import workflow
from conveyor.v1 import pipeline_pb2
from rpc.errors import FailedPrecondition, FieldViolation, InvalidArgument
from rpc.plans import Plans
from store.records import PipelineRecord
from workflow.errors import WorkflowInvalid

MAX_NAME = 200
PIPELINE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._/-]{{0,{MAX_NAME - 1}}}")
USER_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._@-]{{0,{MAX_NAME - 1}}}")
MAX_REQUEST_ID = 200
MAX_REF = 500
MAX_SHA = 64
# Prose, not a document: a few paragraphs (GitHub allows 350 characters for a
# repository's description). Bounded so that lists stay small.
MAX_DESCRIPTION = 4096
# GitHub's bound on a workflow_dispatch's inputs: 65,535 characters in all.
MAX_INPUTS_CHARS = 65_535

ROLE_NAMES: dict[int, str] = {
    pipeline_pb2.ROLE_VIEWER: "viewer",
    pipeline_pb2.ROLE_DEVELOPER: "developer",
    pipeline_pb2.ROLE_ADMIN: "admin",
}
ROLE_VALUES: dict[str, pipeline_pb2.Role] = {
    "viewer": pipeline_pb2.ROLE_VIEWER,
    "developer": pipeline_pb2.ROLE_DEVELOPER,
    "admin": pipeline_pb2.ROLE_ADMIN,
}


def require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument(field, "is required")


def shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for an error message: long values are cut, with their length."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def check_name(name: str, field: str = "name") -> None:
    if not PIPELINE_NAME.fullmatch(name):
        raise InvalidArgument(
            field,
            f"{shown(name)} is not a valid pipeline name: use 1 to {MAX_NAME} letters, "
            "digits, '.', '_', '-' or '/', starting with a letter or digit",
        )


def check_user_name(name: str, field: str = "user") -> None:
    if not USER_NAME.fullmatch(name):
        raise InvalidArgument(
            field,
            f"{shown(name)} is not a valid user name: use 1 to {MAX_NAME} letters, digits, "
            "'.', '_', '-' or '@', starting with a letter or digit",
        )


def check_description(text: str, field: str = "description") -> None:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(
            field, f"is {len(text):,} characters long; the limit is {MAX_DESCRIPTION:,}")


def require_id(field: str, value: int) -> None:
    if value <= 0:
        raise InvalidArgument(field, f"must be a positive id, got {value}")


def role(value: int, field: str = "role") -> str:
    name = ROLE_NAMES.get(value)
    if name is None:
        raise InvalidArgument(field, "must be ROLE_VIEWER, ROLE_DEVELOPER or ROLE_ADMIN")
    return name


def check_workflow(text: str, plans: Plans) -> None:
    if not text.strip():
        raise InvalidArgument("workflow_yaml", "is required")
    found = plans.errors(text)
    if found:
        raise WorkflowInvalid(found)


def check_build_request(request: pipeline_pb2.StartPipelineBuildRequest) -> None:
    """Bounds of the free-text fields (the database columns' sizes)."""
    violations = [
        FieldViolation(field, f"is {len(value)} characters long; the limit is {limit}")
        for field, value, limit in (
            ("ref", request.ref, MAX_REF),
            ("sha", request.sha, MAX_SHA),
            ("request_id", request.request_id, MAX_REQUEST_ID),
        )
        if len(value) > limit
    ]
    given = sum(len(name) + len(value) for name, value in request.inputs.items())
    if given > MAX_INPUTS_CHARS:
        violations.append(FieldViolation(
            "inputs", f"hold {given:,} characters (names and values); the limit is "
            f"{MAX_INPUTS_CHARS:,}"))
    if violations:
        raise InvalidArgument.of(violations, "; ".join(f"{v.field} {v.description}"
                                                        for v in violations))


def check_inputs(pipeline: PipelineRecord, given: dict[str, str], plans: Plans) -> None:
    try:
        plan = plans.load(pipeline.workflow_yaml)
    except WorkflowInvalid as exc:
        # A stored workflow that no longer validates (the rules got stricter).
        raise FailedPrecondition(
            f"pipeline {pipeline.name!r} holds a workflow that is no longer valid ({exc}); "
            "update the pipeline first"
        ) from exc
    try:
        workflow.resolve_inputs(plan, given)
    except WorkflowInvalid as exc:
        raise InvalidArgument.of(
            [FieldViolation(e.path, e.message) for e in exc.errors],
            f"bad inputs for pipeline {pipeline.name!r}: {exc}",
        ) from exc
