"""Checking a job's `steps:` list."""

from __future__ import annotations

from typing import Any

from workflow.model import StepSpec, Template
from workflow.schema import (
    CHECKOUT_ACTION,
    CTX_STEP,
    MAX_NAME_LENGTH,
    MAX_STEPS,
    STEP_KEYS,
    unsupported_action_message,
)
from workflow.validate import Reader, describe, join
from workflow.yamlsafe import YMap, YNode, YScalar, YSeq

StepTimeouts = dict[int, tuple[str, YNode]]


def read_steps(reader: Reader, node: YNode, path: str) -> tuple[tuple[StepSpec, ...], StepTimeouts]:
    """Check every step; a template `timeout-minutes` is returned apart (planned later)."""
    if not isinstance(node, YSeq):
        reader.error(node, path, f"expected a list of steps, found {describe(node)}")
        return (), {}
    if not node.items:
        reader.error(node, path, "the job has no steps; add at least one")
        return (), {}
    if len(node.items) > MAX_STEPS:
        reader.error(node, path, f"the job has {len(node.items)} steps; the limit is {MAX_STEPS}")
        return (), {}
    steps: list[StepSpec] = []
    timeouts: StepTimeouts = {}
    seen_ids: dict[str, YNode] = {}
    for index, item in enumerate(node.items):
        where = f"{path}[{index}]"
        step = reader.mapping(item, where, "a step (a mapping with `run` or `uses`)")
        if step is None:
            continue
        spec = _step(reader, step, where, index, timeouts)
        if spec is None:
            continue
        if spec.id is not None:
            if spec.id in seen_ids:
                first = seen_ids[spec.id]
                reader.error(
                    step.get("id"),
                    join(where, "id"),
                    f"step id '{spec.id}' is used "
                    f"twice (first at line {first.line}); step ids must be unique",
                )
            seen_ids[spec.id] = step.get("id") or step
        steps.append(spec)
    return tuple(steps), timeouts


def _step(
    reader: Reader, step: YMap, path: str, index: int, timeouts: StepTimeouts
) -> StepSpec | None:
    reader.keys(step, path, STEP_KEYS)
    fields: dict[str, Any] = {}
    run, uses = step.get("run"), step.get("uses")
    if run is not None and uses is not None:
        reader.error(
            step.entries["uses"].key,
            join(path, "uses"),
            "a step has either `run` or `uses`, not both",
        )
        return None
    if run is None and uses is None:
        reader.error(step, path, "the step has neither `run` nor `uses`: add a `run` script")
        return None
    if run is not None:
        script = reader.string(run, join(path, "run"), CTX_STEP)
        if script is None:
            return None
        if not script.strip():
            reader.error(run, join(path, "run"), "`run` is empty")
        fields["run"] = script
        first = script.strip().splitlines()[0] if script.strip() else ""
        default_name = f"Run {first}"
    else:
        assert uses is not None
        action = _uses(reader, uses, join(path, "uses"))
        if action is None:
            return None
        fields["uses"] = action
        default_name = f"Run {action}"
    with_node = step.get("with")
    if with_node is not None:
        if run is not None:
            reader.error(
                step.entries["with"].key,
                join(path, "with"),
                "`with` only applies to `uses` steps; use `env` to pass values to `run`",
            )
        else:
            fields["with_"] = reader.env(with_node, join(path, "with"), CTX_STEP)
    name = default_name
    if (name_node := step.get("name")) is not None:
        name = (
            reader.string(name_node, join(path, "name"), CTX_STEP, max_length=MAX_NAME_LENGTH)
            or default_name
        )
    if (id_node := step.get("id")) is not None:
        step_id = reader.string(id_node, join(path, "id"))
        if step_id is not None and reader.identifier(step_id, id_node, join(path, "id"), "step id"):
            fields["id"] = step_id
    if (env := step.get("env")) is not None:
        fields["env"] = reader.env(env, join(path, "env"), CTX_STEP)
    if (cond := step.get("if")) is not None:
        if isinstance(cond, YScalar):
            fields["if_"] = reader.exprs.condition(cond, join(path, "if"), CTX_STEP)
        else:
            reader.error(cond, join(path, "if"), f"expected a condition, found {describe(cond)}")
    if (shell := step.get("shell")) is not None:
        if run is None:
            reader.error(
                step.entries["shell"].key,
                join(path, "shell"),
                "`shell` only applies to `run` steps",
            )
        fields["shell"] = reader.shell(shell, join(path, "shell"))
    if (workdir := step.get("working-directory")) is not None:
        fields["working_directory"] = reader.string(
            workdir, join(path, "working-directory"), CTX_STEP
        )
    if (coe := step.get("continue-on-error")) is not None:
        flag = reader.boolean_or_expr(coe, join(path, "continue-on-error"), CTX_STEP)
        if flag is not None:
            fields["continue_on_error"] = flag
    if (timeout := step.get("timeout-minutes")) is not None:
        value = reader.number_or_expr(timeout, join(path, "timeout-minutes"), CTX_STEP, float)
        if isinstance(value, str):
            timeouts[index] = (value, timeout)
        elif value is not None:
            fields["timeout_minutes"] = value
    return StepSpec(index=index, name=name, **fields)


def _uses(reader: Reader, node: YNode, path: str) -> Template | None:
    action = reader.string(node, path)
    if action is None:
        return None
    name = action.split("@", 1)[0].strip().lower()
    if name != CHECKOUT_ACTION:
        reader.error(node, path, unsupported_action_message(action))
        return None
    return action
