"""Build inputs: checking given values against `on.workflow_dispatch.inputs`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from workflow.errors import WorkflowError, WorkflowInvalid
from workflow.model import InputSpec
from workflow.suggest import did_you_mean


class InputValueError(ValueError):
    """A value that does not fit an input's type."""


def convert_input(spec: InputSpec, value: Any) -> Any:
    """``value`` (a string from a client, or a YAML scalar) as the input's type."""
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise InputValueError(f"expected true or false, got {value!r}")
    if spec.type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            number: float = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                raise InputValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise InputValueError(f"expected a finite number, got {value!r}")
        return int(number) if number == int(number) else number
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value == int(value):
        text = str(int(value))
    else:
        text = str(value)
    if spec.type == "choice" and text not in spec.options:
        raise InputValueError(f"'{text}' is not one of the options: {', '.join(spec.options)}")
    return text


class _Declares(Protocol):
    """A plan, or the checked file it is planned from: both declare the inputs."""

    @property
    def inputs(self) -> Mapping[str, InputSpec]: ...


def resolve_inputs(plan: _Declares, given: Mapping[str, str]) -> dict[str, Any]:
    """The build's input values: given ones checked and converted, defaults applied.

    Raises WorkflowInvalid (paths ``inputs.<name>``) for an unknown name, a missing
    required input, or a value of the wrong type.
    """
    errors: list[WorkflowError] = []
    result: dict[str, Any] = {}
    for name in given:
        if name not in plan.inputs:
            declared = sorted(plan.inputs)
            hint = did_you_mean(name, declared) or (
                f" (declared: {', '.join(declared)})" if declared else " (none are declared)"
            )
            errors.append(WorkflowError(0, 0, f"inputs.{name}", f"unknown input '{name}'{hint}"))
    for name, spec in plan.inputs.items():
        if name in given:
            try:
                result[name] = convert_input(spec, given[name])
            except InputValueError as exc:
                errors.append(WorkflowError(0, 0, f"inputs.{name}", str(exc)))
        elif spec.required and spec.default is None:
            errors.append(WorkflowError(0, 0, f"inputs.{name}", f"input '{name}' is required"))
        else:
            result[name] = _default(spec)
    if errors:
        raise WorkflowInvalid(errors)
    return result


def _default(spec: InputSpec) -> Any:
    if spec.default is not None:
        return spec.default
    return {"boolean": False, "number": None}.get(spec.type, "")


def default_inputs(inputs: Mapping[str, InputSpec]) -> dict[str, Any]:
    """Every declared input at its default (what validation plans with)."""
    return {name: _default(spec) for name, spec in inputs.items()}
