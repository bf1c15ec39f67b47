"""Workflow files: parse, validate and plan a GitHub Actions style workflow.

Pure: no I/O beyond the text given, no threads, no database or network.

    plan = load(text, inputs={"target": "prod"})
    for error in validate(text): print(error.format("ci.yaml"))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow.diagnostics import Errors
from workflow.errors import WorkflowError, WorkflowInvalid
from workflow.inputs import resolve_inputs
from workflow.model import Plan
from workflow.plan import Planner, check_cycles
from workflow.schema import MAX_JOBS
from workflow.validate import read_workflow
from workflow.validate_reader import WorkflowDef
from workflow.validate_runtime import check_runtime
from workflow.yamlsafe import YamlLimitError, load_document

_TOO_MANY_JOBS = f"the workflow defines more than {MAX_JOBS} jobs; the limit is {MAX_JOBS}"

__all__ = ["Plan", "WorkflowError", "WorkflowInvalid", "load", "load_for_build",
           "resolve_inputs", "validate"]


def load(
    text: str | bytes,
    *,
    inputs: Mapping[str, Any] | None = None,
    github: Mapping[str, Any] | None = None,
) -> Plan:
    """The plan of a workflow file; raises WorkflowInvalid with every error found.

    ``inputs`` (already resolved, see :func:`resolve_inputs`) and ``github`` are the
    values known when the build starts: matrices may use them, and templates that use
    only them and ``matrix``/``strategy`` are substituted. When omitted, matrices are
    planned with the inputs' defaults and those templates are left for run time.
    """
    plan, errors = _plan(text, inputs, github)
    if plan is None:
        raise WorkflowInvalid(errors)
    return plan


def load_for_build(
    text: str | bytes, given_inputs: Mapping[str, str]
) -> tuple[Plan, dict[str, Any]]:
    """A build's plan and its resolved inputs, from one reading of the file (the same as
    ``load(text, inputs=resolve_inputs(load(text), given_inputs))``, for half the work).

    Raises WorkflowInvalid for an invalid file or invalid inputs.
    """
    definition, errors = _read(text)
    if definition is None:
        raise WorkflowInvalid(errors.final())
    inputs = resolve_inputs(definition, given_inputs)
    plan, problems = _planned(definition, errors, inputs, None)
    if plan is None:
        raise WorkflowInvalid(problems)
    return plan, inputs


def validate(text: str | bytes) -> list[WorkflowError]:
    """Every error of a workflow file, sorted by position; empty when it is valid."""
    return _plan(text, None, None)[1]


def _read(text: str | bytes) -> tuple[WorkflowDef | None, Errors]:
    """The checked definition (None when the file has errors) and the error list."""
    source = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
    errors = Errors(source)
    try:
        document = load_document(text, {"jobs": (MAX_JOBS + 1, _TOO_MANY_JOBS)})
    except YamlLimitError as exc:
        errors.add((exc.line, exc.column), exc.path, exc.message)
        return None, errors
    for problem in document.problems:
        errors.add((problem.line, problem.column), problem.path, problem.message)
    definition = read_workflow(document.root, errors)
    check_runtime(document.root, definition, errors)
    check_cycles(definition, errors)
    return (None if errors else definition), errors


def _plan(
    text: str | bytes, inputs: Mapping[str, Any] | None, github: Mapping[str, Any] | None
) -> tuple[Plan | None, list[WorkflowError]]:
    definition, errors = _read(text)
    if definition is None:
        return None, errors.final()
    return _planned(definition, errors, inputs, github)


def _planned(
    definition: WorkflowDef, errors: Errors, inputs: Mapping[str, Any] | None,
    github: Mapping[str, Any] | None,
) -> tuple[Plan | None, list[WorkflowError]]:
    plan = Planner(definition, errors, inputs, github).plan()
    if plan is None or errors:
        return None, errors.final() or [WorkflowError(0, 0, "", "invalid workflow")]
    return plan, []
